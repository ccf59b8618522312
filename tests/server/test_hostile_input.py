"""Hostile input, table-driven, on SQLite and PostgreSQL: oversized and chunked bodies, huge batches, malformed
and deeply nested JSON, characters no person types, overlong names, and injection strings kept as plain text."""
import io
import json
import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from server.extensions import db
from server.models import Rejection, Resident, User


def _now():
    return datetime.now(timezone.utc).isoformat()


def _resident_create(n, household_id, **kw):
    args = {"id": str(uuid.uuid4()), "household_id": household_id, "first_name": "Maryse", "last_name": "Moreau"}
    return {"n": n, "op": "resident.create", "at": _now(), "args": {**args, **kw}}


def _user_body(**kw):
    return {"email": f"{uuid.uuid4().hex[:8]}@palier.test", "display_name": "Nadia", "role": "gardien",
            "password": "une-phrase-secrete", **kw}


def _counts():
    db.session.expire_all()
    return (db.session.execute(sa.select(sa.func.count()).select_from(User)).scalar_one(),
            db.session.execute(sa.select(sa.func.count()).select_from(Resident)).scalar_one())


# --- size ---------------------------------------------------------------------------------------------------

# (route, who): a JSON route of each kind, anonymous, admin and field.
BODY_ROUTES = [("/api/auth/login", "anonymous"), ("/api/users", "admin"), ("/api/sync/push", "staff"),
               ("/api/sync/pull", "staff")]


def _oversized(app) -> bytes:
    limit = app.config["MAX_CONTENT_LENGTH"]
    return json.dumps({"email": "a@palier.test", "password": "x" * (limit + 10)}).encode()


@pytest.mark.parametrize("url,who", BODY_ROUTES)
def test_an_oversized_body_with_a_content_length_is_413(app, world, as_role, url, who):
    before = _counts()
    api = as_role(who)
    resp = api.client.post(url, data=_oversized(app), content_type="application/json", headers=api._headers())
    assert resp.status_code == 413, resp.get_data(as_text=True)[:200]
    assert resp.get_json()["error"]["code"] == "payload_too_large"
    assert _counts() == before


@pytest.mark.parametrize("url,who", BODY_ROUTES)
def test_an_oversized_chunked_body_is_413(app, world, as_role, url, who):
    before = _counts()
    api = as_role(who)
    # As a de-chunking server (werkzeug, gunicorn) hands a chunked body over: no length, a terminated input.
    resp = api.client.post(url, input_stream=io.BytesIO(_oversized(app)),
                           environ_overrides={"wsgi.input_terminated": True},
                           headers={**api._headers(), "Content-Type": "application/json",
                                    "Transfer-Encoding": "chunked"})
    assert resp.status_code == 413, resp.get_data(as_text=True)[:200]
    assert resp.get_json()["error"]["code"] == "payload_too_large"
    assert _counts() == before


