"""An app update deployed while a phone is offline: the phone still opens offline on its version, the new version
waits for consent ("Nouvelle version disponible"), and after consent online the new version runs and opens offline."""
import pytest
import sqlalchemy as sa

from server.models import Visit

from .helpers import build_pwa, wait_pending, wait_synced, start_phone
from .test_offline_shift import record_visit

pytestmark = pytest.mark.e2e

OLD, NEW = "1.0.0-e2e-old", "1.0.1-e2e-new"


@pytest.fixture
def live_dist(tmp_path, pwa_dist):
    """A copy of the app the test can redeploy (pwa_dist makes sure the npm packages are there)."""
    return build_pwa(tmp_path / "dist", version=OLD)


def running_version(page) -> str:
    page.get_by_role("link", name="Synchro", exact=True).click()
    return page.locator("dt", has_text="Version").locator("xpath=following-sibling::dd[1]").inner_text()


def test_update_deployed_while_offline(live, live_dist, phone):
    ctx, page = start_phone(phone)
    assert running_version(page) == OLD

    ctx.set_offline(True)
    build_pwa(live_dist, version=NEW)  # deployed on the server while the phone has no signal

    page.goto("/")
    page.get_by_role("heading", name="Mes sites").wait_for()
    assert running_version(page) == OLD
    record_visit(page, "10", "Absent")
    wait_pending(page, 1)

    ctx.set_offline(False)  # the app checks for an update and syncs on `online`
    page.get_by_text("Nouvelle version disponible").wait_for()
    wait_synced(page, pending=0)
    assert running_version(page) == OLD  # no consent yet: the old version keeps running
    assert live.query(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Visit))) == 1

    page.get_by_role("button", name="Mettre à jour").click()  # the page reloads under the new worker
    page.locator("dt", has_text="Version").locator("xpath=following-sibling::dd[1]").get_by_text(NEW).wait_for()
    assert page.get_by_text("Nouvelle version disponible").count() == 0
    wait_synced(page, pending=0)

    # The new version now opens offline from its own cache, with the phone's data intact.
    ctx.set_offline(True)
    page.goto("/")
    page.get_by_role("heading", name="Mes sites").wait_for()
    assert running_version(page) == NEW
    page.get_by_role("link", name="Sites").click()
    page.get_by_role("link", name="Résidence Vauban").click()
    page.get_by_role("link", name="Porte 10").click()
    page.get_by_text("Absent", exact=True).wait_for()  # the visit list is read from IndexedDB after the render
    assert page.get_by_text("Absent", exact=True).count() == 1
    assert live.query(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Visit))) == 1
