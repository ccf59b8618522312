"""Login, refresh, logout and revocation, cookies with CSRF, and the tokens the server refuses."""
import base64
import json
from datetime import timedelta

import pytest
from flask_jwt_extended import create_access_token, create_refresh_token

from server import create_app
from server.extensions import db
from server.models import User

PASSWORD = "motdepasse-solide"


def _cookies(resp) -> dict[str, str]:
    """Set-Cookie headers by cookie name (the raw header, attributes included)."""
    return {h.split("=", 1)[0]: h for h in resp.headers.getlist("Set-Cookie")}


def _cookie_login(client, user):
    return client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})


def test_cookie_login_sets_httponly_tokens_and_a_readable_csrf_cookie(app, make):
    user = make.user("gardien", sites=[make.site()])
    client = app.test_client()
    resp = _cookie_login(client, user)
    assert resp.status_code == 200
    body = resp.get_json()
    assert "access_token" not in body and "refresh_token" not in body
    assert body["user"]["email"] == user.email and body["user"]["role"] == "gardien"
    cookies = _cookies(resp)
    for name in ("access_token_cookie", "refresh_token_cookie"):
        assert "HttpOnly" in cookies[name], cookies[name]
        assert "SameSite=Strict" in cookies[name]
    for name in ("csrf_access_token", "csrf_refresh_token"):
        assert "HttpOnly" not in cookies[name]  # the PWA reads it to send X-CSRF-TOKEN
    assert client.get("/api/auth/me").status_code == 200


def test_bearer_login_returns_tokens_and_sets_no_cookie(client, make):
    user = make.user("staff", sites=[make.site()])
    resp = client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD, "mode": "bearer"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["access_token"] and body["refresh_token"]
    assert resp.headers.getlist("Set-Cookie") == []
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.get_json()["email"] == user.email


def test_unknown_user_and_wrong_password_get_the_same_answer(client, make):
    user = make.user("gardien")
    wrong = client.post("/api/auth/login", json={"email": user.email, "password": "pas-le-bon-mot"})
    unknown = client.post("/api/auth/login", json={"email": "personne@palier.test", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()
    assert wrong.get_json()["error"]["code"] == "bad_credentials"
    assert _cookies(wrong) == _cookies(unknown) == {}


def test_login_email_is_case_insensitive(client, make):
    user = make.user("gardien", email="nadia@palier.test")
    resp = client.post("/api/auth/login", json={"email": "  Nadia@Palier.TEST ", "password": PASSWORD})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["user"]["id"] == str(user.id)


def test_bearer_refresh_gives_a_working_access_token(client, make, login):
    api = login(make.user("gardien"))
    resp = client.post("/api/auth/refresh", headers={"Authorization": f"Bearer {api.refresh_token}"})
    assert resp.status_code == 200
    access = resp.get_json()["access_token"]
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {access}"}).status_code == 200
    # An access token is not a refresh token, nor the other way round.
    assert client.post("/api/auth/refresh", headers={"Authorization": f"Bearer {access}"}).status_code == 401
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {api.refresh_token}"}).status_code == 401


def test_cookie_refresh_needs_the_csrf_header(app, make):
    user = make.user("gardien")
    client = app.test_client()
    _cookie_login(client, user)
    refused = client.post("/api/auth/refresh")
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "unauthorized"
    csrf = client.get_cookie("csrf_refresh_token").value
    resp = client.post("/api/auth/refresh", headers={"X-CSRF-TOKEN": csrf})
    assert resp.status_code == 200
    assert "access_token" not in resp.get_json()
    assert "HttpOnly" in _cookies(resp)["access_token_cookie"]


def test_cookie_write_without_csrf_header_is_refused_and_changes_nothing(app, make):
    admin = make.user("admin")
    target = make.user("gardien", display_name="Avant")
    target_id = target.id
    client = app.test_client()
    _cookie_login(client, admin)
    resp = client.patch(f"/api/users/{target_id}", json={"display_name": "Après"})
    assert resp.status_code == 401
    csrf = client.get_cookie("csrf_access_token").value
    resp = client.patch(f"/api/users/{target_id}", json={"display_name": "Après"}, headers={"X-CSRF-TOKEN": "x"})
    assert resp.status_code == 401
    db.session.expire_all()
    assert db.session.get(User, target_id).display_name == "Avant"
    resp = client.patch(f"/api/users/{target_id}", json={"display_name": "Après"}, headers={"X-CSRF-TOKEN": csrf})
    assert resp.status_code == 200
    db.session.expire_all()
    assert db.session.get(User, target_id).display_name == "Après"


def test_logout_revokes_the_refresh_token_even_after_a_restart(app, client, make, login):
    api = login(make.user("gardien"))
    refresh = {"Authorization": f"Bearer {api.refresh_token}"}
    assert client.post("/api/auth/logout", headers=refresh).status_code == 200
    again = client.post("/api/auth/refresh", headers=refresh)
    assert again.status_code == 401 and again.get_json()["error"]["code"] == "token_revoked"

    db.session.remove()  # the test client shares this app context: let go of its write lock as a request would
    restarted = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "TESTING": True,
                            "SECRET_KEY": app.config["SECRET_KEY"]})
    try:
        resp = restarted.test_client().post("/api/auth/refresh", headers=refresh)
        assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "token_revoked"
    finally:
        with restarted.app_context():
            db.session.remove()
            db.engine.dispose()


