"""Head office's review queues: both values, who and when, labels, open and resolved pages; conflicts kept or
edited and rejected mutations fixed by the reviewer, each reaching devices at their next pull."""
import uuid

import pytest
import sqlalchemy as sa

from server.extensions import db
from server.models import AuditLog, Rejection, Visit

from .test_sync_api import pull_all, push, visit


def _items(api, url):
    resp = api.get(url)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def _rejected_visit(world, as_role, **bad):
    gardien = as_role("gardien")
    cid = str(uuid.uuid4())
    mutation = visit(1, world["own_household"], **bad)
    result = push(gardien, cid, [mutation]).get_json()["results"][0]
    assert result["status"] == "rejected", result
    rejection = db.session.execute(sa.select(Rejection).where(Rejection.client_id == uuid.UUID(cid))).scalar_one()
    return gardien, cid, mutation, rejection


def test_a_fixed_rejection_is_applied_as_the_reviewer_and_reaches_devices(world, as_role):
    gardien, cid, mutation, rejection = _rejected_visit(world, as_role, outcome="peut-etre")
    _, cursor = pull_all(gardien, cid)
    head = as_role("head_office")
    listed = next(r for r in _items(head, "/api/review/rejections")["items"] if r["id"] == str(rejection.id))
    assert listed["args"]["outcome"] == "peut-etre" and listed["reason"]["details"]["outcome"]
    assert listed["user_name"] == world.users["gardien"].display_name
    assert listed["label"].startswith("Résidence own — bât. Bât own")

    resp = head.post(f"/api/review/rejections/{rejection.id}/fix", json={"args": {"outcome": "talked"}})
    assert resp.status_code == 200, resp.get_json()
    stored = db.session.get(Visit, uuid.UUID(mutation["args"]["id"]))
    assert (stored.outcome, str(stored.client_id), str(stored.user_id)) == ("talked", cid,
                                                                           str(world.users["head_office"].id))
    pages, _ = pull_all(gardien, cid, cursor)
    assert mutation["args"]["id"] in {c["id"] for p in pages for c in p["changes"]}

    resolved = _items(head, "/api/review/rejections?state=resolved")["items"]
    (done,) = [r for r in resolved if r["id"] == str(rejection.id)]
    assert (done["status"], done["args"], done["resolved_by_name"]) == (
        "fixed", None, world.users["head_office"].display_name)
    assert done["resolved_at"] is not None
    assert str(rejection.id) not in {r["id"] for r in _items(head, "/api/review/rejections")["items"]}
    assert head.post(f"/api/review/rejections/{rejection.id}/fix", json={"args": {}}).status_code == 409
    audit = db.session.execute(sa.select(AuditLog).where(AuditLog.action == "rejection.fix")).scalar_one()
    assert audit.subject == str(rejection.id)
    # the device's replay still gets the answer it was given, from its log
    replay = push(gardien, cid, [mutation]).get_json()["results"][0]
    assert replay["status"] == "rejected" and replay["replayed"] is True


@pytest.mark.parametrize("args", [{"outcome": "toujours-pas"}, {"couleur": "bleu"},
                                  {"household_id": "00000000-0000-0000-0000-000000000000"}])
def test_a_fix_still_refused_is_422_and_writes_nothing(world, as_role, args):
    _, _, mutation, rejection = _rejected_visit(world, as_role, outcome="peut-etre")
    resp = as_role("admin").post(f"/api/review/rejections/{rejection.id}/fix", json={"args": args})
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "still_rejected"
    db.session.expire_all()
    assert db.session.get(Rejection, rejection.id).status == "open"
    assert db.session.get(Visit, uuid.UUID(mutation["args"]["id"])) is None


def test_fix_body_is_strict(world, as_role):
    head = as_role("head_office")
    url = f"/api/review/rejections/{world['own_rejection']}/fix"
    assert head.post(url, json={}).status_code == 422
    assert head.post(url, json={"args": {}, "extra": 1}).status_code == 422
    assert head.post(f"/api/review/rejections/{uuid.uuid4()}/fix", json={"args": {}}).status_code == 404


def test_conflicts_carry_both_values_who_when_and_what(world, as_role):
    head = as_role("head_office")
    (own,) = [c for c in _items(head, "/api/review/conflicts")["items"] if c["id"] == world["own_conflict"]]
    assert (own["field"], own["kept_value"], own["lost_value"]) == ("phone", "06 12 34 56 78", "07 00 00 00 00")
    assert own["label"].startswith("Odette Lemaire (Résidence own")
    assert own["created_at"] and own["status"] == "open"


def test_an_edited_conflict_value_reaches_devices_and_records_who(world, as_role):
    staff, head = as_role("staff"), as_role("head_office")
    cid = str(uuid.uuid4())
    _, cursor = pull_all(staff, cid)
    url = f"/api/review/conflicts/{world['own_conflict']}/resolve"
    assert head.post(url, json={"value": "07 11 22 33 44"}).status_code == 200
    pages, _ = pull_all(staff, cid, cursor)
    (change,) = [c for p in pages for c in p["changes"] if c["id"] == world["own_resident"]]
    assert change["data"]["phone"] == "07 11 22 33 44"
    (done,) = _items(head, "/api/review/conflicts?state=resolved")["items"]
    assert done["resolution"] == {"value": "07 11 22 33 44"}
    assert done["resolved_by_name"] == world.users["head_office"].display_name and done["resolved_at"]
    assert head.post(url, json={"keep": "kept"}).status_code == 409


@pytest.mark.parametrize("keep,expected", [("kept", "06 12 34 56 78"), ("lost", "07 00 00 00 00")])
def test_keeping_either_value(world, as_role, keep, expected):
    head = as_role("admin")
    url = f"/api/review/conflicts/{world['other_conflict']}/resolve"
    assert head.post(url, json={"keep": keep}).status_code == 200
    body = head.get(f"/api/residents/{world['other_resident']}").get_json()
    assert body["phone"] == expected


def test_duplicates_open_and_resolved_with_labels(world, as_role):
    head = as_role("head_office")
    body = _items(head, "/api/review/duplicates?per_page=1")
    assert (body["total"], body["per_page"], len(body["items"])) == (2, 1, 1)
    (own,) = [d for d in _items(head, "/api/review/duplicates")["items"] if d["id"] == world["own_duplicate"]]
    assert own["resident"]["label"].startswith("Odette Lemaire (Résidence own")
    assert own["candidate"]["id"] == world["own_resident"]
    assert head.post(f"/api/review/duplicates/{own['id']}/distinct").status_code == 200
    (done,) = _items(head, "/api/review/duplicates?state=resolved")["items"]
    assert (done["status"], done["resolved_by_name"]) == ("distinct", world.users["head_office"].display_name)


@pytest.mark.parametrize("query", ["?state=closed", "?per_page=500", "?page=0", "?sort=x"])
def test_queue_query_is_strict(world, as_role, query):
    for queue in ("conflicts", "duplicates", "rejections"):
        assert as_role("head_office").get(f"/api/review/{queue}{query}").status_code == 422
