"""Login and refresh rate limits: 429 in the one error shape with Retry-After, per address and per account, the
same answer whether the account exists, and counts shared by two app instances through Redis."""
import os
import uuid

import pytest
import redis

from server import create_app
from server.extensions import db

PASSWORD = "motdepasse-solide"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def _login(client, email, password, addr="10.0.0.1"):
    return client.post("/api/auth/login", json={"email": email, "password": password, "mode": "bearer"},
                       environ_base={"REMOTE_ADDR": addr})


def _assert_429(resp):
    assert resp.status_code == 429, resp.get_json()
    assert resp.get_json() == {"error": {"code": "too_many_requests",
                                         "message": "Trop de requêtes, réessayez plus tard."}}
    assert int(resp.headers["Retry-After"]) >= 1
    assert resp.headers["Content-Security-Policy"]  # the security headers on this answer too


def test_failed_logins_per_account_are_limited_from_any_address(app, make):
    user = make.user("gardien")
    client = _app_like(app, RATELIMIT_LOGIN_ACCOUNT="3 per minute").test_client()
    for i in range(3):
        assert _login(client, user.email, "pas-le-bon", addr=f"10.0.1.{i}").status_code == 401
    # The fourth try, from yet another address, even with the right password: the account is on hold.
    _assert_429(_login(client, user.email, PASSWORD, addr="10.0.1.99"))
    # Another account from the same addresses is not affected.
    other = make.user("gardien")
    assert _login(client, other.email, PASSWORD, addr="10.0.1.0").status_code == 200


def test_successful_logins_do_not_count_against_the_account(app, make):
    user = make.user("staff")
    client = _app_like(app, RATELIMIT_LOGIN_ACCOUNT="2 per minute").test_client()
    for i in range(5):
        assert _login(client, user.email, PASSWORD, addr=f"10.0.2.{i}").status_code == 200


def test_logins_per_address_are_limited(app, make):
    user = make.user("gardien")
    client = _app_like(app, RATELIMIT_LOGIN="4 per minute").test_client()
    for _ in range(4):
        assert _login(client, user.email, PASSWORD, addr="10.0.3.1").status_code == 200
    _assert_429(_login(client, user.email, PASSWORD, addr="10.0.3.1"))
    assert _login(client, user.email, PASSWORD, addr="10.0.3.2").status_code == 200  # another address


def test_an_unknown_account_is_limited_exactly_like_a_known_one(app, make):
    """A 429 that came only for existing accounts would tell an attacker which emails exist."""
    user = make.user("gardien")
    client = _app_like(app, RATELIMIT_LOGIN_ACCOUNT="2 per minute").test_client()
    answers = {}
    for email in (user.email, "personne@palier.test"):
        answers[email] = [_login(client, email, "pas-le-bon", addr=f"10.0.4.{i}") for i in range(3)]
    known, unknown = answers.values()
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401, 401, 429]
    assert [r.get_json() for r in known] == [r.get_json() for r in unknown]


def test_refresh_is_limited_per_address(app, make, login):
    api = login(make.user("gardien"))
    db.session.remove()  # the test client shares this app context: let go of its SQLite lock as a request would
    client = _app_like(app, RATELIMIT_REFRESH="2 per minute").test_client()
    headers = {"Authorization": f"Bearer {api.refresh_token}"}
    for _ in range(2):
        assert client.post("/api/auth/refresh", headers=headers,
                           environ_base={"REMOTE_ADDR": "10.0.5.1"}).status_code == 200
    _assert_429(client.post("/api/auth/refresh", headers=headers, environ_base={"REMOTE_ADDR": "10.0.5.1"}))


def test_the_limits_default_to_memory_and_sensible_numbers(app):
    assert app.config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert app.config["RATELIMIT_LOGIN_ACCOUNT"].startswith("5 per minute")


_apps = []


def _app_like(app, **config):
    """A new app on the same database with other limits (read at start-up, like a restart with new settings)."""
    new = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "TESTING": True,
                      "SECRET_KEY": app.config["SECRET_KEY"], **config})
    _apps.append(new)
    return new


