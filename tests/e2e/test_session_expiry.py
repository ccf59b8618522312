"""The session expires during an offline shift: back online the app asks to log in again and keeps the outbox;
after the login everything syncs, exactly once."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from server.models import Visit

from .helpers import login, outbox_count, sync_now, wait_pending, wait_synced, start_phone
from .test_offline_shift import record_visit

pytestmark = pytest.mark.e2e

ACCESS_S, REFRESH_S = 3, 6


@pytest.fixture
def live_config():
    return {"JWT_ACCESS_TOKEN_EXPIRES": timedelta(seconds=ACCESS_S),
            "JWT_REFRESH_TOKEN_EXPIRES": timedelta(seconds=REFRESH_S)}


def visits(live):
    return live.query(lambda s: sorted((str(v.household_id), v.outcome) for v in s.scalars(sa.select(Visit))))


def test_expired_session_keeps_outbox_and_syncs_once_after_login(live, phone):
    ctx, page = start_phone(phone)

    ctx.set_offline(True)
    record_visit(page, "10", "Échange")
    record_visit(page, "11", "Absent")
    record_visit(page, "12", "Refus")
    wait_pending(page, 3)

    # The shift goes on past both token lifetimes; the app still opens offline from what the phone holds.
    page.wait_for_timeout((REFRESH_S + 2) * 1000)
    page.goto("/")
    page.get_by_role("heading", name="Mes sites").wait_for()
    assert page.locator("[data-t=pending]").inner_text() == "3 en attente"

    ctx.set_offline(False)  # the sync on `online` meets a 401, the refresh fails too
    page.get_by_text("Session expirée : reconnectez-vous").wait_for()
    assert page.get_by_label("Courriel").input_value() == "staff@palier.test"
    assert outbox_count(page) == 3
    assert visits(live) == []

    login(page)
    page.get_by_role("heading", name="Mes sites").wait_for()
    wait_synced(page, pending=0)
    assert outbox_count(page) == 0
    hh = live.data.households
    expected = sorted([(hh[0], "talked"), (hh[1], "absent"), (hh[2], "refused")])
    assert visits(live) == expected

    # A further sync adds nothing: each mutation was applied once.
    sync_now(page)
    assert visits(live) == expected
