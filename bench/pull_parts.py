"""Where a pull page's time goes, in process (no HTTP, no profiler): the site of bench.sync_pull pulled whole
through Flask's test client in page format 2, each part timed by a wrapper and reported in ms a page. A
diagnostic beside bench.sync_pull (which compares peers), not a comparison of its own.

    .venv/bin/python -m bench.pull_parts --db postgres
"""
from __future__ import annotations

import argparse
import collections
import functools
import gc
import json
import time
import uuid

from bench import common as c
from bench.sync_pull import analyze, seed_visits, store_texts


def _timed(acc: dict, undo: list, owner, name: str) -> None:
    """Wrap owner.name to add its time to acc[name]; undo gets what puts it back."""
    f = getattr(owner, name)

    @functools.wraps(f)
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            acc[name] += time.perf_counter() - t

    setattr(owner, name, wrapper)
    undo.append(lambda: setattr(owner, name, f))


def run(db: str = "postgres", households: int = 5000, visits: int = 20_000, limit: int = 2000, pulls: int = 5,
        pages_per_answer: int = 1) -> dict:
    acc: dict[str, float] = collections.defaultdict(float)
    undo: list = []
    with c.environment(db, "parts") as env:
        sc = c.seed_site(env.engine, households, 2)
        seed_visits(env.engine, sc, visits)
        store_texts()
        analyze(env.engine)
        gc.collect()
        gc.freeze()
        try:
            import sqlalchemy.orm
            from flask import current_app

            import server.api.sync as api
            import server.auth as auth
            import server.sync_store as store
            import sync.pull as pull
            import sync.wire as wire
            from server.extensions import db as sqla

            for name in ("read_device", "stamp_pull", "pull_page", "progress"):
                _timed(acc, undo, store.SqlStore, name)
            _timed(acc, undo, wire.PullResult, "to_json")
            _timed(acc, undo, sqlalchemy.orm.Session, "commit")
            _timed(acc, undo, auth, "_token_user")
            _timed(acc, undo, pull, "_page")  # a page of sync's pull_pages, from its cursor
            _timed(acc, undo, api, "token_user_again")  # streamed answers: the token checked before each page
            _timed(acc, undo, api.audit, "record")
            client = current_app.test_client()
            login = client.post("/api/auth/login", json={"email": sc.email, "password": c.PASSWORD, "mode": "bearer"})
            headers = {"Authorization": f"Bearer {login.get_json()['access_token']}", "Accept-Encoding": "identity"}
            sqla.session.remove()

            def pull() -> int:
                client_id, cursor, pages = str(uuid.uuid4()), None, 0
                while True:
                    t = time.perf_counter()
                    ask = {"client_id": client_id, "cursor": cursor, "limit": limit, "format": 2}
                    resp = client.post("/api/sync/pull", headers=headers,
                                       json=ask | ({"pages": pages_per_answer} if pages_per_answer > 1 else {}))
                    data = resp.data  # a streamed answer is read whole, every page made
                    acc["request"] += time.perf_counter() - t
                    if resp.status_code != 200:
                        raise c.BenchError(f"pull: HTTP {resp.status_code} {data[:500]!r}")
                    for line in data.split(b"\n") if pages_per_answer > 1 else [data]:
                        if line:
                            body = json.loads(line)
                            pages += 1
                    cursor = body["cursor"]
                    if not body["has_more"]:
                        return pages

            pull()  # warm: statements built, pages cached by the database
            acc.clear()
            pages = sum(pull() for _ in range(pulls))
        finally:
            for put_back in undo:
                put_back()
            gc.unfreeze()
    return {"db": db, "pages": pages, "ms_per_page": {k: v / pages * 1000 for k, v in
                                                      sorted(acc.items(), key=lambda kv: -kv[1])}}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="postgres")
    p.add_argument("--pulls", type=int, default=5)
    p.add_argument("--pages", type=int, default=1, help="pages per answer (the PWA streams 20)")
    a = p.parse_args(argv)
    for db in c.dbs(a.db):
        r = run(db, pulls=a.pulls, pages_per_answer=a.pages)
        print(f"{db}: {r['pages']} pages")
        for name, ms in r["ms_per_page"].items():
            print(f"  {name:14s} {ms:6.2f} ms a page")


if __name__ == "__main__":
    main()
