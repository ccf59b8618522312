"""Screenshots of the PWA's main screens at phone size into docs/screenshots/ (real app, temp SQLite, Chromium)."""
import tempfile
from pathlib import Path

from flask_migrate import upgrade
from playwright.sync_api import sync_playwright

from server import create_app

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, Dataset, LiveServer
from tests.e2e.helpers import PWA, build_pwa, login, wait_synced

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def main():
    build_pwa()
    url = f"sqlite:///{tempfile.mkdtemp()}/shots.sqlite3"
    schema_app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "screenshots-" * 4})
    with schema_app.app_context():
        upgrade()
    with LiveServer(url, PWA / "dist") as server:
        data = Dataset(server)
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = b.new_context(base_url=server.url, **PHONE).new_page()
            page.goto("/")
            page.screenshot(path=OUT / "login.png")
            login(page)
            wait_synced(page)
            page.screenshot(path=OUT / "sites.png")
            for name, hash_ in [("households", f"#/site/{data.site_id}"), ("household", f"#/hh/{data.households[0]}"),
                                ("visit", f"#/visit/{data.households[0]}"), ("events", "#/events"),
                                ("event", f"#/event/{data.event_id}"), ("progress", "#/progress"), ("sync", "#/sync")]:
                page.goto("/" + hash_)
                page.wait_for_selector(".screen-head h1")
                if name == "visit":
                    page.get_by_text("Échange", exact=True).click()
                page.screenshot(path=OUT / f"{name}.png")
            b.close()


if __name__ == "__main__":
    main()
