"""The sync benchmarks run end to end at tiny sizes (Palier under gunicorn and the Core limit; Kinto stays out of
the test suite): every record they measure is really stored or pulled. Correctness only, never timing."""
import json
import os
import subprocess
import sys

from bench import sync_pull, sync_push

KIND = "postgres" if (os.environ.get("DATABASE_URL") or "").startswith("postgres") else "sqlite"


def test_push_stores_every_visit_once_and_replays_store_nothing():
    result = sync_push.run(db=KIND, visits=120, batch=40, rounds=1, kinto=False, households=10)

    palier, core = result["raw"]["palier"], result["raw"]["core"]
    # records are counted in the server's visits table, after the pushes and again after the replays
    assert [r["records"] for r in palier] == [120]
    assert [r["records"] for r in core] == [120]  # with their pull texts, as Palier stores them (checked there)
    assert [r["records"] for r in result["raw"]["core_bare"]] == [120]
    assert len(palier[0]["batch_seconds"]) == 3 and len(palier[0]["replay_batch_seconds"]) == 3
    assert result["raw"]["kinto"] == [] and result["palier_over_kinto"] is None
    assert result["replay_speedup"] > 0


def test_pull_returns_every_record_of_the_site_across_pages():
    result = sync_pull.run(db=KIND, households=10, residents_per_household=2, visits=30, limit=25, rounds=1,
                           kinto=False)

    (palier,) = result["raw"]["palier"]  # as the PWA pulls: pages streamed, up to 20 an answer
    assert palier["records"] == 10 + 20 + 30
    assert palier["pages"] >= 3 and palier["answers"] == 1  # 60 records and more at 25 a page, in one answer
    assert palier["wire_bytes"] > 0
    (paged,) = result["raw"]["palier_paged"]  # a request a page: the cursor is followed
    assert paged["records"] == palier["records"] and paged["pages"] == palier["pages"]
    (format_1,) = result["raw"]["palier_format_1"]  # the same records, as change objects: more bytes
    assert format_1["records"] == palier["records"] and format_1["wire_bytes"] > paged["wire_bytes"]
    assert result["kinto_records_per_s"] is None



def test_pull_parts_times_each_part_of_every_page_and_puts_the_code_back():
    from bench import pull_parts
    from server.sync_store import SqlStore
    before = SqlStore.pull_page
    result = pull_parts.run(db=KIND, households=10, visits=30, limit=25, pulls=2)
    assert result["pages"] >= 6  # 60 records and more at 25 a page, twice
    parts = result["ms_per_page"]
    assert {"request", "_page", "pull_page", "read_device", "_token_user"} <= set(parts)
    assert parts["request"] >= parts["_page"] >= parts["pull_page"] > 0
    assert SqlStore.pull_page is before


def test_push_parts_times_each_part_of_every_batch_and_puts_the_code_back():
    import gc

    from bench import push_parts
    from server.sync_store import SqlStore
    before, thresholds = SqlStore.load, gc.get_threshold()
    result = push_parts.run(db=KIND, households=10, visits=60, batch=20, rounds=2)
    assert result["batches"] == 6  # 60 visits at 20 a batch, twice (after a warm-up run)
    parts = result["ms_per_batch"]
    assert {"request", "run", "load", "write", "insert_many", "parse_push", "commit", "_token_user"} <= set(parts)
    assert parts["request"] >= parts["run"] >= parts["load"] > 0
    assert len(result["core_ms_per_batch"]) == 2 and all(ms > 0 for ms in result["core_ms_per_batch"])
    assert SqlStore.load is before and gc.get_threshold() == thresholds


def test_push_fanout_delivers_every_reminder_once_for_each_sender():
    from bench import push_fanout
    result = push_fanout.run(n=40, threads=3, batch=16, postgres=KIND == "postgres")

    # run() raises BenchError unless the push service counted exactly n arrivals after each sender
    assert [(r["sender"], r["threads"]) for r in result["rows"]] == [
        ("raw", 1), ("palier", 1), ("raw", 3), ("palier", 3)]
    assert all(r["rate"] > 0 and r["cpu_us"] > 0 for r in result["rows"])
    assert set(result["ratios"]) == {1, 3}


def test_dashboard_bench_measures_a_checked_answer_and_its_own_sql():
    from bench import dashboard
    result = dashboard.run(db=KIND, households=400, visits=1200, calls=2)

    # run() raises BenchError unless the answer's visits and engaged figures agree with direct counts
    assert result["sizes"]["visits"] == 1200 and result["sizes"]["engagements"] == 120
    assert result["calls"] == 2 and len(result["raw"]["raw_sql"]) == 2
    assert result["statements"] >= 5  # the captured aggregates, replayed: not an empty peer
    assert all(r["rows"] > 26 for r in result["raw"]["raw_sql"])  # at least the 26 weeks came back
    assert result["palier_p95_s"] >= result["palier_p50_s"] > 0


def test_pwa_budgets_bench_really_saves_and_pulls_in_chromium():
    # In its own process: Playwright's sync API cannot start while the e2e tests' browser runs in this one.
    proc = subprocess.run([sys.executable, "-m", "bench.pwa_budgets", "--runs", "1", "--saves", "12", "--pull-size",
                           "40", "--pull-runs", "1", "--no-lighthouse"], capture_output=True, text=True, timeout=280,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)

    s = result["storage"]
    # every timed save left its outbox entry and its visit; every timed pull its records: nothing is a no-op
    assert s["stored"] == {"saved_outbox": 12, "saved_visits": 12, "saved_with_read_outbox": 12, "raw_puts": 24,
                           "pulled": [40], "bulked": [40]}
    assert s["isolated"] is True  # the fine timers the figures rely on
    assert result["offline_reload_ms"]["runs"] == 1 and result["offline_reload_ms"]["median"] > 0
    assert result["sizes"]["js_gz"] > 0 and set(result["ratios"]) >= {"save_p95_vs_put_p95", "pull_speed_vs_bulk"}


def test_load_run_stores_every_visit_once_with_several_workers():
    from bench import load_sync

    result = load_sync.run(db=KIND, devices=5, workers=2, threads=2, batches=2, size=5, households=10)

    # run() raises on any 5xx, connection error, wrong answer or wrong count; the figures are what it counted
    assert result["errors"] == []
    assert result["visits_stored"] == result["visits_expected"] == 5 * 2 * 5
    assert result["push_requests"] == 5 * 2 * 2  # each batch sent twice, the second answered as replayed
    assert result["pull_requests"] >= 5 and result["pulled_changes_min"] >= 10 + 20 + 3 + 1
