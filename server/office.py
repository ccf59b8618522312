"""Head office's figures and lists: aggregated SQL over what the field synced (dashboard, lists, exports, devices).

Definitions (README.md, *Tableau de bord*, and the tests hold to them):
- engaged on a day D: a distinct person with a non-deleted engagement whose period holds D (services.engaged_until:
  an active one from started_on to ended_on or open-ended; an ended one from started_on to ended_on, never today
  or later; a paused one, or an ended one without ended_on, no day) and whose resident row is not deleted, so
  ending an engagement today leaves every past week as it was shown. A suspected duplicate still pending counts
  as the resident it probably is (coalesce(duplicate_of, id)); a merged resident is a tombstone whose
  engagements moved to the one kept, so it counts once.
- the programme total is baseline + engaged people, as services.progress says; the baseline (people engaged before
  Palier) has no site nor action, so a figure filtered by site or action counts the people recorded in Palier only.
- weeks are ISO weeks in Europe/Paris; a day filter (from, to) is a Paris calendar day.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import sqlalchemy as sa

from . import services
from .extensions import db
from .models import (Action, Attendance, Device, Engagement, Event, HeadCount, Household, Resident, Site, User,
                     UTCDateTime, Visit, event_sites, user_sites)

PARIS = services.PARIS
DEFAULT_WEEKS = 26
MAX_DAYS = 2 * 366  # the weekly series is one row per week: a bounded range keeps the query bounded
DASHBOARD_EVENTS = 200


paris_today = services.today


def day_start(d: date) -> datetime:
    """Midnight of a Paris calendar day, in UTC."""
    return datetime.combine(d, time(0), PARIS).astimezone(timezone.utc)


def iso_week(d: date) -> str:
    year, week, _ = d.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class Filters:
    """What head office narrows a figure or a list to; None means no restriction."""

    site_id: uuid.UUID | None = None
    action_id: uuid.UUID | None = None
    date_from: date | None = None
    date_to: date | None = None
    outcome: str | None = None
    user_id: uuid.UUID | None = None
    kind: str | None = None
    status: str | None = None
    q: str | None = None
    engaged: bool | None = None

    @classmethod
    def from_args(cls, args: dict) -> "Filters":
        return cls(**{k: v for k, v in args.items() if k not in ("page", "per_page")})


def person():
    """Who an engagement counts as: a pending suspected duplicate counts as the resident it probably is."""
    return sa.func.coalesce(Resident.duplicate_of, Resident.id)


def _weeks(first: date, last: date) -> list[tuple[date, date]]:
    """(monday, last day counted) of every ISO week from `first` to `last`, the last one cut at `last`."""
    monday = first - timedelta(days=first.weekday())
    out = []
    while monday <= last:
        out.append((monday, min(monday + timedelta(days=6), last)))
        monday += timedelta(days=7)
    return out


def _weeks_table(weeks, with_bounds: bool):
    """The weeks as a small derived table (a UNION ALL of literals: the same SQL on SQLite and PostgreSQL)."""
    selects = []
    for i, (monday, end) in enumerate(weeks):
        cols = [sa.literal(i, sa.Integer).label("idx"), sa.literal(end, sa.Date).label("day")]
        if with_bounds:
            cols += [sa.literal(day_start(monday), UTCDateTime).label("lo"),
                     sa.literal(day_start(end + timedelta(days=1)), UTCDateTime).label("hi")]
        selects.append(sa.select(*cols))
    return sa.union_all(*selects).subquery("weeks")


def _engaged_figures(weeks, to: date, f: Filters) -> dict:
    """Every engaged figure in one statement over the engagements read once (a MATERIALIZED CTE: the
    engagement x resident join is the costly part): on `to` the people in all, per site, per action and the
    folded duplicates; at each week's end the people engaged.

    The weekly counts need no DISTINCT per week: each person's periods are first merged into disjoint islands
    (gaps and islands, window functions), so a day falls in at most one island per person and counting the
    islands that contain a day counts the people. Tests compare every figure to a raw COUNT(DISTINCT) per day.
    """
    until = services.engaged_until(paris_today() - timedelta(days=1))
    periods = (sa.select(person().label("who"),
                         sa.case((Resident.duplicate_of.is_not(None), Resident.id)).label("folded"),
                         Engagement.site_id, Engagement.action_id, Engagement.started_on.label("s"),
                         until.label("e"))
               .select_from(Engagement).join(Resident, Resident.id == Engagement.resident_id)
               .where(Engagement.deleted.is_(False), Resident.deleted.is_(False), Engagement.started_on <= to,
                      until >= Engagement.started_on,  # no period (NULL) or an empty one: never engaged
                      *_equal((Engagement.site_id, f.site_id), (Engagement.action_id, f.action_id)))
               .cte("periods").prefix_with("MATERIALIZED"))
    p = periods.c
    # A period opens an island when it starts after every earlier period of the person has ended.
    reach = sa.func.max(p.e).over(partition_by=p.who, order_by=(p.s, p.e), rows=(None, -1))
    flagged = sa.select(p.who, p.s, p.e, sa.case((sa.or_(reach.is_(None), p.s > reach), 1), else_=0)
                        .label("opens")).cte("flagged")
    numbered = sa.select(flagged.c.who, flagged.c.s, flagged.c.e, sa.func.sum(flagged.c.opens).over(
        partition_by=flagged.c.who, order_by=(flagged.c.s, flagged.c.e), rows=(None, 0)).label("island")
    ).cte("numbered")
    islands = (sa.select(sa.func.min(numbered.c.s).label("s"), sa.func.max(numbered.c.e).label("e"))
               .group_by(numbered.c.who, numbered.c.island).cte("islands"))
    wk = _weeks_table(weeks, with_bounds=False)
    on_to = sa.and_(p.s <= to, p.e >= to)
    none_uuid, none_int = sa.null().cast(sa.Uuid), sa.null().cast(sa.Integer)

    def part(kind, key, idx, n, folded=sa.literal(0)):
        return [sa.literal(kind).label("kind"), key.label("key"), idx.label("idx"), n.label("n"),
                folded.label("folded")]

    people = sa.func.count(sa.distinct(p.who))
    query = sa.union_all(
        sa.select(*part("all", none_uuid, none_int, people, sa.func.count(sa.distinct(p.folded)))).where(on_to),
        sa.select(*part("site", p.site_id, none_int, people)).where(on_to).group_by(p.site_id),
        sa.select(*part("action", p.action_id, none_int, people)).where(on_to).group_by(p.action_id),
        sa.select(*part("week", none_uuid, wk.c.idx, sa.func.count())).select_from(wk)
        .join(islands, sa.and_(islands.c.s <= wk.c.day, islands.c.e >= wk.c.day)).group_by(wk.c.idx))
    out = {"counted": 0, "folded": 0, "site": {}, "action": {}, "week": {}}
    for kind, key, idx, n, folded in db.session.execute(query):
        if kind == "all":
            out["counted"], out["folded"] = n, folded
        else:
            out[kind][idx if kind == "week" else key] = n
    return out


def dashboard(f: Filters) -> dict:
    """Every figure of head office's dashboard in a few GROUP BY statements (no loop over rows in Python)."""
    to = f.date_to or paris_today()
    frm = f.date_from or (to - timedelta(weeks=DEFAULT_WEEKS - 1))
    prog = services.programme()
    baseline = prog.baseline if prog else 0
    filtered = f.site_id is not None or f.action_id is not None
    s = db.session

    weeks = _weeks(frm, to)
    engaged = _engaged_figures(weeks, to, f)
    counted, folded, weekly = engaged["counted"], engaged["folded"], engaged["week"]
    per_site = [(i, c, n, engaged["site"][i]) for i, c, n in s.execute(
        sa.select(Site.id, Site.code, Site.name).where(Site.id.in_(list(engaged["site"]))).order_by(Site.name))]
    per_action = [(i, n, engaged["action"][i]) for i, n in s.execute(
        sa.select(Action.id, Action.name).where(Action.id.in_(list(engaged["action"]))).order_by(Action.name))]

    vk = _weeks_table(weeks, with_bounds=True)
    lo, hi = day_start(frm), day_start(to + timedelta(days=1))
    visit_where = [Visit.deleted.is_(False), Visit.visited_at >= vk.c.lo, Visit.visited_at < vk.c.hi,
                   Visit.visited_at >= lo, Visit.visited_at < hi, *_equal((Visit.site_id, f.site_id))]
    by_outcome = {o: sa.func.sum(sa.case((Visit.outcome == o, 1), else_=0)) for o in ("absent", "refused", "talked")}
    visits = {row.idx: row for row in s.execute(
        sa.select(vk.c.idx, *(c.label(o) for o, c in by_outcome.items()), sa.func.count().label("total"))
        .select_from(vk).join(Visit, sa.and_(*visit_where)).group_by(vk.c.idx))}

    return {
        "goal": prog.goal if prog else 0,
        "baseline": baseline,
        "baseline_included": not filtered,
        "date_from": frm, "date_to": to,
        "engaged": {"total": counted + (0 if filtered else baseline), "counted_residents": counted,
                    "pending_duplicates": folded},
        "engaged_weekly": [{"week": iso_week(m), "week_start": m, "week_end": end, "engaged": weekly.get(i, 0),
                            "total": weekly.get(i, 0) + (0 if filtered else baseline)}
                           for i, (m, end) in enumerate(weeks)],
        "per_site": [{"site_id": i, "site_code": c, "site_name": n, "engaged": k} for i, c, n, k in per_site],
        "per_action": [{"action_id": i, "action_name": n, "engaged": k} for i, n, k in per_action],
        "visits_weekly": [
            {"week": iso_week(m), "week_start": m, **{o: int(getattr(visits[i], o) or 0) if i in visits else 0
                                                      for o in by_outcome},
             "total": visits[i].total if i in visits else 0} for i, (m, _end) in enumerate(weeks)],
        "events": events_rows(events_query(Filters(site_id=f.site_id, date_from=frm, date_to=to))
                              .limit(DASHBOARD_EVENTS)),
        "as_of": datetime.now(timezone.utc),
    }


