"""Sending due deliveries exactly once: claim rows in the database, POST with pywebpush, record each outcome.

Claim: one UPDATE ... WHERE state = 'pending' AND claimed_by IS NULL, over a sub-select FOR UPDATE SKIP LOCKED on
PostgreSQL (workers take disjoint rows without waiting) and inside BEGIN IMMEDIATE on SQLite (one writer at a
time). A row leaves 'sending' only through its claimer's outcome, or after PUSH_CLAIM_TIMEOUT when that worker died.
"""
import hashlib
import json
import logging
import os
import socket
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests
import sqlalchemy as sa
from pywebpush import WebPushException, webpush

from ..extensions import db
from ..models import Event, PushAlert, PushDelivery, PushSubscription, Site
from . import keys, setting
from .subscriptions import unsubscribe_token

log = logging.getLogger("palier.push")

SENT = (200, 201, 202)
GONE = (404, 410)
AUTH = (401, 403)
TOO_LARGE = 413
RATE_LIMITED = 429


@dataclass
class Job:
    delivery_id: int
    subscription_id: uuid.UUID
    attempts: int
    host: str
    subscription_info: dict
    data: str
    ttl: int
    headers: dict


def topic_for(event_id: uuid.UUID) -> str:
    """The Topic header (<= 32 url-safe chars): the same for every notice of one event, so a newer one replaces
    an older one still waiting at the push service."""
    return hashlib.sha256(b"palier-event:" + event_id.bytes).hexdigest()[:32]


def payload(kind: str, event_id, title, event_kind, starts_at: datetime, place, site_code, token) -> dict:
    """What the service worker shows. No personal data: the event, and links."""
    tz = ZoneInfo(setting("PUSH_TIMEZONE"))
    return {"type": kind, "event_id": str(event_id), "title": title, "kind": event_kind,
            "starts_at": starts_at.astimezone(tz).isoformat(), "place": place,
            "url": f"/agenda/{site_code}/events/{event_id}",
            "unsubscribe_url": f"/agenda/{site_code}/unsubscribe#{token}"}


def worker_name() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _begin_write() -> None:
    """Start the transaction that claims: BEGIN IMMEDIATE on SQLite, so two claimers never interleave."""
    db.session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})


def release_stale_claims(now: datetime) -> int:
    """Claims of a worker that died mid-batch go back to pending (see docs/push.md on the crash window)."""
    _begin_write()
    cutoff = now - timedelta(seconds=setting("PUSH_CLAIM_TIMEOUT"))
    n = db.session.execute(
        sa.update(PushDelivery).where(PushDelivery.state == "sending", PushDelivery.claimed_at < cutoff)
        .values(state="pending", claimed_by=None, claimed_at=None)
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return n


def claim(worker: str, now: datetime, limit: int) -> list[int]:
    """Take up to `limit` due deliveries for this worker, in their own committed transaction.

    Two statements on purpose: PostgreSQL may run a LIMIT ... SKIP LOCKED sub-select inside an UPDATE more than
    once, each time skipping the rows it just locked, and so claim far more than `limit`.
    """
    _begin_write()
    due = (sa.select(PushDelivery.id)
           .where(PushDelivery.state == "pending", PushDelivery.claimed_by.is_(None), PushDelivery.due_at <= now)
           .order_by(PushDelivery.due_at, PushDelivery.id).limit(limit))
    if db.engine.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = db.session.execute(due).scalars().all()
    if ids:
        ids = db.session.execute(
            sa.update(PushDelivery)
            .where(PushDelivery.id.in_(ids), PushDelivery.state == "pending", PushDelivery.claimed_by.is_(None))
            .values(state="sending", claimed_by=worker, claimed_at=now, attempts=PushDelivery.attempts + 1)
            .returning(PushDelivery.id).execution_options(synchronize_session=False)).scalars().all()
    db.session.commit()
    return list(ids)


def _jobs(ids: list[int], now: datetime) -> tuple[list[Job], list[int]]:
    rows = db.session.execute(
        sa.select(PushDelivery.id, PushDelivery.kind, PushDelivery.offset_minutes, PushDelivery.attempts,
                  PushSubscription.id, PushSubscription.endpoint, PushSubscription.p256dh, PushSubscription.auth,
                  Event.id, Event.title, Event.kind, Event.starts_at, Event.ends_at, Event.place, Site.code)
        .join(PushSubscription, PushSubscription.id == PushDelivery.subscription_id)
        .join(Event, Event.id == PushDelivery.event_id)
        .join(Site, Site.id == PushSubscription.site_id)
        .where(PushDelivery.id.in_(ids))).all()
    jobs, dead = [], []
    offsets = [int(o) for o in setting("PUSH_REMINDER_OFFSETS")]
    for (did, kind, offset, attempts, sid, endpoint, p256dh, auth, eid, title, ekind, starts, ends, place,
         code) in rows:
        # Withdrawn meanwhile, nothing left to remind of, or so late that a later reminder is due too.
        overtaken = kind == "reminder" and any(o < offset and now >= starts - timedelta(minutes=o)
                                               for o in offsets)
        if endpoint is None or ends <= now or overtaken:
            dead.append(did)
            continue
        body = payload(kind, eid, title, ekind, starts, place, code, unsubscribe_token(sid))
        # Useless once the event has started: the push service may drop it after that.
        ttl = max(60, min(int((starts - now).total_seconds()), 7 * 24 * 3600))
        urgency = "high" if kind == "cancelled" or offset <= 120 else "normal"
        jobs.append(Job(did, sid, attempts, urlsplit(endpoint).hostname or "",
                        {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}},
                        json.dumps(body, ensure_ascii=False, separators=(",", ":")), ttl,
                        {"Urgency": urgency, "Topic": topic_for(eid)}))
    return jobs, dead


