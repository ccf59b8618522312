"""Head office in Chromium at /bureau: sees the figures, sees them move after a phone syncs, settles a conflict and a
suspected duplicate made by two phones, and exports a CSV that French Excel reads (BOM, ';', accents)."""
import csv
import io
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import sqlalchemy as sa

from server.models import Conflict, DuplicateSuspicion, Engagement, Event, Rejection, Resident, User, Visit
from tests.conftest import Factory

from .helpers import (PASSWORD, idb_all, login, open_household, outbox_count, start_phone, sync_now, wait_pending,
                      wait_synced)
from .test_two_phones import add_resident, edit_phone

pytestmark = pytest.mark.e2e

DESKTOP = {"viewport": {"width": 1366, "height": 900}, "locale": "fr-FR", "timezone_id": "Europe/Paris"}


@pytest.fixture
def office(browser, live):
    """A desktop browser on /bureau, logged in as head office; CSP violations and page errors are collected."""
    ctx = browser.new_context(base_url=live.url, accept_downloads=True, **DESKTOP)
    page = ctx.new_page()
    page.problems = []
    page.on("pageerror", lambda e: page.problems.append(f"pageerror: {e}"))
    page.on("console", lambda m: page.problems.append(m.text) if "Content Security Policy" in m.text else None)
    resp = page.goto("/bureau/")
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    assert "Palier — Siège" in page.title()
    login(page, email="siege@palier.test")
    page.get_by_role("heading", name="Tableau de bord").wait_for()
    yield page
    ctx.close()


def figure(page, name) -> int:
    """An integer shown on the dashboard (French grouping: narrow no-break spaces)."""
    el = page.locator(f"[data-t={name}]")
    el.wait_for()
    return int("".join(ch for ch in el.inner_text() if ch.isdigit()))


def refresh_until(page, name, expected, tries=20):
    """Presses "Actualiser" until the figure shows `expected` (the phone's sync has landed by then)."""
    for _ in range(tries):
        if figure(page, name) == expected:
            return
        page.get_by_role("button", name="Actualiser").click()
        page.wait_for_timeout(250)
    assert figure(page, name) == expected


def flush(page, timeout_s=30):
    """Waits, without touching the phone, until its outbox is empty in IndexedDB: every save asks for a sync, and
    one asked while a sync runs is run right after it (the second save lands during the first save's sync). The
    wait is shorter than the 60-second periodic sync, which must not be what sends the last save."""
    deadline = time.monotonic() + timeout_s
    while outbox_count(page) > 0:
        assert time.monotonic() < deadline, "the saves were not all sent by the syncs they asked for"
        page.wait_for_timeout(100)
    wait_synced(page, pending=0)


