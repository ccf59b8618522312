"""The status bar tells being offline (calm) from a server error (red), and both from a good sync."""
import pytest

from .helpers import start_phone, wait_pending, wait_synced
from .test_offline_shift import record_visit

pytestmark = pytest.mark.e2e


def test_offline_is_calm_a_server_error_is_red(live, phone):
    ctx, page = start_phone(phone)
    status = page.locator(".status")

    ctx.set_offline(True)
    page.get_by_text("Hors ligne —").wait_for()  # at once, from the browser's offline event
    record_visit(page, "11", "Refus")
    wait_pending(page, 1)
    page.get_by_role("button", name="Synchroniser", exact=True).click()  # fails: no network
    page.get_by_role("button", name="Synchroniser", exact=True).wait_for()
    assert "Hors ligne — 1 en attente" in status.inner_text()
    assert "wait" in status.get_attribute("class") and "bad" not in status.get_attribute("class")
    assert "indisponible" not in status.inner_text()

    # Back online, the server answers 503 (the `online` event syncs by itself; so does the button).
    ctx.route("**/api/sync/push", lambda route: route.fulfill(status=503, json={"error": {"code": "x", "message": "panne"}}))
    ctx.set_offline(False)
    page.locator(".status.bad").wait_for()
    assert "Serveur indisponible (503)" in status.inner_text()
    assert "Hors ligne" not in status.inner_text()

    ctx.unroute("**/api/sync/push")
    page.get_by_role("button", name="Synchroniser", exact=True).click()
    wait_synced(page, pending=0)
    assert "ok" in status.get_attribute("class")
