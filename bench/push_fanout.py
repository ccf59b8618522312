"""Fan-out of 10,000 agenda reminders to a loopback push service: Palier's sender (claim in the database,
pywebpush with kept-alive sessions, outcomes recorded) side by side with a raw loop (ECDH + HKDF + AES-GCM with
`cryptography`, aes128gcm per RFC 8291, then an HTTP POST on one kept-alive connection) as the limit.

    .venv/bin/python -m bench.push_fanout [--n 10000] [--postgres]

The push service runs in its own process and answers 201 without decrypting; it counts what arrived, and the
run fails (BenchError) unless every notification arrived exactly once. CPU is time.process_time of the sender.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.push.keys import b64url, b64url_decode  # noqa: E402


class BenchError(RuntimeError):
    """The work measured was not done correctly: a figure from it would be meaningless."""


def start_push_service() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "server.push.fake_service"], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def arrived(origin: str) -> int:
    u = urlsplit(origin)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    conn.request("GET", "/count")
    n = int(conn.getresponse().read())
    conn.close()
    return n


def browsers(origin: str, n: int) -> list[dict]:
    """n browser subscriptions (endpoint and keys), as PushManager.subscribe() would give them."""
    out = []
    for i in range(n):
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.UncompressedPoint)
        out.append({"endpoint": f"{origin}/push/b{i}", "keys": {"p256dh": b64url(public),
                                                                "auth": b64url(os.urandom(16))}})
    return out


# --- the raw loop: RFC 8291 with cryptography, one kept-alive connection -------------------------------------

def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def encrypt_aes128gcm(plaintext: bytes, ua_public: bytes, auth: bytes) -> bytes:
    as_key = ec.generate_private_key(ec.SECP256R1())
    as_public = as_key.public_key().public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint)
    shared = as_key.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ua_public))
    ikm = _hkdf(auth, shared, b"WebPush: info\x00" + ua_public + as_public, 32)
    salt = os.urandom(16)
    cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    record = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)  # one record, last-record delimiter
    return salt + (4096).to_bytes(4, "big") + bytes([len(as_public)]) + as_public + record


def raw_loop(subs: list[dict], data: bytes) -> None:
    u = urlsplit(subs[0]["endpoint"])
    conn = http.client.HTTPConnection(u.hostname, u.port)
    for s in subs:
        body = encrypt_aes128gcm(data, b64url_decode(s["keys"]["p256dh"]), b64url_decode(s["keys"]["auth"]))
        conn.request("POST", urlsplit(s["endpoint"]).path, body=body,
                     headers={"TTL": "3600", "Content-Encoding": "aes128gcm", "Urgency": "high",
                              "Topic": "t" * 32})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 201:
            raise BenchError(f"raw loop: HTTP {resp.status}")
    conn.close()


# --- Palier: subscriptions and reminders in a database, then the sender's loop ---------------------------------

def palier_app(db_url: str, instance: str, concurrency: int, batch: int):
    from server import create_app
    from server.push import keys
    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "SECRET_KEY": "bench-" + "x" * 40,
                      "PUSH_ALLOW_HTTP": True, "PUSH_ENDPOINT_HOSTS": ["127.0.0.1"],
                      "PUSH_CONCURRENCY": concurrency, "PUSH_BATCH": batch, "PUSH_REMINDER_OFFSETS": [120],
                      "PUSH_QUIET_HOURS": ["00:00", "00:00"]})
    kp = keys.new_key_pair()
    app.config.update(VAPID_PRIVATE_KEY=kp["private_key"], VAPID_PUBLIC_KEY=kp["public_key"],
                      VAPID_SUBJECT="mailto:bench@palier.test")
    return app


def seed(app, subs: list[dict], now: datetime) -> int:
    import sqlalchemy as sa
    from flask_migrate import upgrade
    from server import push
    from server.database import next_seq
    from server.extensions import db
    from server.models import Event, PushSubscription, Site
    from server.push.subscriptions import token_hash, unsubscribe_token
    with app.app_context():
        upgrade()
        site = Site(code="bench", name="Résidence du banc", commune="Outreau", seq=next_seq(db.session))
        db.session.add(site)
        db.session.flush()
        ev = Event(title="Atelier couture", kind="atelier", place="Local commun", seq=next_seq(db.session),
                   starts_at=now + timedelta(minutes=110), ends_at=now + timedelta(minutes=230))
        ev.sites = [site]
        db.session.add(ev)
        rows = []
        for s in subs:
            sid = uuid.uuid4()
            rows.append({"id": sid, "site_id": site.id, "endpoint": s["endpoint"], "p256dh": s["keys"]["p256dh"],
                         "auth": s["keys"]["auth"], "kinds": ["atelier"], "consent_at": now - timedelta(days=1),
                         "consent_text_version": "bench", "token_hash": token_hash(unsubscribe_token(sid)),
                         "created_at": now, "failures": 0})
        db.session.execute(sa.insert(PushSubscription), rows)
        planned = push.plan_reminders(now)
        db.session.commit()
        db.engine.dispose()
        return planned


def run_palier(app, now: datetime) -> dict:
    from server import push
    from server.extensions import db
    with app.app_context():
        db.session.execute(__import__("sqlalchemy").text("SELECT 1"))  # connect before the clock starts
        db.session.commit()
        push.keys.vapid_signer(push.keys.settings()["private_key"])
        c0, t0 = time.process_time(), time.perf_counter()
        stats = push.send_due(now=now)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    return {"stats": dict(stats), "cpu": cpu, "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--postgres", action="store_true", help="Palier's database on PostgreSQL (default SQLite)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args()
    n = args.n
    now = datetime.now(timezone.utc).replace(microsecond=0)
    tmp = tempfile.mkdtemp(prefix="palier-push-bench-")
    os.environ["PALIER_INSTANCE_PATH"] = tmp
    drop = lambda: None  # noqa: E731
    if args.postgres:
        import sqlalchemy as sa
        base = sa.engine.make_url(os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
        base = base.set(drivername="postgresql+psycopg")
        name = f"palier_push_bench_{os.getpid()}"
        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        db_url = base.set(database=name).render_as_string(hide_password=False)

        def drop():
            with admin.connect() as c:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        db_url = f"sqlite:///{tmp}/bench.sqlite3"

    proc, origin = start_push_service()
    try:
        subs = browsers(origin, n)
        app = palier_app(db_url, tmp, args.concurrency, args.batch)
        if seed(app, subs, now) != n:
            raise BenchError("planning did not make one reminder per subscription")
        data = json.dumps({"type": "reminder", "event_id": str(uuid.uuid4()), "title": "Atelier couture",
                           "kind": "atelier", "starts_at": now.isoformat(), "place": "Local commun",
                           "url": "/agenda/bench/events/x", "unsubscribe_url": "/agenda/bench/unsubscribe#" + "f" * 64},
                          ensure_ascii=False).encode()

        c0, t0 = time.process_time(), time.perf_counter()
        raw_loop(subs, data)
        raw_cpu, raw_wall = time.process_time() - c0, time.perf_counter() - t0
        if arrived(origin) != n:
            raise BenchError("raw loop: not every notification arrived")

        palier = run_palier(app, now)
        if palier["stats"] != {"sent": n} or arrived(origin) != 2 * n:
            raise BenchError(f"Palier: {palier['stats']}, {arrived(origin) - n} arrived of {n}")
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
        drop()

    rows = [("Raw loop (cryptography + http.client, 1 connection)", n / raw_wall, raw_cpu / n * 1e6),
            (f"Palier send_due (pywebpush, {args.concurrency} threads, batches of {args.batch}, "
             f"{'PostgreSQL' if args.postgres else 'SQLite'})", n / palier["wall"], palier["cpu"] / n * 1e6)]
    print(f"Fan-out of {n} reminders to a loopback push service ({os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]})\n")
    print("| Sender | notifications/s | CPU µs/message |\n| --- | ---: | ---: |")
    for name, rate, cpu in rows:
        print(f"| {name} | {rate:,.0f} | {cpu:,.0f} |")
    print(f"\nPalier / raw loop: {rows[1][1] / rows[0][1]:.2f} of the throughput")


if __name__ == "__main__":
    main()