_local = threading.local()


def _http_session() -> requests.Session:
    """One kept-alive session per sending thread (requests sessions are not shared across threads)."""
    if getattr(_local, "session", None) is None:
        session = requests.Session()
        session.trust_env = False  # no proxy/netrc lookup in os.environ on every request (about 1 ms each)
        _local.session = session
    return _local.session


def post(job: Job, signer, subject: str, timeout: float) -> tuple[int | None, str | None]:
    """One POST to the push service: (status or None on a network error, Retry-After)."""
    try:
        resp = webpush(job.subscription_info, data=job.data, vapid_private_key=signer,
                       vapid_claims={"sub": subject},  # fresh per call: webpush writes aud and exp into it
                       ttl=job.ttl, headers=dict(job.headers), timeout=timeout,
                       requests_session=_http_session())
        return resp.status_code, None
    except WebPushException as e:
        if e.response is None:
            return None, None
        return e.response.status_code, e.response.headers.get("Retry-After")
    except requests.RequestException:
        return None, None


def retry_delay(retry_after: str | None, attempts: int, now: datetime) -> timedelta:
    seconds = None
    if retry_after:
        try:
            seconds = int(retry_after)
        except ValueError:
            try:
                seconds = (parsedate_to_datetime(retry_after) - now).total_seconds()
            except (TypeError, ValueError):
                seconds = None
    if seconds is None:
        seconds = 30 * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(max(seconds, 1), 3600))


def _alert(host: str, status: int, now: datetime) -> None:
    log.error("push service %s refused our VAPID credentials (HTTP %s): check the keys", host, status)
    alert = db.session.execute(sa.select(PushAlert).where(
        PushAlert.push_service == host, PushAlert.status == status, PushAlert.resolved_at.is_(None))
    ).scalar_one_or_none()
    if alert is None:
        db.session.add(PushAlert(push_service=host, status=status, first_at=now, last_at=now, count=1))
    else:
        alert.count += 1
        alert.last_at = now


def _record(results: list[tuple[Job, int | None, str | None]], dead: list[int], now: datetime,
            stats: Counter) -> None:
    """Every outcome of a batch in one transaction."""
    _begin_write()
    max_attempts = setting("PUSH_MAX_ATTEMPTS")
    sent, sent_subs, gone, failed = [], set(), set(), []
    for job, status, retry_after in results:
        if status in SENT:
            sent.append(job.delivery_id)
            sent_subs.add(job.subscription_id)
            stats["sent"] += 1
            continue
        if status is not None:
            db.session.execute(sa.update(PushSubscription).where(PushSubscription.id == job.subscription_id)
                               .values(failures=PushSubscription.failures + 1, last_failure_status=status,
                                       last_failure_at=now))
        if status in GONE:
            gone.add(job.subscription_id)
            stats["gone"] += 1
        elif status == RATE_LIMITED or status is None or status >= 500:
            if job.attempts >= max_attempts:
                failed.append((job.delivery_id, status))
                stats["failed"] += 1
                continue
            db.session.execute(sa.update(PushDelivery).where(PushDelivery.id == job.delivery_id).values(
                state="pending", claimed_by=None, claimed_at=None, last_status=status,
                due_at=now + retry_delay(retry_after, job.attempts, now)))
            stats["retry"] += 1
        else:
            if status in AUTH:
                _alert(job.host, status, now)
                stats["alert"] += 1
            elif status == TOO_LARGE:
                log.warning("push delivery %s: payload too large (413), not retried", job.delivery_id)
                stats["too_large"] += 1
            else:
                log.warning("push delivery %s: HTTP %s, not retried", job.delivery_id, status)
                stats["failed"] += 1
            failed.append((job.delivery_id, status))
    if sent:
        db.session.execute(sa.update(PushDelivery).where(PushDelivery.id.in_(sent))
                           .values(state="sent", sent_at=now, last_status=201))
        db.session.execute(sa.update(PushSubscription)
                           .where(PushSubscription.id.in_(sent_subs), PushSubscription.failures > 0)
                           .values(failures=0))
    for did, status in failed:
        db.session.execute(sa.update(PushDelivery).where(PushDelivery.id == did)
                           .values(state="failed", last_status=status))
    if dead:
        db.session.execute(sa.update(PushDelivery).where(PushDelivery.id.in_(dead)).values(state="dropped"))
        stats["dropped"] += len(dead)
    if gone:
        # The browser unsubscribed or the subscription expired: delete it (its deliveries go with it).
        db.session.execute(sa.delete(PushSubscription).where(PushSubscription.id.in_(gone)))
    db.session.commit()


def send_due(now: datetime | None = None, worker: str | None = None) -> Counter:
    """Send every due delivery (claimed batch by batch) and record the outcomes. Returns counts by outcome."""
    stats: Counter = Counter()
    db.session.commit()  # the loop owns its transactions
    cfg = keys.settings()
    signer, subject = keys.vapid_signer(cfg["private_key"]), cfg["subject"]
    worker = worker or worker_name()
    timeout = setting("PUSH_TIMEOUT")
    release_stale_claims(now or datetime.now(timezone.utc))
    with ThreadPoolExecutor(max_workers=setting("PUSH_CONCURRENCY"), thread_name_prefix="push") as pool:
        while True:
            current = now or datetime.now(timezone.utc)
            ids = claim(worker, current, setting("PUSH_BATCH"))
            if not ids:
                break
            jobs, dead = _jobs(ids, current)
            db.session.commit()  # end the read; outcomes are written in their own (immediate) transaction
            outcomes = pool.map(lambda j: post(j, signer, subject, timeout), jobs)
            _record([(j, s, r) for j, (s, r) in zip(jobs, outcomes)], dead, current, stats)
    return stats
