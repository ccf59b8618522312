"""The PWA's budgets, side by side in one run in headless Chromium (Debian's) on this machine:
offline reload to a usable screen, saving a visit vs a raw IndexedDB put, applying a 10,000-record pull vs a raw
bulk put, JS+CSS gzipped, and Lighthouse (mobile) on the login page and on each field screen of a logged-in phone
(installed on first use under ~/.cache/palier-bench, or $PALIER_BENCH_TOOLS; never in pwa/node_modules).

    .venv/bin/python -m bench.pwa_budgets [--runs 9] [--no-lighthouse | --only-lighthouse]

The app's own modules (pwa/src/outbox.js, sync/client.js, db.js) are bundled by esbuild for the in-page timings,
so the code measured is the code shipped; the raw baselines use IndexedDB directly in the same page.
"""
import argparse
import contextlib
import gzip
import http.server
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from flask_migrate import upgrade
from playwright.sync_api import sync_playwright

from server import create_app
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, Dataset, LiveServer
from tests.e2e.helpers import PWA, build_pwa, login, wait_controlled, wait_synced

# Exposes the app's storage and sync functions to the page for timing (bundled, never shipped).
ENTRY = """
import { openDB, unwrap } from 'idb';
import { openUserDb, dropUserDb } from './db.js';
import { record, uuid } from './outbox.js';
import { applyPage, reconcile } from './sync/client.js';
globalThis.PalierBench = { openDB, unwrap, openUserDb, dropUserDb, record, uuid, applyPage, reconcile };
"""

# Records when the first usable screen ("Mes sites" with its list) appears, from the navigation start.
USABLE_PROBE = """
new MutationObserver((_, obs) => {
  const h = document.querySelector('main h1');
  if (h && h.textContent.includes('Mes sites') && document.querySelector('a[href^="#/site/"]')) {
    window.__usable = performance.now(); obs.disconnect();
  }
}).observe(document, { childList: true, subtree: true });
"""

