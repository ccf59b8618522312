"""Head office runs the agenda: create, edit, cancel; validation, seqs that reach devices, audit, reminders."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from server.extensions import db
from server.models import AuditLog, Event, PushDelivery, Site
from tests.server.push_support import agenda, deliveries, fake_push, push_app, vapid  # noqa: F401

URL = "/api/agenda/events"


def iso(dt: datetime) -> str:
    return dt.isoformat()


def body(site_ids, starts, hours=2, **over):
    return {"title": "Atelier couture", "kind": "atelier", "site_ids": [str(s) for s in site_ids],
            "starts_at": iso(starts), "ends_at": iso(starts + timedelta(hours=hours)), "place": "Local commun",
            "description": "Apportez vos tissus.", **over}


def pulled_events(api, client_id=None):
    """Every event change a device of this user pulls, from the start."""
    cursor, out = None, {}
    client_id = client_id or str(uuid.uuid4())
    while True:
        resp = api.post("/api/sync/pull", json={"client_id": client_id, "cursor": cursor, "limit": 500})
        assert resp.status_code == 200, resp.get_json()
        page = resp.get_json()
        out.update({c["id"]: c for c in page["changes"] if c["entity"] == "event"})
        cursor = page["cursor"]
        if not page["has_more"]:
            return out


def audit_rows(action):
    db.session.commit()
    return db.session.execute(sa.select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
                              ).scalars().all()


@pytest.fixture
def office(push_app, world, as_role):
    push_app.config["PUSH_QUIET_HOURS"] = ["00:00", "00:00"]  # the API runs on the wall clock
    return as_role("head_office")


def test_create_plans_reminders_audits_and_reaches_field_devices(office, world, as_role, agenda, make):
    site = db.session.get(Site, uuid.UUID(world["own_site"]))
    agenda.subscribe(site, name="resident", now=datetime.now(timezone.utc) - timedelta(days=1))
    gardien = as_role("gardien")
    device = str(uuid.uuid4())
    assert pulled_events(gardien, device)  # the world's event: the device is up to date
    seq_before = db.session.execute(sa.select(sa.func.max(Event.seq))).scalar()

    starts = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=3)
    resp = office.post(URL, json=body([site.id], starts))
    assert resp.status_code == 201, resp.get_json()
    ev = resp.get_json()
    assert (ev["title"], ev["kind"], ev["status"], ev["site_ids"]) == ("Atelier couture", "atelier", "scheduled",
                                                                      [str(site.id)])
    assert datetime.fromisoformat(ev["starts_at"]) == starts and ev["place"] == "Local commun"
    assert ev["created_by"] == str(world.users["head_office"].id)
    row = db.session.get(Event, uuid.UUID(ev["id"]))
    assert row.seq > seq_before
    # The site's subscriber gets its 24 h and 2 h reminders planned.
    assert {d.offset_minutes for d in deliveries(event_id=row.id)} == {1440, 120}
    (audit,) = audit_rows("event.create")
    assert audit.subject == ev["id"] and audit.details["reminders_planned"] == 2
    # The field device of that site pulls it; a device of another site does not.
    assert pulled_events(gardien)[ev["id"]]["data"]["title"] == "Atelier couture"
    resp = office.post(URL, json=body([world["other_site"]], starts, title="Ailleurs"))
    assert resp.status_code == 201
    assert resp.get_json()["id"] not in pulled_events(gardien)


@pytest.mark.parametrize("over, field, message", [
    ({"ends_at": "2031-03-04T14:00:00+01:00"}, "ends_at", "La fin doit être après le début."),
    ({"ends_at": "2031-03-04T13:00:00+01:00"}, "ends_at", "La fin doit être après le début."),
    ({"kind": "fete"}, "kind", "Type d'événement inconnu."),
    ({"site_ids": []}, "site_ids", "Choisissez entre 1 et 200 sites."),
    ({"site_ids": [str(uuid.uuid4())]}, "site_ids", "Site inconnu."),
    ({"starts_at": "2031-03-04T14:00:00"}, "starts_at", "Indiquez le fuseau horaire (ex. +01:00)."),
    ({"title": "   "}, "title", "Longueur invalide (entre 1 et 200 caractères)."),
    ({"status": "cancelled"}, "status", "Champ inconnu."),
    ({"capacity": 12}, "capacity", "Champ inconnu."),
])
def test_create_refuses_bad_input_in_french(office, world, over, field, message):
    data = {**body([world["own_site"]], datetime(2031, 3, 4, 13, tzinfo=timezone.utc)), **over}
    before = db.session.execute(sa.select(sa.func.count()).select_from(Event)).scalar()
    resp = office.post(URL, json=data)
    assert resp.status_code == 422, resp.get_json()
    err = resp.get_json()["error"]
    assert err["code"] == "validation_error" and message in err["details"][field]
    assert db.session.execute(sa.select(sa.func.count()).select_from(Event)).scalar() == before
    assert audit_rows("event.create") == []


def test_edit_time_replans_and_tells_the_reminded_once(office, world, agenda, make, fake_push):
    site = db.session.get(Site, uuid.UUID(world["own_site"]))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    agenda.subscribe(site, name="early", now=now - timedelta(days=1))
    # Starting in 1 h 55: its 2 h reminder is due, and the create sends it at once (jobs run inline in tests).
    resp = office.post(URL, json=body([site.id], now + timedelta(hours=1, minutes=55)))
    assert resp.status_code == 201
    ev_id = resp.get_json()["id"]
    assert [(r["name"], r["payload"]["type"]) for r in fake_push.received] == [("early", "reminder")]
    agenda.subscribe(site, name="late", now=now)  # nothing sent to it yet
    seq = db.session.get(Event, uuid.UUID(ev_id)).seq

    new_start = now + timedelta(hours=6)
    resp = office.patch(f"{URL}/{ev_id}", json={"starts_at": iso(new_start), "ends_at": iso(new_start + timedelta(hours=2)),
                                                "place": "Salle Vauban"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["place"] == "Salle Vauban"
    moved = [r for r in fake_push.received if r["payload"]["type"] == "moved"]
    assert [m["name"] for m in moved] == ["early"]
    assert datetime.fromisoformat(moved[0]["payload"]["starts_at"]) == new_start
    assert moved[0]["payload"]["place"] == "Salle Vauban"
    row = db.session.get(Event, uuid.UUID(ev_id))
    db.session.refresh(row)
    assert row.seq > seq
    (audit,) = audit_rows("event.update")
    assert audit.details["changed"] == ["ends_at", "place", "starts_at"]
    assert datetime.fromisoformat(audit.details["previous_starts_at"]) == now + timedelta(hours=1, minutes=55)
    # Pending 2 h reminders follow the new time (the late subscriber's); the sent one is not sent again.
    assert {(d.state, d.due_at) for d in deliveries(event_id=row.id, kind="reminder", offset_minutes=120)} == {
        ("sent", now + timedelta(minutes=-5)), ("pending", now + timedelta(hours=4))}

    # The same values again: nothing changes, no seq spent, no audit, no notice.
    seq = row.seq
    resp = office.patch(f"{URL}/{ev_id}", json={"starts_at": iso(new_start), "place": "Salle Vauban"})
    assert resp.status_code == 200
    db.session.refresh(row)
    assert row.seq == seq and len(audit_rows("event.update")) == 1
    assert len([r for r in fake_push.received if r["payload"]["type"] == "moved"]) == 1
    # A title change only: a new seq for devices, no notice.
    assert office.patch(f"{URL}/{ev_id}", json={"title": "Atelier retouches"}).status_code == 200
    db.session.refresh(row)
    assert row.seq > seq and row.title == "Atelier retouches"
    assert len(fake_push.received) == 2 and len(audit_rows("event.update")) == 2


def test_edit_validates_against_the_stored_times(office, world):
    ev = world["own_event"]  # 2026-06-01 09:00 to 12:00 UTC
    resp = office.patch(f"{URL}/{ev}", json={"ends_at": "2026-06-01T08:00:00+00:00"})
    assert resp.status_code == 422 and resp.get_json()["error"]["details"] == {"ends_at": [
        "La fin doit être après le début."]}
    resp = office.patch(f"{URL}/{ev}", json={"site_ids": [str(uuid.uuid4())]})
    assert resp.status_code == 422 and resp.get_json()["error"]["details"] == {"site_ids": ["Site inconnu."]}
    assert office.patch(f"{URL}/{uuid.uuid4()}", json={"title": "x"}).status_code == 404
    assert office.patch(f"{URL}/{ev}", json={"title": "x", "status": "cancelled"}).status_code == 422
    assert audit_rows("event.update") == []


def test_cancel_notifies_reminded_and_waiting_once_and_freezes_the_event(office, world, agenda, fake_push):
    site = db.session.get(Site, uuid.UUID(world["own_site"]))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    agenda.subscribe(site, name="early", now=now - timedelta(days=1))
    ev_id = office.post(URL, json=body([site.id], now + timedelta(hours=1, minutes=55))).get_json()["id"]
    agenda.subscribe(site, name="other-kind", kinds=["sortie"], now=now)
    far = office.post(URL, json=body([site.id], now + timedelta(days=10))).get_json()["id"]
    seq = db.session.get(Event, uuid.UUID(ev_id)).seq

    resp = office.post(f"{URL}/{ev_id}/cancel")
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    row = db.session.get(Event, uuid.UUID(ev_id))
    db.session.refresh(row)
    assert row.status == "cancelled" and row.seq > seq
    assert fake_push.deliveries() == {("early", ev_id, "reminder"): 1, ("early", ev_id, "cancelled"): 1}
    (audit,) = audit_rows("event.cancel")
    assert audit.subject == ev_id and audit.details["notices_planned"] == 1

    # Again: the same answer, no second notice, no second audit, no new seq.
    seq = row.seq
    again = office.post(f"{URL}/{ev_id}/cancel", json={})
    assert again.status_code == 200 and again.get_json()["status"] == "cancelled"
    db.session.refresh(row)
    assert row.seq == seq and len(audit_rows("event.cancel")) == 1
    assert len(fake_push.received) == 2
    assert office.post(f"{URL}/{ev_id}/cancel", json={"reason": "pluie"}).status_code == 422
    resp = office.patch(f"{URL}/{ev_id}", json={"title": "Autre"})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "event_cancelled"

    # An event in ten days: its subscriber was only waiting for reminders, and is told too.
    assert office.post(f"{URL}/{far}/cancel").status_code == 200
    assert fake_push.deliveries()[("early", far, "cancelled")] == 1
    assert {d.state for d in deliveries(event_id=uuid.UUID(far), kind="reminder")} == {"dropped"}
    assert db.session.execute(sa.select(sa.func.count()).select_from(PushDelivery).where(
        PushDelivery.kind == "cancelled")).scalar() == 2


def test_list_pages_and_filters(office, world):
    base = datetime(2031, 5, 1, 8, tzinfo=timezone.utc)
    ids = [office.post(URL, json=body([world["own_site"]], base + timedelta(days=i), title=f"E{i}")).get_json()["id"]
           for i in range(5)]
    office.post(URL, json=body([world["other_site"]], base, title="Ailleurs"))
    office.post(f"{URL}/{ids[4]}/cancel")

    own = world["own_site"]

    def get(**query):
        resp = office.get(URL, query_string=query)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    page = get(site_id=own, **{"from": iso(base)}, per_page=2)
    assert (page["total"], page["page"], page["per_page"]) == (4, 1, 2)
    assert [e["title"] for e in page["items"]] == ["E0", "E1"]
    page2 = get(site_id=own, **{"from": iso(base)}, per_page=2, page=2)
    assert [e["title"] for e in page2["items"]] == ["E2", "E3"]
    with_cancelled = get(site_id=own, **{"from": iso(base)}, include_cancelled=1)
    assert [e["title"] for e in with_cancelled["items"]] == ["E0", "E1", "E2", "E3", "E4"]
    assert with_cancelled["items"][-1]["status"] == "cancelled"
    until = get(**{"from": iso(base), "to": iso(base + timedelta(days=1))})
    assert sorted(e["title"] for e in until["items"]) == ["Ailleurs", "E0", "E1"]
    assert world["own_event"] in {e["id"] for e in get()["items"]}  # past events are listed too
    bad = office.get(f"{URL}?from=demain")
    assert bad.status_code == 422 and "from" in bad.get_json()["error"]["details"]
    assert office.get(f"{URL}?colour=red").status_code == 422


def test_edits_and_cancellation_reach_a_device_that_pulled_before(office, world, as_role):
    gardien = as_role("gardien")
    device = str(uuid.uuid4())

    def pull(cursor):
        changes = {}
        while True:
            page = gardien.post("/api/sync/pull", json={"client_id": device, "cursor": cursor}).get_json()
            changes.update({c["id"]: c for c in page["changes"] if c["entity"] == "event"})
            cursor = page["cursor"]
            if not page["has_more"]:
                return changes, cursor

    first, cursor = pull(None)
    ev = world["own_event"]
    assert first[ev]["data"]["title"] == "Atelier own"
    assert pull(cursor)[0] == {}  # up to date
    assert office.patch(f"{URL}/{ev}", json={"title": "Atelier tricot", "place": "Salle B"}).status_code == 200
    edited, cursor = pull(cursor)
    assert (edited[ev]["data"]["title"], edited[ev]["data"]["place"]) == ("Atelier tricot", "Salle B")
    assert office.post(f"{URL}/{ev}/cancel").status_code == 200
    cancelled, _ = pull(cursor)
    assert cancelled[ev]["data"]["status"] == "cancelled" and cancelled[ev]["seq"] > edited[ev]["seq"]
