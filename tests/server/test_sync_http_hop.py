"""Through a real HTTP hop: a proxy on loopback that cuts the response after the server answered."""
import http.client
import json
import socket
import threading
import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from server.extensions import db
from server.models import MutationRun, Visit


class CuttingProxy:
    """Forwards one request per connection; while `cuts` > 0, drops a push's response after reading it whole."""

    def __init__(self, upstream_port):
        self.upstream_port, self.cuts, self.cut_done = upstream_port, 0, 0
        self.pull_cuts = []  # for each of the next pull answers, the share of its bytes let through before the cut
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_request(self, conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            body += conn.recv(65536)
        return head, body

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                req = self._read_request(conn)
                if req is None:
                    continue
                head, body = req
                with socket.create_connection(("127.0.0.1", self.upstream_port)) as up:
                    up.sendall(head + b"\r\n\r\n" + body)
                    response = b""
                    while chunk := up.recv(65536):
                        response += chunk
                if b"/api/sync/pull" in head.split(b"\r\n")[0] and self.pull_cuts:
                    conn.sendall(response[:int(len(response) * self.pull_cuts.pop(0))])
                    self.cut_done += 1
                    conn.shutdown(socket.SHUT_RDWR)  # the signal is lost in the middle of a streamed answer
                    continue
                if b"/api/sync/push" in head.split(b"\r\n")[0] and self.cuts > 0:
                    self.cuts -= 1
                    self.cut_done += 1
                    conn.shutdown(socket.SHUT_RDWR)  # the server committed; the device never hears of it
                    continue
                conn.sendall(response)

    def close(self):
        self.sock.close()


@pytest.fixture
def live(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy = CuttingProxy(server.server_port)
    yield server, proxy
    proxy.close()
    server.shutdown()
    thread.join()


def _post(port, path, body, token=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "Connection": "close"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request("POST", path, body=json.dumps(body), headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


class FieldDevice:
    """A phone's outbox: numbered mutations kept until the server says they are decided."""

    def __init__(self, port, token):
        self.port, self.token = port, token
        self.client_id = str(uuid.uuid4())
        self.outbox, self.next_n, self.network_errors = [], 1, 0

    def record_visit(self, household_id):
        now = datetime.now(timezone.utc).isoformat()
        self.outbox.append({"n": self.next_n, "op": "visit.create", "at": now,
                            "args": {"id": str(uuid.uuid4()), "household_id": household_id, "visited_at": now,
                                     "outcome": "talked"}})
        self.next_n += 1

    def sync(self, attempts=10):
        for _ in range(attempts):
            try:
                status, body = _post(self.port, "/api/sync/push",
                                     {"client_id": self.client_id, "mutations": self.outbox}, self.token)
            except (ConnectionError, http.client.HTTPException, OSError):
                self.network_errors += 1
                continue  # same n, same body: harmless if the server had committed
            assert status == 200, body
            status, pulled = _post(self.port, "/api/sync/pull", {"client_id": self.client_id, "cursor": None},
                                   self.token)
            assert status == 200
            self.outbox = [m for m in self.outbox if m["n"] > pulled["last_applied"]]
            return body
        raise AssertionError("never synced")


def test_three_lost_responses_in_a_row_then_exactly_once(live, world):
    server, proxy = live
    status, body = _post(proxy.port, "/api/auth/login", {"email": world.users["staff"].email,
                                                          "password": "motdepasse-solide", "mode": "bearer"})
    assert status == 200
    device = FieldDevice(proxy.port, body["access_token"])
    for _ in range(5):
        device.record_visit(world["own_household"])
    sent = {m["args"]["id"] for m in device.outbox}
    proxy.cuts = 3
    answer = device.sync()
    assert proxy.cut_done == 3 and device.network_errors == 3
    assert all(r["replayed"] for r in answer["results"])  # the first attempt had committed them all
    assert device.outbox == []
    db.session.rollback()
    visits = db.session.execute(sa.select(Visit.id)).scalars().all()
    assert sorted(str(v) for v in visits) == sorted(sent)
    assert db.session.execute(sa.select(MutationRun.first_n, MutationRun.last_n)).all() == [(1, 5)]


class StreamedReplica:
    """A phone's streamed pull (docs/PROTOCOL.md, "Streamed pages"): each whole line applied as it arrives, with its
    cursor; a cut answer keeps what it applied, and the next asks again from the last cursor."""

    def __init__(self, port, token):
        self.port, self.token, self.client_id = port, token, str(uuid.uuid4())
        self.cursor, self.records, self.changes_applied, self.answers, self.cut = None, {}, 0, 0, 0

    def _apply(self, page):
        if page["reset"]:
            self.records.clear()
        for row in page["changes"]:
            self.records[(row[0], row[1])] = row
        self.changes_applied += len(page["changes"])
        self.cursor = page["cursor"]
        return page["has_more"]

    def pull(self, limit, attempts=10):
        for _ in range(attempts):
            self.answers += 1
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            conn.request("POST", "/api/sync/pull", body=json.dumps({
                "client_id": self.client_id, "cursor": self.cursor, "limit": limit, "format": 2, "pages": 20}),
                headers={"Content-Type": "application/json", "Connection": "close",
                         "Authorization": f"Bearer {self.token}"})
            more, rest = True, b""
            try:
                resp = conn.getresponse()
                assert resp.status == 200 and resp.getheader("Content-Type") == "application/x-ndjson"
                while more and (chunk := resp.read1(65536)):
                    *lines, rest = (rest + chunk).split(b"\n")
                    for line in lines:
                        more = self._apply(json.loads(line))
            except (http.client.IncompleteRead, ConnectionError, OSError):
                self.cut += 1  # whatever came after the last newline was no page
            # An answer that ended (cut or not) after a page with has_more: the next one goes on from its cursor.
            finally:
                conn.close()
            if not more:
                return
        raise AssertionError("never pulled whole")


def test_a_streamed_pull_cut_three_times_resumes_from_its_last_whole_page(live, world, make):
    from server.models import Household, Site
    server, proxy = live
    site = db.session.get(Site, uuid.UUID(world["own_site"]))
    for i in range(40):
        make.household(site, building=f"Bât {i % 3}", door=str(i), notes="Sonner deux fois" * (i % 2))
    status, body = _post(proxy.port, "/api/auth/login", {"email": world.users["staff"].email,
                                                          "password": "motdepasse-solide", "mode": "bearer"})
    assert status == 200
    straight = StreamedReplica(server.server_port, body["access_token"])
    straight.pull(limit=4)
    assert straight.answers == 1 and straight.cut == 0
    assert len(straight.records) > 4 * 10  # more than ten pages, one answer
    proxy.pull_cuts = [0.5, 0.02, 0.8]  # mid-answer, before the first line is whole, near the end
    phone = StreamedReplica(proxy.port, body["access_token"])
    phone.pull(limit=4)
    assert proxy.cut_done == 3 and phone.answers == 4 and phone.cut >= 1  # a cut between two chunks reads as an end
    assert phone.records == straight.records
    # No page came twice: each answer started after the last whole page of the one before.
    assert phone.changes_applied == straight.changes_applied
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Household)) >= 40


def test_chunked_body_over_the_limit_is_a_json_413(live, world, app):
    server, _proxy = live
    app.config["MAX_CONTENT_LENGTH"] = 4096
    status, body = _post(server.server_port, "/api/auth/login", {"email": world.users["staff"].email,
                                                                  "password": "motdepasse-solide", "mode": "bearer"})
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
    payload = json.dumps({"client_id": str(uuid.uuid4()), "mutations": [], "app_version": "x" * 8000}).encode()
    conn.request("POST", "/api/sync/push", body=iter([payload[i:i + 1000] for i in range(0, len(payload), 1000)]),
                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {body['access_token']}",
                          "Connection": "close"}, encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 413
    assert json.loads(resp.read())["error"]["code"] == "payload_too_large"
    conn.close()
