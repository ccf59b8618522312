"""Pull page format 2 (docs/PROTOCOL.md, "Page format 2"): compact rows carry exactly the changes of format 1, for
every role and entity, tombstones and merges included; the programme figure comes with the last page only."""
import json
import uuid

import pytest

from tests.sync.vector_runner import page_changes

from .test_sync_api import _now, push
from .test_sync_wire import _every_op


def _pull(api, limit, page_format):
    """Every page of a first pull, as its JSON answers."""
    pages, cursor, client_id = [], None, str(uuid.uuid4())
    while True:
        body = {"client_id": client_id, "cursor": cursor, "limit": limit}
        if page_format is not None:
            body["format"] = page_format
        resp = api.post("/api/sync/pull", json=body)
        assert resp.status_code == 200, resp.get_json()
        pages.append(resp.get_json())
        cursor = pages[-1]["cursor"]
        if not pages[-1]["has_more"]:
            return pages


def _merge_a_duplicate(world, as_role, name="Caron"):
    """Two phones' same person, merged by head office: the merged one becomes a tombstone with merged_into."""
    staff, head = as_role("staff"), as_role("head_office")
    kept, merged = str(uuid.uuid4()), str(uuid.uuid4())
    for rid, first, last in ((kept, "Léa", name), (merged, name.upper(), "lea")):
        assert push(staff, str(uuid.uuid4()), [{
            "n": 1, "op": "resident.create", "at": _now(),
            "args": {"id": rid, "household_id": world["own_household"], "first_name": first,
                     "last_name": last}}]).status_code == 200
    (dup,) = [d for d in head.get("/api/review/duplicates").get_json()["items"] if d["resident"]["id"] == merged]
    assert head.post(f"/api/review/duplicates/{dup['id']}/merge", json={"keep": kept}).status_code == 200
    return kept, merged


@pytest.fixture
def synced(world, as_role):
    """Every op pushed (creates, updates, deletes of each entity), and a merge."""
    assert push(as_role("staff"), str(uuid.uuid4()), _every_op(world)).status_code == 200
    _merge_a_duplicate(world, as_role)


@pytest.mark.parametrize("role", ["gardien", "staff", "head_office"])
def test_format_2_pages_carry_the_changes_of_format_1(synced, as_role, role):
    api = as_role(role)
    one, two = _pull(api, 4, None), _pull(api, 4, 2)
    assert len(one) == len(two) > 2
    for a, b in zip(one, two):
        assert "format" not in a and "fields" not in a and b["format"] == 2
        assert page_changes(b) == a["changes"]
        assert {k: a[k] for k in ("has_more", "reset", "scope")} == {k: b[k] for k in ("has_more", "reset", "scope")}
        assert set(b["fields"]) == {c["entity"] for c in a["changes"]}
        for row in b["changes"]:  # a row's values are its entity's fields, in order
            assert row[3] is None or len(row[3]) == len(b["fields"][row[0]])
        # format 1 sends the programme figure on every page; format 2 on the last only
        assert a["progress"]["goal"] == 1400
        assert (b["progress"] is None) is b["has_more"]
    assert {k: v for k, v in two[-1]["progress"].items() if k != "as_of"} == {
        k: v for k, v in one[-1]["progress"].items() if k != "as_of"}
    resident_fields = next(p["fields"]["resident"] for p in two if "resident" in p["fields"])
    assert ("phone" in resident_fields and "email" in resident_fields) is (role != "gardien")


def test_tombstones_and_a_merge_after_a_first_pull_arrive_as_rows(synced, world, as_role):
    """Reset pages carry no tombstones: the deletes and the merge a device sees are those after its first pull."""
    api = as_role("staff")
    cursor = _pull(api, 2000, 2)[-1]["cursor"]
    assert push(api, str(uuid.uuid4()), _every_op(world)).status_code == 200  # deletes again
    kept, merged = _merge_a_duplicate(world, as_role, "Lefebvre")
    pages = {}
    for page_format in (1, 2):  # another device holding the same cursor (a cursor is the scope's, not a device's)
        resp = api.post("/api/sync/pull", json={"client_id": str(uuid.uuid4()), "cursor": cursor, "limit": 2000,
                                                "format": page_format})
        assert resp.status_code == 200 and resp.get_json()["reset"] is False
        pages[page_format] = resp.get_json()
    rows = pages[2]["changes"]
    assert ["resident", merged] in [row[:2] for row in rows]
    assert [row for row in rows if row[1] == merged] == [["resident", merged, row[2], None, kept]
                                                        for row in rows if row[1] == merged]
    assert any(len(row) == 4 and row[3] is None for row in rows)  # plain tombstones: four items
    assert page_changes(pages[2]) == pages[1]["changes"]


@pytest.mark.parametrize("bad", [3, 0, "2", True, None, 2.0])
def test_an_unknown_format_is_a_422_naming_it(world, as_role, bad):
    resp = as_role("staff").post("/api/sync/pull", json={"client_id": str(uuid.uuid4()), "format": bad})
    assert resp.status_code == 422
    assert list(resp.get_json()["error"]["details"]) == ["format"]


def test_format_2_changes_are_smaller_on_the_wire(synced, as_role):
    api = as_role("staff")
    sizes = {}
    for page_format in (1, 2):
        body = {"client_id": str(uuid.uuid4()), "cursor": None, "limit": 2000, "format": page_format}
        resp = api.post("/api/sync/pull", json=body, headers={"Accept-Encoding": "identity"})
        assert json.loads(resp.data)["has_more"] is False
        sizes[page_format] = len(resp.data) - resp.data.index(b'"changes":[')  # the head aside
    assert sizes[2] < sizes[1] * 0.75
