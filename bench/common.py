"""Shared harness of the sync benchmarks: throwaway databases, a Palier server and a Kinto peer on loopback,
seeded data made with SQLAlchemy Core, a keep-alive HTTP client, medians and a Markdown table.

Nothing here is timed by itself: the scripts (sync_push, sync_pull) measure side by side in one run.
"""
from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from server import devdb

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent
PG_BASE = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "banc-d-essai-solide"
SECRET = "bench-secret-key-bench-secret-key-0123456789"


class BenchError(RuntimeError):
    """The work measured was not done correctly: a figure from it would be meaningless."""


# --- databases ----------------------------------------------------------------------------------------------

@dataclass
class Database:
    kind: str  # sqlite | postgres
    url: str  # SQLAlchemy URL (postgresql+psycopg for Palier)
    drop: callable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_pg_database(prefix: str) -> tuple[str, callable]:
    """A throwaway PostgreSQL database; returns its plain postgresql:// URL and a function that drops it."""
    url, drop = devdb.create_pg_database(PG_BASE, prefix)
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False), drop


def make_database(kind: str, workdir: Path) -> Database:
    if kind == "sqlite":
        return Database("sqlite", f"sqlite:///{workdir / 'palier.sqlite3'}", lambda: None)
    if kind == "postgres":
        plain, drop = create_pg_database("palier_bench")
        return Database("postgres", plain.replace("postgresql://", "postgresql+psycopg://", 1), drop)
    raise ValueError(kind)


def make_app(db_url: str, workdir: Path):
    """The Palier app in this process, on the benchmark database: migrations, seeding, the Core limit."""
    from server import create_app

    previous = os.environ.get("PALIER_INSTANCE_PATH")
    os.environ["PALIER_INSTANCE_PATH"] = str(workdir / "instance")  # the factory reads it from there only
    try:
        return create_app({"SQLALCHEMY_DATABASE_URI": db_url, "SECRET_KEY": SECRET,
                           "JOBS_URL": f"sqlite:///{workdir / 'jobs.sqlite3'}"})
    finally:
        if previous is None:
            del os.environ["PALIER_INSTANCE_PATH"]
        else:
            os.environ["PALIER_INSTANCE_PATH"] = previous


def migrate(app) -> None:
    """`flask db upgrade`, as in production."""
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()


# --- seeded data (SQLAlchemy Core, outside the measured work) -----------------------------------------------

def reserve_seq(conn, count: int) -> int:
    """Reserve `count` values of the change sequence on a Core connection; return the first."""
    row = conn.execute(sa.text("UPDATE sync_state SET seq = seq + :n WHERE id = 1 RETURNING seq"),
                       {"n": count}).scalar_one_or_none()
    if row is None:
        conn.execute(sa.text("INSERT INTO sync_state (id, seq) VALUES (1, :n)"), {"n": count})
        row = count
    return row - count + 1


@dataclass
class Scenario:
    """One site, its actions, a gardien working on it, and its households and residents."""

    site_id: uuid.UUID
    user_id: uuid.UUID
    email: str
    action_ids: list[uuid.UUID]
    household_ids: list[uuid.UUID] = field(default_factory=list)
    resident_ids: list[uuid.UUID] = field(default_factory=list)


def _now():
    return datetime.now(timezone.utc)