# --- lists (and exports, which read the same queries without paging) ------------------------------------------

def _range(column, f: Filters) -> list:
    where = []
    if f.date_from is not None:
        where.append(column >= day_start(f.date_from))
    if f.date_to is not None:
        where.append(column < day_start(f.date_to + timedelta(days=1)))
    return where


def _equal(*pairs) -> list:
    """column == value for each filter given (None: not filtered)."""
    return [column == value for column, value in pairs if value is not None]


def visits_query(f: Filters):
    where = [Visit.deleted.is_(False), *_range(Visit.visited_at, f),
             *_equal((Visit.site_id, f.site_id), (Visit.outcome, f.outcome), (Visit.user_id, f.user_id))]
    return (sa.select(Visit.id, Visit.visited_at, Visit.received_at, Visit.clock_suspect, Visit.outcome,
                      Visit.site_id, Site.code.label("site_code"), Site.name.label("site_name"), Visit.household_id,
                      Household.building, Household.staircase, Household.floor, Household.door,
                      Household.landlord_ref, Visit.resident_id, Resident.first_name, Resident.last_name,
                      Visit.user_id, User.display_name.label("user_name"), Visit.interests, Visit.needs,
                      Visit.follow_up, Visit.consent_recontact, Visit.note)
            .select_from(Visit).join(Household, Household.id == Visit.household_id)
            .join(Site, Site.id == Visit.site_id).outerjoin(Resident, Resident.id == Visit.resident_id)
            .outerjoin(User, User.id == Visit.user_id)
            .where(*where).order_by(Visit.visited_at.desc(), Visit.id.desc()))