def test_a_small_chunked_body_still_works(client, make):
    user = make.user("gardien")
    raw = json.dumps({"email": user.email, "password": "motdepasse-solide", "mode": "bearer"}).encode()
    resp = client.post("/api/auth/login", input_stream=io.BytesIO(raw), environ_overrides={"wsgi.input_terminated": True},
                       headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    assert resp.status_code == 200, resp.get_json()


@pytest.mark.parametrize("compact", [False, True], ids=["full", "compact-under-byte-limit"])
def test_a_100000_mutation_batch_is_refused_whole(app, world, as_role, compact):
    api = as_role("staff")
    cid = str(uuid.uuid4())
    if compact:
        # Small enough in bytes to pass the body limit: the mutation count limit must answer.
        app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024
        mutations = [{}] * 100_000
    else:
        mutations = [_resident_create(i + 1, world["own_household"]) for i in range(100_000)]
    before = _counts()
    resp = api.post("/api/sync/push", json={"client_id": cid, "mutations": mutations})
    assert resp.status_code in (413, 422), resp.get_data(as_text=True)[:200]
    assert set(resp.get_json()) == {"error"}
    assert _counts() == before


# --- malformed JSON -----------------------------------------------------------------------------------------

MALFORMED = {
    "truncated": b'{"email": "a@palier.test", "password": ',
    "not-json": b"email=a&password=b",
    "deep-lists": b"[" * 100_000,
    "deep-objects": b'{"a":' * 100_000,
    "deep-but-closed": b"[" * 5_000 + b"]" * 5_000,
    "nested-beyond-64": json.dumps({"email": "a@palier.test", "password": "x", "mode": "bearer",
                                    "x": json.loads("[" * 70 + "]" * 70)}).encode(),
    "invalid-utf8": b'{"email": "\xff\xfe@palier.test", "password": "x"}',
    "nan": b'{"email": "a@palier.test", "password": NaN}',
    "empty": b"",
}


@pytest.mark.parametrize("url,who", BODY_ROUTES)
@pytest.mark.parametrize("kind", MALFORMED)
def test_malformed_or_deeply_nested_json_is_400(world, as_role, url, who, kind):
    api = as_role(who)
    resp = api.client.post(url, data=MALFORMED[kind], content_type="application/json", headers=api._headers())
    assert resp.status_code == 400 or (kind == "nan" and resp.status_code == 422), resp.get_data(as_text=True)[:200]
    assert set(resp.get_json()) == {"error"}
    assert "Traceback" not in resp.get_data(as_text=True)


# --- characters and lengths ---------------------------------------------------------------------------------

REFUSED = "Caractère non autorisé."
# name -> (value, the message the field gets)
BAD_NAMES = {
    "nul": ("Na\x00dia", REFUSED),
    "lone-surrogate": ("Na\ud800dia", REFUSED),
    "right-to-left-override": ("Nadia\u202egpj.exe", REFUSED),
    "other-control": ("Na\x07dia", REFUSED),
    "10000-characters": ("N" * 10_000, "Longueur invalide (entre 1 et 120 caractères)."),
}


def _raw(body) -> bytes:
    # json.dumps escapes a lone surrogate as \ud800, as a browser's JSON.stringify does.
    return json.dumps(body).encode()


@pytest.mark.parametrize("kind", BAD_NAMES)
def test_bad_names_get_one_clear_422_on_an_api_route(world, as_role, kind):
    value, message = BAD_NAMES[kind]
    api = as_role("admin")
    before = _counts()
    resp = api.client.post("/api/users", data=_raw(_user_body(display_name=value)),
                           content_type="application/json", headers=api._headers())
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["error"]["details"] == {"display_name": [message]}
    patch = api.client.patch(f"/api/users/{world['own_gardien']}", data=_raw({"display_name": value}),
                             content_type="application/json", headers=api._headers())
    assert patch.status_code == 422 and patch.get_json()["error"]["details"] == {"display_name": [message]}
    assert _counts() == before


@pytest.mark.parametrize("kind", ["nul", "lone-surrogate"])
def test_unstorable_characters_anywhere_are_422_with_where(world, as_role, kind):
    """NUL and lone surrogates are refused wherever they appear: in a field no schema checks as text
    (a password), a nested value, a sync mutation, or the query string; never a 500 from the database driver."""
    value = BAD_NAMES[kind][0]
    admin, staff = as_role("admin"), as_role("staff")
    cases = [
        (admin, "/api/users", _user_body(password=f"une-phrase-{value}-secrete"), {"password": [REFUSED]}),
        (as_role("anonymous"), "/api/auth/login", {"email": "a@palier.test", "password": value},
         {"password": [REFUSED]}),
        (staff, "/api/sync/push", {"client_id": str(uuid.uuid4()), "app_version": value, "mutations": []},
         {"app_version": [REFUSED]}),
    ]
    before = _counts()
    for api, url, body, details in cases:
        resp = api.client.post(url, data=_raw(body), content_type="application/json", headers=api._headers())
        assert resp.status_code == 422, (url, resp.get_json())
        assert resp.get_json()["error"]["details"] == details
    if kind == "nul":  # a query string cannot carry a surrogate (werkzeug decodes it as UTF-8, with replacement)
        resp = admin.get("/api/residents", query_string={"q": "Ode\x00tte"})
        assert resp.status_code == 422 and resp.get_json()["error"]["details"] == {"q": [REFUSED]}
    assert _counts() == before


@pytest.mark.parametrize("kind", ["right-to-left-override", "other-control", "10000-characters", "nul",
                                  "lone-surrogate"])
def test_bad_names_in_a_sync_mutation_are_that_mutations_rejection(world, as_role, kind):
    """In a push, a field's bad value rejects that mutation only (it never blocks the ones behind it), NUL and
    lone surrogates included: a 422 for the whole batch would leave the phone's outbox stuck for good."""
    value = BAD_NAMES[kind][0]
    api = as_role("staff")
    cid = str(uuid.uuid4())
    bad = _resident_create(1, world["own_household"], first_name=value)
    good = _resident_create(2, world["own_household"], first_name="Lucie")
    body = {"client_id": cid, "mutations": [bad, good]}
    resp = api.client.post("/api/sync/push", data=_raw(body), content_type="application/json",
                           headers=api._headers())
    assert resp.status_code == 200, resp.get_json()
    first, second = resp.get_json()["results"]
    assert first["status"] == "rejected" and second["status"] == "applied", (first, second)
    assert db.session.get(Resident, uuid.UUID(good["args"]["id"])).first_name == "Lucie"
    assert db.session.get(Resident, uuid.UUID(bad["args"]["id"])) is None
    # Head office sees the rejection with its reason; what could not be stored shows as U+FFFD.
    rejection = db.session.execute(sa.select(Rejection).where(Rejection.client_id == uuid.UUID(cid))).scalar_one()
    assert rejection.n == 1 and "\x00" not in rejection.args["first_name"]
    # The same batch again is a replay (the bad one is answered as rejected, nothing applied twice).
    again = api.client.post("/api/sync/push", data=_raw(body), content_type="application/json",
                            headers=api._headers())
    assert [r["status"] for r in again.get_json()["results"]] == ["rejected", "applied"]


# --- injection strings: stored as plain text, nothing extra comes back ------------------------------------

INJECTIONS = [
    "Robert'); DROP TABLE resident;--",
    "' OR '1'='1",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "=HYPERLINK(\"http://evil.example\",\"x\")",
    "+33 =1+1",
    "@SUM(1+1)",
    "{{7*7}}",
    "%(password)s",
    "../../etc/passwd",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_strings_are_stored_as_plain_text(world, as_role, text):
    admin, staff = as_role("admin"), as_role("staff")
    created = admin.post("/api/users", json=_user_body(display_name=text[:120]))
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["display_name"] == text[:120].strip()
    users = admin.get("/api/users").get_json()
    assert sum(u["display_name"] == text[:120].strip() for u in users) == 1

    rid = str(uuid.uuid4())
    resp = staff.post("/api/sync/push", json={"client_id": str(uuid.uuid4()), "mutations": [
        {**_resident_create(1, world["own_household"], last_name=text), "args": {
            "id": rid, "household_id": world["own_household"], "first_name": "Maryse", "last_name": text}}]})
    assert resp.get_json()["results"][0]["status"] == "applied", resp.get_json()
    assert db.session.get(Resident, uuid.UUID(rid)).last_name == text.strip()
    # A search with the string finds that one resident of our site, nothing of the other site, no error.
    found = staff.get("/api/residents", query_string={"q": text[:100]})
    assert found.status_code == 200, found.get_json()
    assert all(r["site_id"] == world["own_site"] for r in found.get_json()["items"])
    assert {r["id"] for r in found.get_json()["items"]} <= {rid}
    one = staff.get(f"/api/residents/{rid}")
    assert one.status_code == 200 and one.get_json()["last_name"] == text.strip()
    assert one.mimetype == "application/json"  # never rendered as HTML
    # Both tables still there, with what they held.
    assert db.session.execute(sa.select(sa.func.count()).select_from(Resident)).scalar_one() >= 3
