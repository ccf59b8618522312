"""The public agenda and subscription API (no login), the staff QR code, the VAPID key setup."""
import io
import json
import stat
from datetime import datetime, timedelta, timezone

import pytest
import segno
import sqlalchemy as sa

from server.extensions import db
from server.models import PushAlert, PushDelivery, PushSubscription
from server.push import keys
from tests.server.push_support import agenda, fake_push, push_app, vapid  # noqa: F401


def _body(fake_push, site_code, **over):
    return {"subscription": fake_push.new_subscription(), "site_code": site_code, "kinds": ["atelier"],
            "consent": True, "consent_text_version": "2026-05", **over}


def test_public_agenda_lists_upcoming_events_without_personal_data(client, agenda, make, world):
    site = make.site(code="vauban", name="Résidence Vauban")
    now = datetime.now(timezone.utc)
    ev = agenda.event([site], now + timedelta(days=2), title="Troc de vêtements", place="Local commun")
    agenda.event([site], now - timedelta(days=2))  # over
    agenda.event([make.site()], now + timedelta(days=1))  # another site
    resp = client.get("/api/public/sites/vauban/agenda")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["site"] == {"code": "vauban", "name": "Résidence Vauban"}
    (item,) = body["events"]
    local = ev.starts_at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    assert item["id"] == str(ev.id) and item["title"] == "Troc de vêtements" and item["place"] == "Local commun"
    assert (item["date"], item["time"], item["kind"]) == (local.date().isoformat(), local.strftime("%H:%M"),
                                                         "atelier")
    assert "created_by" not in item and "Odette" not in resp.get_data(as_text=True)
    assert client.get(f"/api/public/sites/vauban/events/{ev.id}").get_json()["title"] == "Troc de vêtements"
    assert client.get("/api/public/sites/nope/agenda").status_code == 404
    other_event = world["own_event"]  # of another site: not found through this one
    assert client.get(f"/api/public/sites/vauban/events/{other_event}").status_code == 404


def test_subscribe_records_consent_with_its_time_and_unsubscribe_withdraws(client, agenda, make, fake_push):
    site = make.site(code="zac-3")
    agenda.event([site], datetime.now(timezone.utc) + timedelta(days=3))
    before = datetime.now(timezone.utc)
    resp = client.post("/api/public/subscriptions", json=_body(fake_push, "zac-3"))
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    sub = db.session.get(PushSubscription, __import__("uuid").UUID(body["id"]))
    assert before <= sub.consent_at <= datetime.now(timezone.utc) and sub.consent_text_version == "2026-05"
    assert sub.withdrawn_at is None and sub.kinds == ["atelier"] and body["token"] not in sub.token_hash
    assert body["unsubscribe_url"] == f"/agenda/zac-3/unsubscribe#{body['token']}"
    assert {d.state for d in db.session.execute(sa.select(PushDelivery)).scalars()} == {"pending"}

    # A wrong token changes nothing.
    wrong = client.post("/api/public/subscriptions/unsubscribe", json={"token": body["token"][:-1] + ("1" if body["token"][-1] == "0" else "0")})
    assert wrong.status_code == 404 and wrong.get_json()["error"]["code"] == "unknown_token"
    db.session.expire_all()
    assert sub.withdrawn_at is None and sub.endpoint is not None

    resp = client.post("/api/public/subscriptions/unsubscribe", json={"token": body["token"]})
    assert resp.status_code == 200
    db.session.expire_all()
    assert sub.withdrawn_at is not None and sub.endpoint is None and sub.p256dh is None
    assert sub.consent_at is not None  # the consent record stays, with its withdrawal
    assert {d.state for d in db.session.execute(sa.select(PushDelivery)).scalars()} == {"dropped"}
    first = sub.withdrawn_at
    again = client.post("/api/public/subscriptions/unsubscribe", json={"token": body["token"]})
    assert again.status_code == 200 and again.get_json()["withdrawn_at"] == first.isoformat()


def test_subscribing_again_replaces_the_earlier_consent(client, agenda, make, fake_push):
    site = make.site(code="s1")
    body = _body(fake_push, "s1")
    first = client.post("/api/public/subscriptions", json=body).get_json()
    second = client.post("/api/public/subscriptions", json={**body, "kinds": ["sortie"]}).get_json()
    rows = {str(s.id): s for s in db.session.execute(sa.select(PushSubscription)).scalars()}
    assert rows[first["id"]].withdrawn_at is not None and rows[second["id"]].withdrawn_at is None
    assert rows[second["id"]].kinds == ["sortie"]