def seed_site(engine, households: int, residents_per_household: int = 2, chunk: int = 2000) -> Scenario:
    from werkzeug.security import generate_password_hash

    from server.models import Action, Household, Programme, Resident, Site, User, user_sites
    from sync.rules import name_key

    now = _now()
    site_id, user_id = uuid.uuid4(), uuid.uuid4()
    sc = Scenario(site_id=site_id, user_id=user_id, email=f"gardien-{user_id.hex[:8]}@bench.palier",
                  action_ids=[uuid.uuid4() for _ in range(3)])
    stamps = {"deleted": False, "created_at": now, "updated_at": now}
    with engine.begin() as conn:
        first = reserve_seq(conn, 4)
        conn.execute(sa.insert(Programme.__table__), [{"id": uuid.uuid4(), "name": "Habitat contributif",
                                                       "goal": 1400, "baseline": 386}])
        conn.execute(sa.insert(Site.__table__), [{"id": site_id, "seq": first, "code": f"bench-{site_id.hex[:6]}",
                                                  "name": "Résidence du banc d'essai", "commune": "Outreau",
                                                  "territory": "Côte d'Opale", **stamps}])
        conn.execute(sa.insert(Action.__table__), [
            {"id": a, "seq": first + 1 + i, "code": f"bench-action-{a.hex[:8]}", "name": f"Action {i + 1}",
             "description": "", "site_id": None, **stamps} for i, a in enumerate(sc.action_ids)])
        conn.execute(sa.insert(User.__table__), [{
            "id": user_id, "email": sc.email, "display_name": "Gardien du banc", "role": "gardien",
            "password_hash": generate_password_hash(PASSWORD), "active": True,
            "tokens_valid_after": now - timedelta(minutes=1), "created_at": now}])
        conn.execute(sa.insert(user_sites), [{"user_id": user_id, "site_id": site_id}])
    for start in range(0, households, chunk):
        n = min(chunk, households - start)
        hh = [uuid.uuid4() for _ in range(n)]
        with engine.begin() as conn:
            s = reserve_seq(conn, n)
            conn.execute(sa.insert(Household.__table__), [
                {"id": h, "seq": s + i, "site_id": site_id, "building": f"B{(start + i) % 7}",
                 "staircase": str((start + i) % 4), "floor": str((start + i) % 9), "door": str(start + i),
                 "landlord_ref": f"REF-{start + i:06d}", "notes": "", "field_versions": {}, **stamps}
                for i, h in enumerate(hh)])
        sc.household_ids += hh
    pairs = [(h, k) for h in sc.household_ids for k in range(residents_per_household)]
    for start in range(0, len(pairs), chunk):
        part = pairs[start:start + chunk]
        rows = []
        with engine.begin() as conn:
            s = reserve_seq(conn, len(part))
            for i, (h, k) in enumerate(part):
                rid = uuid.uuid4()
                first_name, last_name = ("Maryse", "Moreau") if k == 0 else ("Jean-Claude", f"Lefebvre {start + i}")
                rows.append({"id": rid, "seq": s + i, "household_id": h, "site_id": site_id,
                             "first_name": first_name, "last_name": last_name,
                             "name_key": name_key(first_name, last_name), "phone": "06 12 34 56 78",
                             "email": "", "consent_contact": True, "consent_image": False,
                             "consent_recorded_at": now, "duplicate_of": None, "merged_into": None,
                             "created_by": user_id, "field_versions": {}, **stamps})
                sc.resident_ids.append(rid)
            conn.execute(sa.insert(Resident.__table__), rows)
    return sc


NEEDS = ("isolement", "mobilite", "courses", "numerique")
OUTCOMES = ("talked", "absent", "refused")


def visit_args(sc: Scenario, i: int, captured: datetime) -> dict:
    """The args of one `visit.create` (docs/PROTOCOL.md), deterministic in i."""
    talked = i % 3 == 0
    return {
        "id": str(uuid.uuid4()),
        "household_id": str(sc.household_ids[i % len(sc.household_ids)]),
        "visited_at": (captured - timedelta(seconds=i)).isoformat(),
        "outcome": OUTCOMES[i % 3],
        "interests": [str(sc.action_ids[i % len(sc.action_ids)])] if talked else [],
        "needs": [NEEDS[i % len(NEEDS)]] if talked else [],
        "follow_up": talked and i % 2 == 0,
        "consent_recontact": talked,
        "resident_id": str(sc.resident_ids[(i % len(sc.household_ids)) * 2]) if talked and sc.resident_ids else None,
        "note": "Souhaite participer à l'atelier du jeudi." if i % 10 == 0 else "",
    }


def visit_row(sc: Scenario, args: dict, seq: int, client_id: uuid.UUID, now: datetime) -> dict:
    """The visits-table row Palier would store for these args (for the Core limit and for seeding pulls)."""
    return {
        "id": uuid.UUID(args["id"]), "seq": seq, "deleted": False, "created_at": now, "updated_at": now,
        "household_id": uuid.UUID(args["household_id"]), "site_id": sc.site_id,
        "resident_id": uuid.UUID(args["resident_id"]) if args["resident_id"] else None,
        "user_id": sc.user_id, "client_id": client_id, "visited_at": datetime.fromisoformat(args["visited_at"]),
        "received_at": now, "clock_suspect": False, "outcome": args["outcome"], "interests": args["interests"],
        "needs": args["needs"], "follow_up": args["follow_up"], "consent_recontact": args["consent_recontact"],
        "note": args["note"],
    }


