"""Retention: each kind of record just past its cut-off is purged, one just short of it is kept; purged synced
records leave the phones at their next pull; the CLI, the nightly job and a dry run."""
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from server.extensions import db

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
NOW = datetime.now(timezone.utc)


@pytest.fixture(autouse=True)
def _now():
    """The cut-offs are placed an hour either side of this test's start (the CLI and the job use the clock)."""
    global NOW
    NOW = datetime.now(timezone.utc)


def ago(days, plus=timedelta(0)):
    return NOW - days * DAY + plus


def _set(model, obj_id, **values):
    """Back-date a row (an explicit updated_at wins over the column's onupdate)."""
    db.session.execute(sa.update(model).where(model.id == obj_id).values(**values))
    db.session.commit()


@pytest.fixture
def aged(world, make, app):
    """Pairs of records on both sides of every retention cut-off (defaults: see server/config.py)."""
    from server.database import next_seq
    from server.models import (AuditLog, Conflict, Device, DuplicateSuspicion, Engagement, MutationRun, PushDelivery,
                               PushLink, PushReceipt, PushSubscription, Rejection, Resident, RevokedToken, Site, Visit)
    cfg = app.config
    site = db.session.get(Site, uuid.UUID(world["own_site"]))
    user = world.users["staff"]
    ids = {}
    action = make.action(name="Troc de vêtements", site=site)
    engaged_hh, quiet_hh = make.household(site), make.household(site)
    make.engagement(make.resident(engaged_hh, first_name="Active", last_name="Engagée"), action)

    def visit(hh, received, note="Note libre", **kw):
        v = Visit(household_id=hh.id, site_id=site.id, visited_at=received, received_at=received, outcome="talked",
                  note=note, needs=["budget"], seq=next_seq(db.session), **kw)
        db.session.add(v)
        db.session.flush()
        return v.id

    notes, visits = cfg["RETENTION_VISIT_NOTES_DAYS"], cfg["RETENTION_VISITS_DAYS"]
    ids["note_old"] = visit(engaged_hh, ago(notes, -HOUR))
    ids["note_young"] = visit(engaged_hh, ago(notes, HOUR))
    ids["visit_old"] = visit(quiet_hh, ago(visits, -HOUR))
    ids["visit_young"] = visit(quiet_hh, ago(visits, HOUR))
    ids["visit_old_engaged"] = visit(engaged_hh, ago(visits, -HOUR))
    db.session.commit()

    # Residents: one inactive past the cut-off, the others kept by age, a recent visit, an engagement.
    inactive = cfg["RETENTION_INACTIVE_RESIDENTS_DAYS"]
    people = {}
    for key, first in (("res_old", "Ancien"), ("res_young", "Récent"), ("res_visited", "Visité"),
                       ("res_engaged", "Engagé")):
        # (The engaged one lives where the action already is: the quiet household stays without engagement.)
        r = make.resident(engaged_hh if key == "res_engaged" else quiet_hh, first_name=first, last_name="Locataire")
        people[key] = r
        ids[key] = r.id
    for key, r in people.items():
        at = ago(inactive, HOUR) if key == "res_young" else ago(inactive, -HOUR)
        _set(Resident, r.id, created_at=at, updated_at=at)
    visit(quiet_hh, ago(10), resident_id=people["res_visited"].id)
    e = make.engagement(people["res_engaged"], action, started_on=date(2020, 1, 1))
    _set(Engagement, e.id, updated_at=ago(inactive, -HOUR), created_at=ago(inactive, -HOUR))
    # Deleted from a phone: the tombstone still holds the name until the purge.
    gone = make.resident(quiet_hh, first_name="Supprimée", last_name="Parunmobile", deleted=True)
    ids["res_deleted"] = gone.id
    db.session.commit()

    review = cfg["RETENTION_REVIEW_DAYS"]
    for side, at in (("old", ago(review, -HOUR)), ("young", ago(review, HOUR))):
        c = Conflict(entity="household", entity_id=engaged_hh.id, site_id=site.id, field="notes", kept_value="a",
                     kept_seq=1, lost_value="b", lost_base_seq=0, status="resolved", resolved_at=at)
        r = Rejection(client_id=uuid.uuid4(), n=1, site_id=site.id, op="visit.create", code="invalid",
                      reason={"code": "invalid"}, args=None, status="dismissed", resolved_at=at)
        d = DuplicateSuspicion(resident_id=people["res_young"].id, candidate_id=people["res_visited"].id,
                               site_id=site.id, status="distinct", resolved_at=at)
        db.session.add_all([c, r, d])
        db.session.flush()
        ids.update({f"conflict_{side}": c.id, f"rejection_{side}": r.id, f"suspicion_{side}": d.id})
    open_conflict = Conflict(entity="household", entity_id=engaged_hh.id, site_id=site.id, field="notes",
                             kept_value="a", kept_seq=1, lost_value="b", lost_base_seq=0, created_at=ago(1000))
    open_rejection = Rejection(client_id=uuid.uuid4(), n=2, site_id=site.id, op="visit.create", code="invalid",
                               reason={"code": "invalid"}, args={"note": "à corriger"}, created_at=ago(1000))
    db.session.add_all([open_conflict, open_rejection])
    db.session.flush()
    ids.update(open_conflict=open_conflict.id, open_rejection=open_rejection.id)

    device = Device(client_id=uuid.uuid4(), user_id=user.id)
    db.session.add(device)
    db.session.flush()
    log = cfg["RETENTION_MUTATION_LOG_DAYS"]
    db.session.add_all([
        MutationRun(client_id=device.client_id, first_n=1, last_n=1, entries=[["visit.create", "applied", "0" * 64]],
                    received_at=ago(log, -HOUR)),
        MutationRun(client_id=device.client_id, first_n=2, last_n=2, entries=[["visit.create", "applied", "1" * 64]],
                    received_at=ago(log, HOUR)),
        PushReceipt(digest="a" * 64, client_id=device.client_id, first_n=1, last_n=1, received_at=ago(log, -HOUR)),
        PushReceipt(digest="b" * 64, client_id=device.client_id, first_n=2, last_n=2, received_at=ago(log, HOUR))])
    audit_days = cfg["RETENTION_AUDIT_LOG_DAYS"]
    db.session.add_all([AuditLog(action="resident.read", subject="old", at=ago(audit_days, -HOUR)),
                        AuditLog(action="resident.read", subject="young", at=ago(audit_days, HOUR))])

    withdrawn = cfg["RETENTION_PUSH_WITHDRAWN_DAYS"]
    ev = uuid.UUID(world["own_event"])
    subs = {}
    for key, withdrawn_at in (("sub_old", ago(withdrawn, -HOUR)), ("sub_young", ago(withdrawn, HOUR)),
                              ("sub_active", None)):
        s = PushSubscription(site_id=site.id, kinds=["atelier"], consent_at=ago(2000), consent_text_version="v1",
                             withdrawn_at=withdrawn_at, token_hash=uuid.uuid4().hex,
                             endpoint=None if withdrawn_at else f"https://fcm.googleapis.com/{uuid.uuid4().hex}")
        db.session.add(s)
        db.session.flush()
        subs[key] = ids[key] = s.id
    deliveries = cfg["RETENTION_PUSH_DELIVERIES_DAYS"]
    for key, state, created in (("delivery_old", "sent", ago(deliveries, -HOUR)),
                                ("delivery_young", "sent", ago(deliveries, HOUR)),
                                ("delivery_pending", "pending", ago(deliveries, -HOUR)),
                                ("delivery_of_withdrawn", "dropped", ago(1))):
        sub = subs["sub_old"] if key == "delivery_of_withdrawn" else subs["sub_active"]
        d = PushDelivery(subscription_id=sub, event_id=ev, offset_minutes=len(ids), state=state, due_at=created,
                         created_at=created)
        db.session.add(d)
        db.session.flush()
        ids[key] = d.id
    tokens = cfg["RETENTION_REVOKED_TOKENS_DAYS"]
    for side, exp in (("old", ago(tokens, -HOUR)), ("young", ago(tokens, HOUR))):
        db.session.add(RevokedToken(jti=f"jti-{side}", user_id=user.id, expires_at=exp))
        link = PushLink(resident_id=people["res_young"].id, site_id=site.id, token_hash=uuid.uuid4().hex,
                        expires_at=exp)
        db.session.add(link)
        db.session.flush()
        ids[f"link_{side}"] = link.id
    db.session.commit()
    return ids


