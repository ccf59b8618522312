"""Which deliveries exist and when they are due: offsets, quiet hours, moved and cancelled events."""
import uuid
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ..extensions import db
from ..models import Event, PushDelivery, PushSubscription, event_sites
from . import setting


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(timezone.utc)


def _hhmm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def quiet_shift(due: datetime) -> datetime:
    """A moment inside quiet hours moves to their end (08:00 local), never earlier."""
    tz = ZoneInfo(setting("PUSH_TIMEZONE"))
    start, end = (_hhmm(t) for t in setting("PUSH_QUIET_HOURS"))
    local = due.astimezone(tz)
    t = local.time()
    quiet = (t >= start or t < end) if start > end else (start <= t < end)
    if not quiet:
        return due
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz).astimezone(timezone.utc)


def reminder_due(event: Event, offset_minutes: int) -> datetime | None:
    """When the reminder `offset_minutes` before the event goes out; None when the event is over by then."""
    due = quiet_shift(event.starts_at - timedelta(minutes=offset_minutes))
    return None if due >= event.ends_at else due


def _insert_missing(rows: list[dict]) -> int:
    """Insert deliveries; one that exists already (same subscription, event, kind, offset) is left alone."""
    if not rows:
        return 0
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    now = datetime.now(timezone.utc)
    for r in rows:
        r.setdefault("state", "pending")
        r.setdefault("attempts", 0)
        r.setdefault("created_at", now)
    stmt = insert(PushDelivery).on_conflict_do_nothing(
        index_elements=["subscription_id", "event_id", "kind", "offset_minutes"]).returning(PushDelivery.id)
    return len(db.session.connection().execute(stmt, rows).all())


def _active_subscriptions(site_ids) -> dict[uuid.UUID, list[PushSubscription]]:
    q = sa.select(PushSubscription).where(PushSubscription.withdrawn_at.is_(None),
                                          PushSubscription.endpoint.is_not(None),
                                          PushSubscription.site_id.in_(site_ids))
    by_site: dict[uuid.UUID, list[PushSubscription]] = {}
    for sub in db.session.execute(q).scalars():
        by_site.setdefault(sub.site_id, []).append(sub)
    return by_site


def plan_reminders(now: datetime | None = None, event_ids=None) -> int:
    """Create the missing reminder deliveries of upcoming events (all, or `event_ids`). Idempotent."""
    now = _now(now)
    offsets = [int(o) for o in setting("PUSH_REMINDER_OFFSETS")]
    grace = timedelta(minutes=setting("PUSH_PLAN_GRACE"))
    horizon = now + timedelta(minutes=max(offsets, default=0)) + timedelta(days=1)
    q = sa.select(Event).where(Event.status == "scheduled", Event.deleted.is_(False), Event.ends_at > now)
    q = q.where(Event.id.in_(event_ids)) if event_ids is not None else q.where(Event.starts_at <= horizon)
    events = db.session.execute(q).scalars().all()
    if not events:
        return 0
    subs_by_site = _active_subscriptions({s for ev in events for s in ev.site_ids})
    existing = set(db.session.execute(
        sa.select(PushDelivery.subscription_id, PushDelivery.event_id, PushDelivery.offset_minutes)
        .where(PushDelivery.event_id.in_([ev.id for ev in events]), PushDelivery.kind == "reminder")).all())
    rows = []
    for ev in events:
        subs = {s.id: s for site_id in ev.site_ids for s in subs_by_site.get(site_id, [])}
        for sub in subs.values():
            if ev.kind not in sub.kinds:
                continue
            for offset in offsets:
                if (sub.id, ev.id, offset) in existing:
                    continue
                due = reminder_due(ev, offset)
                # A reminder whose moment passed before the resident subscribed is not sent late.
                if due is None or due < max(now, sub.consent_at) - grace:
                    continue
                rows.append({"subscription_id": sub.id, "event_id": ev.id, "kind": "reminder",
                             "offset_minutes": offset, "due_at": due})
    return _insert_missing(rows)


def schedule_for_event(event: Event, now: datetime | None = None) -> int:
    """A new event: plan its reminders for current subscribers. The caller commits."""
    db.session.flush()
    return plan_reminders(now, event_ids=[event.id])


def _notice_due(now: datetime, before: datetime) -> datetime:
    """When a notice about a change goes out: now, or the end of quiet hours unless that is too late."""
    due = quiet_shift(now)
    return now if due >= before else due


