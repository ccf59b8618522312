"""The team screen's needs of /api/users: roles, sites, active flag, the last sync of the user's devices; create,
change role and sites, deactivate (tokens refused at once, tested in test_auth); an admin cannot lock themself out."""
import uuid
from datetime import datetime, timedelta, timezone

from server.extensions import db
from server.models import Device


def test_list_gives_role_sites_active_and_last_sync(world, as_role):
    gardien = world.users["gardien"]
    older, newer = datetime.now(timezone.utc) - timedelta(days=4), datetime.now(timezone.utc) - timedelta(hours=1)
    db.session.add_all([Device(client_id=uuid.uuid4(), user_id=gardien.id, last_push_at=older),
                        Device(client_id=uuid.uuid4(), user_id=gardien.id, last_pull_at=newer)])
    db.session.commit()
    users = {u["id"]: u for u in as_role("admin").get("/api/users").get_json()}
    mine = users[str(gardien.id)]
    assert (mine["role"], mine["active"], [s["name"] for s in mine["sites"]]) == ("gardien", True, ["Résidence own"])
    assert datetime.fromisoformat(mine["last_sync_at"]) == newer
    assert users[str(world.users["head_office"].id)]["last_sync_at"] is None


def test_change_role_and_sites_then_deactivate(world, as_role):
    admin = as_role("admin")
    uid = world["own_gardien"]
    resp = admin.patch(f"/api/users/{uid}", json={"role": "staff", "site_ids": [world["other_site"]]})
    assert resp.status_code == 200
    assert (resp.get_json()["role"], [s["id"] for s in resp.get_json()["sites"]]) == ("staff", [world["other_site"]])
    assert admin.patch(f"/api/users/{uid}", json={"active": False}).get_json()["active"] is False


def test_an_admin_cannot_deactivate_or_demote_themself(world, as_role):
    admin = as_role("admin")
    me = str(world.users["admin"].id)
    for body in ({"active": False}, {"role": "head_office"}):
        resp = admin.patch(f"/api/users/{me}", json=body)
        assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "self_lockout"
    assert admin.patch(f"/api/users/{me}", json={"display_name": "Moi"}).status_code == 200
    assert admin.get("/api/users").status_code == 200  # still in