def _is_engaged(resident_id_col, on: date):
    return sa.exists().where(Engagement.resident_id == resident_id_col, services.engaged_filter(on))


def normalise_search(q: str) -> list[str]:
    """The words of a search, with accents and case dropped as in residents' name_key."""
    from sync.rules import name_key
    return name_key(q, "").split()


def residents_query(f: Filters):
    today = paris_today()
    engaged = _is_engaged(Resident.id, today)
    where = [Resident.deleted.is_(False), *_equal((Resident.site_id, f.site_id))]
    if f.action_id is not None:
        where.append(sa.exists().where(Engagement.resident_id == Resident.id, Engagement.deleted.is_(False),
                                       Engagement.action_id == f.action_id))
    if f.engaged is not None:
        where.append(engaged if f.engaged else ~engaged)
    if f.q:
        words = normalise_search(f.q)
        raw = f.q.strip().lower()
        place = sa.or_(sa.func.lower(Household.building).contains(raw, autoescape=True),
                       sa.func.lower(Household.door).contains(raw, autoescape=True),
                       sa.func.lower(Household.landlord_ref).contains(raw, autoescape=True))
        name = sa.and_(*(Resident.name_key.contains(w, autoescape=True) for w in words)) if words else sa.false()
        where.append(sa.or_(name, place))
    return (sa.select(Resident.id, Resident.first_name, Resident.last_name, Resident.phone, Resident.email,
                      Resident.consent_contact, Resident.consent_image, Resident.duplicate_of, Resident.site_id,
                      Site.code.label("site_code"), Site.name.label("site_name"), Resident.household_id,
                      Household.building, Household.staircase, Household.floor, Household.door,
                      Household.landlord_ref, engaged.label("engaged"), Resident.created_at)
            .select_from(Resident).join(Household, Household.id == Resident.household_id)
            .join(Site, Site.id == Resident.site_id)
            .where(*where).order_by(Resident.created_at.desc(), Resident.id.desc()))


