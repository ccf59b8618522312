"""Background Sync with the tab closed: the service worker pushes the outbox by itself, exactly once."""
import time
import uuid

import pytest
import sqlalchemy as sa

from server.models import Visit

from .helpers import outbox_count, start_phone, wait_pending
from .test_offline_shift import record_visit

pytestmark = pytest.mark.e2e


def visits(live):
    return live.query(lambda s: s.execute(sa.select(Visit.household_id, Visit.outcome)).all())


def fire_sync(ctx, origin, tag="palier-sync"):
    """Fires the worker's sync event through DevTools (ServiceWorker.dispatchSyncEvent), from a blank page: no
    page of the app is open, so the worker must push by itself."""
    blank = ctx.new_page()  # about:blank: not a client of the app's worker
    cdp = ctx.new_cdp_session(blank)
    registrations = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + 10
    while not any(r["scopeURL"] == f"{origin}/" and not r["isDeleted"] for r in registrations):
        assert time.monotonic() < deadline, f"no service worker registration seen for {origin}: {registrations}"
        blank.wait_for_timeout(50)
    reg = next(r for r in registrations if r["scopeURL"] == f"{origin}/" and not r["isDeleted"])
    cdp.send("ServiceWorker.dispatchSyncEvent", {"origin": origin, "registrationId": reg["registrationId"],
                                                 "tag": tag, "lastChance": False})
    return blank


def test_closed_tab_is_pushed_by_background_sync_exactly_once(live, phone):
    ctx, page = start_phone(phone)
    ctx.set_offline(True)

    record_visit(page, "10", "Absent")
    wait_pending(page, 1)
    # Offline is the field's normal state: said calmly, not as an error.
    page.get_by_text("Hors ligne —").wait_for()
    assert page.locator(".status.bad").count() == 0
    assert outbox_count(page) == 1

    page.close()  # the tab is closed before any signal came back
    assert visits(live) == []
    ctx.set_offline(False)

    blank = fire_sync(ctx, live.url)
    deadline = time.monotonic() + 30
    while not visits(live):
        assert time.monotonic() < deadline, "the worker pushed nothing after the sync event"
        blank.wait_for_timeout(100)
    blank.wait_for_timeout(500)  # would a second push land, it would be now
    assert visits(live) == [(uuid.UUID(live.data.households[0]), "absent")]

    # Reopened offline (so that the page cannot have pushed anything itself): the outbox is empty.
    ctx.set_offline(True)
    page = ctx.new_page()
    page.goto("/")
    page.get_by_role("heading", name="Mes sites").wait_for()
    wait_pending(page, 0)
    assert outbox_count(page) == 0
    assert visits(live) == [(uuid.UUID(live.data.households[0]), "absent")]
