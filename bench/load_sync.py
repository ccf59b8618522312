"""Load test: many field devices syncing at once against gunicorn (several workers) on a throwaway database.

Each simulated device logs in, pushes its batches of visits (each batch sent twice: the second time as after a
response lost on the way back, so every answer must be `replayed`), then pulls until has_more is false. All
devices start together. Checks, or the run fails: no 5xx and no connection error, every visit stored exactly
once (rows counted in the database), every device's counter at its last mutation. Reports p50/p99 latencies of
push and pull. A load run is measured, never a timed test.

    .venv/bin/python -m bench.load_sync            # --devices 200 --workers 4 --batches 3 --size 20 --db postgres
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from bench import common as c

DEVICES_PER_USER = 10  # gardiens share the site; each logs in on several phones


def seed_users(engine, sc: c.Scenario, count: int) -> list[str]:
    """More gardiens of the scenario's site (same password), made with Core; returns their emails."""
    from werkzeug.security import generate_password_hash

    from server.models import User, user_sites

    now = datetime.now(timezone.utc)
    password_hash = generate_password_hash(c.PASSWORD)
    users = [{"id": uuid.uuid4(), "email": f"gardien-{i}-{sc.user_id.hex[:6]}@load.palier", "display_name": f"G{i}",
              "role": "gardien", "password_hash": password_hash, "active": True,
              "tokens_valid_after": now - timedelta(minutes=1), "created_at": now} for i in range(count)]
    with engine.begin() as conn:
        conn.execute(sa.insert(User.__table__), users)
        conn.execute(sa.insert(user_sites), [{"user_id": u["id"], "site_id": sc.site_id} for u in users])
    return [u["email"] for u in users]


class Device(threading.Thread):
    """One phone: log in, wait for the start, push each batch twice, pull everything."""

    def __init__(self, base: str, email: str, sc: c.Scenario, batches: int, size: int, start_line):
        super().__init__(daemon=True)
        self.base, self.email, self.sc, self.batches, self.size = base, email, sc, batches, size
        self.start_line = start_line
        self.client_id = uuid.uuid4()
        self.push_ms: list[float] = []
        self.pull_ms: list[float] = []
        self.errors: list[str] = []
        self.pulled = 0

    def _post(self, http: c.Http, path: str, body: dict, latencies: list) -> dict | None:
        t = time.perf_counter()
        try:
            resp = http.post(path, body)
        except OSError as e:  # connection refused, reset, timeout: a failure of the run, never retried here
            self.errors.append(f"{path}: {type(e).__name__}: {e}")
            http.close()
            return None
        latencies.append((time.perf_counter() - t) * 1000)
        if resp.status != 200:
            self.errors.append(f"{path}: HTTP {resp.status} {resp.body[:200]!r}")
            return None
        return resp.json()

    def run(self):
        try:
            http = c.palier_login(self.base, self.email)
        except (OSError, c.BenchError) as e:
            self.errors.append(f"login: {e}")
            self.start_line.abort()
            return
        try:
            self.start_line.wait()
        except threading.BrokenBarrierError:
            return
        captured = datetime.now(timezone.utc) - timedelta(hours=1)
        n = 0
        for b in range(self.batches):
            muts = []
            for _ in range(self.size):
                n += 1
                muts.append({"n": n, "op": "visit.create", "at": (captured + timedelta(seconds=n)).isoformat(),
                             "args": c.visit_args(self.sc, n, captured)})
            body = {"client_id": str(self.client_id), "app_version": "load", "pending": 0, "mutations": muts}
            for replay in (False, True):
                out = self._post(http, "/api/sync/push", body, self.push_ms)
                if out is None:
                    continue
                bad = [r for r in out["results"] if r["status"] != "applied" or bool(r.get("replayed")) != replay]
                if bad or out["last_applied"] != n:
                    self.errors.append(f"push {b} replay={replay}: last_applied {out['last_applied']}, {bad[:2]}")
        cursor = None
        while True:
            out = self._post(http, "/api/sync/pull", {"client_id": str(self.client_id), "cursor": cursor,
                                                      "limit": 1000}, self.pull_ms)
            if out is None:
                break
            self.pulled += len(out["changes"])
            cursor = out["cursor"]
            if not out["has_more"]:
                break
        http.close()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if len(values) > 1 else values[0]