@pytest.mark.parametrize("change, field", [
    ({"consent": False}, "consent"),
    ({"kinds": []}, "kinds"),
    ({"kinds": ["concert"]}, "kinds"),
    ({"extra": 1}, "extra"),
    ({"consent_text_version": ""}, "consent_text_version"),
])
def test_subscribe_validation(client, agenda, make, fake_push, change, field):
    make.site(code="s1")
    resp = client.post("/api/public/subscriptions", json=_body(fake_push, "s1", **change))
    assert resp.status_code == 422 and field in resp.get_json()["error"]["details"]
    assert db.session.execute(sa.select(PushSubscription)).first() is None


@pytest.mark.parametrize("endpoint, keys_change", [
    ("https://evil.example.org/push/x", {}),  # not a browser's push service: the server would POST there
    ("http://fcm.googleapis.com/x", {}),  # not https (outside tests)
    (None, {"p256dh": "AAAA"}),
    (None, {"auth": "not base64 !"}),
])
def test_subscribe_refuses_foreign_endpoints_and_bad_keys(client, push_app, make, fake_push, endpoint, keys_change):
    make.site(code="s1")
    body = _body(fake_push, "s1")
    if endpoint:
        push_app.config.update(PUSH_ALLOW_HTTP=False, PUSH_ENDPOINT_HOSTS=["fcm.googleapis.com"])
        body["subscription"]["endpoint"] = endpoint
    body["subscription"]["keys"].update(keys_change)
    resp = client.post("/api/public/subscriptions", json=body)
    assert resp.status_code == 422 and "subscription" in resp.get_json()["error"]["details"]


def test_subscribe_to_unknown_site(client, agenda, fake_push):
    assert client.post("/api/public/subscriptions", json=_body(fake_push, "nope")).status_code == 404


def test_vapid_public_key(client, push_app, vapid, monkeypatch, tmp_path):
    assert client.get("/api/public/vapid-public-key").get_json() == {"public_key": vapid["public_key"]}
    push_app.config.update(VAPID_PRIVATE_KEY=None, VAPID_PUBLIC_KEY=None)
    monkeypatch.setattr(keys, "key_file", lambda: tmp_path / "vapid.json")
    resp = client.get("/api/public/vapid-public-key")
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "push_not_configured"


def test_push_keys_command_writes_a_private_file_once(app, runner, monkeypatch, tmp_path):
    path = tmp_path / "instance" / "vapid.json"
    monkeypatch.setattr(keys, "key_file", lambda: path)
    result = runner.invoke(args=["push-keys", "--subject", "mailto:siege@palier.test"])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    signer = keys.vapid_signer(stored["private_key"])
    from cryptography.hazmat.primitives import serialization
    public = signer.public_key.public_bytes(serialization.Encoding.X962,
                                            serialization.PublicFormat.UncompressedPoint)
    assert keys.b64url(public) == stored["public_key"] and stored["subject"] == "mailto:siege@palier.test"
    assert runner.invoke(args=["push-keys"]).exit_code == 0
    assert json.loads(path.read_text()) == stored  # not replaced without --force
    with app.app_context():
        assert keys.settings()["public_key"] == stored["public_key"]


def test_subscribe_qr_for_staff_of_the_site(as_role, world, push_app):
    push_app.config["PUBLIC_BASE_URL"] = "https://palier.example.org"
    site = db.session.get(__import__("server.models", fromlist=["Site"]).Site,
                          __import__("uuid").UUID(world["own_site"]))
    resp = as_role("gardien").get(f"/api/sites/{world['own_site']}/subscribe-qr")
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml"
    expected = io.BytesIO()
    segno.make(f"https://palier.example.org/agenda/{site.code}", error="m").save(
        expected, kind="svg", scale=8, border=2, title=f"Agenda {site.name}")
    assert resp.data == expected.getvalue()  # the QR of exactly that URL
    assert as_role("gardien").get(f"/api/sites/{world['other_site']}/subscribe-qr").status_code == 404
    assert as_role("anonymous").get(f"/api/sites/{world['own_site']}/subscribe-qr").status_code == 401
    assert as_role("head_office").get(f"/api/sites/{world['other_site']}/subscribe-qr").status_code == 200


def test_push_alerts_for_head_office_only(as_role, push_app):
    db.session.add(PushAlert(push_service="fcm.googleapis.com", status=403))
    db.session.commit()
    (alert,) = as_role("head_office").get("/api/push/alerts").get_json()
    assert (alert["push_service"], alert["status"], alert["count"]) == ("fcm.googleapis.com", 403, 1)
    assert as_role("gardien").get("/api/push/alerts").status_code == 403
