"""The stored pull texts (models.Synced.wire) and a server restart on the same database.

A push stores each record's pull change as JSON text; a pull splices those texts unparsed. These tests hold the
stored texts equal to what the columns give, check that a row changed around the push (review, scrub, seeding)
is served from its columns and never from a stale text, and run a second app instance on the same database."""
import json
import uuid
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

from server import create_app
from server.extensions import db
from server.models import Household, Resident, User, Visit
from server.sync_store import RESTRICTED_FIELDS, TABLES, WIRE_ENTITIES, SqlStore, refresh_wire
from sync.pull import change_fields, change_text
from sync.wire import expand_change

from .test_sync_api import pull_all, push, visit


def _now(**delta):
    return (datetime.now(timezone.utc) + timedelta(**delta)).isoformat()


def _every_op(world, n0=1):
    """Mutations touching every entity with a stored text: creates, field merges, deletes, a revived check-in."""
    resident, engagement, attendance = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    gone = str(uuid.uuid4())
    muts = [
        visit(0, world["own_household"], resident_id=world["own_resident"], interests=[world["own_action"]],
              needs=["isolement", "courses"], note="Rappeler jeudi — « atelier »"),
        # a phone's clock an hour east of UTC: the text must hold the instant as the UTC column gives it back
        visit(0, world["own_household"], visited_at=datetime.now(timezone(timedelta(hours=1))).isoformat()),
        {"op": "resident.create", "args": {"id": resident, "household_id": world["own_household"],
                                           "first_name": "Léonie", "last_name": "Dutertre", "phone": "06 99 88 77 66",
                                           "email": "leonie@exemple.fr", "consent_contact": True}},
        {"op": "resident.update", "args": {"id": world["own_resident"], "base_seq": 0,
                                           "changes": {"phone": "07 11 22 33 44", "consent_image": True}}},
        {"op": "household.update", "args": {"id": world["own_household"], "base_seq": 0,
                                            "changes": {"notes": "Digicode 1234B"}}},
        {"op": "engagement.create", "args": {"id": engagement, "resident_id": resident,
                                             "action_id": world["own_action"], "role": "volunteer",
                                             "started_on": date.today().isoformat()}},
        {"op": "engagement.update", "args": {"id": engagement, "base_seq": 0,
                                             "changes": {"status": "paused", "ended_on": None}}},
        {"op": "attendance.create", "args": {"id": attendance, "event_id": world["own_event"],
                                             "resident_id": resident, "checked_in_at": _now()}},
        {"op": "attendance.delete", "args": {"id": attendance}},
        {"op": "attendance.create", "args": {"id": str(uuid.uuid4()), "event_id": world["own_event"],
                                             "resident_id": resident, "checked_in_at": _now(minutes=1)}},
        {"op": "headcount.create", "args": {"id": str(uuid.uuid4()), "event_id": world["own_event"],
                                            "site_id": world["own_site"], "category": "children", "count": 12,
                                            "counted_at": _now()}},
        {"op": "resident.create", "args": {"id": gone, "household_id": world["own_household"],
                                           "first_name": "Paul", "last_name": "Caron"}},
        {"op": "resident.delete", "args": {"id": gone}},
    ]
    for i, m in enumerate(muts):
        m["n"] = n0 + i
        m.setdefault("at", _now())
    return muts


def _stored_vs_columns():
    """For every row whose text is current: (stored change, change made from its columns), both parsed."""
    store, pairs = SqlStore(db.session), []
    for entity in sorted(WIRE_ENTITIES):
        t = TABLES[entity]
        stored = {str(i): (w, r) for i, w, r in db.session.execute(
            sa.select(t.c.id, t.c.wire, t.c.wire_restricted if entity in RESTRICTED_FIELDS else sa.null())
            .where(t.c.wire_seq == t.c.seq))}
        for rec in store.changes_since(entity, 0, None, None, True):
            if rec["id"] in stored:
                full, restricted = stored[rec["id"]]
                pairs.append((entity, json.loads(full), json.loads(change_text(entity, rec))))
                if entity in RESTRICTED_FIELDS:
                    pairs.append((entity, json.loads(restricted), json.loads(change_text(entity, rec, True))))
    return pairs


def test_push_stores_the_texts_a_pull_would_make_from_the_columns(world, as_role):
    resp = push(as_role("staff"), str(uuid.uuid4()), _every_op(world))
    assert resp.status_code == 200
    assert [r["status"] for r in resp.get_json()["results"]] == ["applied"] * 13
    pairs = _stored_vs_columns()
    entities = {e for e, _s, _c in pairs}
    # every entity with a stored text was written by this push (sites and actions come from the fixtures)
    assert {"visit", "resident", "household", "engagement", "attendance", "headcount"} <= entities
    for entity, stored, columns in pairs:
        assert stored == columns, entity
    tombstones = [s for _e, s, _c in pairs if s[3] is None]  # rows: [entity, id, seq, values or null]
    assert tombstones and all(len(s) == 4 for s in tombstones)


def test_gardien_pull_from_stored_texts_never_carries_phone_or_email(world, as_role):
    assert push(as_role("staff"), str(uuid.uuid4()), _every_op(world)).status_code == 200
    for role, sees_contact in (("gardien", False), ("staff", True)):
        pages, _ = pull_all(as_role(role), str(uuid.uuid4()))
        residents = [c for p in pages for c in p["changes"] if c["entity"] == "resident" and not c["deleted"]]
        assert {r["data"]["first_name"] for r in residents} >= {"Léonie", "Odette"}
        for r in residents:
            assert ("phone" in r["data"] and "email" in r["data"]) is sees_contact, role
        if sees_contact:
            by_name = {r["data"]["first_name"]: r["data"] for r in residents}
            assert by_name["Odette"]["phone"] == "07 11 22 33 44"
            assert by_name["Léonie"]["email"] == "leonie@exemple.fr"


