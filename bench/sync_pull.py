"""Pull benchmark: the initial pull of a site with 5,000 households, 10,000 residents and 20,000 visits through
Palier's pull (every page, limit 2,000) side by side with Kinto's paginated pull of the same 35,000 records
(GET records with _limit, following Next-Page). Records per second and bytes on the wire; interleaved rounds,
medians. Palier is pulled as the PWA pulls (page format 2, compact rows), and in format 1 (the change objects
phones not yet updated ask for) for comparison.

    .venv/bin/python -m bench.sync_pull --db both
"""
from __future__ import annotations

import argparse
import gc
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import sqlalchemy as sa

from bench import common as c

ENTITIES = ("household", "resident", "visit")


def seed_visits(engine, sc: c.Scenario, visits: int, chunk: int = 2000) -> list[dict]:
    from server.models import Visit

    now = datetime.now(timezone.utc)
    captured = now - timedelta(days=1)
    client_id = uuid.uuid4()
    rows = []
    for start in range(0, visits, chunk):
        n = min(chunk, visits - start)
        with engine.begin() as conn:
            s = c.reserve_seq(conn, n)
            part = [c.visit_row(sc, c.visit_args(sc, start + i, captured), s + i, client_id, now) for i in range(n)]
            conn.execute(sa.insert(Visit.__table__), part)
        rows += part
    return rows


def kinto_records(engine, sc: c.Scenario) -> dict[str, list[dict]]:
    """The same records with the fields Palier sends a gardien (no phone, no email), as Kinto would hold them."""
    from server.models import Household, Resident, Visit

    def iso(v):
        return v.isoformat() if hasattr(v, "isoformat") else v

    def rows(table, cols):
        with engine.connect() as conn:
            result = conn.execute(sa.select(table.c.id, *[table.c[k] for k in cols])
                                  .where(table.c.site_id == sc.site_id))
            return [{"id": str(r[0]), **{k: (str(v) if isinstance(v, uuid.UUID) else iso(v))
                                         for k, v in zip(cols, r[1:])}} for r in result]

    return {
        "household": rows(Household.__table__, ["site_id", "building", "staircase", "floor", "door",
                                                "landlord_ref", "notes"]),
        "resident": rows(Resident.__table__, ["household_id", "site_id", "first_name", "last_name",
                                              "consent_contact", "consent_image", "duplicate_of"]),
        "visit": rows(Visit.__table__, ["household_id", "site_id", "resident_id", "user_id", "visited_at",
                                        "outcome", "interests", "needs", "follow_up", "consent_recontact",
                                        "note", "clock_suspect"]),
    }


def seed_kinto(base: str, kind: str, records: dict[str, list[dict]], batch: int) -> dict[str, str]:
    """Collections through the API; records through the batch API (memory) or straight into Kinto's own
    PostgreSQL table (its trigger stamps last_modified when given NULL), since this setup is not what is measured."""
    k = c.kinto_client(base)
    paths = {e: c.kinto_collection(k, "palier", e) for e in ENTITIES}
    if kind == "postgres":
        url = k_pg_url(base)
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            for e, recs in records.items():
                parent = paths[e].removeprefix("/v1").removesuffix("/records")
                conn.execute(sa.text("INSERT INTO objects (id, parent_id, resource_name, last_modified, data, "
                                     "deleted) VALUES (:id, :parent, 'record', NULL, CAST(:data AS jsonb), false)"),
                             [{"id": r["id"], "parent": parent,
                               "data": json.dumps({k_: v for k_, v in r.items() if k_ != "id"})} for r in recs])
            conn.execute(sa.text("ANALYZE objects"))  # as analyze() does for Palier's tables
        engine.dispose()
    else:
        for e, recs in records.items():
            for i in range(0, len(recs), batch):
                c.kinto_batch_create(k, paths[e], recs[i:i + batch])
    for e, recs in records.items():
        if c.kinto_count(k, paths[e]) != len(recs):
            raise c.BenchError(f"kinto seeding of {e}: {c.kinto_count(k, paths[e])} != {len(recs)}")
    k.close()
    return paths


def k_pg_url(base: str) -> str:
    return c.KINTO_DB_URLS[base].replace("postgresql://", "postgresql+psycopg://", 1)


