"""Helpers of the e2e tests: build the app, log in, wait for the sync, read the outbox from IndexedDB."""
import os
import subprocess
import time
from pathlib import Path

PWA = Path(__file__).resolve().parents[2] / "pwa"
PASSWORD = "motdepasse-solide"


def build_pwa(out: Path | None = None, version: str | None = None) -> Path:
    env = dict(os.environ)
    if version:
        env["PALIER_APP_VERSION"] = version
    args = ["node", "build.mjs"] + ([str(out)] if out else [])
    subprocess.run(args, cwd=PWA, env=env, check=True, capture_output=True)
    return out or PWA / "dist"


def login(page, email="staff@palier.test", password=PASSWORD):
    page.get_by_label("Courriel").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()


def wait_synced(page, pending=0, timeout=30_000):
    """Waits until the status bar shows `pending` waiting and at least one successful sync."""
    page.wait_for_function(
        """(n) => { const el = document.querySelector('[data-t=pending]');
                    return el && el.textContent.trim() === `${n} en attente`
                      && !document.querySelector('.status').textContent.includes('jamais')
                      && !document.querySelector('.status.bad'); }""", arg=pending, timeout=timeout)


def wait_pending(page, pending, timeout=30_000):
    """Waits until the status bar shows `pending` mutations waiting (offline: errors are expected)."""
    page.wait_for_function(
        """(n) => { const el = document.querySelector('[data-t=pending]');
                    return el && el.textContent.trim() === `${n} en attente`; }""", arg=pending, timeout=timeout)


def wait_controlled(page):
    # A function, not an expression: Playwright polls an expression with eval, which the app's CSP refuses.
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)


def start_phone(phone, email="staff@palier.test"):
    """A new phone logged in online, its first sync done and the service worker in control: ready to go offline."""
    ctx = phone()
    page = ctx.new_page()
    page.goto("/")
    login(page, email=email)
    page.get_by_role("link", name="Résidence Vauban").wait_for()
    wait_synced(page)
    wait_controlled(page)
    return ctx, page


def outbox_count(page) -> int:
    """Reads the outbox straight from IndexedDB (not from the UI) for the logged-in user."""
    return page.evaluate("""async () => {
        const open = (name) => new Promise((ok, ko) => { const r = indexedDB.open(name); r.onsuccess = () => ok(r.result); r.onerror = ko; });
        const dev = await open('palier-device');
        const uid = await new Promise((ok) => { const r = dev.transaction('kv').objectStore('kv').get('current_user'); r.onsuccess = () => ok(r.result); });
        dev.close();
        const db = await open(`palier-u-${uid}`);
        const n = await new Promise((ok) => { const r = db.transaction('outbox').objectStore('outbox').count(); r.onsuccess = () => ok(r.result); });
        db.close();
        return n;
    }""")


_OPEN_USER_DB = """const open = (name) => new Promise((ok, ko) => { const r = indexedDB.open(name); r.onsuccess = () => ok(r.result); r.onerror = ko; });
        const dev = await open('palier-device');
        const uid = await new Promise((ok) => { const r = dev.transaction('kv').objectStore('kv').get('current_user'); r.onsuccess = () => ok(r.result); });
        dev.close();
        const db = await open(`palier-u-${uid}`);"""


def idb_all(page, store: str) -> list:
    """Every record of one store of the logged-in user's IndexedDB (read straight, not through the UI)."""
    return page.evaluate("""async (store) => { %s
        const rows = await new Promise((ok) => { const r = db.transaction(store).objectStore(store).getAll(); r.onsuccess = () => ok(r.result); });
        db.close();
        return rows; }""" % _OPEN_USER_DB, store)


def idb_meta(page, key: str):
    return page.evaluate("""async (key) => { %s
        const v = await new Promise((ok) => { const r = db.transaction('meta').objectStore('meta').get(key); r.onsuccess = () => ok(r.result); });
        db.close();
        return v ?? null; }""" % _OPEN_USER_DB, key)


def open_household(page, door: str, site="Résidence Vauban"):
    page.get_by_role("link", name="Sites").click()
    page.get_by_role("link", name=site).click()
    page.get_by_role("link", name=f"Porte {door}").click()
    page.get_by_role("heading", name="Habitants").wait_for()


def sync_now(page, timeout_s=30):
    """Presses the sync button and waits until a NEW successful sync is recorded (meta last_sync changes)."""
    before = idb_meta(page, "last_sync")
    page.get_by_role("button", name="Synchroniser", exact=True).click()
    deadline = time.monotonic() + timeout_s
    while idb_meta(page, "last_sync") == before:
        if time.monotonic() > deadline:
            raise AssertionError("no new successful sync after pressing Synchroniser")
        page.wait_for_timeout(100)
    wait_synced(page, pending=0)
