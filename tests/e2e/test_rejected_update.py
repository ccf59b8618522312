"""A change the server refuses is undone on the phone as soon as the push is answered, even when the pull that
follows fails: the phone shows the server's version again, and the refused item stays listed with its reason."""
import uuid

import pytest

from server.models import Resident

from .helpers import idb_all, open_household, start_phone, wait_pending

pytestmark = pytest.mark.e2e


def test_refused_update_restores_the_server_version_without_waiting_for_a_pull(live, phone):
    ctx, page = start_phone(phone)
    maryse = live.data.residents[0]
    pulls = []
    # Every pull fails from now on, as when the signal goes right after the push is answered.
    ctx.route("**/api/sync/pull", lambda route: (pulls.append(1), route.abort()))

    ctx.set_offline(True)
    open_household(page, "10")
    page.locator("li", has_text="Maryse Moreau").get_by_role("link", name="Modifier").click()
    # The household screen has a "Prénom" field too (add a resident): fill only once the edit form is shown.
    page.get_by_role("button", name="Enregistrer").wait_for()
    page.get_by_label("Prénom").fill("M" * 101)  # the phone lets it through; the server allows 100 characters
    page.get_by_role("button", name="Enregistrer").click()
    page.get_by_role("heading", name="Habitants").wait_for()
    wait_pending(page, 1)
    local = next(r for r in idb_all(page, "resident") if r["id"] == maryse)
    assert local["first_name"] == "M" * 101 and local["_n"] == 1

    ctx.set_offline(False)
    page.get_by_role("link", name="Synchro", exact=True).click()
    page.get_by_role("button", name="Synchroniser maintenant").click()
    page.get_by_text("Fiche d'habitant").wait_for()  # the refused item, listed with its reason
    wait_pending(page, 0)
    assert pulls, "the pull was attempted (and failed)"
    (refused,) = idb_all(page, "rejected")
    assert refused["reason"]["code"] == "invalid" and refused["args"]["changes"] == {"first_name": "M" * 101}
    assert refused["reason"]["message"] in page.locator("li", has_text="Fiche d'habitant").inner_text()

    local = next(r for r in idb_all(page, "resident") if r["id"] == maryse)
    assert local["first_name"] == "Maryse" and "_n" not in local, local
    assert idb_all(page, "local") == []
    server_name = live.query(lambda s: s.get(Resident, uuid.UUID(maryse)).first_name)
    assert server_name == "Maryse"
    open_household(page, "10")
    assert page.locator("li", has_text="Maryse Moreau").count() == 1
