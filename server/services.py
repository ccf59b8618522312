"""The verbs of the domain that several views share: progress figures."""
import functools
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

from sync.rules import PARIS

from .extensions import db
from .models import Engagement, Programme, Resident


def today() -> date:
    """The programme's calendar day: Paris, whatever the server's clock zone (an engagement starts on a French day)."""
    return datetime.now(PARIS).date()


FOREVER = date(9999, 12, 31)


def engaged_until(yesterday):
    """The last day an engagement counts its resident as engaged (NULL: no day), the one definition every figure
    uses, past weeks included, so that ending an engagement today never rewrites the weeks already shown:
    - active: up to its ended_on, or open-ended;
    - ended: up to its ended_on, and yesterday at the latest (it is over now, whatever ended_on says). The server
      fills ended_on when the status becomes ended without one (sync.rules.ended_on_default); an ended engagement
      without ended_on (created already ended, or older rows) counts on no day, as it always did;
    - paused: no day (nothing records when a pause began), as it always did.
    `yesterday` is the day before today (Paris), a date or a bound parameter."""
    if not isinstance(yesterday, sa.ColumnElement):
        yesterday = sa.literal(yesterday, sa.Date)
    ended = Engagement.status == "ended"
    return sa.case(
        (Engagement.status == "active", sa.func.coalesce(Engagement.ended_on, sa.literal(FOREVER, sa.Date))),
        (sa.and_(ended, Engagement.ended_on <= yesterday), Engagement.ended_on),
        (sa.and_(ended, Engagement.ended_on > yesterday), yesterday))


def engaged_filter(on, yesterday=None):
    """Engagements that count their resident as engaged on day `on` (see engaged_until)."""
    return sa.and_(
        Engagement.deleted.is_(False),
        Engagement.started_on <= on,
        engaged_until(today() - timedelta(days=1) if yesterday is None else yesterday) >= on,
    )


def engaged_residents_query(on: date, site_ids=None, action_id=None, yesterday=None):
    """Distinct people engaged on a day: a suspected duplicate counts as the resident it probably is, so two
    phones creating the same person never count them twice."""
    person = sa.func.coalesce(Resident.duplicate_of, Resident.id)
    q = (sa.select(sa.func.count(sa.distinct(person)))
         .select_from(Engagement).join(Resident, Resident.id == Engagement.resident_id)
         .where(engaged_filter(on, yesterday), Resident.deleted.is_(False)))
    if site_ids is not None:
        q = q.where(Engagement.site_id.in_(site_ids))
    if action_id is not None:
        q = q.where(Engagement.action_id == action_id)
    return q


def programme() -> Programme | None:
    return db.session.execute(sa.select(Programme).limit(1)).scalar_one_or_none()


@functools.cache
def _progress_statement():
    """The engaged count and the programme's baseline and goal in one statement, built once (every pull page
    asks for them): one round trip, and no statement to build and cache-key each time."""
    # The programme's figures ride along as scalar subqueries (NULL without a programme): the count keeps the
    # shape, and the plan, it has alone (as a subquery of another select, SQLite chose a temporary index instead).
    prog = sa.select(Programme.baseline, Programme.goal).limit(1).subquery()
    return engaged_residents_query(sa.bindparam("on", type_=sa.Date),
                                   yesterday=sa.bindparam("yesterday", type_=sa.Date)).add_columns(
        sa.select(prog.c.baseline).scalar_subquery(), sa.select(prog.c.goal).scalar_subquery())


def progress(on: date | None = None) -> dict:
    """The programme figure: distinct engaged residents plus the baseline known before Palier."""
    day = today()
    engaged, baseline, goal = db.session.execute(
        _progress_statement(), {"on": on or day, "yesterday": day - timedelta(days=1)}).one()
    baseline = baseline or 0
    return {"engaged": baseline + engaged, "recorded": engaged, "baseline": baseline, "goal": goal or 0,
            "as_of": datetime.now(timezone.utc)}
