"""A day offline: the app opens from its cache, keeps every record across a closed page, and syncs exactly once."""
import uuid

import pytest
import sqlalchemy as sa

from server.models import Attendance, Engagement, Visit

from .helpers import outbox_count, wait_pending, wait_synced, start_phone

pytestmark = pytest.mark.e2e


def record_visit(page, household_door, outcome, need=None):
    page.get_by_role("link", name="Sites").click()
    page.get_by_role("link", name="Résidence Vauban").click()
    page.get_by_role("link", name=f"Porte {household_door}").click()
    page.get_by_role("link", name="Nouvelle visite").click()
    page.get_by_text(outcome, exact=True).click()
    if need:
        page.get_by_text(need, exact=True).click()
    page.get_by_role("button", name="Enregistrer la visite").click()
    page.get_by_role("heading", name="Visites").wait_for()


def test_offline_start_records_and_syncs_exactly_once(live, phone):
    ctx, page = start_phone(phone)

    ctx.set_offline(True)
    page.reload()
    page.get_by_role("heading", name="Mes sites").wait_for()
    assert page.get_by_role("link", name="Résidence Vauban").is_visible()

    record_visit(page, "10", "Échange", need="Isolement")
    record_visit(page, "11", "Absent")
    record_visit(page, "12", "Refus")

    page.get_by_role("link", name="Agenda").click()
    page.get_by_role("link", name="Troc de vêtements").click()
    page.get_by_role("button", name="Pointer Maryse Moreau").click()
    page.get_by_role("button", name="Pointer Karim Benali").click()
    page.get_by_text("✓ Présent").nth(1).wait_for()

    page.get_by_role("link", name="Sites").click()
    page.get_by_role("link", name="Résidence Vauban").click()
    page.get_by_role("link", name="Porte 12").click()
    page.locator("li", has_text="Lucie Dubois").get_by_role("link", name="Engager").click()
    page.get_by_label("Action").select_option(label="Portage de pain et d'eau")
    page.get_by_text("Bénévole", exact=True).click()
    page.get_by_role("button", name="Enregistrer l'engagement").click()
    page.get_by_role("heading", name="Visites").wait_for()
    wait_pending(page, 6)
    assert outbox_count(page) == 6

    # The tab is closed and the phone reopens the app, still without signal.
    page.close()
    page = ctx.new_page()
    page.goto("/")
    page.get_by_role("heading", name="Mes sites").wait_for()
    assert page.locator("[data-t=pending]").inner_text() == "6 en attente"
    assert outbox_count(page) == 6
    assert live.query(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Visit))) == 0

    ctx.set_offline(False)  # the app syncs by itself on `online`
    wait_synced(page, pending=0)
    assert outbox_count(page) == 0

    data = live.data

    def holdings(s):
        visits = s.execute(sa.select(Visit.household_id, Visit.outcome, Visit.needs)).all()
        atts = s.execute(sa.select(Attendance.event_id, Attendance.resident_id)).all()
        engs = s.execute(sa.select(Engagement.resident_id, Engagement.action_id, Engagement.role)).all()
        return visits, atts, engs

    visits, atts, engs = live.query(holdings)
    hh = [uuid.UUID(h) for h in data.households]
    assert sorted((v.household_id, v.outcome, tuple(v.needs)) for v in visits) == sorted([
        (hh[0], "talked", ("isolement",)), (hh[1], "absent", ()), (hh[2], "refused", ())])
    ev = uuid.UUID(data.event_id)
    assert sorted(atts) == sorted([(ev, uuid.UUID(data.residents[0])), (ev, uuid.UUID(data.residents[1]))])
    assert engs == [(uuid.UUID(data.residents[2]), uuid.UUID(data.action_id), "volunteer")]