EXPECTED = {"visit_notes": 4, "visits": 1, "inactive_residents": 1, "deleted_residents": 1,
            "rejections_of_erased": 0, "conflicts": 1,
            "rejections": 1, "duplicate_suspicions": 1, "mutation_log": 1, "push_receipts": 1, "audit_log": 1,
            "push_subscriptions": 1, "push_deliveries": 1, "push_links": 1, "revoked_tokens": 1}


def _exists(model, key, value) -> bool:
    return db.session.execute(sa.select(sa.func.count()).select_from(model).where(key == value)).scalar_one() == 1


def test_each_kind_is_purged_past_its_cut_off_and_kept_before(aged):
    from server import privacy
    from server.models import (AuditLog, Conflict, DuplicateSuspicion, MutationRun, PushDelivery, PushLink,
                               PushReceipt, PushSubscription, Rejection, Resident, RevokedToken, Visit)
    counts = privacy.purge(now=NOW)
    db.session.commit()
    # visit_notes: every note older than a year, the visits that are then tombstoned included.
    assert counts == EXPECTED
    db.session.expire_all()
    v = {k: db.session.get(Visit, aged[k]) for k in ("note_old", "note_young", "visit_old", "visit_young",
                                                      "visit_old_engaged")}
    assert v["note_old"].note == "" and not v["note_old"].deleted
    assert v["note_young"].note == "Note libre"
    assert v["visit_old"].deleted and v["visit_old"].needs == [] and v["visit_old"].note == ""
    assert not v["visit_young"].deleted and v["visit_young"].needs == ["budget"]
    assert not v["visit_old_engaged"].deleted  # somebody in that household takes part in an action
    r = {k: db.session.get(Resident, aged[k]) for k in ("res_old", "res_young", "res_visited", "res_engaged",
                                                         "res_deleted")}
    assert r["res_old"].deleted and r["res_old"].first_name == ""
    assert [r[k].first_name for k in ("res_young", "res_visited", "res_engaged")] == ["Récent", "Visité", "Engagé"]
    assert r["res_deleted"].first_name == r["res_deleted"].last_name == ""
    for model, kind in ((Conflict, "conflict"), (Rejection, "rejection"), (DuplicateSuspicion, "suspicion"),
                        (PushLink, "link")):
        assert not _exists(model, model.id, aged[f"{kind}_old"]), kind
        assert _exists(model, model.id, aged[f"{kind}_young"]), kind
    # Open review items wait for a person, however old.
    assert _exists(Conflict, Conflict.id, aged["open_conflict"]) and _exists(Rejection, Rejection.id,
                                                                             aged["open_rejection"])
    assert db.session.execute(sa.select(MutationRun.first_n)).scalars().all() == [2]
    assert db.session.execute(sa.select(PushReceipt.first_n)).scalars().all() == [2]
    assert db.session.execute(sa.select(AuditLog.subject).where(AuditLog.action == "resident.read")).scalars().all() \
        == ["young"]
    assert not _exists(PushSubscription, PushSubscription.id, aged["sub_old"])
    assert _exists(PushSubscription, PushSubscription.id, aged["sub_young"])
    assert _exists(PushSubscription, PushSubscription.id, aged["sub_active"])
    assert sorted(db.session.execute(sa.select(PushDelivery.id)).scalars()) == sorted(
        [aged["delivery_young"], aged["delivery_pending"]])
    assert db.session.execute(sa.select(RevokedToken.jti)).scalars().all() == ["jti-young"]
    # The purge itself is audited, by nobody (the system), with its counts.
    row = db.session.execute(sa.select(AuditLog).where(AuditLog.action == "privacy.purge")).scalar_one()
    assert row.user_id is None and row.details == EXPECTED
    # A second run finds nothing more.
    assert set(privacy.purge(now=NOW).values()) == {0}


