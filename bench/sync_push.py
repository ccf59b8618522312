"""Push benchmark: 10,000 visits in batches of 500 through Palier's HTTP sync API, side by side with Kinto's
batch endpoint (the peer) and SQLAlchemy Core executemany into the same visits table (the limit), plus the
replay of already applied batches. Rounds are interleaved (the order rotates) and medians are reported.

    .venv/bin/python -m bench.sync_push --db both
"""
from __future__ import annotations

import argparse
import time
import uuid
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from bench import common as c


def _batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def make_mutations(sc: c.Scenario, visits: int, first_n: int = 1) -> list[dict]:
    captured = datetime.now(timezone.utc) - timedelta(hours=1)
    return [{"n": first_n + i, "op": "visit.create", "at": (captured + timedelta(seconds=i)).isoformat(),
             "args": c.visit_args(sc, i, captured)} for i in range(visits)]


def push_body(client_id: uuid.UUID, batch: list[dict], pending: int) -> dict:
    return {"client_id": str(client_id), "app_version": "bench", "pending": pending, "mutations": batch}


def palier_round(base: str, engine, sc: c.Scenario, visits: int, batch: int) -> dict:
    """First push of every batch, then a replay of every (already applied) batch; both checked."""
    from server.models import Visit

    http = c.palier_login(base, sc.email)
    client_id = uuid.uuid4()
    batches = _batches(make_mutations(sc, visits), batch)
    bodies = [push_body(client_id, b, visits - (i + 1) * batch) for i, b in enumerate(batches)]
    # Encoded before the clock starts, as for Kinto's batches: what is timed is the exchange with the server (a
    # phone retrying a lost answer sends the bytes it already made).
    wire = {id(b): c.encode_json(b) for b in bodies}

    def push(body, replay: bool) -> float:
        data = wire[id(body)]
        t = time.perf_counter()
        out = c.expect(http.post("/api/sync/push", data), 200, "palier push")
        elapsed = time.perf_counter() - t
        # A replay answers the device's counter, already past the whole run.
        last = visits if replay else body["mutations"][-1]["n"]
        ok = [r for r in out["results"] if r["status"] == "applied" and bool(r.get("replayed")) == replay]
        if out["last_applied"] != last or len(ok) != len(body["mutations"]):
            raise c.BenchError(f"palier push (replay={replay}): last_applied={out['last_applied']} "
                               f"expected {last}; {len(ok)}/{len(body['mutations'])} as expected; "
                               f"first result {out['results'][:1]}")
        return elapsed

    first = [push(b, False) for b in bodies]
    stored = c.count_rows(engine, Visit.__table__, client_id=client_id)
    replays = [push(b, True) for b in bodies]
    after = c.count_rows(engine, Visit.__table__, client_id=client_id)
    http.close()
    if stored != visits or after != visits:
        raise c.BenchError(f"palier stored {stored} visits (after replay {after}), expected {visits}")
    return {"seconds": sum(first), "records": stored, "batch_seconds": first, "replay_batch_seconds": replays}


def core_round(engine, sc: c.Scenario, visits: int, batch: int, texts: bool = True) -> dict:
    """The limit: the same rows, executemany, one transaction per batch (with its block of seqs).

    texts: the rows as Palier stores them, with their pull texts (`wire`, `wire_seq`: server/sync_store.py), made
    before the clock with seqs reserved before it (each timed transaction still takes its block of the sequence, as
    a push does). False: the rows without those two columns, the limit of sessions 2-4."""
    from server.models import Visit
    from server.sync_store import wire_texts

    table = Visit.__table__
    client_id = uuid.uuid4()
    now = datetime.now(timezone.utc)
    args = [m["args"] for m in make_mutations(sc, visits)]
    rows = [c.visit_row(sc, a, 0, client_id, now) for a in args]
    if texts:
        with engine.begin() as conn:
            first = c.reserve_seq(conn, len(rows))
        for i, r in enumerate(rows):
            r["seq"] = first + i
            r.update(wire_texts("visit", r))
    t = time.perf_counter()
    for part in _batches(rows, batch):
        with engine.begin() as conn:
            first = c.reserve_seq(conn, len(part))
            if not texts:
                for i, r in enumerate(part):
                    r["seq"] = first + i
            conn.execute(sa.insert(table), part)
    elapsed = time.perf_counter() - t
    stored = c.count_rows(engine, table, client_id=client_id)
    if stored != visits:
        raise c.BenchError(f"core stored {stored} visits, expected {visits}")
    if texts:
        with engine.connect() as conn:
            current = conn.execute(sa.select(sa.func.count()).where(
                table.c.client_id == client_id, table.c.wire_seq == table.c.seq, table.c.wire.is_not(None))).scalar_one()
        if current != visits:
            raise c.BenchError(f"core stored {current} visits with their pull text, expected {visits}")
    return {"seconds": elapsed, "records": stored}


