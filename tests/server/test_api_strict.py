"""Strict inputs: a field the client may not set (role, site, author, seq, timestamps) or does not exist is a
422 in the one error shape, and nothing changes."""
import pytest

from server.extensions import db
from server.models import User

FORBIDDEN = {"site_id": "00000000-0000-0000-0000-000000000001", "author": "x", "created_by": "x", "seq": 99,
             "created_at": "2026-01-01T00:00:00+00:00", "updated_at": "2026-01-01T00:00:00+00:00",
             "id": "00000000-0000-0000-0000-000000000002", "password_hash": "x", "colour": "bleu"}


def _login_body(w):
    return {"email": w.users["gardien"].email, "password": "motdepasse-solide"}


def _create_body(w):
    return {"email": "neuf@palier.test", "display_name": "Neuf", "role": "gardien", "password": "une-phrase-secrete"}


def _patch_body(w):
    return {"display_name": "Changé"}


# (method, url, body, who): role is legitimate for an admin creating or changing an account, never elsewhere.
BODY_ENDPOINTS = {
    "login": ("POST", lambda w: "/api/auth/login", _login_body, "anonymous", FORBIDDEN | {"role": "admin"}),
    "create_user": ("POST", lambda w: "/api/users", _create_body, "admin", FORBIDDEN),
    "update_user": ("PATCH", lambda w: f"/api/users/{w['own_gardien']}", _patch_body, "admin",
                    FORBIDDEN | {"email": "autre@palier.test", "tokens_valid_after": "2030-01-01T00:00:00+00:00"}),
}
BODY_CASES = [pytest.param(name, field, id=f"{name}-{field}")
              for name, spec in BODY_ENDPOINTS.items() for field in spec[4]]


def _state():
    db.session.expire_all()
    return sorted((u.email, u.display_name, u.role, u.active, u.password_hash,
                   tuple(sorted(str(s) for s in u.site_ids))) for u in db.session.execute(db.select(User)).scalars())


@pytest.mark.parametrize("name,field", BODY_CASES)
def test_unassignable_or_unknown_body_fields_are_422_and_change_nothing(as_role, world, name, field):
    method, url, body, who, extras = BODY_ENDPOINTS[name]
    before = _state()
    resp = as_role(who).client.open(url(world), method=method, json=body(world) | {field: extras[field]},
                                    headers=as_role(who)._headers())
    assert resp.status_code == 422, resp.get_json()
    err = resp.get_json()["error"]
    assert err["code"] == "validation_error" and field in err["details"]
    assert "Set-Cookie" not in resp.headers
    assert _state() == before


@pytest.mark.parametrize("name", BODY_ENDPOINTS)
def test_the_same_bodies_without_the_extra_field_succeed(as_role, world, name):
    """The 422s above come from the extra field, not from a body that was wrong anyway."""
    method, url, body, who, _ = BODY_ENDPOINTS[name]
    resp = as_role(who).client.open(url(world), method=method, json=body(world), headers=as_role(who)._headers())
    assert resp.status_code in (200, 201), resp.get_json()


GET_LISTS = ["/api/sites", "/api/actions", "/api/events", "/api/households", "/api/residents",
             "/api/programme/progress", "/api/auth/me", "/api/users"]
QUERY_EXTRAS = {"role": "admin", "author": "x", "created_by": "x", "seq": "1", "created_at": "2026-01-01",
                "colour": "bleu", "deleted": "true"}


@pytest.mark.parametrize("field", QUERY_EXTRAS)
@pytest.mark.parametrize("url", GET_LISTS)
def test_unknown_query_parameters_are_422(as_role, world, url, field):
    api = as_role("admin")
    assert api.get(url).status_code == 200
    resp = api.get(url, query_string={field: QUERY_EXTRAS[field]})
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["error"]["details"]


@pytest.mark.parametrize("url", ["/api/households", "/api/residents", "/api/events"])
def test_a_repeated_filter_is_422_not_the_first_value(as_role, world, url):
    resp = as_role("gardien").get(f"{url}?site_id={world['own_site']}&site_id={world['other_site']}")
    assert resp.status_code == 422 and "site_id" in resp.get_json()["error"]["details"]


@pytest.mark.parametrize("query", ["page=0", "per_page=501", "site_id=pas-un-uuid", "q=" + "x" * 101])
def test_invalid_filters_are_422(as_role, world, query):
    resp = as_role("staff").get(f"/api/households?{query}")
    assert resp.status_code == 422 and set(resp.get_json()) == {"error"}


def test_a_body_that_is_not_json_is_refused_in_the_one_shape(client):
    resp = client.post("/api/auth/login", data="email=x", content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 415 and resp.get_json()["error"]["code"] == "unsupported_media_type"
    resp = client.post("/api/auth/login", data="[1, 2]", content_type="application/json")
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "bad_json"


# --- what each role sees ------------------------------------------------------------------------------------

@pytest.mark.parametrize("role,sees_contact", [("gardien", False), ("staff", True), ("head_office", True),
                                               ("admin", True)])
def test_resident_contact_fields_are_hidden_from_gardiens(as_role, world, role, sees_contact):
    api = as_role(role)
    one = api.get(f"/api/residents/{world['own_resident']}").get_json()
    listed = api.get(f"/api/residents?household_id={world['own_household']}").get_json()["items"]
    for record in [one, *listed]:
        assert ("phone" in record and "email" in record) is sees_contact, record
        assert record["first_name"]
    text = api.get(f"/api/residents/{world['own_resident']}").get_data(as_text=True)
    assert ("06 12 34 56 78" in text) is sees_contact and ("own@exemple.fr" in text) is sees_contact


def test_gardien_lists_only_their_sites_households(as_role, world):
    body = as_role("gardien").get("/api/households").get_json()
    assert body["total"] == 1 and [h["site_id"] for h in body["items"]] == [world["own_site"]]
    body = as_role("head_office").get("/api/households").get_json()
    assert body["total"] == 2
