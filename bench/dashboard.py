"""Dashboard benchmark: head office's /api/dashboard over 100,000 households and 300,000 visits (residents,
engagements, events, check-ins and head counts in proportion, bulk-inserted with Core), side by side with its peer:
the very SQL statements the request issued (captured from the engine), replayed directly on a DBAPI cursor. The
ratio is what Flask, the ORM, the Python assembly and JSON add to the aggregates. p50/p95 of interleaved calls;
budget: p95 <= 1 s.

    .venv/bin/python -m bench.dashboard --db both
"""
from __future__ import annotations

import argparse
import time
import uuid
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from bench import common as c

BUDGET_P95_SECONDS = 1.0
WEEKS = 26


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p95 of 7 calls is the slowest one: no flattering interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(-(-q * len(ordered) // 1)) - 1))]


def seed(engine, households: int, visits: int, sites: int = 20, chunk: int = 5000) -> dict:
    """Sites, actions, staff, households, residents (1.5 per household, 2% suspected duplicates), engagements
    (0.3 per household, a tenth ended), visits over the last 26 weeks, events (1 per 200 households) with 10
    check-ins and 3 head counts each. Deterministic in the sizes; made outside the measured work."""
    from werkzeug.security import generate_password_hash

    from server.models import (Action, Attendance, Engagement, Event, HeadCount, Household, Programme, Resident,
                               Site, User, Visit, event_sites, user_sites)

    now = datetime.now(timezone.utc)
    today = now.date()
    stamps = {"deleted": False, "created_at": now, "updated_at": now}
    site_ids = [uuid.uuid4() for _ in range(sites)]
    action_ids = [uuid.uuid4() for _ in range(10)]
    staff_ids = [uuid.uuid4() for _ in range(sites)]
    head_id = uuid.uuid4()

    def insert(table, rows):
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            with engine.begin() as conn:
                first = c.reserve_seq(conn, len(part)) if "seq" in table.c else None
                if first is not None:
                    for i, r in enumerate(part):
                        r["seq"] = first + i
                conn.execute(sa.insert(table), part)

    insert(Programme.__table__, [{"id": uuid.uuid4(), "name": "Habitat contributif", "goal": 1400, "baseline": 386}])
    insert(Site.__table__, [{"id": s, "code": f"site-{i:02d}", "name": f"Résidence {i:02d}", "commune": "Outreau",
                             "territory": "Côte d'Opale", **stamps} for i, s in enumerate(site_ids)])
    insert(Action.__table__, [{"id": a, "code": f"action-{i}", "name": f"Action {i}", "description": "",
                               "site_id": site_ids[i] if i < 5 else None, **stamps}
                              for i, a in enumerate(action_ids)])
    pw = generate_password_hash(c.PASSWORD)
    insert(User.__table__, [{"id": u, "email": f"staff{i}@bench.palier", "display_name": f"Staff {i}",
                             "role": "staff", "password_hash": pw, "active": True,
                             "tokens_valid_after": now - timedelta(minutes=1), "created_at": now}
                            for i, u in enumerate(staff_ids)]
           + [{"id": head_id, "email": "siege@bench.palier", "display_name": "Siège", "role": "head_office",
               "password_hash": pw, "active": True, "tokens_valid_after": now - timedelta(minutes=1),
               "created_at": now}])
    insert(user_sites, [{"user_id": u, "site_id": s} for u, s in zip(staff_ids, site_ids)])

    hh = [(uuid.uuid4(), site_ids[i % sites]) for i in range(households)]
    insert(Household.__table__, [{"id": h, "site_id": s, "building": f"B{i % 7}", "staircase": str(i % 4),
                                  "floor": str(i % 9), "door": str(i), "landlord_ref": f"REF-{i:06d}", "notes": "",
                                  "field_versions": {}, **stamps} for i, (h, s) in enumerate(hh)])
    residents, people = [], []
    for i in range(households * 3 // 2):
        h, s = hh[i % households]
        rid = uuid.uuid4()
        dup = people[-1][0] if i % 50 == 49 and people and people[-1][2] == h else None
        residents.append({"id": rid, "household_id": h, "site_id": s, "first_name": "Maryse",
                          "last_name": f"Moreau {i}", "name_key": f"maryse moreau {i}", "phone": "", "email": "",
                          "consent_contact": False, "consent_image": False, "duplicate_of": dup,
                          "field_versions": {}, **stamps})
        people.append((rid, s, h))
    insert(Resident.__table__, residents)
    engagements = []
    for i in range(households * 3 // 10):
        rid, s, _h = people[(i * 7) % len(people)]
        action = action_ids[i % 10]
        if i % 10 < 5:
            action = action_ids[5 + i % 5]  # half on the programme-wide actions
        started = today - timedelta(days=(i * 13) % (WEEKS * 7))
        ended = i % 10 == 9
        engagements.append({"id": uuid.uuid4(), "resident_id": rid, "action_id": action, "site_id": s,
                            "role": "contributor", "status": "ended" if ended else "active", "started_on": started,
                            "ended_on": started + timedelta(days=20) if ended else None,
                            "field_versions": {}, **stamps})
    insert(Engagement.__table__, engagements)
    span = WEEKS * 7 * 86400
    insert(Visit.__table__, [
        {"id": uuid.uuid4(), "household_id": hh[i % households][0], "site_id": hh[i % households][1],
         "resident_id": None, "user_id": staff_ids[i % sites], "client_id": None,
         "visited_at": now - timedelta(seconds=(i * 7919) % span), "received_at": now, "clock_suspect": False,
         "outcome": ("talked", "absent", "refused")[i % 3], "interests": [], "needs": [], "follow_up": False,
         "consent_recontact": False, "note": "", **stamps} for i in range(visits)])
    events = [{"id": uuid.uuid4(), "title": f"Atelier {i}", "kind": "atelier", "description": "",
               "starts_at": now - timedelta(hours=(i * 37) % (WEEKS * 7 * 24)), "place": "",
               "status": "scheduled", **stamps} for i in range(max(1, households // 200))]
    for e in events:
        e["ends_at"] = e["starts_at"] + timedelta(hours=2)
    insert(Event.__table__, events)
    insert(event_sites, [{"event_id": e["id"], "site_id": site_ids[i % sites]} for i, e in enumerate(events)])
    by_site: dict = {}
    for rid, s, _h in people:
        if len(by_site.setdefault(s, [])) < 400:
            by_site[s].append(rid)
    attendances, counts = [], []
    for i, e in enumerate(events):
        s = site_ids[i % sites]
        pool = by_site[s]
        for k in range(min(10, len(pool))):
            attendances.append({"id": uuid.uuid4(), "event_id": e["id"], "resident_id": pool[(i + k * 7) % len(pool)],
                                "site_id": s, "checked_in_at": e["starts_at"], "clock_suspect": False, **stamps})
        for k, cat in enumerate(("adults", "children", "seniors")):
            counts.append({"id": uuid.uuid4(), "event_id": e["id"], "site_id": s, "category": cat, "count": 5 + k,
                           "counted_at": e["starts_at"], "clock_suspect": False, **stamps})
    seen = set()
    attendances = [a for a in attendances if (a["event_id"], a["resident_id"]) not in seen
                   and not seen.add((a["event_id"], a["resident_id"]))]
    insert(Attendance.__table__, attendances)
    insert(HeadCount.__table__, counts)
    return {"head_id": head_id, "households": households, "residents": len(residents),
            "engagements": len(engagements), "visits": visits, "events": len(events),
            "attendances": len(attendances), "head_counts": len(counts)}


def _check(engine, body: dict, sizes: dict) -> None:
    """The answer measured is the right one: its figures equal direct counts (else no figure is reported)."""
    from server.models import Visit

    lo = datetime.fromisoformat(body["from"]).replace(tzinfo=timezone.utc) - timedelta(days=1)
    with engine.connect() as conn:
        visits = conn.execute(sa.select(sa.func.count()).select_from(Visit).where(
            Visit.visited_at >= lo)).scalar_one()
    shown = sum(w["total"] for w in body["visits_weekly"])
    if not (0 < shown <= visits <= sizes["visits"]) or body["engaged"]["counted_residents"] <= 0:
        raise c.BenchError(f"dashboard figures look wrong: {shown} visits shown, {visits} in range, "
                           f"{body['engaged']['counted_residents']} engaged")
    if len(body["engaged_weekly"]) < WEEKS or not body["per_site"] or not body["events"]:
        raise c.BenchError("dashboard answer incomplete")


def run(db: str = "sqlite", households: int = 100_000, visits: int = 300_000, calls: int = 7) -> dict:
    from flask import current_app
    from flask_jwt_extended import create_access_token

    from server.models import User

    with c.environment(db, "dashboard") as env:
        started = time.monotonic()
        sizes = seed(env.engine, households, visits)
        seed_seconds = time.monotonic() - started
        if db == "postgres":
            with env.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
        app = current_app._get_current_object()
        from server.extensions import db as sqla
        token = create_access_token(identity=sqla.session.get(User, sizes["head_id"]))
        sqla.session.remove()
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        captured: list = []

        def capture(_conn, _cursor, statement, parameters, _context, _many):
            captured.append((statement, parameters))

        sa.event.listen(env.engine, "before_cursor_execute", capture)
        resp = client.get("/api/dashboard", headers=headers)  # warm-up, and the statements it is made of
        sa.event.remove(env.engine, "before_cursor_execute", capture)
        if resp.status_code != 200:
            raise c.BenchError(f"dashboard answered {resp.status_code}: {resp.get_data()[:300]!r}")
        body = resp.get_json()
        _check(env.engine, body, sizes)
        statements = [s for s in captured if not s[0].lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK"))]

        def palier(_r):
            t, cpu = time.perf_counter(), time.process_time()
            r = client.get("/api/dashboard", headers=headers)
            seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
            if r.status_code != 200 or r.get_json()["engaged"] != body["engaged"]:
                raise c.BenchError("dashboard changed between calls")
            # This process's CPU time: on SQLite it holds the database work too, and a loaded machine
            # stretches the wall time much more than it.
            return {"seconds": seconds, "cpu_seconds": cpu, "bytes": len(r.get_data())}

        def raw_sql(_r):
            conn = env.engine.raw_connection()
            try:
                cur = conn.cursor()
                t = time.perf_counter()
                rows = 0
                for statement, parameters in statements:
                    cur.execute(statement, parameters)
                    rows += len(cur.fetchall())
                seconds = time.perf_counter() - t
                conn.rollback()
            finally:
                conn.close()
            return {"seconds": seconds, "rows": rows}

        raw = c.interleave(calls, 1800, {"palier": palier, "raw_sql": raw_sql})
    p = [x["seconds"] for x in raw["palier"]]
    q = [x["seconds"] for x in raw["raw_sql"]]
    return {
        "db": db, "sizes": sizes, "seed_seconds": round(seed_seconds, 1), "calls": len(p),
        "statements": len(statements), "answer_bytes": raw["palier"][0]["bytes"],
        "palier_p50_s": c.median(p), "palier_p95_s": _percentile(p, 0.95),
        "palier_cpu_p50_s": c.median([x["cpu_seconds"] for x in raw["palier"]]),
        "raw_sql_p50_s": c.median(q), "raw_sql_p95_s": _percentile(q, 0.95),
        "palier_over_raw_p50": c.median(p) / c.median(q) if c.median(q) else None,
        "budget_p95_s": BUDGET_P95_SECONDS, "within_budget": _percentile(p, 0.95) <= BUDGET_P95_SECONDS,
        "raw": raw,
    }


def table(results: list[dict]) -> str:
    rows = [[r["db"], r["sizes"]["households"], r["sizes"]["visits"], r["sizes"]["engagements"], r["calls"],
             r["statements"], r["palier_p50_s"], r["palier_p95_s"], r["raw_sql_p50_s"], r["raw_sql_p95_s"],
             r["palier_over_raw_p50"], r["palier_cpu_p50_s"], "yes" if r["within_budget"] else "NO"]
            for r in results]
    return c.markdown_table(["db", "households", "visits", "engagements", "calls", "SQL statements",
                             "/api/dashboard p50 s", "p95 s", "raw SQL p50 s", "raw SQL p95 s",
                             "dashboard / raw SQL (p50)", "server process CPU p50 s", "p95 ≤ 1 s"], rows)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--households", type=int, default=100_000)
    p.add_argument("--visits", type=int, default=300_000)
    p.add_argument("--calls", type=int, default=7)
    a = p.parse_args(argv)
    results = [run(db, a.households, a.visits, a.calls) for db in c.dbs(a.db)]
    c.report("dashboard", results, table)


if __name__ == "__main__":
    main()