def kinto_round(base: str, sc: c.Scenario, visits: int, batch: int, round_no: int) -> dict:
    k = c.kinto_client(base)
    path = c.kinto_collection(k, "palier", f"visits-{round_no}")
    records = [{**m["args"], "site_id": str(sc.site_id)} for m in make_mutations(sc, visits)]
    parts = [(c.kinto_batch_body(path, part), len(part)) for part in _batches(records, batch)]
    t = time.perf_counter()
    for body, count in parts:
        c.kinto_batch_send(k, body, count)
    elapsed = time.perf_counter() - t
    stored = c.kinto_count(k, path)
    k.close()
    if stored != visits:
        raise c.BenchError(f"kinto stored {stored} records, expected {visits}")
    return {"seconds": elapsed, "records": stored}


def run(db: str = "sqlite", visits: int = 10_000, batch: int = 500, rounds: int = 3, kinto: bool = True,
        kinto_visits: int | None = None, max_seconds: float = 1200, households: int = 500) -> dict:
    """One database kind: returns the raw figures and the medians."""
    kinto_visits = kinto_visits or visits
    with c.environment(db, "push") as env:
        sc = c.seed_site(env.engine, households)
        with c.servers(env, kinto, batch_max=batch) as (palier_base, kinto_base):
            raw = c.interleave(rounds, max_seconds, {
                "palier": lambda r: palier_round(palier_base, env.engine, sc, visits, batch),
                "core": lambda r: core_round(env.engine, sc, visits, batch),
                "core_bare": lambda r: core_round(env.engine, sc, visits, batch, texts=False),
                "kinto": (lambda r: kinto_round(kinto_base, sc, kinto_visits, batch, r)) if kinto_base else None,
            })
    return summarise(db, raw, visits, batch)


def summarise(db: str, raw: dict, visits: int, batch: int) -> dict:
    def rate(runs):
        return c.median([x["records"] / x["seconds"] for x in runs]) if runs else None

    palier, core, kinto = rate(raw["palier"]), rate(raw["core"]), rate(raw["kinto"])
    bare = rate(raw.get("core_bare"))
    first = c.median([s for x in raw["palier"] for s in x["batch_seconds"]])
    replay = c.median([s for x in raw["palier"] for s in x["replay_batch_seconds"]])
    return {
        "db": db, "visits": visits, "batch": batch, "rounds": len(raw["palier"]),
        "palier_records_per_s": palier, "core_records_per_s": core, "kinto_records_per_s": kinto,
        "core_bare_records_per_s": bare,
        "palier_over_core": palier / core, "palier_over_kinto": palier / kinto if kinto else None,
        "palier_over_core_bare": palier / bare if bare else None,
        "first_push_batch_ms": first * 1000, "replay_batch_ms": replay * 1000, "replay_speedup": first / replay,
        "goals": {"palier_over_core": 0.5, "palier_over_kinto": 5, "replay_speedup": 5},
        "raw": raw,
    }


def table(results: list[dict]) -> str:
    rows = [[r["db"], r["rounds"], r["palier_records_per_s"], r["core_records_per_s"], r["core_bare_records_per_s"],
             r["kinto_records_per_s"], r["palier_over_core"], r["palier_over_core_bare"], r["palier_over_kinto"],
             r["first_push_batch_ms"], r["replay_batch_ms"], r["replay_speedup"]] for r in results]
    return c.markdown_table(["db", "rounds", "Palier rec/s", "Core rec/s", "Core rec/s, rows without texts",
                             "Kinto rec/s", "Palier/Core (≥0.5)", "Palier/Core without texts",
                             "Palier/Kinto (≥5)", "first push ms/batch", "replay ms/batch",
                             "replay speed-up (≥5)"], rows)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--visits", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--kinto-visits", type=int, help="records Kinto pushes per round (default: --visits)")
    p.add_argument("--no-kinto", action="store_true")
    p.add_argument("--max-seconds", type=float, default=1200, help="no new round starts after this")
    a = p.parse_args(argv)
    results = [run(db, a.visits, a.batch, a.rounds, not a.no_kinto, a.kinto_visits, a.max_seconds)
               for db in c.dbs(a.db)]
    c.report("sync_push", results, table)


if __name__ == "__main__":
    main()