def test_purged_synced_records_leave_the_phones(aged, as_role):
    from server import privacy
    from .test_privacy import _apply, _pull_all
    gardien = as_role("gardien")
    client_id = str(uuid.uuid4())
    replica = {}
    changes, cursor = _pull_all(gardien, client_id)
    _apply(replica, changes)
    assert replica[("visit", str(aged["note_old"]))]["note"] == "Note libre"
    assert ("visit", str(aged["visit_old"])) in replica and ("resident", str(aged["res_old"])) in replica
    privacy.purge(now=NOW)
    db.session.commit()
    changes, _ = _pull_all(gardien, client_id, cursor)
    _apply(replica, changes)
    assert replica[("visit", str(aged["note_old"]))]["note"] == ""
    assert ("visit", str(aged["visit_old"])) not in replica
    assert ("resident", str(aged["res_old"])) not in replica
    assert replica[("visit", str(aged["note_young"]))]["note"] == "Note libre"
    assert ("resident", str(aged["res_young"])) in replica


def _table_counts():
    return {t.name: db.session.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in db.metadata.sorted_tables}


def test_a_dry_run_counts_the_same_and_changes_nothing(aged):
    from server import privacy
    from server.models import Visit
    before = _table_counts()
    assert privacy.purge(now=NOW, dry_run=True) == EXPECTED
    db.session.expire_all()
    assert _table_counts() == before
    assert db.session.get(Visit, aged["note_old"]).note == "Note libre"


def test_the_cli_prints_counts_per_kind(aged, runner):
    dry = runner.invoke(args=["purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "simulation" in dry.output
    lines = dict(line.split("\t") for line in dry.output.splitlines()[1:])
    # The CLI runs with today's clock: the fixture's cut-offs are an hour away from it on either side.
    assert {k: int(v) for k, v in lines.items()} == EXPECTED
    done = runner.invoke(args=["purge"])
    assert done.exit_code == 0 and "visits\t1" in done.output.splitlines()
    again = runner.invoke(args=["purge", "--dry-run"])
    assert set(again.output.splitlines()[1:]) == {f"{k}\t0" for k in EXPECTED}


def test_the_nightly_job_purges_and_commits(aged):
    from server import tasks
    from server.models import Visit
    assert tasks.purge_daily.call_local() == EXPECTED  # periodic tasks keep no result in huey: call the body
    db.session.rollback()
    assert db.session.get(Visit, aged["visit_old"]).deleted


def test_retention_settings_come_from_the_environment(monkeypatch, app):
    from server import create_app
    monkeypatch.setenv("PALIER_RETENTION_VISIT_NOTES_DAYS", "30")
    other = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "TESTING": True})
    assert other.config["RETENTION_VISIT_NOTES_DAYS"] == 30
    assert other.config["RETENTION_VISITS_DAYS"] == app.config["RETENTION_VISITS_DAYS"] == 3 * 365
    assert app.config["RETENTION_VISIT_NOTES_DAYS"] < app.config["RETENTION_VISITS_DAYS"]
