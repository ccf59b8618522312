"""Fan-out of 10,000 agenda reminders to a loopback push service: Palier's sender (claim in the database,
pywebpush encryption, VAPID header per origin, kept-alive connections, outcomes recorded) side by side with a raw
loop (ECDH + HKDF + AES-GCM with `cryptography`, aes128gcm per RFC 8291, then an HTTP POST on a kept-alive
http.client connection) as the limit. Both run with 1 thread and with N threads (one connection per thread), in
the same process and run, so each ratio compares like with like.

    .venv/bin/python -m bench.push_fanout [--n 10000] [--threads 8] [--postgres]

The push service runs in its own process and answers 201 without decrypting; it counts what arrived, and the
run fails (BenchError) unless every notification arrived exactly once. CPU is time.process_time of the sender
process (Palier's includes its database work: SQLite in process; PostgreSQL's server CPU is not counted).
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
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import BenchError, create_pg_database  # noqa: E402
from server.push.keys import b64url, b64url_decode  # noqa: E402


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
    try:
        for s in subs:
            body = encrypt_aes128gcm(data, b64url_decode(s["keys"]["p256dh"]), b64url_decode(s["keys"]["auth"]))
            conn.request("POST", urlsplit(s["endpoint"]).path, body=body,
                         headers={"TTL": "3600", "Content-Encoding": "aes128gcm", "Urgency": "high",
                                  "Topic": "t" * 32})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 201:
                raise BenchError(f"raw loop: HTTP {resp.status}")
    finally:
        conn.close()


def raw_threads(subs: list[dict], data: bytes, threads: int) -> None:
    """The raw loop on `threads` threads, each with its own connection and an equal share."""
    if threads == 1:
        return raw_loop(subs, data)
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda part: raw_loop(part, data), [subs[i::threads] for i in range(threads)]))


def measure(fn) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of fn()."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - t0


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


def run_palier(app, now: datetime, threads: int) -> dict:
    import sqlalchemy as sa
    from server import push
    from server.extensions import db
    from server.models import PushDelivery
    with app.app_context():
        app.config["PUSH_CONCURRENCY"] = threads
        # Every reminder due again, as if never sent (the same rows serve each run).
        db.session.execute(sa.update(PushDelivery).values(state="pending", claimed_by=None, claimed_at=None,
                                                          sent_at=None, attempts=0, last_status=None))
        db.session.commit()
        push.keys.vapid_signer(push.keys.settings()["private_key"])
        c0, t0 = time.process_time(), time.perf_counter()
        stats = push.send_due(now=now)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    return {"stats": dict(stats), "cpu": cpu, "wall": wall}


def run(n: int = 10_000, threads: int = 8, batch: int = 500, postgres: bool = False) -> dict:
    """Both senders, 1 thread and `threads` threads each; raises BenchError unless every message arrived once."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    tmp = tempfile.mkdtemp(prefix="palier-push-bench-")
    os.environ["PALIER_INSTANCE_PATH"] = tmp
    if postgres:
        plain, drop = create_pg_database("palier_push_bench")
        db_url = plain.replace("postgresql://", "postgresql+psycopg://", 1)
    else:
        db_url, drop = f"sqlite:///{tmp}/bench.sqlite3", (lambda: None)
    proc, origin = start_push_service()
    rows, expected, app = [], 0, None
    try:
        subs = browsers(origin, n)
        app = palier_app(db_url, tmp, threads, batch)
        if seed(app, subs, now) != n:
            raise BenchError("planning did not make one reminder per subscription")
        data = json.dumps({"type": "reminder", "event_id": str(uuid.uuid4()), "title": "Atelier couture",
                           "kind": "atelier", "starts_at": now.isoformat(), "place": "Local commun",
                           "url": "/agenda/bench/events/x", "unsubscribe_url": "/agenda/bench/unsubscribe#" + "f" * 64},
                          ensure_ascii=False).encode()
        for t in sorted({1, threads}):
            cpu, wall = measure(lambda: raw_threads(subs, data, t))
            expected += n
            if arrived(origin) != expected:
                raise BenchError(f"raw loop ({t} threads): not every notification arrived")
            rows.append({"sender": "raw", "threads": t, "rate": n / wall, "cpu_us": cpu / n * 1e6})
            palier = run_palier(app, now, t)
            expected += n
            if palier["stats"] != {"sent": n} or arrived(origin) != expected:
                raise BenchError(f"Palier: {palier['stats']}, {arrived(origin) - expected + n} arrived of {n}")
            rows.append({"sender": "palier", "threads": t, "rate": n / palier["wall"],
                         "cpu_us": palier["cpu"] / n * 1e6})
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
        proc.stdout.close()
        if app is not None:
            from server.extensions import db
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
        drop()
    by = {(r["sender"], r["threads"]): r for r in rows}
    ratios = {t: by["palier", t]["rate"] / by["raw", t]["rate"] for t in sorted({1, threads})}
    return {"n": n, "threads": threads, "batch": batch, "db": "PostgreSQL" if postgres else "SQLite",
            "rows": rows, "ratios": ratios}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--postgres", action="store_true", help="Palier's database on PostgreSQL (default SQLite)")
    ap.add_argument("--threads", type=int, default=8, help="the N of the N-thread rows (both senders)")
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args()
    result = run(args.n, args.threads, args.batch, args.postgres)
    print(f"Fan-out of {args.n} reminders to a loopback push service ({os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]}, Palier on {result['db']}, batches of {args.batch})\n")
    print("| Sender | threads | notifications/s | CPU µs/message |\n| --- | ---: | ---: | ---: |")
    names = {"raw": "Raw loop (cryptography + http.client)", "palier": "Palier send_due"}
    for r in result["rows"]:
        print(f"| {names[r['sender']]} | {r['threads']} | {r['rate']:,.0f} | {r['cpu_us']:,.0f} |")
    print()
    for t, ratio in result["ratios"].items():
        print(f"Palier / raw loop, {t} thread(s) each: {ratio:.2f} of the throughput")


if __name__ == "__main__":
    main()