def test_cookie_logout_revokes_both_tokens_and_clears_cookies(app, make):
    client = app.test_client()
    _cookie_login(client, make.user("staff"))
    access = client.get_cookie("access_token_cookie", path="/api/").value
    refresh = client.get_cookie("refresh_token_cookie", path="/api/auth/").value
    csrf = client.get_cookie("csrf_refresh_token").value
    resp = client.post("/api/auth/logout", headers={"X-CSRF-TOKEN": csrf})
    assert resp.status_code == 200
    assert all("Expires=Thu, 01 Jan 1970" in h for h in resp.headers.getlist("Set-Cookie"))
    other = app.test_client()
    assert other.get("/api/auth/me", headers={"Authorization": f"Bearer {access}"}).status_code == 401
    assert other.post("/api/auth/refresh", headers={"Authorization": f"Bearer {refresh}"}).status_code == 401


def test_deactivating_a_user_refuses_their_tokens_at_once(client, make, login):
    gardien = make.user("gardien", sites=[make.site()])
    api = login(gardien)
    admin = login(make.user("admin"))
    assert api.get("/api/auth/me").status_code == 200
    resp = admin.patch(f"/api/users/{gardien.id}", json={"active": False})
    assert resp.status_code == 200 and resp.get_json()["active"] is False
    me = api.get("/api/auth/me")
    assert me.status_code == 401 and me.get_json()["error"]["code"] == "token_revoked"
    assert client.post("/api/auth/refresh",
                       headers={"Authorization": f"Bearer {api.refresh_token}"}).status_code == 401
    relog = client.post("/api/auth/login", json={"email": gardien.email, "password": PASSWORD})
    assert relog.status_code == 401 and relog.get_json()["error"]["code"] == "bad_credentials"


def test_a_password_change_refuses_earlier_tokens(client, make, login):
    gardien = make.user("gardien")
    api = login(gardien)
    admin = login(make.user("admin"))
    assert admin.patch(f"/api/users/{gardien.id}", json={"password": "un-nouveau-secret"}).status_code == 200
    assert api.get("/api/auth/me").status_code == 401
    assert login(gardien, password="un-nouveau-secret").get("/api/auth/me").status_code == 200


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unb64(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _forged(token: str, kind: str, app) -> str:
    header, payload, signature = token.split(".")
    claims = _unb64(payload)
    if kind == "tampered":  # a gardien promoting themself: the signature no longer matches
        return ".".join([header, _b64({**claims, "role": "admin"}), signature])
    if kind == "unsigned":
        return ".".join([_b64({"alg": "none", "typ": "JWT"}), payload, ""])
    if kind == "other_key":
        import jwt as pyjwt
        return pyjwt.encode(claims, "not-the-server-key-not-the-server-key", algorithm="HS256")
    if kind == "expired":
        user = db.session.get(User, __import__("uuid").UUID(claims["sub"]))
        return create_access_token(identity=user, expires_delta=timedelta(seconds=-5))
    if kind == "garbage":
        return "pas.un.jeton"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind,code", [("tampered", "invalid_token"), ("unsigned", "invalid_token"),
                                       ("other_key", "invalid_token"), ("expired", "token_expired"),
                                       ("garbage", "invalid_token")])
def test_forged_or_expired_tokens_are_401(app, client, make, login, kind, code):
    api = login(make.user("gardien"))
    token = _forged(api.token, kind, app)
    resp = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == code


def test_an_expired_refresh_token_is_401(client, make):
    user = make.user("gardien")
    token = create_refresh_token(identity=user, expires_delta=timedelta(seconds=-5))
    resp = client.post("/api/auth/refresh", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "token_expired"


def test_passwords_are_stored_hashed_with_scrypt(client, make, login, runner):
    admin = login(make.user("admin"))
    resp = admin.post("/api/users", json={"email": "sylvie@palier.test", "display_name": "Sylvie",
                                          "role": "staff", "password": "une-phrase-secrete"})
    assert resp.status_code == 201, resp.get_json()
    result = runner.invoke(args=["create-user", "--email", "karim@palier.test", "--name", "Karim",
                                 "--role", "gardien", "--password", "une-autre-phrase"])
    assert result.exit_code == 0, result.output
    for email, password in (("sylvie@palier.test", "une-phrase-secrete"), ("karim@palier.test", "une-autre-phrase")):
        stored = db.session.execute(db.select(User).where(User.email == email)).scalar_one().password_hash
        assert stored.startswith("scrypt:") and password not in stored
    assert "password" not in json.dumps(resp.get_json()) and "scrypt" not in json.dumps(resp.get_json())


def test_anonymous_requests_are_401_in_the_one_error_shape(client):
    resp = client.get("/api/auth/me")
    assert resp.status_code == 401
    assert resp.get_json() == {"error": {"code": "unauthorized", "message": "Authentification requise."}}