def count_rows(engine, table, **where) -> int:
    q = sa.select(sa.func.count()).select_from(table)
    for col, value in where.items():
        q = q.where(table.c[col] == value)
    with engine.connect() as conn:
        return conn.execute(q).scalar_one()


# --- HTTP ---------------------------------------------------------------------------------------------------

@dataclass
class Response:
    status: int
    headers: dict
    body: bytes  # decoded
    wire_bytes: int  # status line + headers + body as received (compressed if the server compressed)

    def json(self):
        return json.loads(self.body)


DECODERS = {"identity": bytes, "gzip": gzip.decompress, "zstd": lambda raw: _zstd().decompress(raw)}


def _zstd():
    from flask_compress.compat import compression  # zstd: the standard library's from Python 3.14, backported

    return compression.zstd


def encode_json(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _head_bytes(resp: http.client.HTTPResponse) -> int:
    """The status line and headers as received."""
    return len(f"HTTP/1.1 {resp.status} {resp.reason}\r\n") + sum(len(k) + len(v) + 4 for k, v in resp.getheaders()) + 2


class Http:
    """A keep-alive HTTP/1.1 client on one loopback connection; counts the bytes received."""

    def __init__(self, base: str, headers: dict | None = None, timeout: float = 120):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        # Identity unless asked: like with like (Kinto's waitress never compresses); a run that measures
        # compression asks for what Chromium gets (zstd, Palier's first choice among "gzip, deflate, br, zstd").
        self.headers = {"Accept-Encoding": "identity", **(headers or {})}
        self.timeout = timeout
        self.conn = None

    def _connect(self):
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def request(self, method: str, path: str, body=None, headers: dict | None = None) -> Response:
        """body: a JSON value, or its bytes already encoded (a benchmark encodes before its clock starts)."""
        data = body if isinstance(body, bytes) or body is None else encode_json(body)
        h = {**self.headers, **(headers or {})}
        if data is not None:
            h["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if self.conn is None:
                self._connect()
            try:
                self.conn.request(method, path, body=data, headers=h)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: reconnect once (never mid-measure twice).
                self.close()
                if attempt == 2:
                    raise
        head = _head_bytes(resp)
        headers = {k.lower(): v for k, v in resp.getheaders()}
        if headers.get("connection", "").lower() == "close":
            self.close()
        decoded = DECODERS[headers.get("content-encoding", "identity")](raw)
        return Response(resp.status, headers, decoded, head + len(raw))

    def post(self, path, body=None, **kw) -> Response:
        return self.request("POST", path, body, **kw)

    def post_lines(self, path, body, clock: list):
        """POST, then the answer's lines (NDJSON) as they arrive, decompressed if it was compressed; clock[0] adds
        up the time spent waiting for the server's bytes (the HTTP exchange), clock[1] the bytes received (head and
        body as received; the chunked framing, ~10 bytes a chunk, is not counted). A non-200 answer raises."""
        data = body if isinstance(body, bytes) else encode_json(body)
        if self.conn is None:
            self._connect()
        t = time.perf_counter()
        self.conn.request("POST", path, body=data, headers={**self.headers, "Content-Type": "application/json"})
        resp = self.conn.getresponse()
        clock[0] += time.perf_counter() - t
        headers = {k.lower(): v for k, v in resp.getheaders()}
        if resp.status != 200:
            raise BenchError(f"{path}: HTTP {resp.status} {resp.read()[:500]!r}")
        clock[1] += _head_bytes(resp)
        decode = (_zstd().ZstdDecompressor().decompress if headers.get("content-encoding") == "zstd"
                  else (lambda b: b))
        parts = []  # the current line's start, in pieces: each piece is scanned for a newline once, copied once
        while True:
            t = time.perf_counter()
            raw = resp.read1(1 << 20)
            clock[0] += time.perf_counter() - t
            if not raw:
                break
            clock[1] += len(raw)
            data, start = decode(raw), 0
            while (end := data.find(b"\n", start)) != -1:
                parts.append(data[start:end])
                yield b"".join(parts)
                parts, start = [], end + 1
            if start < len(data):
                parts.append(data[start:])
        if parts:
            raise BenchError(f"{path}: the answer ended inside a line")

    def get(self, path, **kw) -> Response:
        return self.request("GET", path, **kw)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def expect(resp: Response, status: int, what: str):
    if resp.status != status:
        raise BenchError(f"{what}: HTTP {resp.status} {resp.body[:500]!r}")
    return resp.json() if resp.body else None


def _wait_http(port: int, proc: subprocess.Popen, path: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
        finally:
            conn.close()  # a refused attempt leaves an open socket otherwise (ResourceWarning)
    raise BenchError(f"server on port {port} did not answer within {timeout}s: {log.read_text()[-2000:]}")


@contextmanager
def _process(cmd: list[str], env: dict, port: int, probe: str, log: Path):
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        _wait_http(port, proc, probe, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def palier_server(db_url: str, workdir: Path, threads: int = 4, workers: int = 1, env_extra: dict | None = None):
    """Palier under gunicorn (gthread workers: keep-alive, like Kinto's waitress) on a free loopback port."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "PALIER_SECRET_KEY": SECRET,
           "PALIER_INSTANCE_PATH": str(workdir / "instance"),
           "PALIER_JOBS_URL": f"sqlite:///{workdir / 'jobs.sqlite3'}",
           # every contestant logs in at every round: a long run must not meet the login rate limit (429)
           "PALIER_RATELIMIT_LOGIN": "10000 per minute", **(env_extra or {})}
    cmd = [str(VENV_BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "-w", str(workers), "-k", "gthread",
           "--threads", str(threads), "--keep-alive", "30", "--timeout", "300", "server:create_app()"]
    with _process(cmd, env, port, "/api/auth/me", workdir / "palier.log") as base:
        yield base


def palier_login(base: str, email: str, accept_encoding: str = "identity") -> Http:
    http_ = Http(base, {"Accept-Encoding": accept_encoding})
    body = expect(http_.post("/api/auth/login", {"email": email, "password": PASSWORD, "mode": "bearer"}),
                  200, "login")
    http_.headers["Authorization"] = f"Bearer {body['access_token']}"
    return http_


# --- Kinto --------------------------------------------------------------------------------------------------

KINTO_INI = """\
[app:main]
use = egg:kinto
kinto.storage_backend = kinto.core.storage.{backend}
kinto.storage_url = {url}
kinto.permission_backend = kinto.core.permission.{backend}
kinto.permission_url = {url}
kinto.cache_backend = kinto.core.cache.memory
kinto.cache_url =
kinto.userid_hmac_secret = {secret}
multiauth.policies = basicauth
kinto.bucket_create_principals = system.Authenticated
kinto.batch_max_requests = {batch_max}
kinto.includes =

[server:main]
use = egg:waitress#main
host = 127.0.0.1
port = {port}

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = WARNING
formatter = generic

[formatter_generic]
format = %(levelname)s %(name)s %(message)s
"""


# Kinto's PostgreSQL database per running server (base URL), for seeding that is not measured.
KINTO_DB_URLS: dict[str, str] = {}


@contextmanager
def kinto_server(kind: str, workdir: Path, batch_max: int = 500):
    """Kinto with its own server (waitress, via pserve), basic auth, memory backend for the SQLite runs and
    PostgreSQL (a throwaway database) for the PostgreSQL runs."""
    if shutil.which("kinto", path=str(VENV_BIN)) is None:
        raise BenchError("kinto is not installed: pip install -e '.[bench]'")
    port = free_port()
    drop = lambda: None  # noqa: E731
    if kind == "postgres":
        url, drop = create_pg_database("kinto_bench")
        backend = "postgresql"
    else:
        url, backend = "", "memory"
    ini = workdir / "kinto.ini"
    ini.write_text(KINTO_INI.format(backend=backend, url=url, secret=secrets.token_hex(16),
                                    batch_max=batch_max, port=port))
    try:
        if kind == "postgres":
            subprocess.run([str(VENV_BIN / "kinto"), "migrate", "--ini", str(ini)], check=True, cwd=workdir,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with _process([str(VENV_BIN / "pserve"), str(ini)], dict(os.environ), port, "/v1/",
                      workdir / "kinto.log") as base:
            KINTO_DB_URLS[base] = url
            yield base
    finally:
        drop()


def kinto_client(base: str) -> Http:
    # Kinto's basic auth makes the user id from user:password: the same pair is the same user (bucket owner).
    token = base64.b64encode(f"bench:{PASSWORD}".encode()).decode()
    return Http(base, {"Authorization": f"Basic {token}"})


def kinto_collection(k: Http, bucket: str, collection: str) -> str:
    """Create the bucket (once) and the collection; return the records path."""
    resp = k.request("PUT", f"/v1/buckets/{bucket}", {"data": {}}, headers={"If-None-Match": "*"})
    if resp.status not in (200, 201, 412):
        raise BenchError(f"kinto bucket: HTTP {resp.status} {resp.body[:300]!r}")
    expect(k.request("PUT", f"/v1/buckets/{bucket}/collections/{collection}", {"data": {}}), 201,
           "kinto collection")
    return f"/v1/buckets/{bucket}/collections/{collection}/records"


def kinto_batch_body(records_path: str, records: list[dict]) -> bytes:
    """The body of one POST /v1/batch creating these records (ids given, as Palier's client-made ids)."""
    return encode_json({"defaults": {"method": "POST", "path": records_path},
                        "requests": [{"body": {"data": r}} for r in records]})


def kinto_batch_send(k: Http, body: bytes, count: int) -> None:
    out = expect(k.post("/v1/batch", body), 200, "kinto batch")
    bad = [r["status"] for r in out["responses"] if r["status"] != 201]
    if bad or len(out["responses"]) != count:
        raise BenchError(f"kinto batch: {len(bad)} not created ({bad[:5]})")


def kinto_batch_create(k: Http, records_path: str, records: list[dict]) -> None:
    kinto_batch_send(k, kinto_batch_body(records_path, records), len(records))


def kinto_count(k: Http, records_path: str) -> int:
    resp = k.request("HEAD", records_path)
    if resp.status != 200:
        raise BenchError(f"kinto count: HTTP {resp.status}")
    return int(resp.headers["total-records"])


# --- one benchmark run --------------------------------------------------------------------------------------

@dataclass
class Env:
    kind: str
    work: Path
    database: Database
    engine: sa.Engine


@contextmanager
def environment(kind: str, name: str):
    """A temp dir and a fresh, migrated database; inside, an app context whose engine seeds and measures Core."""
    with workspace(f"bench-{name}-{kind}") as work:
        database = make_database(kind, work)
        try:
            app = make_app(database.url, work)
            migrate(app)
            from server.extensions import db as sqla

            with app.app_context():
                try:
                    yield Env(kind, work, database, sqla.engine)
                finally:
                    # Hand back what the context's session holds, then close the pool, before the database is
                    # dropped: a connection still out at that point is left for the garbage collector to find.
                    sqla.session.remove()
                    sqla.engine.dispose()
        finally:
            database.drop()


@contextmanager
def servers(env: Env, kinto: bool, batch_max: int = 500):
    """Palier's server and, when asked, Kinto's: yields their base URLs (Kinto's is None when left out)."""
    with palier_server(env.database.url, env.work) as palier_base:
        if not kinto:
            yield palier_base, None
            return
        with kinto_server(env.kind, env.work, batch_max=batch_max) as kinto_base:
            yield palier_base, kinto_base


def interleave(rounds: int, max_seconds: float, contestants: dict) -> dict:
    """Run each contestant once per round, rotating the order so none always runs first on a noisy machine;
    no new round starts past max_seconds. contestants: name -> fn(round) -> figures (None: left out)."""
    started = time.monotonic()
    names = list(contestants)
    raw = {n: [] for n in names}
    for r in range(rounds):
        if r and time.monotonic() - started > max_seconds:
            break
        for who in names[r % len(names):] + names[:r % len(names)]:
            if contestants[who] is not None:
                raw[who].append(contestants[who](r))
    return raw


# --- running and reporting ----------------------------------------------------------------------------------

@contextmanager
def workspace(prefix: str):
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> dict:
    return {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def dbs(choice: str) -> list[str]:
    return ["sqlite", "postgres"] if choice == "both" else [choice]


def report(name: str, results: list[dict], table) -> Path:
    """The end of every benchmark run: the results kept as JSON under bench/results/, the table printed."""
    path = write_result(name, {"machine": machine(), "results": results})
    print(table(results))
    print(f"\nresults: {path.relative_to(ROOT)}")
    return path


def write_result(name: str, result: dict, out_dir: Path | None = None) -> Path:
    out_dir = out_dir or RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"{name}-{stamp}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    return path


def markdown_table(header: list[str], rows: list[list]) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:,.2f}" if v < 100 else f"{v:,.0f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def today() -> date:
    return datetime.now(timezone.utc).date()
