"""Security headers on every answer (API, errors, the app shell and its files, the OpenAPI page), a CSP that
needs no 'unsafe-inline', and no stack trace in any response."""
import re

import pytest

from server import create_app
from server.extensions import db

REQUIRED = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _check_headers(resp):
    for name, value in REQUIRED.items():
        assert resp.headers.get(name) == value, (name, resp.headers)
    csp = resp.headers["Content-Security-Policy"]
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";"))
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["default-src"] == "'self'"
    assert "camera=()" in resp.headers["Permissions-Policy"]
    assert "geolocation=()" in resp.headers["Permissions-Policy"]


@pytest.fixture
def shell_app(app, tmp_path):
    """The app serving a tiny built PWA, so that the shell and its files are answered from disk."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>Palier</title><script src='/assets/a.js'></script>")
    (tmp_path / "assets" / "a.js").write_text("console.log(1)")
    app.config["PWA_DIST"] = str(tmp_path)
    return app


REQUESTS = [
    ("GET", "/api/auth/me", None, 401),  # API error (no token)
    ("POST", "/api/auth/login", {"email": "x@palier.test", "password": "x"}, 401),
    ("GET", "/api/sites/nope", None, 404),  # no such route (not a UUID): answered before any auth
    ("DELETE", "/openapi.json", None, 405),
    ("GET", "/api/nothing-here", None, 404),
    ("GET", "/openapi.json", None, 200),
    ("GET", "/api/docs", None, 200),
    ("GET", "/openapi.css", None, 200),
    ("GET", "/", None, 200),  # the app shell
    ("GET", "/visites/12", None, 200),  # a client-side route: the shell again
    ("GET", "/assets/a.js", None, 200),  # a static file
    ("GET", "/assets/missing.js", None, 404),
]


@pytest.mark.parametrize("method,url,body,status", REQUESTS, ids=[f"{m} {u}" for m, u, _, _ in REQUESTS])
def test_every_response_carries_the_security_headers(shell_app, method, url, body, status):
    with shell_app.test_client().open(url, method=method, json=body) as resp:
        assert resp.status_code == status, resp.get_data(as_text=True)[:300]
        _check_headers(resp)
    assert "Strict-Transport-Security" not in resp.headers  # plain http in development: no HSTS


def test_logged_in_api_answers_carry_them_too(as_role):
    resp = as_role("admin").get("/api/sites")
    assert resp.status_code == 200
    _check_headers(resp)


def test_hsts_over_https_and_in_production(app):
    resp = app.test_client().get("/openapi.json", base_url="https://palier.example")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    app.config["ENV_NAME"] = "production"  # behind a TLS-terminating proxy the request itself looks like http
    resp = app.test_client().get("/openapi.json")
    assert "max-age=" in resp.headers["Strict-Transport-Security"]


def test_docs_page_needs_no_inline_style_or_script(client):
    html = client.get("/api/docs").get_data(as_text=True)
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline script would need unsafe-inline"
    assert re.search(r"""<link rel="stylesheet" href="/openapi.css">""", html)
    with client.get("/openapi.css") as css:
        assert css.status_code == 200 and css.mimetype == "text/css" and "font" in css.get_data(as_text=True)


SECRET = "Odette Lemaire 06 12 34 56 78 /srv/palier/secret.py"


@pytest.fixture
def failing_app(_schema, tmp_path):
    """An app with a route that raises (registered here, never in the product): what a bug looks like outside."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": _schema, "TESTING": True,
                      "SECRET_KEY": "test-secret-key-test-secret-key-0123456789"})

    @app.get("/api/test-boom")
    def boom():
        raise RuntimeError(SECRET)

    @app.get("/api/test-db-boom")
    def db_boom():
        db.session.execute(db.text("SELECT * FROM no_such_table WHERE name = :n"), {"n": SECRET})

    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("url", ["/api/test-boom", "/api/test-db-boom"])
def test_a_crash_answers_the_json_error_only_and_logs_no_data(failing_app, url, caplog):
    caplog.set_level("DEBUG")
    resp = failing_app.test_client().get(url)
    assert resp.status_code == 500
    assert resp.get_json() == {"error": {"code": "internal_error", "message": "Erreur interne du serveur."}}
    text = resp.get_data(as_text=True)
    assert "Traceback" not in text and "RuntimeError" not in text and "Odette" not in text
    _check_headers(resp)
    # The log keeps where it failed (for the maintainer), not the values the failing code held.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "unhandled error" in logged and url in logged
    assert "Odette" not in logged and "06 12 34" not in logged
