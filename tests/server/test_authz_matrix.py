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
    token: str = "access"  # "access" | "refresh" | "none" (public)


def _unique_email(_w, _side, role):
    return f"nouveau-{role}-{uuid.uuid4().hex[:6]}@palier.test"


TABLE: dict[tuple[str, str], Row] = {
    ("POST", "/api/auth/login"): Row(ALL, "plain", lambda w, s: "/api/auth/login", token="none",
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
        return {row.ok} if row.token == "none" and row.body is None else {401}
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
def test_matrix(as_role, world, key, role, side):
    row = TABLE[key]
    resp = _call(as_role, world, key, row, role, side)
    assert resp.status_code in _expected(row, role, side), (resp.status_code, resp.get_data(as_text=True)[:300])
    if resp.status_code >= 400:
        assert set(resp.get_json()) == {"error"}, "one error shape"
    if role in FIELD:
        # Whatever the answer, nothing of a site the user does not work on is in it.
        text = resp.get_data(as_text=True)
        leaked = [k for k, v in world.ids.items() if k.startswith("other_") and k != "other_gardien" and v in text]
        assert not leaked, f"{role} received {leaked}"
    if resp.status_code == 200 and row.kind == "list" and role in REVIEW:
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
