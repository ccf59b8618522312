"""The authorization matrix: every /api route x every role x our site / another site.

The table below is the contract. A route that the app serves and the table does not list fails
test_every_api_route_has_a_row: adding a route means deciding here who may use it.
"""
import uuid
from dataclasses import dataclass
from typing import Callable

import pytest

from .conftest import ROLES

ALL = ROLES
FIELD = ("gardien", "staff")
REVIEW = ("head_office", "admin")
SIDES = ("own", "other")


@dataclass(frozen=True)
class Row:
    roles: tuple  # roles allowed; any other role gets 403, anonymous 401
    kind: str  # "object": id of our site or the other one | "list": filtered by site | "plain": no site in it
    url: Callable  # (world, side) -> url
    body: Callable | None = None  # (world, side, role) -> JSON body
    ok: int = 200
    token: str = "access"  # "access" | "refresh" | "none" (public: the same answer for everyone)
    anonymous: int | None = None  # what an anonymous caller gets, when not 401 (public) or ok


def _unique_email(_w, _side, role):
    return f"nouveau-{role}-{uuid.uuid4().hex[:6]}@palier.test"


def _b64(raw: bytes) -> str:
    import base64
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _browser_subscription() -> dict:
    return {"endpoint": f"https://fcm.googleapis.com/fcm/send/{uuid.uuid4().hex}",
            "keys": {"p256dh": _b64(b"\x04" + bytes(64)), "auth": _b64(bytes(16))}}


def _subscribe_body(w, side, role):
    return {"subscription": _browser_subscription(), "site_code": w[side + "_site_code"], "kinds": ["atelier"],
            "consent": True, "consent_text_version": "2026-01"}


