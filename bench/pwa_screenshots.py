"""Screenshots of the PWA's main screens at phone size, and of the head-office app (/bureau/) at desktop size, into
docs/screenshots/ (real app, temp SQLite, Chromium)."""
import random
import tempfile
import uuid
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

from flask_migrate import upgrade
from playwright.sync_api import sync_playwright

from server import create_app

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, Dataset, LiveServer
from tests.conftest import Factory
from tests.e2e.helpers import PWA, build_pwa, login, wait_synced

DESKTOP = {"viewport": {"width": 1440, "height": 900}, "locale": "fr-FR", "timezone_id": "Europe/Paris"}

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
            office_demo(server, data)
            page = b.new_context(base_url=server.url, **DESKTOP).new_page()
            page.goto("/bureau/")
            login(page, email="siege@palier.test")
            page.wait_for_selector(".chart canvas")
            page.screenshot(path=OUT / "office-dashboard.png", full_page=True)
            for name, hash_ in [("office-visits", "#/lists/visits"), ("office-team", "#/team")]:
                page.goto("/bureau/" + hash_)
                page.wait_for_selector("table.grid tbody tr")
                page.screenshot(path=OUT / f"{name}.png")
            b.close()


def office_demo(server, data, weeks=20, seed=7):
    """Half a year of field work on three sites, so the head-office screens show real shapes: engagements starting
    week after week, visits by outcome, a phone that has not synced for days. Seeded: the same pictures each run."""
    from server.database import next_seq
    from server.extensions import db
    from server.models import Device, Site, User, Visit

    rnd = random.Random(seed)
    with server.app.app_context():
        make = Factory(server.app)
        today = datetime.now(timezone.utc).date()
        sites = [db.session.get(Site, uuid.UUID(data.site_id)),
                 make.site("Quartier du Chemin Vert", code="chemin-vert"), make.site("Résidence Les Tilleuls", code="tilleuls")]
        actions = [make.action(name, code=code) for name, code in
                   [("Jardin partagé", "jardin"), ("Atelier numérique", "numerique"), ("Repair café", "repair")]]
        staff = db.session.get(User, uuid.UUID(data.users["staff"]))
        firsts = ["Nadia", "Jean", "Fatou", "Louis", "Inès", "Marc", "Yasmine", "Paul", "Chantal", "Karim", "Léa", "Hugo"]
        lasts = ["Haddad", "Lefebvre", "Diallo", "Martin", "Roussel", "Benoît", "Mercier", "Caron", "Dupont", "Lemaire"]
        for i in range(180):
            site = sites[i % 3]
            hh = make.household(site, building=f"Bât. {'ABC'[i % 3]}", door=str(100 + i))
            resident = make.resident(hh, rnd.choice(firsts), rnd.choice(lasts))
            if rnd.random() < 0.6:
                started = today - timedelta(days=rnd.randint(0, weeks * 7))
                make.engagement(resident, rnd.choice(actions), role=rnd.choice(["contributor", "volunteer", "beneficiary"]),
                                started_on=started)
            for _ in range(rnd.randint(0, 2)):
                when = datetime.combine(today - timedelta(days=rnd.randint(0, weeks * 7)), time(14), timezone.utc)
                db.session.add(Visit(household_id=hh.id, site_id=site.id, user_id=staff.id, visited_at=when,
                                     outcome=rnd.choices(["talked", "absent", "refused"], [5, 4, 1])[0],
                                     seq=next_seq(db.session)))
        now = datetime.now(timezone.utc)
        for user_key, days, pending, version in [("staff", 0, 0, "0.1.0"), ("staff2", 6, 14, "0.0.9")]:
            db.session.add(Device(client_id=uuid.uuid4(), user_id=uuid.UUID(data.users[user_key]),
                                  app_version=version, pending_reported=pending, last_push_at=now - timedelta(days=days),
                                  last_pull_at=now - timedelta(days=days)))
        db.session.commit()


if __name__ == "__main__":
    main()
