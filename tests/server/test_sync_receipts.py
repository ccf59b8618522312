"""Replays answered from their receipt: the same bytes as a push applied before get the answer the full path gives,
without being parsed or decided again (docs/PROTOCOL.md, Replays)."""
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

import server.api.sync as sync_api
from server.extensions import db
from server.models import Conflict, Device, MutationRun, PushReceipt, Rejection, Visit


def _now(**delta):
    return (datetime.now(timezone.utc) + timedelta(**delta)).isoformat()


def _visit(n, household_id, **kw):
    args = {"id": str(uuid.uuid4()), "household_id": str(household_id), "visited_at": _now(), "outcome": "talked",
            **kw}
    return {"n": n, "op": "visit.create", "at": _now(), "args": args}


def _send(api, raw: bytes):
    return api.client.post("/api/sync/push", data=raw,
                           headers={**api._headers(), "Content-Type": "application/json"})


def _counts():
    return {m.__tablename__: db.session.execute(sa.select(sa.func.count()).select_from(m)).scalar_one()
            for m in (Visit, MutationRun, Rejection, Conflict, PushReceipt)}


def _mixed_batch(world, as_role, pull_base):
    """A staff device whose batch holds an applied visit, a rejected one and an update that loses a field."""
    hh = world["own_household"]
    first = as_role("gardien")
    rid = world["own_resident"]
    update = {"op": "resident.update", "args": {"id": rid, "base_seq": pull_base, "changes": {"consent_image": True}}}
    resp = first.post("/api/sync/push", json={"client_id": str(uuid.uuid4()), "mutations": [
        {"n": 1, "at": _now(), **update}]})
    assert resp.status_code == 200 and resp.get_json()["results"][0]["status"] == "applied"
    return [_visit(1, hh), _visit(2, hh, outcome="peut-être"),
            {"n": 3, "at": _now(), "op": "resident.update",
             "args": {"id": rid, "base_seq": pull_base, "changes": {"consent_image": False}}}]


def _resident_seq(api, rid):
    resp = api.post("/api/sync/pull", json={"client_id": str(uuid.uuid4()), "cursor": None, "limit": 2000})
    return next(c["seq"] for c in resp.get_json()["changes"] if c["id"] == rid)


def test_same_bytes_are_answered_from_the_receipt_as_the_full_path_would(world, as_role, monkeypatch):
    staff = as_role("staff")
    batch = _mixed_batch(world, as_role, _resident_seq(staff, world["own_resident"]))
    cid = str(uuid.uuid4())
    raw = json.dumps({"client_id": cid, "app_version": "1.0", "pending": 3, "mutations": batch}).encode()
    first = _send(staff, raw)
    assert first.status_code == 200
    assert [(r["n"], r["status"], r.get("conflicts")) for r in first.get_json()["results"]] == [
        (1, "applied", None), (2, "rejected", None), (3, "applied", ["consent_image"])]
    stored = _counts()
    receipt = db.session.execute(sa.select(PushReceipt).where(PushReceipt.client_id == uuid.UUID(cid))).scalar_one()
    assert (receipt.first_n, receipt.last_n) == (1, 3)

    # The same bytes: never parsed, answered as replays, nothing written.
    with monkeypatch.context() as m:
        m.setattr(sync_api, "parse_push", lambda *a, **k: pytest.fail("the replay was parsed again"))
        again = _send(staff, raw)
    assert again.status_code == 200
    # The same mutations in other bytes (indented): the full path, which compares each body with the log.
    full = _send(staff, json.dumps(json.loads(raw), indent=2).encode())
    assert full.status_code == 200
    assert again.get_json() == full.get_json()
    assert [r.get("replayed") for r in again.get_json()["results"]] == [True, True, True]
    assert again.get_json()["results"][1]["reason"] == first.get_json()["results"][1]["reason"]
    assert again.get_json()["last_applied"] == 3
    db.session.rollback()
    assert _counts() == stored


def test_the_receipt_answers_with_the_devices_counter_now(world, as_role):
    staff = as_role("staff")
    cid, hh = str(uuid.uuid4()), world["own_household"]
    raw = json.dumps({"client_id": cid, "mutations": [_visit(1, hh), _visit(2, hh)]}).encode()
    assert _send(staff, raw).get_json()["last_applied"] == 2
    assert staff.post("/api/sync/push", json={"client_id": cid, "mutations": [_visit(3, hh)]}).status_code == 200
    body = _send(staff, raw).get_json()
    assert body["last_applied"] == 3 and [r["n"] for r in body["results"]] == [1, 2]


def test_another_users_bytes_are_refused_not_answered(world, as_role, login, make):
    cid, hh = str(uuid.uuid4()), world["own_household"]
    raw = json.dumps({"client_id": cid, "mutations": [_visit(1, hh)]}).encode()
    assert _send(as_role("staff"), raw).status_code == 200
    other = login(make.user("staff", sites=[]))
    resp = _send(other, raw)
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "device_not_yours"


def test_a_refused_request_leaves_no_receipt(world, as_role):
    staff = as_role("staff")
    cid, hh = str(uuid.uuid4()), world["own_household"]
    gap = json.dumps({"client_id": cid, "mutations": [_visit(2, hh)]}).encode()
    assert _send(staff, gap).status_code == 409
    assert staff.post("/api/sync/push", json={"client_id": cid, "mutations": [_visit(1, hh)]}).status_code == 200
    # The bytes refused for their gap are now next in line: applied for real, not taken for a replay.
    body = _send(staff, gap).get_json()
    assert body["results"] == [{"n": 2, "status": "applied"}]


def test_receipts_leave_with_their_device(world, as_role):
    staff = as_role("staff")
    cid = str(uuid.uuid4())
    raw = json.dumps({"client_id": cid, "mutations": [_visit(1, world["own_household"])]}).encode()
    assert _send(staff, raw).status_code == 200
    db.session.rollback()
    db.session.execute(sa.delete(Device).where(Device.client_id == uuid.UUID(cid)))
    db.session.commit()
    assert db.session.execute(sa.select(sa.func.count()).select_from(PushReceipt).where(
        PushReceipt.client_id == uuid.UUID(cid))).scalar_one() == 0
