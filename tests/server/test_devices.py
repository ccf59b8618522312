"""The state of each field device: what the sync API records (app version, pending count, last push and pull) and
head office's view of it, stalest first."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from server.extensions import db
from server.models import Device


def _devices(api, query=""):
    resp = api.get(f"/api/devices{query}")
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_push_and_pull_record_what_the_device_reports(world, as_role):
    gardien, head = as_role("gardien"), as_role("head_office")
    cid = str(uuid.uuid4())
    resp = gardien.post("/api/sync/push", json={"client_id": cid, "app_version": "1.4.2", "pending": 7,
                                                 "mutations": []})
    assert resp.status_code == 200, resp.get_json()
    (device,) = _devices(head)
    assert (device["client_id"], device["app_version"], device["pending_reported"]) == (cid, "1.4.2", 7)
    assert device["last_push_at"] is not None and device["last_pull_at"] is None
    assert device["last_sync_at"] == device["last_push_at"] and device["days_since_sync"] == 0
    assert device["stale"] is False
    assert device["user"]["id"] == world["own_gardien"] and device["user"]["role"] == "gardien"
    assert device["user"]["name"] == world.users["gardien"].display_name
    assert [s["name"] for s in device["sites"]] == ["Résidence own"]

    assert gardien.post("/api/sync/pull", json={"client_id": cid, "cursor": None}).status_code == 200
    (device,) = _devices(head)
    assert device["last_pull_at"] is not None and device["last_sync_at"] == device["last_pull_at"]
    # a later push reporting nothing pending brings the count down
    gardien.post("/api/sync/push", json={"client_id": cid, "app_version": "1.4.3", "pending": 0, "mutations": []})
    (device,) = _devices(head)
    assert (device["app_version"], device["pending_reported"]) == ("1.4.3", 0)


def test_stalest_first_and_the_stale_threshold(world, as_role):
    now = datetime.now(timezone.utc)
    gardien, staff = world.users["gardien"], world.users["staff"]
    fresh, old, never = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    db.session.add_all([
        Device(client_id=fresh, user_id=gardien.id, last_push_at=now - timedelta(hours=2)),
        Device(client_id=old, user_id=staff.id, last_push_at=now - timedelta(days=6),
               last_pull_at=now - timedelta(days=5, hours=1), pending_reported=12, app_version="1.3.0"),
        Device(client_id=never, user_id=staff.id),
    ])
    db.session.commit()
    head = as_role("admin")
    devices = _devices(head)
    assert [d["client_id"] for d in devices] == [str(never), str(old), str(fresh)]
    assert [d["stale"] for d in devices] == [True, True, False]
    assert [d["days_since_sync"] for d in devices] == [None, 5, 0]
    assert devices[1]["pending_reported"] == 12
    relaxed = _devices(head, "?stale_days=7")
    assert [d["stale"] for d in relaxed] == [True, False, False]


@pytest.mark.parametrize("query", ["?stale_days=0", "?stale_days=abc", "?stale=1"])
def test_bad_query_is_422(world, as_role, query):
    assert as_role("head_office").get(f"/api/devices{query}").status_code == 422


def test_field_roles_are_refused(world, as_role):
    for role in ("gardien", "staff"):
        assert as_role(role).get("/api/devices").status_code == 403