def palier_pull(base: str, sc: c.Scenario, limit: int, expected: dict[str, int], encoding: str = "identity",
                page_format: int = 2) -> dict:
    """encoding: what the client accepts; "zstd" is what Chromium is answered with (it sends "gzip, deflate, br,
    zstd"): the pages then cross the wire compressed and the client decompresses them (counted in its time).
    page_format: 2, rows (each change [entity, id, seq, values]), as the PWA asks; 1, objects."""
    http = c.palier_login(base, sc.email, encoding)
    client_id = str(uuid.uuid4())
    counts, cursor, pages, wire, exchange = {}, None, 0, 0, 0.0
    t = time.perf_counter()
    while True:
        sent = time.perf_counter()
        resp = http.post("/api/sync/pull", {"client_id": client_id, "cursor": cursor, "limit": limit,
                                            "format": page_format})
        exchange += time.perf_counter() - sent
        page = c.expect(resp, 200, "palier pull")
        wire += resp.wire_bytes
        pages += 1
        for ch in page["changes"]:
            entity = ch[0] if page_format == 2 else ch["entity"]
            counts[entity] = counts.get(entity, 0) + 1
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    elapsed = time.perf_counter() - t
    http.close()
    got = {e: counts.get(e, 0) for e in ENTITIES}
    if got != expected:
        raise c.BenchError(f"palier pull returned {got}, expected {expected}")
    return {"seconds": elapsed, "exchange_seconds": exchange, "records": sum(got.values()),
            "changes": sum(counts.values()), "pages": pages, "wire_bytes": wire}


def palier_stream(base: str, sc: c.Scenario, limit: int, expected: dict[str, int], pages: int,
                  encoding: str = "identity") -> dict:
    """The pull as the PWA makes it: format 2, up to `pages` pages per answer, one per line (docs/PROTOCOL.md,
    "Streamed pages"), each line parsed as it arrives while the server reads the next page."""
    http = c.palier_login(base, sc.email, encoding)
    client_id = str(uuid.uuid4())
    counts, cursor, answers, n_pages, clock = {}, None, 0, 0, [0.0, 0]
    t = time.perf_counter()
    more = True
    while more:
        answers += 1
        for line in http.post_lines("/api/sync/pull", {"client_id": client_id, "cursor": cursor, "limit": limit,
                                                       "format": 2, "pages": pages}, clock):
            page = json.loads(line)
            n_pages += 1
            for ch in page["changes"]:
                counts[ch[0]] = counts.get(ch[0], 0) + 1
            cursor, more = page["cursor"], page["has_more"]
    elapsed = time.perf_counter() - t
    http.close()
    got = {e: counts.get(e, 0) for e in ENTITIES}
    if got != expected:
        raise c.BenchError(f"palier streamed pull returned {got}, expected {expected}")
    return {"seconds": elapsed, "exchange_seconds": clock[0], "records": sum(got.values()),
            "changes": sum(counts.values()), "pages": n_pages, "answers": answers, "wire_bytes": clock[1]}


def kinto_pull(base: str, paths: dict[str, str], limit: int, expected: dict[str, int]) -> dict:
    k = c.kinto_client(base)
    got, pages, wire, exchange = {}, 0, 0, 0.0
    t = time.perf_counter()
    for e, path in paths.items():
        url, n = f"{path}?_limit={limit}", 0
        while url:
            sent = time.perf_counter()
            resp = k.get(url)
            exchange += time.perf_counter() - sent
            page = c.expect(resp, 200, "kinto pull")
            wire += resp.wire_bytes
            pages += 1
            n += len(page["data"])
            nxt = resp.headers.get("next-page")
            url = None if not nxt else (lambda s: f"{s.path}?{s.query}")(urlsplit(nxt))
        got[e] = n
    elapsed = time.perf_counter() - t
    k.close()
    if got != expected:
        raise c.BenchError(f"kinto pull returned {got}, expected {expected}")
    return {"seconds": elapsed, "exchange_seconds": exchange, "records": sum(got.values()), "pages": pages,
            "wire_bytes": wire}


def store_texts() -> int:
    """Seeding wrote rows with Core, around the push that stores each record's pull text: store them now, as
    pushes (and any earlier pull) would have, so that the pull measured is the steady one (not timed)."""
    from server.extensions import db
    from server.sync_store import refresh_wire

    count = refresh_wire(db.session)
    db.session.commit()
    return count


