"""No personal data of residents in any log: the app's loggers, werkzeug's request log, gunicorn's access log.
A sync push carries a resident's name, phone, email and a visit note; a search puts the name in the query
string; a rejected mutation, a failed login and a crash carry them too. Then every captured line is scanned."""
import http.client
import json
import logging
import threading
import uuid
from datetime import datetime, timezone

import pytest
from werkzeug.serving import make_server

from bench.common import Http, expect, palier_server
from server.extensions import db

PII = {"first_name": "Eulalie", "last_name": "Quennehen", "phone": "06 98 76 54 32",
       "email": "eulalie.quennehen@exemple.fr"}
NOTE = "Mme Quennehen a besoin d'aide pour ses courses"
SECRETS = [*PII.values(), NOTE, "Quennehen", "98 76 54"]


def _now():
    return datetime.now(timezone.utc).isoformat()


def _traffic(world) -> list[tuple[str, str, dict | None]]:
    """(method, url, body) of what a day of field work sends, personal data included."""
    hh = world["own_household"]
    rid = str(uuid.uuid4())
    mutations = [
        {"n": 1, "op": "resident.create", "at": _now(), "args": {"id": rid, "household_id": hh, **PII}},
        {"n": 2, "op": "visit.create", "at": _now(), "args": {
            "id": str(uuid.uuid4()), "household_id": hh, "visited_at": _now(), "outcome": "talked", "note": NOTE,
            "resident_id": rid}},
        # Rejected (a right-to-left override in the name): the rejection is recorded, never logged.
        {"n": 3, "op": "resident.create", "at": _now(), "args": {
            "id": str(uuid.uuid4()), "household_id": hh, "first_name": "Eulalie\u202e", "last_name": "Quennehen",
            "phone": PII["phone"]}},
    ]
    return [
        ("POST", "/api/sync/push", {"client_id": str(uuid.uuid4()), "mutations": mutations}),
        ("GET", "/api/residents?q=Quennehen", None),
        ("GET", f"/api/residents?q={PII['phone'].replace(' ', '%20')}", None),
        ("POST", "/api/sync/push", {"client_id": "pas-un-uuid", "mutations": [{**mutations[0], "n": "x"}]}),
    ]


def _scan(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.fixture
def all_logs(caplog):
    caplog.set_level(logging.DEBUG)  # every logger, every level, as a verbose production setting would
    for name in ("werkzeug", "server", "palier", "sqlalchemy", "flask_limiter"):
        logging.getLogger(name).disabled = False  # alembic's fileConfig disabled the loggers existing then
    return caplog


def _records_text(caplog) -> str:
    return "\n".join(f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)


def test_the_apps_loggers_carry_no_personal_data(app, world, as_role, client, all_logs):
    @app.get("/api/test-crash-with-data")
    def crash():
        raise ValueError(f"{PII['first_name']} {PII['last_name']} {PII['phone']}")

    staff = as_role("staff")
    for method, url, body in _traffic(world):
        resp = staff.client.open(url, method=method, json=body, headers=staff._headers())
        assert resp.status_code < 500, (url, resp.get_json())
    assert client.post("/api/auth/login", json={"email": PII["email"], "password": "x"}).status_code == 401
    assert client.get("/api/test-crash-with-data").status_code == 500
    text = _records_text(all_logs)
    assert "unhandled error" in text  # the crash was logged (the scan below sees real log lines)
    assert _scan(text) == [], text[-3000:]


def test_werkzeugs_request_log_has_no_query_string(app, world, as_role, all_logs):
    token = as_role("staff").token
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    db.session.remove()  # the server's threads take their own sessions
    try:
        for method, url, body in _traffic(world):
            conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
            try:
                conn.request(method, url, body=json.dumps(body) if body else None,
                             headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                assert conn.getresponse().status < 500
            finally:
                conn.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    werkzeug_lines = [r.getMessage() for r in all_logs.records if r.name == "werkzeug"]
    assert any("/api/residents" in line for line in werkzeug_lines), werkzeug_lines  # requests were logged
    assert _scan("\n".join(werkzeug_lines)) == [], werkzeug_lines
    assert _scan(_records_text(all_logs)) == []


def test_gunicorns_access_log_has_no_personal_data(app, world, tmp_path):
    """Palier under gunicorn with the shipped gunicorn.conf.py: its access and error logs, scanned."""
    email = world.users["staff"].email
    db.session.remove()
    with palier_server(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path, threads=2) as base:
        http_ = Http(base)
        body = expect(http_.post("/api/auth/login", {"email": email, "password": "motdepasse-solide",
                                                     "mode": "bearer"}), 200, "login")
        http_.headers = {"Authorization": f"Bearer {body['access_token']}"}
        for method, url, payload in _traffic(world):
            resp = http_.request(method, url, payload)
            assert resp.status < 500, (url, resp.body[:300])
        http_.close()
    log = (tmp_path / "palier.log").read_text()
    assert '"GET /api/residents"' in log, log[-2000:]  # the access log is on, with the path only
    assert _scan(log) == [], log[-3000:]