def _event_figures():
    named = (sa.select(sa.func.count()).where(Attendance.event_id == Event.id, Attendance.deleted.is_(False))
             .correlate(Event).scalar_subquery())
    heads = (sa.select(sa.func.coalesce(sa.func.sum(HeadCount.count), 0))
             .where(HeadCount.event_id == Event.id, HeadCount.deleted.is_(False)).correlate(Event).scalar_subquery())
    return named.label("named_attendance"), heads.label("head_count")


def events_query(f: Filters):
    where = [Event.deleted.is_(False), *_range(Event.starts_at, f), *_equal((Event.kind, f.kind))]
    if f.site_id is not None:
        where.append(sa.exists().where(event_sites.c.event_id == Event.id, event_sites.c.site_id == f.site_id))
    return (sa.select(Event.id.label("event_id"), Event.title, Event.kind, Event.starts_at, Event.ends_at,
                      Event.place, Event.status, *_event_figures())
            .select_from(Event).where(*where).order_by(Event.starts_at.desc(), Event.id.desc()))


def event_site_names(event_ids) -> dict:
    out: dict = {}
    if event_ids:
        for ev, name in db.session.execute(
                sa.select(event_sites.c.event_id, Site.name).join(Site, Site.id == event_sites.c.site_id)
                .where(event_sites.c.event_id.in_(list(event_ids))).order_by(Site.name)):
            out.setdefault(ev, []).append(name)
    return out


def events_rows(query) -> list[dict]:
    rows = [dict(r) for r in db.session.execute(query).mappings()]
    names = event_site_names([r["event_id"] for r in rows])
    for r in rows:
        r["sites"] = names.get(r["event_id"], [])
    return rows


def attendance(event: Event) -> dict:
    """Who checked in at an event (named) and the head counts taken there."""
    named = db.session.execute(
        sa.select(Attendance.id, Attendance.resident_id, Resident.first_name, Resident.last_name,
                  Attendance.site_id, Site.name.label("site_name"), Attendance.checked_in_at,
                  Attendance.clock_suspect)
        .join(Resident, Resident.id == Attendance.resident_id).join(Site, Site.id == Attendance.site_id)
        .where(Attendance.event_id == event.id, Attendance.deleted.is_(False))
        .order_by(Attendance.checked_in_at, Attendance.id)).mappings().all()
    counts = db.session.execute(
        sa.select(HeadCount.id, HeadCount.category, HeadCount.count, HeadCount.counted_at, HeadCount.site_id,
                  Site.name.label("site_name"), User.display_name.label("user_name"))
        .join(Site, Site.id == HeadCount.site_id).outerjoin(User, User.id == HeadCount.user_id)
        .where(HeadCount.event_id == event.id, HeadCount.deleted.is_(False))
        .order_by(HeadCount.counted_at, HeadCount.id)).mappings().all()
    by_category: dict = {}
    for c in counts:
        by_category[c["category"]] = by_category.get(c["category"], 0) + c["count"]
    return {"event_id": event.id, "title": event.title, "kind": event.kind, "starts_at": event.starts_at,
            "status": event.status, "sites": [s.name for s in event.sites],
            "named_attendance": len(named), "head_count": sum(by_category.values()),
            "head_count_by_category": by_category, "items": [dict(r) for r in named],
            "head_counts": [dict(r) for r in counts]}