def _reminded(event_id, states=("sent", "sending")):
    """Active subscriptions that got (or are getting) a reminder of the event."""
    return (sa.select(PushDelivery.subscription_id).distinct()
            .join(PushSubscription, PushSubscription.id == PushDelivery.subscription_id)
            .where(PushDelivery.event_id == event_id, PushDelivery.kind == "reminder",
                   PushDelivery.state.in_(states), PushSubscription.withdrawn_at.is_(None),
                   PushSubscription.endpoint.is_not(None)))


def reschedule_event(event: Event, now: datetime | None = None, previous_starts_at: datetime | None = None) -> int:
    """An event edited (time, sites or kind): pending reminders follow it, then missing ones are planned.

    When its start moved (`previous_starts_at` given and different), whoever was already reminded of the old time
    gets one 'moved' notice (the payload carries the new time), exactly once per move; a notice of an earlier move
    not sent yet is dropped, since the new one says the same thing, later. The caller commits.
    Returns the number of reminders planned plus notices planned.
    """
    if event.status == "cancelled":
        return cancel_event(event, now)
    now = _now(now)
    db.session.flush()
    pending = db.session.execute(
        sa.select(PushDelivery, PushSubscription.site_id, PushSubscription.kinds)
        .join(PushSubscription, PushSubscription.id == PushDelivery.subscription_id)
        .where(PushDelivery.event_id == event.id, PushDelivery.kind == "reminder",
               PushDelivery.state == "pending")).all()
    sites = set(event.site_ids)
    for delivery, site_id, kinds in pending:
        due = reminder_due(event, delivery.offset_minutes)
        if due is None or site_id not in sites or event.kind not in kinds:
            delivery.state = "dropped"
        else:
            delivery.due_at = due
    db.session.flush()
    notices = 0
    if previous_starts_at is not None and previous_starts_at != event.starts_at and event.ends_at > now:
        notices = _plan_moved(event, now, min(previous_starts_at, event.starts_at))
    return plan_reminders(now, event_ids=[event.id]) + notices


def _plan_moved(event: Event, now: datetime, before: datetime) -> int:
    # Subscribers of a site the event left are not told here: the event is no longer on their agenda.
    reminded = db.session.execute(
        _reminded(event.id).where(PushSubscription.site_id.in_(event.site_ids or [uuid.UUID(int=0)]))
    ).scalars().all()
    moved = sa.and_(PushDelivery.event_id == event.id, PushDelivery.kind == "moved")
    db.session.execute(sa.update(PushDelivery).where(moved, PushDelivery.state == "pending")
                       .values(state="dropped").execution_options(synchronize_session=False))
    # Each move has its number (kept in offset_minutes), so the unique key admits one notice per move.
    number = (db.session.execute(sa.select(sa.func.max(PushDelivery.offset_minutes)).where(moved)).scalar() or 0) + 1
    due = _notice_due(now, before)
    return _insert_missing([{"subscription_id": sid, "event_id": event.id, "kind": "moved",
                             "offset_minutes": number, "due_at": due} for sid in reminded])


def cancel_event(event: Event, now: datetime | None = None) -> int:
    """An event cancelled: pending reminders and move notices dropped; whoever was already reminded, or was
    waiting for a reminder, gets one cancellation notice (exactly once: one row per subscription and event).

    Returns the number of notices planned. The caller commits.
    """
    now = _now(now)
    db.session.flush()
    told = set(db.session.execute(_reminded(event.id, ("sent", "sending", "pending"))).scalars())
    db.session.execute(
        sa.update(PushDelivery)
        .where(PushDelivery.event_id == event.id, PushDelivery.state == "pending",
               PushDelivery.kind.in_(("reminder", "moved")))
        .values(state="dropped").execution_options(synchronize_session=False))
    if event.ends_at <= now:
        return 0
    due = _notice_due(now, event.starts_at)
    return _insert_missing([{"subscription_id": sid, "event_id": event.id, "kind": "cancelled",
                             "offset_minutes": 0, "due_at": due} for sid in sorted(told)])


def events_of_site(site_id):
    """Helper for the public agenda: upcoming events of a site (scheduled and cancelled ones)."""
    return (sa.select(Event).join(event_sites, event_sites.c.event_id == Event.id)
            .where(event_sites.c.site_id == site_id, Event.deleted.is_(False)))
