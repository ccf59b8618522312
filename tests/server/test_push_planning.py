"""Reminder planning: offsets, quiet hours, late subscribers, moved and cancelled events."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from server import push
from server.extensions import db
from server.models import PushDelivery
from server.push.planning import quiet_shift
from tests.server.push_support import NOW, agenda, deliveries, fake_push, push_app, vapid  # noqa: F401

PARIS = ZoneInfo("Europe/Paris")


def paris(*args):
    return datetime(*args, tzinfo=PARIS).astimezone(timezone.utc)


@pytest.mark.parametrize("due, expected", [
    (paris(2026, 6, 1, 20, 59), paris(2026, 6, 1, 20, 59)),  # before 21:00: unchanged
    (paris(2026, 6, 1, 21, 0), paris(2026, 6, 2, 8, 0)),  # evening: next morning
    (paris(2026, 6, 1, 23, 30), paris(2026, 6, 2, 8, 0)),
    (paris(2026, 6, 2, 0, 15), paris(2026, 6, 2, 8, 0)),  # after midnight: same morning
    (paris(2026, 6, 2, 7, 59), paris(2026, 6, 2, 8, 0)),
    (paris(2026, 6, 2, 8, 0), paris(2026, 6, 2, 8, 0)),
    (paris(2026, 3, 28, 22, 0), paris(2026, 3, 29, 8, 0)),  # the night clocks go forward: 08:00 local (06:00 UTC)
])
def test_quiet_hours_shift_to_eight(push_app, due, expected):
    with push_app.app_context():
        assert quiet_shift(due) == expected


def test_default_offsets_24h_and_2h_with_quiet_hours(agenda, make):
    site = make.site()
    morning = agenda.event([site], paris(2026, 6, 10, 9, 0))  # 2 h before = 07:00 -> 08:00
    evening = agenda.event([site], paris(2026, 6, 10, 18, 0))
    agenda.subscribe(site, now=paris(2026, 6, 1, 12, 0))
    due = {(d.event_id, d.offset_minutes): d.due_at for d in deliveries()}
    assert due == {(morning.id, 1440): paris(2026, 6, 9, 9, 0), (morning.id, 120): paris(2026, 6, 10, 8, 0),
                   (evening.id, 1440): paris(2026, 6, 9, 18, 0), (evening.id, 120): paris(2026, 6, 10, 16, 0)}


def test_a_reminder_is_not_shifted_past_the_end_of_the_event(agenda, make):
    site = make.site()
    agenda.event([site], paris(2026, 6, 10, 5, 0), hours=2)  # over at 07:00: the 2 h reminder would be at 08:00
    agenda.subscribe(site, now=paris(2026, 6, 1, 12, 0))
    assert [d.offset_minutes for d in deliveries()] == [1440]  # 24 h before: 05:00 -> 08:00 the day before


def test_kinds_sites_and_late_subscribers(agenda, make):
    site, other = make.site(), make.site()
    atelier = agenda.event([site, other], NOW + timedelta(hours=30))
    agenda.event([site], NOW + timedelta(hours=30), kind="sortie")  # not a chosen kind
    agenda.event([other], NOW + timedelta(hours=30))  # not this site
    soon = agenda.event([site], NOW + timedelta(hours=5))  # the 24 h reminder passed before subscribing
    sub, _ = agenda.subscribe(site, kinds=["atelier", "reunion"], now=NOW)
    assert sorted((d.event_id == atelier.id, d.offset_minutes) for d in deliveries()) == [
        (False, 120), (True, 120), (True, 1440)]
    assert {d.event_id for d in deliveries(offset_minutes=120)} == {atelier.id, soon.id}
    assert push.plan_reminders(NOW) == 0  # idempotent
    assert len(deliveries()) == 3


def test_new_event_is_scheduled_for_current_subscribers(agenda, make):
    site = make.site()
    agenda.subscribe(site, now=NOW)
    assert deliveries() == []
    ev = agenda.event([site], NOW + timedelta(days=3))
    assert push.schedule_for_event(ev, now=NOW) == 2
    db.session.commit()
    assert {d.offset_minutes for d in deliveries(event_id=ev.id)} == {1440, 120}


def test_moved_event_reschedules_pending_reminders_only(agenda, make, fake_push):
    site = make.site()
    ev = agenda.event([site], NOW + timedelta(hours=25))
    agenda.subscribe(site, name="a", now=NOW)
    assert push.send_due(now=NOW + timedelta(hours=1)) == {"sent": 1}  # the 24 h reminder
    ev.starts_at, ev.ends_at = paris(2026, 6, 3, 15, 0), paris(2026, 6, 3, 17, 0)
    push.reschedule_event(ev, now=NOW + timedelta(hours=2))
    db.session.commit()
    by_offset = {d.offset_minutes: d for d in deliveries(event_id=ev.id)}
    assert (by_offset[1440].state, by_offset[1440].due_at) == ("sent", NOW + timedelta(hours=1))
    assert (by_offset[120].state, by_offset[120].due_at) == ("pending", paris(2026, 6, 3, 13, 0))
    # Moved to another site: the pending reminder is dropped.
    ev.sites = [make.site()]
    push.reschedule_event(ev, now=NOW + timedelta(hours=2))
    db.session.commit()
    assert {d.offset_minutes: d.state for d in deliveries(event_id=ev.id)} == {1440: "sent", 120: "dropped"}


def test_cancelled_event_drops_pending_and_tells_those_reminded_or_waiting(agenda, make, fake_push):
    site = make.site()
    ev = agenda.event([site], NOW + timedelta(hours=25))
    early, _ = agenda.subscribe(site, name="early", now=NOW)
    assert push.send_due(now=NOW + timedelta(hours=1)) == {"sent": 1}
    late, _ = agenda.subscribe(site, name="late", now=NOW + timedelta(hours=2))  # only its 2 h reminder planned
    agenda.subscribe(site, kinds=["sortie"], name="other-kind", now=NOW)  # never concerned by this event
    _, gone_token = agenda.subscribe(site, name="withdrawn", now=NOW)
    push.unsubscribe(gone_token, now=NOW + timedelta(hours=3))
    ev.status = "cancelled"
    cancelled_at = paris(2026, 6, 1, 23, 0)  # in quiet hours, the event tomorrow at 11:00: notice at 08:00
    assert push.cancel_event(ev, now=cancelled_at) == 2
    db.session.commit()
    assert {(d.subscription_id, d.kind, d.state) for d in deliveries(event_id=ev.id)
            if d.subscription_id in (early.id, late.id)} == {
        (early.id, "reminder", "sent"), (early.id, "reminder", "dropped"), (late.id, "reminder", "dropped"),
        (early.id, "cancelled", "pending"), (late.id, "cancelled", "pending")}
    assert {d.due_at for d in deliveries(kind="cancelled")} == {paris(2026, 6, 2, 8, 0)}
    assert push.send_due(now=paris(2026, 6, 2, 8, 0)) == {"sent": 2}
    notices = {r["name"]: r for r in fake_push.received[1:]}
    assert set(notices) == {"early", "late"}
    assert {(n["payload"]["type"], n["urgency"]) for n in notices.values()} == {("cancelled", "high")}
    assert notices["early"]["topic"] == fake_push.received[0]["topic"]  # replaces the reminder if undelivered
    assert push.cancel_event(ev, now=paris(2026, 6, 2, 8, 5)) == 0  # twice: no second notice
    db.session.commit()
    assert push.send_due(now=paris(2026, 6, 2, 9, 0)) == {}
    assert fake_push.deliveries()[("early", str(ev.id), "cancelled")] == 1


def test_moved_event_tells_those_already_reminded_once_per_move(agenda, make, fake_push):
    site = make.site()
    ev = agenda.event([site], NOW + timedelta(hours=25))  # 2026-06-02 09:00 UTC, 11:00 in Paris
    agenda.subscribe(site, name="early", now=NOW)
    assert push.send_due(now=NOW + timedelta(hours=1)) == {"sent": 1}  # the 24 h reminder
    agenda.subscribe(site, name="late", now=NOW + timedelta(hours=2))  # not reminded yet: no notice for it
    old = ev.starts_at
    ev.starts_at, ev.ends_at = paris(2026, 6, 3, 15, 0), paris(2026, 6, 3, 17, 0)
    at = NOW + timedelta(hours=3)
    # Both pending 2 h reminders follow the event; one notice for the one reminded; the late subscriber's 24 h
    # reminder, past for the old time, is planned for the new one.
    assert push.reschedule_event(ev, now=at, previous_starts_at=old) == 2
    db.session.commit()
    (notice,) = deliveries(kind="moved")
    assert [d.state for d in deliveries(offset_minutes=1440)] == ["sent", "pending"]
    assert (notice.due_at, notice.offset_minutes) == (at, 1)
    assert {d.due_at for d in deliveries(offset_minutes=120, kind="reminder")} == {paris(2026, 6, 3, 13, 0)}
    # Saving the same time again is no move: no second notice.
    assert push.reschedule_event(ev, now=at, previous_starts_at=ev.starts_at) == 0
    assert push.send_due(now=at) == {"sent": 1}
    (got,) = [r for r in fake_push.received if r["payload"]["type"] == "moved"]
    assert got["name"] == "early" and got["payload"]["starts_at"] == "2026-06-03T15:00:00+02:00"
    assert got["topic"] == fake_push.received[0]["topic"] and got["urgency"] == "high"

    # A second move: a second notice. A third before that one is sent: the pending one is replaced, not added.
    old = ev.starts_at
    ev.starts_at, ev.ends_at = paris(2026, 6, 4, 15, 0), paris(2026, 6, 4, 17, 0)
    assert push.reschedule_event(ev, now=at + timedelta(hours=1), previous_starts_at=old) == 1
    old = ev.starts_at
    ev.starts_at, ev.ends_at = paris(2026, 6, 5, 15, 0), paris(2026, 6, 5, 17, 0)
    assert push.reschedule_event(ev, now=at + timedelta(hours=1), previous_starts_at=old) == 1
    db.session.commit()
    assert [(d.offset_minutes, d.state) for d in deliveries(kind="moved")] == [(1, "sent"), (2, "dropped"),
                                                                             (3, "pending")]
    assert push.send_due(now=at + timedelta(hours=1)) == {"sent": 1}
    moved = [r["payload"]["starts_at"] for r in fake_push.received if r["payload"]["type"] == "moved"]
    assert moved == ["2026-06-03T15:00:00+02:00", "2026-06-05T15:00:00+02:00"]

    # Cancelled afterwards: a pending move notice is dropped; both subscribers get the cancellation.
    old = ev.starts_at
    ev.starts_at, ev.ends_at = paris(2026, 6, 6, 15, 0), paris(2026, 6, 6, 17, 0)
    push.reschedule_event(ev, now=at + timedelta(hours=2), previous_starts_at=old)
    ev.status = "cancelled"
    assert push.cancel_event(ev, now=at + timedelta(hours=2)) == 2
    db.session.commit()
    assert deliveries(kind="moved")[-1].state == "dropped"
    assert push.send_due(now=at + timedelta(hours=2)) == {"sent": 2}
    assert {r["name"] for r in fake_push.received if r["payload"]["type"] == "cancelled"} == {"early", "late"}


def test_moved_notice_in_quiet_hours_waits_unless_too_late(agenda, make):
    site = make.site()
    ev = agenda.event([site], paris(2026, 6, 3, 10, 0))
    agenda.subscribe(site, name="a", now=NOW)
    db.session.execute(sa.update(PushDelivery).where(PushDelivery.offset_minutes == 1440).values(state="sent"))
    old = ev.starts_at
    ev.starts_at, ev.ends_at = paris(2026, 6, 3, 14, 0), paris(2026, 6, 3, 16, 0)
    push.reschedule_event(ev, now=paris(2026, 6, 2, 22, 0), previous_starts_at=old)
    assert deliveries(kind="moved")[0].due_at == paris(2026, 6, 3, 8, 0)
    old = ev.starts_at  # moved to 07:30: the morning would be too late, the notice goes at once
    ev.starts_at, ev.ends_at = paris(2026, 6, 3, 7, 30), paris(2026, 6, 3, 9, 0)
    push.reschedule_event(ev, now=paris(2026, 6, 2, 23, 0), previous_starts_at=old)
    assert deliveries(kind="moved", state="pending")[0].due_at == paris(2026, 6, 2, 23, 0)