def _unsubscribe_body(w, side, role):
    """A consent recorded just before, withdrawn with its token."""
    from server import push
    from server.extensions import db
    from server.models import Site
    site = db.session.get(Site, uuid.UUID(w[side + "_site"]))
    sub = _browser_subscription()
    _, token = push.subscribe(site, sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"], ["atelier"], "v1")
    db.session.commit()
    return {"token": token}


def _renew_body(w, side, role):
    """A consent recorded just before, moved to a new browser subscription (pushsubscriptionchange)."""
    token = _unsubscribe_body(w, side, role)["token"]
    return {"token": token, "subscription": _browser_subscription()}


def _device(w, side, role):
    return {"client_id": str(uuid.uuid4()), "app_version": "test", "pending": 0, "mutations": []}


def _pull_body(w, side, role):
    return {"client_id": str(uuid.uuid4()), "cursor": None}


def _fixed_visit(w, side, role):
    """The world's rejected visit.create (empty args), completed by head office."""
    return {"args": {"id": str(uuid.uuid4()), "household_id": w[side + "_household"], "outcome": "talked",
                     "visited_at": "2026-06-01T10:00:00+02:00"}}


def _fresh_resident_url(w, side, what):
    """A resident with no suspected duplicate (the world's one has a pending one, which blocks erasure)."""
    from server.database import next_seq
    from server.extensions import db
    from server.models import Household, Resident
    hh = db.session.get(Household, uuid.UUID(w[side + "_household"]))
    r = Resident(household_id=hh.id, site_id=hh.site_id, first_name="Anne", last_name="Effaçable",
                 name_key="anne effacable", seq=next_seq(db.session))
    db.session.add(r)
    db.session.commit()
    return f"/api/privacy/residents/{r.id}/{what}"


def _link_body(w, side, role):
    """A subscription just made, and a per-resident push link of the same site."""
    from server import privacy, push
    from server.extensions import db
    from server.models import Resident, Site
    site = db.session.get(Site, uuid.UUID(w[side + "_site"]))
    sub = _browser_subscription()
    _, token = push.subscribe(site, sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"], ["atelier"], "v1")
    _, link = privacy.create_push_link(db.session.get(Resident, uuid.UUID(w[side + "_resident"])), None)
    db.session.commit()
    return {"unsubscribe_token": token, "link_token": link}


TABLE: dict[tuple[str, str], Row] = {
    ("POST", "/api/auth/login"): Row(ALL, "plain", lambda w, s: "/api/auth/login", token="none", anonymous=401,
                                     body=lambda w, s, role: {"email": w.users[role].email if role in w.users
                                                              else "anonyme@palier.test",
                                                              "password": "motdepasse-solide", "mode": "bearer"}),
    ("POST", "/api/auth/refresh"): Row(ALL, "plain", lambda w, s: "/api/auth/refresh", token="refresh"),
    ("POST", "/api/auth/logout"): Row(ALL, "plain", lambda w, s: "/api/auth/logout", token="refresh"),
    ("GET", "/api/auth/me"): Row(ALL, "plain", lambda w, s: "/api/auth/me"),
    ("GET", "/api/docs"): Row(ALL, "plain", lambda w, s: "/api/docs", token="none"),
    ("GET", "/api/sites"): Row(ALL, "plain", lambda w, s: "/api/sites"),
    ("GET", "/api/sites/<uuid:site_id>"): Row(ALL, "object", lambda w, s: f"/api/sites/{w[s + '_site']}"),
    ("GET", "/api/actions"): Row(ALL, "plain", lambda w, s: "/api/actions"),
    ("GET", "/api/events"): Row(ALL, "list", lambda w, s: f"/api/events?site_id={w[s + '_site']}"),
    ("GET", "/api/events/<uuid:event_id>"): Row(ALL, "object", lambda w, s: f"/api/events/{w[s + '_event']}"),
    ("GET", "/api/households"): Row(ALL, "list", lambda w, s: f"/api/households?site_id={w[s + '_site']}"),
    ("GET", "/api/households/<uuid:household_id>"): Row(
        ALL, "object", lambda w, s: f"/api/households/{w[s + '_household']}"),
    ("GET", "/api/residents"): Row(ALL, "list", lambda w, s: f"/api/residents?household_id={w[s + '_household']}"),
    ("GET", "/api/residents/<uuid:resident_id>"): Row(
        ALL, "object", lambda w, s: f"/api/residents/{w[s + '_resident']}"),
    ("GET", "/api/programme/progress"): Row(ALL, "plain", lambda w, s: "/api/programme/progress"),
    ("GET", "/api/users"): Row(("admin",), "plain", lambda w, s: "/api/users"),
    ("POST", "/api/users"): Row(("admin",), "plain", lambda w, s: "/api/users", ok=201,
                                body=lambda w, s, role: {"email": _unique_email(w, s, role), "display_name": "Léa",
                                                         "role": "gardien", "password": "une-phrase-secrete",
                                                         "site_ids": [w[s + "_site"]]}),
    ("PATCH", "/api/users/<uuid:user_id>"): Row(("admin",), "plain", lambda w, s: f"/api/users/{w[s + '_gardien']}",
                                                body=lambda w, s, role: {"display_name": "Nom changé"}),
    # Sync (docs/PROTOCOL.md): push for the field roles; pull also for head office and admin.
    ("POST", "/api/sync/push"): Row(FIELD, "plain", lambda w, s: "/api/sync/push", body=_device),
    ("POST", "/api/sync/pull"): Row(ALL, "plain", lambda w, s: "/api/sync/pull", body=_pull_body),
    # Review: head office and admin, on every site.
    ("GET", "/api/review/conflicts"): Row(REVIEW, "plain", lambda w, s: "/api/review/conflicts"),
    ("GET", "/api/review/duplicates"): Row(REVIEW, "plain", lambda w, s: "/api/review/duplicates"),
    ("GET", "/api/review/rejections"): Row(REVIEW, "plain", lambda w, s: "/api/review/rejections"),
    ("POST", "/api/review/conflicts/<uuid:conflict_id>/resolve"): Row(
        REVIEW, "object", lambda w, s: f"/api/review/conflicts/{w[s + '_conflict']}/resolve",
        body=lambda w, s, role: {"keep": "lost"}),
    ("POST", "/api/review/duplicates/<uuid:suspicion_id>/merge"): Row(
        REVIEW, "object", lambda w, s: f"/api/review/duplicates/{w[s + '_duplicate']}/merge", body=lambda *a: {}),
    ("POST", "/api/review/duplicates/<uuid:suspicion_id>/distinct"): Row(
        REVIEW, "object", lambda w, s: f"/api/review/duplicates/{w[s + '_duplicate']}/distinct"),
    ("POST", "/api/review/rejections/<uuid:rejection_id>/dismiss"): Row(
        REVIEW, "object", lambda w, s: f"/api/review/rejections/{w[s + '_rejection']}/dismiss"),
    # Head office (issue 6): dashboard, lists, exports, devices, fixing a rejection. Head office and admin only.
    ("POST", "/api/review/rejections/<uuid:rejection_id>/fix"): Row(
        REVIEW, "object", lambda w, s: f"/api/review/rejections/{w[s + '_rejection']}/fix", body=_fixed_visit),
    ("GET", "/api/dashboard"): Row(REVIEW, "plain", lambda w, s: f"/api/dashboard?site_id={w[s + '_site']}"),
    ("GET", "/api/lists/visits"): Row(REVIEW, "plain", lambda w, s: f"/api/lists/visits?site_id={w[s + '_site']}"),
    ("GET", "/api/lists/residents"): Row(REVIEW, "list",
                                         lambda w, s: f"/api/lists/residents?site_id={w[s + '_site']}"),
    ("GET", "/api/lists/events"): Row(REVIEW, "list", lambda w, s: f"/api/lists/events?site_id={w[s + '_site']}"),
    ("GET", "/api/lists/events/<uuid:event_id>/attendance"): Row(
        REVIEW, "object", lambda w, s: f"/api/lists/events/{w[s + '_event']}/attendance"),
    ("GET", "/api/lists/engagements"): Row(REVIEW, "plain",
                                           lambda w, s: f"/api/lists/engagements?site_id={w[s + '_site']}"),
    ("GET", "/api/exports/<kind>.csv"): Row(REVIEW, "plain",
                                            lambda w, s: f"/api/exports/residents.csv?site_id={w[s + '_site']}"),
    ("GET", "/api/exports/<kind>.xlsx"): Row(REVIEW, "plain",
                                             lambda w, s: f"/api/exports/visits.xlsx?site_id={w[s + '_site']}"),
    ("GET", "/api/devices"): Row(REVIEW, "plain", lambda w, s: "/api/devices"),
    # Agenda and reminders: the public pages of a site (no login), the staff's QR code, head office's alerts.
    ("GET", "/api/public/sites/<code>/agenda"): Row(
        ALL, "plain", lambda w, s: f"/api/public/sites/{w[s + '_site_code']}/agenda", token="none"),
    ("GET", "/api/public/sites/<code>/events/<uuid:event_id>"): Row(
        ALL, "plain", lambda w, s: f"/api/public/sites/{w[s + '_site_code']}/events/{w[s + '_event']}", token="none"),
    ("GET", "/api/public/vapid-public-key"): Row(ALL, "plain", lambda w, s: "/api/public/vapid-public-key",
                                                 token="none"),
    ("POST", "/api/public/subscriptions"): Row(ALL, "plain", lambda w, s: "/api/public/subscriptions", ok=201,
                                               token="none", body=_subscribe_body),
    ("POST", "/api/public/subscriptions/unsubscribe"): Row(
        ALL, "plain", lambda w, s: "/api/public/subscriptions/unsubscribe", token="none", body=_unsubscribe_body),
    # Push link, PWA side: the service worker moves a consent to the browser's new subscription.
    ("POST", "/api/public/subscriptions/renew"): Row(
        ALL, "plain", lambda w, s: "/api/public/subscriptions/renew", token="none", body=_renew_body),
    ("GET", "/api/sites/<uuid:site_id>/subscribe-qr"): Row(
        ALL, "object", lambda w, s: f"/api/sites/{w[s + '_site']}/subscribe-qr"),
    ("GET", "/api/push/alerts"): Row(REVIEW, "plain", lambda w, s: "/api/push/alerts"),
    # Agenda administration (issue 6 item 4): head office and admin create, edit and cancel events of any site.
    ("GET", "/api/agenda/events"): Row(
        REVIEW, "list", lambda w, s: f"/api/agenda/events?site_id={w[s + '_site']}&include_cancelled=1"),
    ("POST", "/api/agenda/events"): Row(
        REVIEW, "plain", lambda w, s: "/api/agenda/events", ok=201,
        body=lambda w, s, role: {"title": "Atelier cuisine", "kind": "atelier", "site_ids": [w[s + "_site"]],
                                 "starts_at": "2031-03-04T14:00:00+01:00", "ends_at": "2031-03-04T16:00:00+01:00"}),
    ("PATCH", "/api/agenda/events/<uuid:event_id>"): Row(
        REVIEW, "object", lambda w, s: f"/api/agenda/events/{w[s + '_event']}",
        body=lambda w, s, role: {"title": "Atelier renommé"}),
    ("POST", "/api/agenda/events/<uuid:event_id>/cancel"): Row(
        REVIEW, "object", lambda w, s: f"/api/agenda/events/{w[s + '_event']}/cancel"),
    # Privacy (residents' rights): head office exports, only the admin erases and reads the audit log; field staff
    # make a resident's push link during a visit; the resident's browser ties its subscription with it.
    ("GET", "/api/privacy/residents/<uuid:resident_id>/export"): Row(
        REVIEW, "object", lambda w, s: f"/api/privacy/residents/{w[s + '_resident']}/export"),
    ("POST", "/api/privacy/residents/<uuid:resident_id>/erase"): Row(
        ("admin",), "object", lambda w, s: _fresh_resident_url(w, s, "erase"),
        body=lambda w, s, role: {"reason": "Demande écrite du 3 mars"}),
    ("GET", "/api/privacy/audit"): Row(("admin",), "plain", lambda w, s: "/api/privacy/audit"),
    ("POST", "/api/privacy/residents/<uuid:resident_id>/push-link"): Row(
        FIELD, "object", lambda w, s: f"/api/privacy/residents/{w[s + '_resident']}/push-link", ok=201),
    ("POST", "/api/public/subscriptions/link"): Row(ALL, "plain", lambda w, s: "/api/public/subscriptions/link",
                                                    token="none", body=_link_body),
}


def _api_rules(app) -> set[tuple[str, str]]:
    return {(method, rule.rule) for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_api_route_has_a_row(app):
    missing = sorted(_api_rules(app) - set(TABLE))
    assert not missing, f"routes without a row in the authorization matrix: {missing}"


def test_every_row_is_a_route(app):
    stale = sorted(set(TABLE) - _api_rules(app))
    assert not stale, f"rows of the matrix for routes that no longer exist: {stale}"


def _expected(row: Row, role: str, side: str) -> set[int]:
    if role == "anonymous":
        return {row.anonymous or (row.ok if row.token == "none" else 401)}
    if role not in row.roles:
        return {403}
    if side == "other" and role in FIELD and row.kind == "object":
        return {404, 403}
    return {row.ok}


def _call(as_role, world, key, row, role, side):
    method, _ = key
    api = as_role(role)
    url = row.url(world, side)
    headers = {}
    if row.token == "refresh" and role != "anonymous":
        headers["Authorization"] = f"Bearer {api.refresh_token}"
    body = row.body(world, side, role) if row.body else None
    if row.token == "none" or (row.token == "refresh" and role != "anonymous"):
        return api.client.open(url, method=method, json=body, headers=headers)
    return api.client.open(url, method=method, json=body, headers=api._headers(headers))


CASES = [pytest.param(key, role, side, id=f"{key[0]} {key[1]} {role} {side}")
         for key in TABLE for role in ALL + ("anonymous",) for side in SIDES]


@pytest.mark.parametrize("key,role,side", CASES)
def test_matrix(app, as_role, world, key, role, side):
    row = TABLE[key]
    app.config.update(VAPID_PUBLIC_KEY="BPublicKeyForTheMatrix", VAPID_PRIVATE_KEY="private-key-for-the-matrix")
    resp = _call(as_role, world, key, row, role, side)
    assert resp.status_code in _expected(row, role, side), (resp.status_code, resp.get_data(as_text=True)[:300])
    if resp.status_code >= 400:
        assert set(resp.get_json()) == {"error"}, "one error shape"
    if role in FIELD and row.token != "none":
        # Whatever the answer, nothing of a site the user does not work on is in it.
        text = resp.get_data(as_text=True)
        leaked = [k for k, v in world.ids.items() if k.startswith("other_") and k != "other_gardien" and v in text]
        assert not leaked, f"{role} received {leaked}"
    if resp.status_code == 200 and row.kind == "list" and role in REVIEW and side == "other":
        items = resp.get_json()
        items = items["items"] if isinstance(items, dict) else items
        assert items, "head office reads every site"


# --- A gardien asking for another site's data by every road --------------------------------------------------

OTHER_SITE_ROADS = [
    "/api/households/{other_household}",
    "/api/residents/{other_resident}",
    "/api/sites/{other_site}",
    "/api/events/{other_event}",
    "/api/households?site_id={other_site}",
    "/api/households?q=REF-OTHER",
    "/api/households?q=other",
    "/api/residents?site_id={other_site}",
    "/api/residents?household_id={other_household}",
    "/api/residents?q=Wattez",
    "/api/residents?q=gisele",
    "/api/events?site_id={other_site}",
]


@pytest.mark.parametrize("road", OTHER_SITE_ROADS)
@pytest.mark.parametrize("role", FIELD)
def test_field_roles_never_reach_another_site(as_role, world, role, road):
    resp = as_role(role).get(road.format(**world.ids))
    if resp.status_code == 200:
        body = resp.get_json()
        items = body["items"] if isinstance(body, dict) else body
        assert items == [], body
    else:
        assert resp.status_code in (403, 404), resp.get_json()
    text = resp.get_data(as_text=True)
    assert not any(v in text for k, v in world.ids.items() if k.startswith("other_")), text


@pytest.mark.parametrize("road", OTHER_SITE_ROADS)
def test_head_office_reaches_the_same_roads(as_role, world, road):
    """The roads above do lead to the data, for a role allowed to see it: the test above is not vacuous."""
    resp = as_role("head_office").get(road.format(**world.ids))
    assert resp.status_code == 200, resp.get_json()
    text = resp.get_data(as_text=True)
    assert any(v in text for k, v in world.ids.items() if k.startswith("other_")), text


def test_a_gardien_with_no_site_sees_nothing(world, login, make):
    api = login(make.user("gardien", sites=[]))
    for url in ("/api/sites", "/api/households", "/api/residents", "/api/events", "/api/actions"):
        body = api.get(url).get_json()
        items = body["items"] if isinstance(body, dict) else body
        assert items == [], (url, items)  # the world's actions all belong to a site


def test_losing_a_site_closes_it_at_once(as_role, world):
    gardien = as_role("gardien")
    url = f"/api/households/{world['own_household']}"
    assert gardien.get(url).status_code == 200
    admin = as_role("admin")
    assert admin.patch(f"/api/users/{world['own_gardien']}", json={"site_ids": [world["other_site"]]}).status_code == 200
    assert gardien.get(url).status_code == 404
