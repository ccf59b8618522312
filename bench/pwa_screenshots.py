"""Screenshots of the PWA's main screens at phone size, and of the head-office app (/bureau/) at desktop size, into
docs/screenshots/ (real app, temp SQLite, Chromium)."""
import random
import sys
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


def main(office_only=False):
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
            if not office_only:
                phone_shots(b, server, data)
            office_demo(server, data)
            office_shots(b, server)
            b.close()


def phone_shots(b, server, data):
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


def office_shots(b, server):
    page = b.new_context(base_url=server.url, **DESKTOP).new_page()
    page.goto("/bureau/")
    login(page, email="siege@palier.test")
    page.wait_for_selector(".chart canvas")
    # The top of the page: figures, charts, breakdowns and the first events (the events' table runs on).
    page.screenshot(path=OUT / "office-dashboard.png", full_page=True, clip={"x": 0, "y": 0, "width": 1440,
                                                                              "height": 1600})
    for name, hash_ in [("office-visits", "#/lists/visits"), ("office-team", "#/team")]:
        page.goto("/bureau/" + hash_)
        page.wait_for_selector("table.grid tbody tr")
        page.screenshot(path=OUT / f"{name}.png")


def office_demo(server, data, weeks=20, seed=7, queue=25):
    """Half a year of field work on three sites, so the head-office screens show real shapes: engagements starting
    week after week, visits by outcome, events with their attendance, `queue` open items (and a few decided) in each
    review queue, a phone that has not synced for days. Seeded: the same pictures each run. The Chromium test of
    every office screen (tests/e2e/test_office_screens.py) runs on it too: every list has more than one page."""
    from server.database import next_seq
    from server.extensions import db
    from server.models import Attendance, Device, Event, HeadCount, Site, User, Visit

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
        residents = []
        for i in range(180):
            site = sites[i % 3]
            hh = make.household(site, building=f"Bât. {'ABC'[i % 3]}", door=str(100 + i))
            resident = make.resident(hh, rnd.choice(firsts), rnd.choice(lasts))
            residents.append(resident)
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
        kinds = [("atelier", "Atelier"), ("accompagnement", "Accompagnement"), ("sortie", "Sortie"),
                 ("reunion", "Réunion"), ("permanence", "Permanence")]
        for i in range(60):  # one event every few days, from weeks ago to weeks ahead; one in ten cancelled
            starts = datetime.combine(today + timedelta(days=3 * i - 7 * weeks), time(13), timezone.utc)
            kind, title = kinds[i % 5]
            ev = Event(title=f"{title} n° {i + 1}", kind=kind, place="Local commun",
                       starts_at=starts, ends_at=starts + timedelta(hours=2),
                       status="cancelled" if i % 10 == 9 else "scheduled", seq=next_seq(db.session))
            ev.sites = [sites[i % 3]]
            db.session.add(ev)
            db.session.flush()
            if starts < now and ev.status == "scheduled":
                for r in rnd.sample([r for r in residents if r.site_id == sites[i % 3].id], 3):
                    db.session.add(Attendance(event_id=ev.id, resident_id=r.id, site_id=r.site_id, user_id=staff.id,
                                              checked_in_at=starts, seq=next_seq(db.session)))
                db.session.add(HeadCount(event_id=ev.id, site_id=sites[i % 3].id, user_id=staff.id, category="adults",
                                         count=rnd.randint(5, 30), counted_at=starts, seq=next_seq(db.session)))
        _review_demo(data, residents, queue, rnd, now)
        for user_key, days, pending, version in [("staff", 0, 0, "0.1.0"), ("staff2", 6, 14, "0.0.9")]:
            db.session.add(Device(client_id=uuid.uuid4(), user_id=uuid.UUID(data.users[user_key]),
                                  app_version=version, pending_reported=pending, last_push_at=now - timedelta(days=days),
                                  last_pull_at=now - timedelta(days=days)))
        db.session.commit()


def _review_demo(data, residents, queue, rnd, now):
    """`queue` open items in each review queue, oldest first, and three decided ones in each: a phone number two
    phones changed, two records of one person, an entry refused for an empty name."""
    from server.database import next_seq
    from server.extensions import db
    from server.models import Conflict, DuplicateSuspicion, Rejection, Resident

    staff, staff2, head = (uuid.UUID(data.users[k]) for k in ("staff", "staff2", "head"))
    for i in range(queue + 3):
        decided = i >= queue
        at = now - timedelta(hours=queue + 3 - i)
        r = residents[i]
        done = {"resolved_by": head, "resolved_at": at + timedelta(minutes=5)} if decided else {}
        db.session.add(Conflict(entity="resident", entity_id=r.id, site_id=r.site_id, field="phone",
                                kept_value=f"06 10 00 00 {i:02d}", kept_by=staff, kept_seq=r.seq,
                                lost_value=f"06 20 00 00 {i:02d}", lost_by=staff2, lost_base_seq=r.seq,
                                created_at=at, status="resolved" if decided else "open",
                                resolution={"value": f"06 20 00 00 {i:02d}"} if decided else None, **done))
        # The same person entered again in the same home, counted as the first record until a decision.
        twin = Resident(household_id=r.household_id, site_id=r.site_id, first_name=r.first_name,
                        last_name=r.last_name, name_key=r.name_key, duplicate_of=None if decided else r.id,
                        created_by=staff2, seq=next_seq(db.session))
        db.session.add(twin)
        db.session.flush()
        db.session.add(DuplicateSuspicion(resident_id=twin.id, candidate_id=r.id, site_id=r.site_id, created_at=at,
                                          status="distinct" if decided else "pending", **done))
        args = {"id": str(uuid.uuid4()), "household_id": str(r.household_id),
                "first_name": rnd.choice(["Rose", "Yanis", "Odette"]), "last_name": ""}
        reason = {"message": "Données invalides.", "last_name": ["Obligatoire."]}
        db.session.add(Rejection(client_id=uuid.uuid4(), n=1, user_id=staff, site_id=r.site_id, op="resident.create",
                                 code="invalid", reason=reason, args=None if decided else args,  # decided: dropped
                                 created_at=at, status="dismissed" if decided else "open", **done))
    db.session.commit()


if __name__ == "__main__":
    # --office: the head-office pictures alone (the phone's are left as they are).
    main(office_only="--office" in sys.argv[1:])