TIMINGS = """async ({ saves, pullSize, pullRuns }) => {
  const B = globalThis.PalierBench;
  const tag = `${Date.now()}-${Math.random()}`;
  const p95 = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)]; };
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const hh = { id: B.uuid(), site_id: B.uuid(), building: 'A', staircase: '1', floor: '2', door: '21', landlord_ref: 'X', seq: 1 };
  const visit = () => ({ id: B.uuid(), household_id: hh.id, visited_at: new Date().toISOString(), outcome: 'talked',
    interests: [], needs: ['isolement'], follow_up: false, consent_recontact: true, resident_id: null, note: 'RAS' });

  // Saving a visit (outbox entry + local copy + mark + counter, one transaction) vs a raw put of the same data
  // volume: one object holding the visit and its outbox entry (the mark and counter, ~60 bytes, are not added).
  // The raw put of the visit alone is kept as a second baseline, so the change of baseline is visible.
  const app = await B.openUserDb(`bench-app-${tag}`);
  await app.put('household', hh);
  await app.put('meta', B.uuid(), 'client_id');
  const raw = await B.openDB(`bench-raw-${tag}`, 1, { upgrade(db) { db.createObjectStore('visit', { keyPath: 'id' }); } });
  const app2 = await B.openUserDb(`bench-app2-${tag}`);
  await app2.put('household', hh);
  const save = [], saveRead = [], put = [], putRecord = [];
  for (let i = 0; i < saves; i += 1) {  // interleaved, so all meet the same browser state
    // As the visit screen saves: the household on screen is passed, so the save reads nothing first.
    let t = performance.now();
    await B.record(app, 'visit.create', visit(), { parent: hh });
    save.push(performance.now() - t);
    // As a screen that does not pass the parent: one read round trip (the household, the last number) first.
    t = performance.now();
    await B.record(app2, 'visit.create', visit());
    saveRead.push(performance.now() - t);
    const v = visit();
    const same = { ...v, site_id: hh.site_id, _n: i + 1, entry: { n: i + 1, op: 'visit.create', at: v.visited_at, args: v } };
    t = performance.now();
    let tx = raw.transaction('visit', 'readwrite'); tx.store.put(same); await tx.done;
    put.push(performance.now() - t);
    const w = visit();
    t = performance.now();
    tx = raw.transaction('visit', 'readwrite'); tx.store.put(w); await tx.done;
    putRecord.push(performance.now() - t);
  }

  // Applying a pull of pullSize residents (applyPage + reconcile, as pull() does) vs one raw bulk put of the same
  // records as objects: plain IndexedDB (no wrapper, no promise per request), one transaction on one store without
  // an index, every put issued at once, only the commit awaited. The app's resident store has an index
  // (household_id) to keep up as well.
  // The two sides alternate which goes first, and the ratio is also taken run by run (same moment of the machine).
  const changes = Array.from({ length: pullSize }, (_, i) => ({ entity: 'resident', id: B.uuid(), seq: i + 1, deleted: false,
    data: { household_id: hh.id, site_id: hh.site_id, first_name: `Prénom${i}`, last_name: `Nom${i}`, phone: '',
            email: '', consent_contact: false, consent_image: false, duplicate_of: null } }));
  // The page as the server answers the PWA (format 2: rows, the field names once); applyPage expands it.
  const FIELDS = Object.keys(changes[0].data);
  const page = { format: 2, fields: { resident: FIELDS }, cursor: 'c1', has_more: false, reset: false, last_applied: 0,
    changes: changes.map((c) => ['resident', c.id, c.seq, FIELDS.map((f) => c.data[f])]) };
  const apply = [], bulk = [], pulled = [], bulked = [], pullRatios = [];
  const sides = {
    async app(r) {
      const db = await B.openUserDb(`bench-pull-${tag}-${r}`);
      const t = performance.now();
      await B.applyPage(db, page);
      await B.reconcile(db, 0);
      apply.push(performance.now() - t);
      pulled.push(await db.count('resident'));
      await B.dropUserDb(db, `bench-pull-${tag}-${r}`);
    },
    async raw(r) {
      const rdb = await B.openDB(`bench-bulk-${tag}-${r}`, 1, { upgrade(d) { d.createObjectStore('resident', { keyPath: 'id' }); } });
      const t = performance.now();
      const tx = B.unwrap(rdb).transaction('resident', 'readwrite');
      const committed = new Promise((ok, ko) => { tx.oncomplete = ok; tx.onabort = () => ko(tx.error); });
      const store = tx.objectStore('resident');
      for (const c of changes) store.put({ ...c.data, id: c.id, seq: c.seq });
      await committed;
      bulk.push(performance.now() - t);
      bulked.push(await rdb.count('resident'));
      rdb.close();
    },
  };
  for (let r = 0; r < pullRuns; r += 1) {
    for (const side of r % 2 ? ['raw', 'app'] : ['app', 'raw']) await sides[side](r);
    pullRatios.push(bulk[r] / apply[r]);
  }
  // What was really written, for the smoke test: each save's outbox entry and visit, each pull's records.
  const stored = { saved_outbox: await app.count('outbox'), saved_visits: await app.count('visit'),
    saved_with_read_outbox: await app2.count('outbox'), raw_puts: await raw.count('visit'), pulled, bulked };
  app.close(); app2.close(); raw.close();
  return { stored, isolated: globalThis.crossOriginIsolated, save_p95: p95(save), save_median: median(save), put_p95: p95(put), put_median: median(put),
           put_record_only_p95: p95(putRecord), put_record_only_median: median(putRecord),
           save_with_read_p95: p95(saveRead), save_with_read_median: median(saveRead),
           apply_median: median(apply), bulk_median: median(bulk), pull_speed_per_run: pullRatios,
           saves, pullSize, pullRuns };
}"""


def bench_bundle() -> str:
    script = ("require('esbuild').build({stdin:{contents:process.argv[1],resolveDir:process.argv[2]},bundle:true,"
              "format:'iife',write:false,minify:true,logLevel:'error'})"
              ".then(r=>process.stdout.write(r.outputFiles[0].text))")
    out = subprocess.run(["node", "-e", script, ENTRY, str(PWA / "src")], cwd=PWA, check=True, capture_output=True,
                         text=True)
    return out.stdout


