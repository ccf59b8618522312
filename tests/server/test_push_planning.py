"""Reminder planning: offsets, quiet hours, late subscribers, moved and cancelled events."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from server import push
from server.extensions import db
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


def test_cancelled_event_drops_pending_and_tells_those_already_reminded(agenda, make, fake_push):
    site = make.site()
    ev = agenda.event([site], NOW + timedelta(hours=25))
    early, _ = agenda.subscribe(site, name="early", now=NOW)
    assert push.send_due(now=NOW + timedelta(hours=1)) == {"sent": 1}
    late, _ = agenda.subscribe(site, name="late", now=NOW + timedelta(hours=2))  # only its 2 h reminder planned
    ev.status = "cancelled"
    cancelled_at = paris(2026, 6, 1, 23, 0)  # in quiet hours, the event tomorrow at 11:00: notice at 08:00
    assert push.cancel_event(ev, now=cancelled_at) == 1
    db.session.commit()
    assert {(d.subscription_id == early.id, d.kind, d.state) for d in deliveries(event_id=ev.id)} == {
        (True, "reminder", "sent"), (True, "reminder", "dropped"), (False, "reminder", "dropped"),
        (True, "cancelled", "pending")}
    assert deliveries(kind="cancelled")[0].due_at == paris(2026, 6, 2, 8, 0)
    assert push.send_due(now=paris(2026, 6, 2, 8, 0)) == {"sent": 1}
    notice = fake_push.received[-1]
    assert (notice["name"], notice["payload"]["type"], notice["urgency"]) == ("early", "cancelled", "high")
    assert notice["topic"] == fake_push.received[0]["topic"]  # replaces the reminder if still undelivered
    assert push.cancel_event(ev, now=paris(2026, 6, 2, 8, 5)) == 0  # twice: no second notice