def analyze(engine) -> None:
    """PostgreSQL: the statistics of the tables just filled (seed_kinto does the same for Kinto's), not timed.
    Autovacuum gathers them about a minute after a load like this one; measured before, each page of either peer
    is planned for nearly empty tables (Palier's: every remaining row of the site read and sorted for each page)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))


def run(db: str = "sqlite", households: int = 5000, residents_per_household: int = 2, visits: int = 20_000,
        limit: int = 2000, rounds: int = 3, kinto: bool = True, max_seconds: float = 1200, warm: bool = True,
        pages: int = 20) -> dict:
    expected = {"household": households, "resident": households * residents_per_household, "visit": visits}
    with c.environment(db, "pull") as env:
        sc = c.seed_site(env.engine, households, residents_per_household)
        seed_visits(env.engine, sc, visits)
        if warm:
            store_texts()
        analyze(env.engine)
        records = kinto_records(env.engine, sc) if kinto else None
        # The client's own heap: the seeded records (and the Kinto copies) stay alive in this process, and its
        # garbage collector walked them at each full collection while it parsed pages: ~115 ms of a 290 ms pull
        # of 35,000 records on SQLite, a cost of this benchmark's client, not of either server (a phone holds no
        # seed). Frozen, they are left out of collections; both peers' clients gain.
        gc.collect()
        gc.freeze()
        with c.servers(env, kinto) as (palier_base, kinto_base):
            paths = seed_kinto(kinto_base, db, records, 500) if kinto_base else None
            raw = c.interleave(rounds, max_seconds, {
                "palier": lambda r: palier_stream(palier_base, sc, limit, expected, pages),
                "palier_zstd": lambda r: palier_stream(palier_base, sc, limit, expected, pages, "zstd"),
                "palier_paged": lambda r: palier_pull(palier_base, sc, limit, expected),
                "palier_format_1": lambda r: palier_pull(palier_base, sc, limit, expected, page_format=1),
                "kinto": (lambda r: kinto_pull(kinto_base, paths, limit, expected)) if kinto_base else None,
            })
    gc.unfreeze()
    return {**summarise(db, raw, expected, limit), "warm": warm}


CONTESTANTS = {  # key: what the table calls it
    "palier": "Palier (streamed, as the PWA)",
    "palier_zstd": "Palier streamed zstd",
    "palier_paged": "Palier a page per request",
    "palier_format_1": "Palier format 1",
}


def summarise(db: str, raw: dict, expected: dict, limit: int) -> dict:
    """Per contestant: records per second in wall time and counting the HTTP exchanges alone (the client's JSON
    decoding of each page is the same work for both peers and, at these rates, a large share of the wall time:
    the exchanges measure the servers), bytes on the wire, and each against Kinto."""
    def rate(runs, key="seconds"):
        return c.median([x["records"] / x[key] for x in runs]) if runs else None

    kinto, kinto_x = rate(raw["kinto"]), rate(raw["kinto"], "exchange_seconds")
    out = {"db": db, "records": expected, "limit": limit, "rounds": len(raw["palier"]),
           "kinto_records_per_s": kinto, "kinto_exchange_records_per_s": kinto_x,
           "kinto_wire_bytes": c.median([x["wire_bytes"] for x in raw["kinto"]]) if raw["kinto"] else None,
           "kinto_pages": raw["kinto"][0]["pages"] if raw["kinto"] else None}
    for key in CONTESTANTS:
        runs = raw[key]
        wall, x = rate(runs), rate(runs, "exchange_seconds")
        out |= {f"{key}_records_per_s": wall, f"{key}_exchange_records_per_s": x,
                f"{key}_over_kinto": wall / kinto if kinto else None,
                f"{key}_over_kinto_exchange": x / kinto_x if kinto_x else None,
                f"{key}_wire_bytes": c.median([r["wire_bytes"] for r in runs]) if runs else None,
                f"{key}_pages": runs[0]["pages"] if runs else None,
                f"{key}_answers": runs[0].get("answers", runs[0]["pages"]) if runs else None}
    return {**out, "goals": {"palier_over_kinto": 5}, "raw": raw}


def table(results: list[dict]) -> str:
    def mb(v):
        return None if v is None else round(v / 1e6, 2)

    rows = []
    for r in results:
        rows.append([r["db"], "Kinto", r["rounds"], r["kinto_records_per_s"], None, r["kinto_exchange_records_per_s"],
                     None, mb(r["kinto_wire_bytes"]), r["kinto_pages"], r["kinto_pages"]])
        rows += [[r["db"], name, r["rounds"], r[f"{k}_records_per_s"], r[f"{k}_over_kinto"],
                  r[f"{k}_exchange_records_per_s"], r[f"{k}_over_kinto_exchange"], mb(r[f"{k}_wire_bytes"]),
                  r[f"{k}_pages"], r[f"{k}_answers"]] for k, name in CONTESTANTS.items()]
    return c.markdown_table(["db", "contestant", "rounds", "rec/s", "/Kinto (goal ≥5: Palier)", "rec/s (HTTP only)",
                             "/Kinto (HTTP only)", "MB on the wire", "pages", "requests"], rows)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--households", type=int, default=5000)
    p.add_argument("--visits", type=int, default=20_000)
    p.add_argument("--limit", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pages", type=int, default=20, help="pages per streamed answer (the PWA asks for 20)")
    p.add_argument("--no-kinto", action="store_true")
    p.add_argument("--cold", action="store_true",
                   help="leave the seeded records without their stored pull texts (the first pull writes them)")
    p.add_argument("--max-seconds", type=float, default=1200, help="no new round starts after this")
    a = p.parse_args(argv)
    results = [run(db, a.households, 2, a.visits, a.limit, a.rounds, not a.no_kinto, a.max_seconds, not a.cold, a.pages)
               for db in c.dbs(a.db)]
    c.report("sync_pull", results, table)


if __name__ == "__main__":
    main()
