"""E2E fixtures: the real app on a loopback port (werkzeug in a thread) over the session's throwaway database,
pwa/dist built, and Chromium (Debian's, never downloaded) driven by Playwright. A missing browser FAILS."""
import os
import subprocess
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from server import create_app
from server.extensions import db
from tests.conftest import Factory, _wipe

from .helpers import PWA, build_pwa

CHROMIUM = os.environ.get("PALIER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
         "locale": "fr-FR", "timezone_id": "Europe/Paris"}


def _stale(dist: Path) -> bool:
    index = dist / "index.html"
    if not index.exists():
        return True
    built = index.stat().st_mtime
    sources = [PWA / "build.mjs", PWA / "package.json", *(PWA / "src").rglob("*")]
    return any(p.stat().st_mtime > built for p in sources if p.is_file())


@pytest.fixture(scope="session")
def pwa_dist(tmp_path_factory) -> Path:
    """pwa/dist, built when missing or older than its sources."""
    if not (PWA / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PWA, check=True, capture_output=True)
    if _stale(PWA / "dist"):
        build_pwa()
    return PWA / "dist"


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: the e2e tests need Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


class LiveServer:
    def __init__(self, database_url: str, dist: Path, **config):
        self.app = create_app({
            "SQLALCHEMY_DATABASE_URI": database_url, "TESTING": False, "PWA_DIST": str(dist),
            "SECRET_KEY": "e2e-secret-key-e2e-secret-key-0123456789", "JWT_COOKIE_SECURE": False,
            "JOBS_IMMEDIATE": True, **config})
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        with self.app.app_context():
            _wipe()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()

    def query(self, fn):
        with self.app.app_context():
            try:
                return fn(db.session)
            finally:
                db.session.remove()


class Dataset:
    """One site with three households (two residents each), one action, one event today, a staff user."""

    def __init__(self, server: LiveServer, role: str = "staff"):
        with server.app.app_context():
            make = Factory(server.app)
            from server.database import next_seq
            from server.models import Event

            make.programme()
            site = make.site("Résidence Vauban", code="vauban")
            self.site_id = str(site.id)
            self.households, self.residents = [], []
            for i, names in enumerate([("Maryse", "Moreau"), ("Karim", "Benali"), ("Lucie", "Dubois")]):
                hh = make.household(site, building="Bât. A", staircase="1", door=f"1{i}")
                self.households.append(str(hh.id))
                self.residents.append(str(make.resident(hh, *names).id))
                make.resident(hh, "Paul", f"Voisin{i}")
            self.action_id = str(make.action("Portage de pain et d'eau", site=site).id)
            now = datetime.now(timezone.utc)
            ev = Event(title="Troc de vêtements", kind="atelier", place="Local commun", starts_at=now,
                       ends_at=now + timedelta(hours=2), seq=next_seq(db.session))
            ev.sites = [site]
            db.session.add(ev)
            db.session.commit()
            self.event_id = str(ev.id)
            self.users = {}
            for name in ("staff", "staff2"):
                user = make.user(role, sites=[site], email=f"{name}@palier.test", display_name=name.title())
                self.users[name] = str(user.id)
            head = make.user("head_office", email="siege@palier.test", display_name="Siège")
            self.users["head"] = str(head.id)


@pytest.fixture
def live_config() -> dict:
    """Extra app config of the live server; a test module overrides this fixture (e.g. short token lifetimes)."""
    return {}


@pytest.fixture
def live_dist(pwa_dist) -> Path:
    """The dist the live server serves; a test module overrides it to serve a copy it rebuilds."""
    return pwa_dist


@pytest.fixture
def live(_schema, live_dist, live_config):
    with LiveServer(_schema, live_dist, **live_config) as server:
        server.data = Dataset(server)
        yield server


@pytest.fixture
def phone(browser, live):
    """A new phone (browser context) at phone size, on the live server."""
    contexts = []

    def _new(**kw):
        ctx = browser.new_context(base_url=live.url, **{**PHONE, **kw})
        contexts.append(ctx)
        return ctx

    yield _new
    for ctx in contexts:
        ctx.close()
