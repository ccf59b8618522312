"""Two phones, offline, edit the same resident and create the same new resident: both converge on the server's
state, nothing is overwritten silently (one conflict), and the double entry becomes one suspected duplicate."""
import uuid

import pytest
import sqlalchemy as sa

from server.models import Resident

from .helpers import PASSWORD, idb_all, open_household, sync_now, wait_pending, wait_synced, start_phone

pytestmark = pytest.mark.e2e


def edit_phone(page, name, number):
    page.locator("li", has_text=name).get_by_role("link", name="Modifier").click()
    page.get_by_label("Téléphone").fill(number)
    page.get_by_role("button", name="Enregistrer").click()
    page.get_by_role("heading", name="Habitants").wait_for()


def add_resident(page, first, last):
    page.get_by_label("Prénom").fill(first)
    page.get_by_label("Nom", exact=True).fill(last)
    page.get_by_role("button", name="Ajouter l'habitant").click()
    page.locator("li", has_text=f"{first} {last}").first.wait_for()


def household_view(page, household_id):
    """What the phone holds for the household: its residents, without the phone's own bookkeeping."""
    rows = [r for r in idb_all(page, "resident") if r["household_id"] == household_id]
    return sorted((r["id"], r["first_name"], r["last_name"], r.get("phone") or None, r.get("duplicate_of"), "_n" in r)
                  for r in rows)


def head_office_get(browser, live, path):
    ctx = browser.new_context(base_url=live.url)
    try:
        resp = ctx.request.post("/api/auth/login", data={"email": "siege@palier.test", "password": PASSWORD})
        assert resp.status == 200, resp.text()
        resp = ctx.request.get(path)
        assert resp.status == 200, resp.text()
        return resp.json()["items"]
    finally:
        ctx.close()


def test_two_phones_converge_with_one_conflict_and_one_duplicate(browser, live, phone):
    data = live.data
    pages = {}
    for user in ("staff", "staff2"):
        pages[user] = start_phone(phone, email=f"{user}@palier.test")

    for ctx, _ in pages.values():
        ctx.set_offline(True)
    for user, number in (("staff", "06 11 11 11 11"), ("staff2", "06 22 22 22 22")):
        page = pages[user][1]
        open_household(page, "10")
        edit_phone(page, "Maryse Moreau", number)
        add_resident(page, "Nadia", "Haddad")
        wait_pending(page, 2)

    # The first phone's changes reach the server first; the second's proposed phone loses the merge.
    for user in ("staff", "staff2"):
        ctx, page = pages[user]
        ctx.set_offline(False)
        wait_synced(page, pending=0)
    sync_now(pages["staff"][1])  # the first phone's final pull brings the second phone's resident

    hh = data.households[0]
    views = {user: household_view(page, hh) for user, (_, page) in pages.items()}
    assert views["staff"] == views["staff2"]
    maryse = [v for v in views["staff"] if v[0] == data.residents[0]]
    assert maryse[0][3] == "06 11 11 11 11"
    nadias = [v for v in views["staff"] if v[1:3] == ("Nadia", "Haddad")]
    assert len(nadias) == 2
    assert sorted(v[4] is None for v in nadias) == [False, True]  # the later one points at the earlier one
    assert not any(v[5] for v in views["staff"])  # nothing left as a pending local change

    # The screens show it too, on both phones.
    for _, page in pages.values():
        page.locator("li", has_text="Maryse Moreau").get_by_role("link", name="Modifier").click()
        assert page.get_by_label("Téléphone").input_value() == "06 11 11 11 11"
        page.go_back()
        page.get_by_role("heading", name="Habitants").wait_for()
        page.locator("li", has_text="Maryse Moreau").wait_for()  # the residents are read after the heading
        assert page.locator("li", has_text="Nadia Haddad").count() == 2

    server = live.query(lambda s: sorted(
        (str(r.id), r.first_name, r.last_name, r.phone or None, str(r.duplicate_of) if r.duplicate_of else None, False)
        for r in s.scalars(sa.select(Resident).where(Resident.household_id == uuid.UUID(hh)))))
    assert server == views["staff"]

    conflicts = head_office_get(browser, live, "/api/review/conflicts")
    assert len(conflicts) == 1, conflicts
    duplicates = head_office_get(browser, live, "/api/review/duplicates")
    assert len(duplicates) == 1, duplicates
    assert {duplicates[0]["resident"]["id"], duplicates[0]["candidate"]["id"]} == {v[0] for v in nadias}

