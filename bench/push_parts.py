"""Where a push batch's time goes, in process (no HTTP, no profiler): bench.sync_push's visits pushed in batches
of 500 through Flask's test client, with the GC tuning a gunicorn worker applies (server/runtime.py), each part
timed by a wrapper and reported in ms a batch. A diagnostic beside bench.sync_push (which compares peers), not a
comparison of its own; its "core" line is that benchmark's limit for the same rows, in the same run.

    .venv/bin/python -m bench.push_parts --db postgres
"""
from __future__ import annotations

import argparse
import collections
import gc
import time
import uuid

from bench import common as c
from bench.pull_parts import _timed
from bench.sync_push import _batches, core_round, make_mutations, push_body


def run(db: str = "postgres", households: int = 5000, visits: int = 10_000, batch: int = 500, rounds: int = 3) -> dict:
    acc: dict[str, float] = collections.defaultdict(float)
    undo: list = []
    core: list[float] = []
    with c.environment(db, "pushparts") as env:
        sc = c.seed_site(env.engine, households, 2)
        from server.runtime import tune_gc

        thresholds = gc.get_threshold()
        gc.collect()
        tune_gc()
        try:
            import sqlalchemy.orm
            from flask import current_app

            import server.api.sync as api
            import server.auth as auth
            import server.sync_store as store
            import sync.push as push
            from server.extensions import db as sqla

            for name in ("lock_device", "load", "residents_of_households", "next_seq", "write", "save_device",
                         "receipt"):
                _timed(acc, undo, store.SqlStore, name)
            _timed(acc, undo, store, "insert_many")
            _timed(acc, undo, store, "wire_texts")
            _timed(acc, undo, push._Batch, "run")
            _timed(acc, undo, api, "parse_push")
            _timed(acc, undo, api, "request_digest")
            _timed(acc, undo, sqlalchemy.orm.Session, "commit")
            _timed(acc, undo, auth, "_token_user")
            client = current_app.test_client()
            login = client.post("/api/auth/login", json={"email": sc.email, "password": c.PASSWORD, "mode": "bearer"})
            headers = {"Authorization": f"Bearer {login.get_json()['access_token']}",
                       "Content-Type": "application/json"}
            sqla.session.remove()

            def push_all() -> int:
                client_id = uuid.uuid4()
                batches = _batches(make_mutations(sc, visits), batch)
                bodies = [c.encode_json(push_body(client_id, b, 0)) for b in batches]
                for body in bodies:
                    t = time.perf_counter()
                    resp = client.post("/api/sync/push", headers=headers, data=body)
                    acc["request"] += time.perf_counter() - t
                    if resp.status_code != 200:
                        raise c.BenchError(f"push: HTTP {resp.status_code} {resp.data[:500]!r}")
                return len(bodies)

            push_all()  # warm: statements built
            acc.clear()
            pushed = 0
            for _ in range(rounds):
                pushed += push_all()
                core.append(core_round(env.engine, sc, visits, batch)["seconds"] / (visits / batch))
        finally:
            for put_back in undo:
                put_back()
            gc.unfreeze()
            gc.set_threshold(*thresholds)
    parts = {k: v / pushed * 1000 for k, v in sorted(acc.items(), key=lambda kv: -kv[1])}
    return {"db": db, "batches": pushed, "ms_per_batch": parts, "core_ms_per_batch": [s * 1000 for s in core]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="postgres")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args(argv)
    for db in c.dbs(a.db):
        r = run(db, rounds=a.rounds)
        print(f"{db}: {r['batches']} batches; core (the limit) "
              + ", ".join(f"{ms:.1f}" for ms in r["core_ms_per_batch"]) + " ms a batch")
        for name, ms in r["ms_per_batch"].items():
            print(f"  {name:26s} {ms:6.2f} ms a batch")


if __name__ == "__main__":
    main()