def engagements_query(f: Filters):
    where = [Engagement.deleted.is_(False),
             *_equal((Engagement.site_id, f.site_id), (Engagement.action_id, f.action_id),
                     (Engagement.status, f.status))]
    if f.date_from is not None:
        where.append(Engagement.started_on >= f.date_from)
    if f.date_to is not None:
        where.append(Engagement.started_on <= f.date_to)
    return (sa.select(Engagement.id, Engagement.resident_id, Resident.first_name, Resident.last_name,
                      Engagement.action_id, Action.name.label("action_name"), Engagement.site_id,
                      Site.code.label("site_code"), Site.name.label("site_name"), Engagement.role,
                      Engagement.status, Engagement.started_on, Engagement.ended_on, Engagement.created_at)
            .select_from(Engagement).join(Resident, Resident.id == Engagement.resident_id)
            .join(Action, Action.id == Engagement.action_id).join(Site, Site.id == Engagement.site_id)
            .where(*where).order_by(Engagement.started_on.desc(), Engagement.created_at.desc(),
                                    Engagement.id.desc()))


LIST_QUERIES = {"visits": visits_query, "residents": residents_query, "events": events_query,
                "engagements": engagements_query}


def count(query) -> int:
    """How many rows a list query gives, without reading its columns."""
    return db.session.execute(sa.select(sa.func.count()).select_from(
        query.order_by(None).with_only_columns(sa.literal(1)).subquery())).scalar_one()


def page(kind: str, f: Filters, page_no: int, per_page: int) -> dict:
    query = LIST_QUERIES[kind](f)
    total = count(query)
    paged = query.limit(per_page).offset((page_no - 1) * per_page)
    if kind == "events":
        items = events_rows(paged)
    else:
        items = [dict(r) for r in db.session.execute(paged).mappings()]
    return {"items": items, "total": total, "page": page_no, "per_page": per_page}


# --- devices --------------------------------------------------------------------------------------------------

def devices(stale_days: int) -> list[dict]:
    """Every field device with its user and the user's sites, stalest first (never synced before all)."""
    now = datetime.now(timezone.utc)
    rows = db.session.execute(
        sa.select(Device.client_id, Device.app_version, Device.pending_reported, Device.last_push_at,
                  Device.last_pull_at, Device.last_applied, Device.created_at, User.id.label("user_id"),
                  User.display_name, User.email, User.role, User.active)
        .join(User, User.id == Device.user_id)).mappings().all()
    sites: dict = {}
    for uid, sid, code, name in db.session.execute(
            sa.select(user_sites.c.user_id, Site.id, Site.code, Site.name).join(Site, Site.id == user_sites.c.site_id)
            .where(user_sites.c.user_id.in_({r["user_id"] for r in rows}), Site.deleted.is_(False))
            .order_by(Site.name)):
        sites.setdefault(uid, []).append({"id": sid, "code": code, "name": name})
    out = []
    for r in rows:
        syncs = [t for t in (r["last_push_at"], r["last_pull_at"]) if t is not None]
        last = max(syncs) if syncs else None
        days = (now - last).days if last else None
        out.append({"client_id": r["client_id"], "app_version": r["app_version"],
                    "pending_reported": r["pending_reported"], "last_applied": r["last_applied"],
                    "last_push_at": r["last_push_at"], "last_pull_at": r["last_pull_at"], "last_sync_at": last,
                    "days_since_sync": days, "stale": last is None or days >= stale_days,
                    "registered_at": r["created_at"],
                    "user": {"id": r["user_id"], "name": r["display_name"], "email": r["email"],
                             "role": r["role"], "active": r["active"]},
                    "sites": sites.get(r["user_id"], [])})
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    out.sort(key=lambda d: (d["last_sync_at"] is not None, d["last_sync_at"] or epoch, str(d["client_id"])))
    return out