@pytest.fixture(autouse=True)
def _dispose_apps():
    yield
    while _apps:
        with _apps.pop().app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def redis_uri():
    """A Redis database of its own key prefix: the Redis at 127.0.0.1:6379 (a failure, not a skip, without it)."""
    r = redis.Redis.from_url(REDIS_URL)
    r.ping()
    yield REDIS_URL
    r.close()


def test_two_app_instances_share_the_count_through_redis(app, make, redis_uri):
    """Two workers (two apps, as gunicorn's processes) with one Redis: the limit holds across both."""
    user = make.user("gardien")
    prefix = f"palier-test-{uuid.uuid4().hex[:8]}"
    cfg = {"RATELIMIT_STORAGE_URI": redis_uri, "RATELIMIT_KEY_PREFIX": prefix, "RATELIMIT_LOGIN": "4 per minute"}
    one, two = _app_like(app, **cfg).test_client(), _app_like(app, **cfg).test_client()
    try:
        assert _login(one, user.email, PASSWORD, addr="10.0.6.1").status_code == 200
        assert _login(two, user.email, PASSWORD, addr="10.0.6.1").status_code == 200
        assert _login(one, user.email, PASSWORD, addr="10.0.6.1").status_code == 200
        assert _login(two, user.email, PASSWORD, addr="10.0.6.1").status_code == 200
        _assert_429(_login(one, user.email, PASSWORD, addr="10.0.6.1"))
        _assert_429(_login(two, user.email, PASSWORD, addr="10.0.6.1"))
        # ... whereas two apps counting in memory each allow their own four.
        mem = {**cfg, "RATELIMIT_STORAGE_URI": "memory://"}
        three, four = _app_like(app, **mem).test_client(), _app_like(app, **mem).test_client()
        for client in (three, four, three, four, three, four):
            assert _login(client, user.email, PASSWORD, addr="10.0.6.1").status_code == 200
    finally:
        r = redis.Redis.from_url(redis_uri)
        keys = list(r.scan_iter(f"*{prefix}*"))
        if keys:
            r.delete(*keys)
        r.close()


def test_compose_counts_in_redis_for_every_worker():
    from pathlib import Path

    import yaml
    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
    env = compose["services"]["web"]["environment"]
    assert env["PALIER_RATELIMIT_STORAGE_URI"].startswith("redis://redis:")
    assert "--workers" in compose["services"]["web"]["command"]  # several processes: memory counts would split


def _login_via_proxy(client, email, forwarded_for):
    # The proxy itself always connects from the same address; X-Forwarded-For names the phone.
    return client.post("/api/auth/login", json={"email": email, "password": PASSWORD, "mode": "bearer"},
                       environ_base={"REMOTE_ADDR": "10.9.9.9"}, headers={"X-Forwarded-For": forwarded_for})


def test_behind_a_trusted_proxy_the_limit_counts_per_phone(app, make):
    user = make.user("gardien")
    client = _app_like(app, RATELIMIT_LOGIN="2 per minute", TRUSTED_PROXIES=1).test_client()
    for _ in range(2):
        assert _login_via_proxy(client, user.email, "192.0.2.10").status_code == 200
    _assert_429(_login_via_proxy(client, user.email, "192.0.2.10"))
    # Another phone behind the same proxy has its own count.
    assert _login_via_proxy(client, user.email, "192.0.2.11").status_code == 200


def test_without_a_trusted_proxy_a_forged_forwarded_for_changes_nothing(app, make):
    user = make.user("gardien")
    client = _app_like(app, RATELIMIT_LOGIN="2 per minute").test_client()
    for i in range(2):
        assert _login_via_proxy(client, user.email, f"192.0.2.{20 + i}").status_code == 200
    # A new X-Forwarded-For each time: still the same (real) address, limited.
    _assert_429(_login_via_proxy(client, user.email, "192.0.2.99"))


def test_behind_a_trusted_proxy_hsts_follows_the_forwarded_scheme(app):
    client = _app_like(app, TRUSTED_PROXIES=1).test_client()
    assert "Strict-Transport-Security" in client.get("/api/auth/me", headers={"X-Forwarded-Proto": "https"}).headers
    assert "Strict-Transport-Security" not in client.get("/api/auth/me").headers