def test_head_office_sees_progress_settles_review_and_exports(browser, live, phone, office):
    data = live.data
    engaged_sql = sa.select(sa.func.count(sa.distinct(Engagement.resident_id))).where(
        Engagement.status == "active", Engagement.deleted.is_(False))

    # The figures before any field work: the baseline alone, no visit, the same as the database.
    assert live.query(lambda s: s.scalar(engaged_sql)) == 0
    assert figure(office, "engaged") == 386
    assert figure(office, "counted") == 0
    assert figure(office, "visits") == 0

    # A phone records an engagement and a visit, then syncs.
    ctx, page = start_phone(phone)
    open_household(page, "10")
    page.locator("li", has_text="Maryse Moreau").get_by_role("link", name="Engager").click()
    page.get_by_label("Action").select_option(label="Portage de pain et d'eau")
    page.get_by_role("button", name="Enregistrer l'engagement").click()
    page.get_by_role("heading", name="Habitants").wait_for()
    page.get_by_role("link", name="Nouvelle visite").click()
    page.get_by_text("Échange", exact=True).click()
    page.get_by_role("button", name="Enregistrer la visite").click()
    page.get_by_role("heading", name="Habitants").wait_for()
    flush(page)
    assert live.query(lambda s: s.scalar(engaged_sql)) == 1
    assert live.query(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Visit))) == 1

    # The dashboard shows the figures moved after a refresh, per site and per action too.
    refresh_until(office, "engaged", 387)
    assert figure(office, "counted") == 1
    assert figure(office, "visits") == 1
    assert "Résidence Vauban" in office.locator("[data-t=per-site]").inner_text()
    assert "Portage de pain et d'eau" in office.locator("[data-t=per-action]").inner_text()
    assert office.locator(".chart canvas").count() >= 2  # uPlot drew under the strict CSP
    # Filtered by site, the figure counts that site's people only: the baseline belongs to no site.
    office.get_by_role("search", name="Filtres").locator("select[name=site_id]").select_option(label="Résidence Vauban")
    office.get_by_text("Filtre actif").wait_for()
    assert figure(office, "engaged") == 1

    # Two phones offline edit the same phone number and add the same person: one conflict, one duplicate.
    ctx2, page2 = start_phone(phone, email="staff2@palier.test")
    pages = [(ctx, page), (ctx2, page2)]
    for c, _ in pages:
        c.set_offline(True)
    for (_, p), number in zip(pages, ("06 11 11 11 11", "06 22 22 22 22")):
        open_household(p, "10")
        edit_phone(p, "Maryse Moreau", number)
        add_resident(p, "Nadia", "Haddad")
        wait_pending(p, 2)
    for c, p in pages:
        c.set_offline(False)
        wait_synced(p, pending=0)

    office.get_by_role("navigation", name="Menu").get_by_role("link", name="Revue").click()
    conflict = office.locator("[data-t=conflict]")
    conflict.wait_for()
    text = conflict.inner_text()
    assert "Téléphone" in text and "06 11 11 11 11" in text and "06 22 22 22 22" in text
    assert "Staff2" in text  # who made the value waiting for a decision
    # Head office takes the value that lost the merge.
    conflict.get_by_role("button", name="Prendre « 06 22 22 22 22 »").click()
    office.get_by_text("Aucun conflit à examiner.").wait_for()
    maryse = uuid.UUID(data.residents[0])
    assert live.query(lambda s: s.get(Resident, maryse).phone) == "06 22 22 22 22"
    assert live.query(lambda s: s.scalars(sa.select(Conflict.status)).all()) == ["resolved"]

    duplicate = office.locator("[data-t=duplicate]")
    assert duplicate.inner_text().count("Nadia Haddad") >= 2
    duplicate.get_by_role("button", name="Fusionner (garder A)").click()
    duplicate.get_by_role("button", name="Confirmer la fusion").click()
    office.get_by_text("Aucun doublon à examiner.").wait_for()
    suspicions = live.query(lambda s: [(x.status, x.resident_id) for x in s.scalars(sa.select(DuplicateSuspicion))])
    assert len(suspicions) == 1 and suspicions[0][0] != "pending"
    live_nadias = live.query(lambda s: s.scalars(sa.select(Resident.id).where(
        Resident.first_name == "Nadia", Resident.deleted.is_(False))).all())
    assert live_nadias == [suspicions[0][1]]  # fiche A kept, the other merged into it
    # The decisions stay readable: what was decided, by whom.
    office.get_by_role("button", name="Décisions prises").click()
    decided = office.locator("[data-t=conflict] [data-t=decided]")
    decided.wait_for()
    assert "« 06 22 22 22 22 »" in decided.inner_text() and "Siège" in decided.inner_text()
    assert "fusionnés" in office.locator("[data-t=duplicate] [data-t=decided]").inner_text()
    assert office.locator("[data-t=conflict]").get_by_role("button").count() == 0

    # Both decisions reach the phones at their next sync.
    sync_now(page)
    held = {r["id"]: r for r in idb_all(page, "resident")}
    assert held[data.residents[0]]["phone"] == "06 22 22 22 22"
    assert [r for r in held.values() if r["first_name"] == "Nadia" and not r.get("deleted")] == \
        [held[str(live_nadias[0])]]

    # The residents list searches by name (accents ignored by the server).
    office.get_by_role("navigation", name="Menu").get_by_role("link", name="Listes").click()
    office.get_by_role("link", name="Habitants").click()
    office.get_by_label("Recherche").fill("moreau")
    office.locator("[data-t=list-residents] tbody tr", has_text="Maryse").wait_for()
    office.wait_for_function("() => document.querySelectorAll('[data-t=list-residents] tbody tr').length === 1")
    office.get_by_role("link", name="Visites").click()

    # The visits list exports a CSV for French Excel: BOM, semicolons, French headers and accents intact.
    office.locator("[data-t=list-visits] tbody tr").first.wait_for()
    assert "Échange" in office.locator("[data-t=list-visits]").inner_text()
    with office.expect_download() as dl:
        office.get_by_role("button", name="Exporter CSV").click()
    raw = Path(dl.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8")), delimiter=";"))
    assert rows[0][:4] == ["Date de la visite", "Site", "Bâtiment", "Escalier"]
    assert len(rows) == 2
    record = dict(zip(rows[0], rows[1]))
    assert record["Site"] == "Résidence Vauban"
    assert record["Résultat"] == "Échange"
    assert record["Bâtiment"] == "Bât. A"
    assert dl.value.suggested_filename.endswith(".csv")
    # The same list as Excel: a real workbook, the same French headers and accents.
    with office.expect_download() as dl:
        office.get_by_role("button", name="Exporter Excel").click()
    sheet = openpyxl.load_workbook(io.BytesIO(Path(dl.value.path()).read_bytes())).active
    cells = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
    assert list(cells[0][:4]) == rows[0][:4] and len(cells) == 2
    assert "Résidence Vauban" in cells[1] and "Échange" in cells[1]

    assert office.problems == []


def test_field_role_at_bureau_is_sent_to_the_field_app(browser, live, phone):
    ctx = browser.new_context(base_url=live.url, **DESKTOP)
    try:
        page = ctx.new_page()
        page.goto("/bureau/#/team")
        login(page, email="staff@palier.test", password=PASSWORD)
        page.get_by_role("heading", name="Espace réservé au siège").wait_for()
        assert page.get_by_role("link", name="Ouvrir l’application de terrain").get_attribute("href") == "/"
        assert page.locator("[data-t=devices]").count() == 0
        # A deep path gets the head-office shell, never the field app's; a missing asset is a 404.
        assert "Palier — Siège" in ctx.request.get("/bureau/quelque/part").text()
        assert ctx.request.get("/bureau/assets/absent.js").status == 404
        # The field app's worker precaches nothing of the office app (not in its offline budget either).
        sw = ctx.request.get("/sw.js").text()
        assert "/assets/app-" in sw and "/bureau/" not in sw.replace("/^\\/bureau/", "")
    finally:
        ctx.close()

    # On a phone whose field app (and service worker) is in control, /bureau is not answered with the field
    # app's shell: the worker lets it through to the server, and the same cookies open the role gate.
    _, page = start_phone(phone)
    page.goto("/bureau/")
    page.get_by_role("heading", name="Espace réservé au siège").wait_for()
    assert page.evaluate("navigator.serviceWorker.controller !== null")  # the worker was there and stood aside
    page.get_by_role("link", name="Ouvrir l’application de terrain").click()
    page.get_by_role("link", name="Résidence Vauban").wait_for()  # back in the field app, still logged in


def test_admin_deactivates_a_user_after_confirming_and_their_session_ends(browser, live):
    with live.app.app_context():
        Factory(live.app).user("admin", email="admin@palier.test", display_name="Admin")
    staff = browser.new_context(base_url=live.url)
    admin = browser.new_context(base_url=live.url, **DESKTOP)
    try:
        assert staff.request.post("/api/auth/login", data={"email": "staff2@palier.test", "password": PASSWORD}).ok
        assert staff.request.get("/api/auth/me").ok
        page = admin.new_page()
        page.goto("/bureau/#/team")
        login(page, email="admin@palier.test")
        row = page.locator("[data-t=users] tr", has_text="staff2@palier.test")
        row.get_by_role("button", name="Désactiver").click()
        # Nothing happens before the confirmation; "Annuler" leaves the account as it was.
        row.get_by_role("button", name="Annuler").click()
        assert live.query(lambda s: s.scalar(sa.select(User.active).where(User.email == "staff2@palier.test")))
        row.get_by_role("button", name="Désactiver").click()
        row.get_by_role("button", name="Confirmer la désactivation").click()
        row.get_by_role("button", name="Réactiver").wait_for()
        assert "Désactivé" in row.inner_text()
        assert not live.query(lambda s: s.scalar(sa.select(User.active).where(User.email == "staff2@palier.test")))
        assert staff.request.get("/api/auth/me").status == 401  # their tokens were revoked at once
        # One's own row has no deactivation button (the API refuses a self-lockout too).
        own = page.locator("[data-t=users] tr", has_text="admin@palier.test")
        assert own.get_by_role("button", name="Désactiver").count() == 0
    finally:
        staff.close()
        admin.close()


def test_head_office_fixes_one_rejected_entry_and_sets_another_aside(live, office):
    """Two entries a phone sent and the server refused (an empty name, a visit to a household that is not there):
    the first is corrected and applied, the second set aside; its args (personal data) go with it."""
    data = live.data
    nid = str(uuid.uuid4())

    def seed(s):
        client = uuid.uuid4()
        staff = uuid.UUID(data.users["staff"])
        site = uuid.UUID(data.site_id)
        s.add(Rejection(client_id=client, n=1, user_id=staff, site_id=site, op="resident.create", code="invalid",
                        reason={"message": "Données invalides.", "last_name": ["Obligatoire."]},
                        args={"id": nid, "household_id": data.households[1], "first_name": "Rose", "last_name": ""}))
        s.add(Rejection(client_id=client, n=2, user_id=staff, site_id=site, op="visit.create", code="not_found",
                        reason={"message": "Logement introuvable."},
                        args={"id": str(uuid.uuid4()), "household_id": str(uuid.uuid4()), "outcome": "talked",
                              "visited_at": "2026-11-20T10:00:00+01:00"}))
        s.commit()
    live.query(seed)

    office.get_by_role("navigation", name="Menu").get_by_role("link", name="Revue").click()
    cards = office.locator("[data-t=rejection]")
    cards.nth(1).wait_for()
    create = cards.filter(has_text="Nouvel habitant")
    assert "Obligatoire." in create.inner_text() and "Staff" in create.inner_text()
    create.get_by_role("button", name="Corriger…").click()
    create.get_by_label("Nom", exact=True).fill("Lambert")
    create.get_by_role("button", name="Appliquer la saisie corrigée").click()
    office.locator("[data-t=rejection]", has_text="Nouvel habitant").wait_for(state="detached")
    rose = live.query(lambda s: s.get(Resident, uuid.UUID(nid)))
    assert (rose.first_name, rose.last_name, str(rose.household_id)) == ("Rose", "Lambert", data.households[1])

    cards.filter(has_text="Visite").get_by_role("button", name="Écarter").click()
    office.get_by_text("Aucune saisie refusée.").wait_for()
    assert live.query(lambda s: sorted((r.op, r.status, r.args) for r in s.scalars(sa.select(Rejection)))) == [
        ("resident.create", "fixed", None), ("visit.create", "dismissed", None)]
    assert office.problems == []


def test_head_office_creates_edits_and_cancels_an_event(live, office):
    start = (datetime.now() + timedelta(days=10)).replace(hour=14, minute=0, second=0, microsecond=0)
    office.get_by_role("navigation", name="Menu").get_by_role("link", name="Agenda").click()
    office.get_by_role("button", name="Nouvel événement").click()
    form = office.get_by_role("form", name="Nouvel événement")
    form.get_by_label("Titre").fill("Atelier cuisine")
    form.get_by_label("Type").select_option(label="Atelier")
    form.get_by_label("Début").fill(start.strftime("%Y-%m-%dT%H:%M"))
    form.get_by_label("Fin").fill(start.strftime("%Y-%m-%dT%H:%M"))
    form.get_by_label("Résidence Vauban").check()
    form.get_by_role("button", name="Enregistrer").click()
    assert "La fin doit être après le début." in form.get_by_role("alert").inner_text()  # checked before sending
    form.get_by_label("Fin").fill((start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    form.get_by_role("button", name="Enregistrer").click()
    row = office.locator("[data-t=agenda] tr", has_text="Atelier cuisine")
    row.wait_for()
    event = live.query(lambda s: s.scalars(sa.select(Event).where(Event.title == "Atelier cuisine")).one())
    assert event.status == "scheduled" and [str(x.id) for x in event.sites] == [live.data.site_id]
    assert event.starts_at == start.replace(tzinfo=ZoneInfo("Europe/Paris")).astimezone(timezone.utc)  # Paris, stored in UTC

    row.get_by_role("button", name="Modifier").click()
    office.get_by_role("form", name="Modifier l’événement").get_by_label("Lieu").fill("Salle des fêtes")
    office.get_by_role("form", name="Modifier l’événement").get_by_role("button", name="Enregistrer").click()
    row.get_by_text("Salle des fêtes").wait_for()
    assert live.query(lambda s: s.get(Event, event.id).place) == "Salle des fêtes"

    row.get_by_role("button", name="Annuler l’événement").click()
    row.get_by_role("button", name="Confirmer l’annulation").click()
    row.get_by_text("Annulé").wait_for()
    assert live.query(lambda s: s.get(Event, event.id).status) == "cancelled"
    assert row.get_by_role("button", name="Modifier").count() == 0
    assert office.problems == []