def test_a_row_changed_around_the_push_is_served_from_its_columns_then_its_text_stored(world, as_role):
    staff = as_role("staff")
    assert push(staff, str(uuid.uuid4()), [visit(1, world["own_household"], note="avant")]).status_code == 200
    # Something other than a push (an import, a scrub, a merge) changes the visit and bumps its seq, leaving the
    # old text behind: a pull must send the new state.
    from server.database import next_seq
    db.session.execute(sa.update(Visit).values(note="après", seq=next_seq(db.session)))
    db.session.commit()
    (v,) = db.session.execute(sa.select(Visit.id, Visit.wire, Visit.wire_seq, Visit.seq)).all()
    assert "avant" in v.wire and v.wire_seq != v.seq
    pages, _ = pull_all(staff, str(uuid.uuid4()))
    (change,) = [c for p in pages for c in p["changes"] if c["entity"] == "visit"]
    assert change["data"]["note"] == "après" and change["seq"] == v.seq
    db.session.expire_all()
    wire, wire_seq = db.session.execute(sa.select(Visit.wire, Visit.wire_seq)).one()
    # stored by the pull, for the next one (as a row: format 1 pages expand it)
    assert wire_seq == v.seq and expand_change(json.loads(wire), {"visit": change_fields("visit", False)}) == change
    # refresh_wire (bench seeding, imports) finds nothing left to do for it, and fills the fixtures' rows
    assert refresh_wire(db.session) > 0
    db.session.commit()
    assert refresh_wire(db.session) == 0
    for entity, stored, columns in _stored_vs_columns():
        assert stored == columns, entity


def test_a_page_ends_after_every_record_sharing_its_last_seq(world, as_role):
    """Records sharing a seq (one statement stamped them) never split across pages, and has_more stays true
    when more follow them."""
    staff = as_role("staff")
    cid = str(uuid.uuid4())
    pages, cursor = pull_all(staff, cid)
    assert push(staff, str(uuid.uuid4()), [visit(n, world["own_household"]) for n in range(1, 6)]).status_code == 200
    seqs = sorted(db.session.execute(sa.select(Visit.seq)).scalars())
    shared = seqs[1]
    db.session.execute(sa.update(Visit).where(Visit.seq.in_(seqs[1:3])).values(seq=shared))
    db.session.commit()
    resp = staff.post("/api/sync/pull", json={"client_id": cid, "cursor": cursor, "limit": 2})
    page = resp.get_json()
    assert [c["seq"] for c in page["changes"]] == [seqs[0], shared, shared]
    assert page["has_more"] is True
    rest, _ = pull_all(staff, cid, page["cursor"])
    assert [c["seq"] for p in rest for c in p["changes"] if c["entity"] == "visit"] == seqs[3:]


def test_a_new_app_instance_on_the_same_database_continues(app, world, as_role):
    """A server restart: nothing of the first instance's memory is needed. The device's counter, its replay log
    and the records are all in the database, so a second create_app answers replays as replays (nothing twice),
    applies what follows, and its pull converges with the first instance's."""
    from flask_jwt_extended import create_access_token

    from tests.conftest import Api

    staff = as_role("staff")
    cid = str(uuid.uuid4())
    first = _every_op(world)
    assert push(staff, cid, first[:7]).status_code == 200
    before_pages, _ = pull_all(staff, str(uuid.uuid4()))

    staff_id = world.users["staff"].id
    db.session.remove()  # the fixture's open transaction ends here, as a stopped server's would
    other = create_app({**{k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "JWT_COOKIE_SECURE")},
                        "TESTING": True, "JOBS_IMMEDIATE": True})
    try:
        with other.app_context():
            token = create_access_token(identity=db.session.get(User, staff_id))
            db.session.remove()
        api = Api(other.test_client(), token)  # each request its own app context, as under gunicorn
        # the response to the first push was lost: the phone sends it again, then the rest
        resp = push(api, cid, first)
        assert resp.status_code == 200
        results = resp.get_json()["results"]
        assert [r.get("replayed", False) for r in results] == [True] * 7 + [False] * 6
        assert all(r["status"] == "applied" for r in results) and resp.get_json()["last_applied"] == 13
        gap = push(api, cid, [visit(15, world["own_household"])])
        assert gap.status_code == 409 and gap.get_json()["error"]["details"] == {"next_expected": 14}
        after_pages, _ = pull_all(api, str(uuid.uuid4()))
    finally:
        with other.app_context():
            db.engine.dispose()
    db.session.expire_all()
    assert db.session.execute(sa.select(sa.func.count()).select_from(Visit)).scalar_one() == 2  # once each
    assert db.session.execute(sa.select(sa.func.count()).select_from(Resident).where(
        Resident.first_name == "Léonie")).scalar_one() == 1
    before = {(c["entity"], c["id"]): c for p in before_pages for c in p["changes"]}
    after = {(c["entity"], c["id"]): c for p in after_pages for c in p["changes"]}
    # what the first instance sent is still there, changed only by the mutations applied after the restart
    assert set(before) <= set(after) | {("resident", m["args"]["id"]) for m in first if m["op"] == "resident.delete"}
    assert after[("household", world["own_household"])]["data"]["notes"] == "Digicode 1234B"
    # and the first instance, still running, serves the same state as the second
    again = {(c["entity"], c["id"]): c for p in pull_all(staff, str(uuid.uuid4()))[0] for c in p["changes"]}
    assert again == after
    assert db.session.execute(sa.select(sa.func.count()).select_from(Household)).scalar_one() == 2
