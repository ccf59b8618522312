"""Tokens the server must refuse, in headers and in cookies; logout that survives a restart; cookie flags and the
double-submit CSRF check on every cookie-authenticated write; login failures that look and cost the same."""
import uuid
from datetime import timedelta

import pytest
from flask_jwt_extended import create_access_token, create_refresh_token

from server import create_app
from server.api import auth as auth_api
from server.extensions import db
from server.models import User

from .test_auth import _b64, _unb64

PASSWORD = "motdepasse-solide"


def _forge(token: str, kind: str, user, refresh: bool) -> str:
    header, payload, signature = token.split(".")
    claims = _unb64(payload)
    if kind == "alg-none":
        return ".".join([_b64({"alg": "none", "typ": "JWT"}), payload, ""])
    if kind == "alg-none-no-dot":
        return ".".join([_b64({"alg": "none", "typ": "JWT"}), payload])
    if kind == "tampered-sub":  # someone else's id under the gardien's signature
        return ".".join([header, _b64({**claims, "sub": str(uuid.uuid4())}), signature])
    if kind == "tampered-exp":
        return ".".join([header, _b64({**claims, "exp": claims["exp"] + 86400 * 365}), signature])
    if kind == "hs256-with-a-guessable-key":
        import jwt as pyjwt
        return pyjwt.encode(claims, "secret-" * 6, algorithm="HS256")  # a well-known dev key, not ours
    if kind == "expired":
        make = create_refresh_token if refresh else create_access_token
        return make(identity=user, expires_delta=timedelta(seconds=-1))
    if kind == "wrong-type":  # an access token where a refresh one is due, and the other way round
        return (create_access_token if refresh else create_refresh_token)(identity=user)
    raise AssertionError(kind)


KINDS = ["alg-none", "alg-none-no-dot", "tampered-sub", "tampered-exp", "hs256-with-a-guessable-key", "expired",
         "wrong-type"]


@pytest.mark.parametrize("refresh", [False, True], ids=["access", "refresh"])
@pytest.mark.parametrize("kind", KINDS)
def test_bad_tokens_are_401_in_a_header_and_in_a_cookie(app, make, kind, refresh):
    user = make.user("gardien")
    good = (create_refresh_token if refresh else create_access_token)(identity=user)
    token = _forge(good, kind, user, refresh)
    method, url = ("POST", "/api/auth/refresh") if refresh else ("GET", "/api/auth/me")
    client = app.test_client()
    resp = client.open(url, method=method, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401, (kind, resp.get_json())
    assert set(resp.get_json()) == {"error"} and "Set-Cookie" not in resp.headers
    # The same token carried by the cookie the PWA uses (a GET needs no CSRF header; the refresh sends it).
    cookie = "refresh_token_cookie" if refresh else "access_token_cookie"
    path = "/api/auth/" if refresh else "/api/"
    client = app.test_client()
    client.set_cookie(cookie, token, path=path)
    client.set_cookie("csrf_refresh_token", "x", path="/")
    resp = client.open(url, method=method, headers={"X-CSRF-TOKEN": "x"})
    assert resp.status_code == 401, (kind, resp.get_json())
    # ... and the untouched token works, so the 401s above come from the forgery.
    ok = app.test_client().open(url, method=method, headers={"Authorization": f"Bearer {good}"})
    assert ok.status_code == 200


def _cookie_login(client, user):
    resp = client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert resp.status_code == 200, resp.get_json()
    return resp


def test_a_cookie_refresh_token_after_logout_is_401_also_after_a_restart(app, make):
    client = app.test_client()
    _cookie_login(client, make.user("staff"))
    refresh = client.get_cookie("refresh_token_cookie", path="/api/auth/").value
    csrf = client.get_cookie("csrf_refresh_token").value
    assert client.post("/api/auth/logout", headers={"X-CSRF-TOKEN": csrf}).status_code == 200
    replay = app.test_client()
    replay.set_cookie("refresh_token_cookie", refresh, path="/api/auth/")
    replay.set_cookie("csrf_refresh_token", csrf, path="/")
    resp = replay.post("/api/auth/refresh", headers={"X-CSRF-TOKEN": csrf})
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "token_revoked"

    db.session.remove()
    restarted = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "TESTING": True,
                            "SECRET_KEY": app.config["SECRET_KEY"]})
    try:
        again = restarted.test_client()
        again.set_cookie("refresh_token_cookie", refresh, path="/api/auth/")
        again.set_cookie("csrf_refresh_token", csrf, path="/")
        resp = again.post("/api/auth/refresh", headers={"X-CSRF-TOKEN": csrf})
        assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "token_revoked"
    finally:
        with restarted.app_context():
            db.session.remove()
            db.engine.dispose()


