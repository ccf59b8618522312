"""POST /api/public/subscriptions/renew: the service worker's answer to 'pushsubscriptionchange'."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from server import privacy, push
from server.extensions import db
from server.models import PushSubscription
from tests.server.push_support import NOW, agenda, deliveries, fake_push, push_app, vapid  # noqa: F401


def test_renew_moves_the_consent_to_the_new_endpoint_keeping_kinds_consent_link_and_token(client, agenda, make,
                                                                                            fake_push):
    site = make.site(code="vauban")
    ev = agenda.event([site], NOW + timedelta(hours=1, minutes=30))  # its 2 h reminder is due at NOW
    sub, token = agenda.subscribe(site, kinds=("atelier", "sortie"), name="old", now=NOW - timedelta(hours=1))
    link, link_token = privacy.create_push_link(make.resident(make.household(site)), None)
    privacy.link_subscription(token, link_token)
    sub.failures, sub.last_failure_status = 2, 503
    db.session.commit()
    sub_id, resident_id, consent_at = sub.id, sub.resident_id, sub.consent_at

    fresh = fake_push.new_subscription("new")
    resp = client.post("/api/public/subscriptions/renew", json={"token": token, "subscription": fresh})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"site_code": "vauban", "kinds": ["atelier", "sortie"]}
    db.session.expire_all()
    (row,) = db.session.execute(sa.select(PushSubscription)).scalars().all()
    assert (row.id, row.endpoint, row.p256dh, row.auth) == (
        sub_id, fresh["endpoint"], fresh["keys"]["p256dh"], fresh["keys"]["auth"])
    assert (row.resident_id, row.consent_at, row.kinds, row.withdrawn_at) == (
        resident_id, consent_at, ["atelier", "sortie"], None)
    assert (row.failures, row.last_failure_status) == (0, None)

    # The pending reminder now reaches the new subscription (the fake service decrypts it with the new keys).
    assert push.send_due(now=NOW) == {"sent": 1}
    assert fake_push.deliveries() == {("new", str(ev.id), "reminder"): 1}
    assert [d.state for d in deliveries(event_id=ev.id)] == ["sent"]

    # The token still withdraws the consent.
    assert client.post("/api/public/subscriptions/unsubscribe", json={"token": token}).status_code == 200


def test_renew_refuses_unknown_or_withdrawn_tokens_and_a_taken_endpoint(client, agenda, make, fake_push):
    site = make.site(code="vauban")
    sub, token = agenda.subscribe(site, name="a")
    other, other_token = agenda.subscribe(site, name="b")
    fresh = fake_push.new_subscription("c")

    unknown = client.post("/api/public/subscriptions/renew", json={"token": "x" * 64, "subscription": fresh})
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "unknown_token"

    # Another consent of this site already holds that endpoint: nothing moves.
    taken = client.post("/api/public/subscriptions/renew",
                        json={"token": token, "subscription": {**fresh, "endpoint": other.endpoint}})
    assert taken.status_code == 409 and taken.get_json()["error"]["code"] == "already_subscribed"

    client.post("/api/public/subscriptions/unsubscribe", json={"token": token})
    withdrawn = client.post("/api/public/subscriptions/renew", json={"token": token, "subscription": fresh})
    assert withdrawn.status_code == 404
    db.session.expire_all()
    assert db.session.get(PushSubscription, sub.id).endpoint is None  # a withdrawal is never undone by a renewal


@pytest.mark.parametrize("body, field", [
    ({"subscription": None}, "token"),
    ({"token": "t"}, "subscription"),
    ({"token": "t", "subscription": {"endpoint": "https://evil.example.org/x",
                                      "keys": {"p256dh": "AAAA", "auth": "AAAA"}}}, "subscription"),
    ({"token": "t", "subscription": None, "kinds": ["atelier"]}, "kinds"),  # kinds are kept, never changed here
])
def test_renew_validation(client, push_app, body, field):
    body = {k: v for k, v in body.items() if v is not None}
    resp = client.post("/api/public/subscriptions/renew", json=body)
    assert resp.status_code == 422 and field in resp.get_json()["error"]["details"]
