"""The verbs of the domain that several views share: progress figures."""
import functools
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from .extensions import db
from .models import Engagement, Programme, Resident


PARIS = ZoneInfo("Europe/Paris")


def today() -> date:
    """The programme's calendar day: Paris, whatever the server's clock zone (an engagement starts on a French day)."""
    return datetime.now(PARIS).date()


def active_engagement_filter(on: date):
    return sa.and_(
        Engagement.deleted.is_(False),
        Engagement.status == "active",
        Engagement.started_on <= on,
        sa.or_(Engagement.ended_on.is_(None), Engagement.ended_on >= on),
    )


def engaged_residents_query(on: date, site_ids=None, action_id=None):
    """Distinct people with an active engagement on a day: a suspected duplicate counts as the resident it
    probably is, so two phones creating the same person never count them twice."""
    person = sa.func.coalesce(Resident.duplicate_of, Resident.id)
    q = (sa.select(sa.func.count(sa.distinct(person)))
         .select_from(Engagement).join(Resident, Resident.id == Engagement.resident_id)
         .where(active_engagement_filter(on), Resident.deleted.is_(False)))
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
    return engaged_residents_query(sa.bindparam("on", type_=sa.Date)).add_columns(
        sa.select(prog.c.baseline).scalar_subquery(), sa.select(prog.c.goal).scalar_subquery())


def progress(on: date | None = None) -> dict:
    """The programme figure: distinct engaged residents plus the baseline known before Palier."""
    engaged, baseline, goal = db.session.execute(_progress_statement(), {"on": on or today()}).one()
    baseline = baseline or 0
    return {"engaged": baseline + engaged, "recorded": engaged, "baseline": baseline, "goal": goal or 0,
            "as_of": datetime.now(timezone.utc)}