def _flags(resp) -> dict[str, set[str]]:
    out = {}
    for header in resp.headers.getlist("Set-Cookie"):
        name = header.split("=", 1)[0]
        out[name] = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]} | {
            part.strip().lower() for part in header.split(";")[1:] if part.strip().lower().startswith("samesite")}
    return out


@pytest.mark.parametrize("secure", [False, True])
def test_cookie_flags(app, make, secure):
    email = make.user("gardien").email
    db.session.remove()
    configured = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "TESTING": True,
                             "SECRET_KEY": app.config["SECRET_KEY"], "JWT_COOKIE_SECURE": secure})
    try:
        resp = configured.test_client().post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert resp.status_code == 200, resp.get_json()
    finally:
        with configured.app_context():
            db.session.remove()
            db.engine.dispose()
    flags = _flags(resp)
    assert set(flags) == {"access_token_cookie", "refresh_token_cookie", "csrf_access_token", "csrf_refresh_token"}
    for name, f in flags.items():
        assert "samesite=strict" in f, (name, f)
        assert ("secure" in f) is secure, (name, f)
        assert ("httponly" in f) is name.endswith("token_cookie"), (name, f)  # the CSRF values are read by the PWA


def test_production_cookies_are_secure_by_the_shipped_settings():
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    assert "PALIER_JWT_COOKIE_SECURE=true" in (root / ".env.example").read_text()


# Every write a cookie session can make: without the double-submit header it is refused and changes nothing.
WRITES = [
    ("POST", "/api/sync/push", lambda w: {"client_id": str(uuid.uuid4()), "mutations": []}),  # as staff
    ("POST", "/api/sync/pull", lambda w: {"client_id": str(uuid.uuid4())}),
    ("POST", "/api/users", lambda w: {"email": "n@palier.test", "display_name": "N", "role": "gardien",
                                      "password": "une-phrase-secrete"}),
    ("PATCH", "/api/users/{own_gardien}", lambda w: {"display_name": "Changé"}),
    ("POST", "/api/review/duplicates/{own_duplicate}/distinct", lambda w: None),
    ("POST", "/api/review/rejections/{own_rejection}/dismiss", lambda w: None),
    ("POST", "/api/auth/logout", lambda w: None),
    ("POST", "/api/auth/refresh", lambda w: None),
]


@pytest.mark.parametrize("method,url,body", WRITES, ids=[f"{m} {u}" for m, u, _ in WRITES])
def test_cookie_writes_need_the_csrf_header(app, world, method, url, body):
    client = app.test_client()
    _cookie_login(client, world.users["staff" if url == "/api/sync/push" else "admin"])
    target = url.format(**world.ids)
    for headers in ({}, {"X-CSRF-TOKEN": "pas-le-bon"}):
        resp = client.open(target, method=method, json=body(world), headers=headers)
        assert resp.status_code == 401, (headers, resp.get_json())
    cookie = "csrf_refresh_token" if target.startswith("/api/auth/") else "csrf_access_token"
    resp = client.open(target, method=method, json=body(world),
                       headers={"X-CSRF-TOKEN": client.get_cookie(cookie).value})
    assert resp.status_code in (200, 201), resp.get_json()


def test_unknown_user_and_wrong_password_do_the_same_work(client, make, monkeypatch):
    """Same status and body, and the same scrypt check on both paths (an unknown email is checked against a
    dummy hash of the same kind), so timing does not tell an existing account: counted, not timed."""
    user = make.user("gardien")
    calls = []
    real = auth_api.check_password_hash
    monkeypatch.setattr(auth_api, "check_password_hash",
                        lambda h, p: calls.append(h.split("$", 1)[0]) or real(h, p))
    wrong = client.post("/api/auth/login", json={"email": user.email, "password": "pas-le-bon"})
    unknown = client.post("/api/auth/login", json={"email": "personne@palier.test", "password": "pas-le-bon"})
    inactive_user = make.user("gardien", active=False)
    inactive = client.post("/api/auth/login", json={"email": inactive_user.email, "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == inactive.status_code == 401
    assert wrong.get_json() == unknown.get_json() == inactive.get_json()
    assert len(calls) == 3 and len(set(calls)) == 1 and calls[0].startswith("scrypt:"), calls
    stored = db.session.get(User, user.id).password_hash.split("$", 1)[0]
    assert calls[0] == stored  # the dummy hash has the very parameters of a real one


def test_production_always_sends_secure_cookies():
    from server.config import check_production
    config = {"ENV_NAME": "production", "SECRET_KEY": "s" * 40, "JWT_SECRET_KEY": "j" * 40,
              "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://palier@db/palier", "JWT_COOKIE_SECURE": False}
    check_production(config)
    assert config["JWT_COOKIE_SECURE"] is True
    development = {**config, "ENV_NAME": "development", "JWT_COOKIE_SECURE": False}
    check_production(development)
    assert development["JWT_COOKIE_SECURE"] is False  # plain http on a laptop keeps working