class IsolatedOrigin:
    """A loopback page served with COOP/COEP, so that it is cross-origin isolated (finer timers)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<!doctype html><title>bench</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    def __enter__(self):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self.Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_port}/"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def shipped_sizes(dist: Path) -> dict:
    v = json.loads((dist / "version.json").read_text())
    size = {k: len(gzip.compress((dist / v[k].lstrip("/")).read_bytes(), 9)) for k in ("js", "css")}
    return {"js_gz": size["js"], "css_gz": size["css"]}


# Lighthouse is a benchmark tool, not an app dependency: installed on demand in a directory of its own, never in
# pwa/node_modules (the app's lock file describes that tree, and `npm ci` or another install there would prune it).
TOOLS = Path(os.environ.get("PALIER_BENCH_TOOLS") or Path.home() / ".cache" / "palier-bench")
LIGHTHOUSE = "lighthouse@^12.8.2"

# The field screens behind the login, audited as a logged-in phone opens them (hash routes of pwa/src/ui/app.js).
SCREENS = {"Mes sites": "/#/", "site (logements)": "/#/site/{site}", "logement": "/#/hh/{household}",
           "visite": "/#/visit/{household}", "agenda": "/#/events", "événement (pointage)": "/#/event/{event}",
           "engagement": "/#/engage/{resident}", "progrès": "/#/progress", "synchro": "/#/sync"}


def lighthouse_cli() -> Path | str:
    """The Lighthouse CLI under TOOLS, installed there on first use; a plain reason string when it cannot be."""
    cli = TOOLS / "node_modules" / ".bin" / "lighthouse"
    if not cli.exists():
        TOOLS.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["npm", "install", "--prefix", str(TOOLS), "--no-audit", "--no-fund", LIGHTHOUSE],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or not cli.exists():
            return f"not run: lighthouse could not be installed: {proc.stderr.strip()[-300:]}"
    return cli


CATEGORIES = ("performance", "accessibility", "best-practices")


def lighthouse(url: str, port: int | None = None, categories: tuple[str, ...] = CATEGORIES) -> dict | str:
    """Lighthouse mobile (default form factor) with the system Chromium; a plain reason string when it cannot run.
    With `port`, it audits in the Chromium already listening there and keeps its storage (a logged-in phone's
    session, IndexedDB and service worker); otherwise in a fresh profile (a signed-out phone)."""
    cli = lighthouse_cli()
    if isinstance(cli, str):
        return cli
    out = Path(tempfile.mkdtemp()) / "lh.json"
    env = {**os.environ, "CHROME_PATH": CHROMIUM}
    browser = ([f"--port={port}", "--disable-storage-reset"] if port else
               ["--chrome-flags=--headless=new --no-sandbox --disable-gpu"])
    proc = subprocess.run(
        [str(cli), url, "--output=json", f"--output-path={out}", "--quiet",
         f"--only-categories={','.join(categories)}", *browser], env=env, capture_output=True,
        text=True, timeout=300)
    if proc.returncode != 0 or not out.exists():
        return f"not run: lighthouse exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-300:]}"
    report = json.loads(out.read_text())
    shutil.rmtree(out.parent, ignore_errors=True)
    scores = {k: round(c["score"] * 100) for k, c in report["categories"].items() if c.get("score") is not None}
    serious = [a["id"] for a in report["audits"].values()
               if a.get("details", {}).get("debugData", {}).get("impact") in ("serious", "critical")
               and a.get("score") == 0]
    below = [a["id"] for a in report["audits"].values()
             if a.get("score") is not None and a["score"] < 0.9 and a.get("scoreDisplayMode") in ("binary", "numeric")]
    metrics = {k: round(report["audits"][k]["numericValue"], 3 if k == "cumulative-layout-shift" else None)
               for k in ("first-contentful-paint", "largest-contentful-paint", "total-blocking-time",
                         "cumulative-layout-shift") if k in report["audits"]}
    return {**scores, "axe_serious": serious, "audits_below_90": below, "metrics": metrics,
            "lighthouse": report.get("lighthouseVersion")}


@contextlib.contextmanager
def devtools_chromium(profile: Path):
    """A headless system Chromium with a profile of its own, listening on a DevTools port (yielded)."""
    proc = subprocess.Popen([CHROMIUM, "--headless=new", *CHROMIUM_ARGS, "--remote-debugging-port=0",
                             f"--user-data-dir={profile}", "about:blank"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.exists() and active.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Chromium did not open its DevTools port (exit {proc.poll()})")
            time.sleep(0.1)
        yield int(active.read_text().split()[0])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def renderers(cdp) -> set[int]:
    return {p["id"] for p in cdp.send("SystemInfo.getProcessInfo")["processInfo"] if p["type"] == "renderer"}


def stop_service_workers(port: int, wait_s: float = 5.0) -> None:
    """Stops the service workers of the Chromium on `port` and waits (at most `wait_s`) for a renderer process to
    end: with no page of the app open, its process goes with its worker, and the next visit starts in a new one,
    the worker started by the visit, as when a phone opens the app from its home screen. The commands go through
    an about:blank page, which has a process of its own."""
    with sync_playwright() as pw:
        b = pw.chromium.connect_over_cdp(f"http://127.0.0.1:{port}")
        browser_cdp = b.new_browser_cdp_session()
        before = renderers(browser_cdp)
        page = b.contexts[0].new_page()
        page_cdp = b.contexts[0].new_cdp_session(page)
        page_cdp.send("ServiceWorker.enable")
        page_cdp.send("ServiceWorker.stopAllWorkers")
        page.close()
        deadline = time.monotonic() + wait_s
        while before <= renderers(browser_cdp) and time.monotonic() < deadline:
            time.sleep(0.1)
        b.close()


def lighthouse_screens(base_url: str, data: Dataset) -> dict:
    """Lighthouse on each field screen behind the login: a phone logs in and syncs in a Chromium of its own, which
    Lighthouse then drives on the same DevTools port. Each screen is first checked to show its own heading, not
    the login form, so that a score is never the login page's under another name.

    Performance is audited on its own, each screen in a new renderer process (stop_service_workers): when
    Lighthouse attaches to a page its DevTools agents walk the whole JavaScript heap of the page's process (V8's
    heap iterator, a deoptimization), and a process kept from the screen before still held the tools' own scripts
    (axe-core from the accessibility audit, Playwright's injected script from the login), 70-155 ms of work before
    the page is even committed that the 4x CPU slowdown turned into 200-600 ms of blocking time counted against
    the screen. Accessibility and best practices are audited in a second pass."""
    ids = {"site": data.site_id, "household": data.households[0], "event": data.event_id,
           "resident": data.residents[0]}
    with tempfile.TemporaryDirectory() as profile, devtools_chromium(Path(profile)) as port:
        headings = {}
        with sync_playwright() as pw:
            b = pw.chromium.connect_over_cdp(f"http://127.0.0.1:{port}")
            page = b.contexts[0].new_page()
            page.goto(base_url + "/")
            login(page)
            wait_synced(page)
            wait_controlled(page)
            for name, path in SCREENS.items():
                page.goto(base_url + path.format(**ids))
                page.reload()
                page.locator("main h1").first.wait_for()
                if page.locator("input[type=password]").count():
                    raise RuntimeError(f"{name}: the login form is shown, not the screen")
                headings[name] = page.locator("main h1").first.inner_text()
            page.close()
            b.close()  # connected over CDP: disconnects, the browser and its profile stay for Lighthouse
        perf = {name: audit(base_url + path.format(**ids), port=port, categories=("performance",),
                            prepare=lambda: stop_service_workers(port))
                for name, path in SCREENS.items()}
        return {name: {"url": path.format(**ids), "heading": headings[name],
                       **_merged(perf[name], audit(base_url + path.format(**ids), port=port,
                                                   categories=("accessibility", "best-practices")))}
                for name, path in SCREENS.items()}


def audit(url: str, port: int | None = None, categories: tuple[str, ...] = CATEGORIES, prepare=None,
          attempts: int = 3) -> dict:
    """lighthouse(), run again (at most `attempts` in all) when Lighthouse itself fails, never for a low score: on
    this machine it sometimes cannot record the trace (NO_NAVSTART), in a fresh profile as well. Its failures are
    kept in the result (failed_before)."""
    failed = []
    while True:
        if prepare:
            prepare()
        result = lighthouse(url, port=port, categories=categories)
        if isinstance(result, dict) or len(failed) + 1 >= attempts:
            break
        failed.append(result)
    return {**_as_dict(result), **({"failed_before": failed} if failed else {})}


def _as_dict(result: dict | str) -> dict:
    return result if isinstance(result, dict) else {"error": result}


def _merged(perf: dict, other: dict) -> dict:
    """One screen's figures from its performance pass and its accessibility and best-practices pass."""
    merged = {**{k: other[k] for k in ("accessibility", "best-practices", "axe_serious") if k in other},
              **{k: perf[k] for k in ("performance", "metrics", "lighthouse") if k in perf},
              "audits_below_90": perf.get("audits_below_90", []) + other.get("audits_below_90", [])}
    if perf.get("failed_before") or other.get("failed_before"):
        merged["failed_before"] = perf.get("failed_before", []) + other.get("failed_before", [])
    errors = [r["error"] for r in (perf, other) if "error" in r]
    return {**merged, "error": "; ".join(errors)} if errors else merged


def timings(base_url: str, bundle: str, runs: int, saves: int, pull_size: int, pull_runs: int) -> dict:
    """Offline reloads of the logged-in app, then the storage timings, in one headless Chromium."""
    results = {}
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ctx = b.new_context(base_url=base_url, bypass_csp=True, **PHONE)
        ctx.add_init_script(USABLE_PROBE)
        page = ctx.new_page()
        page.goto("/")
        login(page)
        wait_synced(page)
        wait_controlled(page)
        ctx.set_offline(True)
        reloads = []
        for _ in range(runs + 1):  # the first one warms the caches and is not counted
            page.goto("/#/")
            page.reload()
            page.wait_for_function("() => window.__usable !== undefined", timeout=30_000)
            reloads.append(page.evaluate("window.__usable"))
        results["offline_reload_ms"] = {"median": statistics.median(reloads[1:]), "max": max(reloads[1:]),
                                        "runs": runs}
        # The storage timings need no app server: a cross-origin-isolated page of the same browser, where
        # performance.now() is precise to 5 µs rather than 100 µs (a save is about 1 ms).
        with IsolatedOrigin() as origin:
            spage = b.new_context(**PHONE).new_page()
            spage.goto(origin)
            spage.add_script_tag(content=bundle)
            results["storage"] = spage.evaluate(TIMINGS, {"saves": saves, "pullSize": pull_size,
                                                          "pullRuns": pull_runs})
        results["chromium"] = b.version
        b.close()
    return results


def run(runs: int = 9, saves: int = 1000, pull_size: int = 10_000, pull_runs: int = 5,
        with_lighthouse: bool = True, with_timings: bool = True) -> dict:
    """Builds the app, measures every budget side by side, and returns the figures with their ratios."""
    build_pwa()
    dist = PWA / "dist"
    url = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    schema_app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-budgets-" * 4})
    with schema_app.app_context():
        upgrade()
    results = {"sizes": shipped_sizes(dist)}
    with LiveServer(url, dist) as server:
        data = Dataset(server)
        if with_timings:
            results.update(timings(server.url, bench_bundle(), runs, saves, pull_size, pull_runs))
        results["lighthouse"] = audit(server.url + "/") if with_lighthouse else "not run (--no-lighthouse)"
        if with_lighthouse:
            results["lighthouse_screens"] = lighthouse_screens(server.url, data)
    if not with_timings:
        return results
    s = results["storage"]
    results["ratios"] = {"save_p95_vs_put_p95": s["save_p95"] / s["put_p95"],
                         "save_median_vs_put_median": s["save_median"] / s["put_median"],
                         "save_p95_vs_record_only_put_p95": s["save_p95"] / s["put_record_only_p95"],
                         "save_with_read_p95_vs_put_p95": s["save_with_read_p95"] / s["put_p95"],
                         "pull_speed_vs_bulk": s["bulk_median"] / s["apply_median"],
                         "pull_speed_vs_bulk_median_of_runs": statistics.median(s["pull_speed_per_run"])}
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9, help="offline reloads measured (median)")
    ap.add_argument("--saves", type=int, default=1000)
    ap.add_argument("--pull-runs", type=int, default=5)
    ap.add_argument("--pull-size", type=int, default=10_000)
    ap.add_argument("--no-lighthouse", action="store_true", help="skip Lighthouse (it is slow and measured apart)")
    ap.add_argument("--only-lighthouse", action="store_true", help="Lighthouse alone: the login page and each screen")
    args = ap.parse_args()
    results = run(runs=args.runs, saves=args.saves, pull_size=args.pull_size, pull_runs=args.pull_runs,
                  with_lighthouse=not args.no_lighthouse, with_timings=not args.only_lighthouse)
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