def run(db: str = "postgres", devices: int = 200, workers: int = 4, threads: int = 8, batches: int = 3,
        size: int = 20, households: int = 200) -> dict:
    from server.models import Device as DeviceRow
    from server.models import MutationRun, Visit

    with c.environment(db, "load") as env:
        sc = c.seed_site(env.engine, households, 2)  # visit_args names the first of two per household
        emails = seed_users(env.engine, sc, max(1, -(-devices // DEVICES_PER_USER)))
        # Every phone logs in from 127.0.0.1 here: the per-address login limit is for the open internet.
        extra = {"PALIER_RATELIMIT_LOGIN": f"{devices * 2} per minute"}
        with c.palier_server(env.database.url, env.work, threads=threads, workers=workers, env_extra=extra) as base:
            start_line = threading.Barrier(devices + 1)
            phones = [Device(base, emails[i % len(emails)], sc, batches, size, start_line) for i in range(devices)]
            for p in phones:
                p.start()
            try:
                start_line.wait(timeout=300)
            except threading.BrokenBarrierError:
                pass
            t = time.perf_counter()
            for p in phones:
                p.join(timeout=900)
            wall = time.perf_counter() - t
        errors = [e for p in phones for e in p.errors] + [f"device {p.client_id} still running"
                                                          for p in phones if p.is_alive()]
        ids = [p.client_id for p in phones]
        with env.engine.connect() as conn:
            visits = conn.execute(sa.select(sa.func.count(), sa.func.count(sa.distinct(Visit.id)))
                                  .where(Visit.client_id.in_(ids))).one()
            entries = sa.func.coalesce(sa.func.sum(MutationRun.last_n - MutationRun.first_n + 1), 0)
            logged = conn.execute(sa.select(entries).where(MutationRun.client_id.in_(ids))).scalar_one()
            counters = conn.execute(sa.select(DeviceRow.last_applied).where(DeviceRow.client_id.in_(ids))).scalars().all()
    expected = devices * batches * size
    if visits[0] != expected or visits[1] != expected or logged != expected:
        errors.append(f"stored {visits[0]} visits ({visits[1]} distinct), {logged} logged; expected {expected}")
    if sorted(counters) != [batches * size] * devices:
        errors.append(f"device counters {sorted(set(counters))}, expected all {batches * size}")
    pushes = [x for p in phones for x in p.push_ms]
    pulls = [x for p in phones for x in p.pull_ms]
    result = {
        "db": db, "devices": devices, "workers": workers, "threads": threads, "batches": batches, "size": size,
        "visits_stored": visits[0], "visits_expected": expected, "errors": errors, "wall_seconds": wall,
        "push_requests": len(pushes), "pull_requests": len(pulls),
        "push_p50_ms": percentile(pushes, 50), "push_p99_ms": percentile(pushes, 99),
        "pull_p50_ms": percentile(pulls, 50), "pull_p99_ms": percentile(pulls, 99),
        "pulled_changes_min": min((p.pulled for p in phones), default=0),
    }
    if errors:
        raise c.BenchError(f"load run failed ({len(errors)} errors), first: {errors[:5]}")
    return result


def table(results: list[dict]) -> str:
    rows = [[r["db"], r["devices"], r["workers"], r["push_requests"], r["pull_requests"], r["visits_stored"],
             r["push_p50_ms"], r["push_p99_ms"], r["pull_p50_ms"], r["pull_p99_ms"], r["wall_seconds"]]
            for r in results]
    return c.markdown_table(["db", "devices", "workers", "pushes", "pulls", "visits stored (= expected)",
                             "push p50 ms", "push p99 ms", "pull p50 ms", "pull p99 ms", "wall s"], rows)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    p.add_argument("--batches", type=int, default=3)
    p.add_argument("--size", type=int, default=20, help="mutations per push")
    a = p.parse_args(argv)
    result = run(a.db, a.devices, a.workers, a.threads, a.batches, a.size)
    c.report("load_sync", [result], table)


if __name__ == "__main__":
    main()
