"""Sending due deliveries exactly once: claim rows in the database, POST each notice, record each outcome.

Claim: one UPDATE ... WHERE state = 'pending' AND claimed_by IS NULL, over a sub-select FOR UPDATE SKIP LOCKED on
PostgreSQL (workers take disjoint rows without waiting) and inside BEGIN IMMEDIATE on SQLite (one writer at a
time). The claim is the record of the attempt (state 'sending', attempts + 1) and is committed before any POST.
A row leaves 'sending' only through its claimer's outcome, or after PUSH_CLAIM_TIMEOUT when that worker died
(docs/push.md, "Exactly once", states the guarantee).

The hot path, measured in bench/push_fanout.py: pywebpush encrypts (aes128gcm, RFC 8291); the VAPID header is
signed once per push-service origin and reused for PUSH_VAPID_REUSE seconds of its 12 h; each sending thread keeps
one kept-alive http.client connection per origin; outcomes are recorded in chunks as they arrive.
"""
import hashlib
import http.client
import json
import logging
import os
import queue
import socket
import ssl
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pywebpush import WebPusher, WebPushException

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


EXPIRED = -1  # not sent: the claim grew too old before its turn (see post)
UNUSABLE = -2  # not sent: the subscription's keys do not encrypt


@dataclass
class Job:
    delivery_id: int
    subscription_id: uuid.UUID
    attempts: int
    origin: str  # scheme://host[:port] of the push service: the VAPID audience and the connection's key
    host: str
    path: str
    subscription_info: dict
    data: bytes
    ttl: int
    headers: dict
    failures: int = 0  # of the subscription, to reset on a success (no statement when there were none)
    deadline: float | None = None  # time.monotonic() after which no POST starts (see post)


def topic_for(event_id: uuid.UUID) -> str:
    """The Topic header (<= 32 url-safe chars): the same for every notice of one event, so a newer one replaces
    an older one still waiting at the push service."""
    return hashlib.sha256(b"palier-event:" + event_id.bytes).hexdigest()[:32]


def payload(kind: str, event_id, title, event_kind, starts_at: datetime, place, site_code, token) -> dict:
    """What the service worker shows. No personal data: the event, and links.
    kind: reminder, moved (starts_at is the new time) or cancelled."""
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
    """Claims of a worker that died mid-batch go back to pending (see docs/push.md on the crash window).

    Their attempt stays counted: attempts > 1 on a sent row means it may have reached the browser twice.
    """
    _begin_write()
    cutoff = now - timedelta(seconds=setting("PUSH_CLAIM_TIMEOUT"))
    n = db.session.execute(
        sa.update(PushDelivery).where(PushDelivery.state == "sending", PushDelivery.claimed_at < cutoff)
        .values(state="pending", claimed_by=None, claimed_at=None)
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if n:
        log.warning("push: %d deliveries of a worker that stopped are sent again (possible duplicates)", n)
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
    """The batch's notices from one query of plain columns (no ORM objects), and the rows not worth sending."""
    rows = db.session.execute(
        sa.select(PushDelivery.id, PushDelivery.kind, PushDelivery.offset_minutes, PushDelivery.attempts,
                  PushSubscription.id, PushSubscription.endpoint, PushSubscription.p256dh, PushSubscription.auth,
                  PushSubscription.failures, Event.id, Event.title, Event.kind, Event.starts_at, Event.ends_at, Event.place, Event.status,
                  Site.code)
        .join(PushSubscription, PushSubscription.id == PushDelivery.subscription_id)
        .join(Event, Event.id == PushDelivery.event_id)
        .join(Site, Site.id == PushSubscription.site_id)
        .where(PushDelivery.id.in_(ids))).all()
    jobs, dead = [], []
    offsets = [int(o) for o in setting("PUSH_REMINDER_OFFSETS")]
    for (did, kind, offset, attempts, sid, endpoint, p256dh, auth, failures, eid, title, ekind, starts, ends, place,
         status, code) in rows:
        # Withdrawn meanwhile, nothing left to remind of, or so late that a later reminder is due too.
        overtaken = kind == "reminder" and any(o < offset and now >= starts - timedelta(minutes=o)
                                               for o in offsets)
        if endpoint is None or ends <= now or overtaken or (status == "cancelled" and kind != "cancelled"):
            dead.append(did)
            continue
        body = payload(kind, eid, title, ekind, starts, place, code, unsubscribe_token(sid))
        # Useless once the event has started: the push service may drop it after that.
        ttl = max(60, min(int((starts - now).total_seconds()), 7 * 24 * 3600))
        urgency = "high" if kind != "reminder" or offset <= 120 else "normal"
        url = urlsplit(endpoint)
        jobs.append(Job(did, sid, attempts, f"{url.scheme}://{url.netloc}", url.hostname or "",
                        url.path + (f"?{url.query}" if url.query else ""),
                        {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}},
                        json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(), ttl,
                        {"Urgency": urgency, "Topic": topic_for(eid)}, failures))
    return jobs, dead


class VapidHeaders:
    """The signed VAPID Authorization per push-service origin, reused for `reuse` seconds of its 12 h validity.

    Signing costs about as much as the HTTP request itself; push services accept any unexpired JWT with the right
    aud. Each signing gets a fresh claims dict (a shared one would carry one origin's aud to another's).
    """

    VALIDITY = 12 * 3600

    def __init__(self, signer, subject: str, reuse: float):
        self.signer, self.subject, self.reuse = signer, subject, min(reuse, self.VALIDITY / 2)
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, origin: str) -> str:
        now = time.time()
        hit = self._cache.get(origin)
        if hit is not None and hit[1] > now:
            return hit[0]
        with self._lock:
            claims = {"sub": self.subject, "aud": origin, "exp": int(now) + self.VALIDITY}
            header = self.signer.sign(claims)["Authorization"]
            self._cache[origin] = (header, now + self.reuse)
            return header


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()  # certificates verified, as requests would


class Connections:
    """Kept-alive connections to push services: one per sending thread and origin, all closed at the end."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def get(self, origin: str, fresh: bool = False) -> tuple[http.client.HTTPConnection, bool]:
        """(connection, reused)."""
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get(origin)
        if conn is not None and not fresh:
            return conn, True
        if conn is not None:
            conn.close()
        url = urlsplit(origin)
        if url.scheme == "https":
            conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=self.timeout, context=_tls())
        else:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=self.timeout)
        conns[origin] = conn
        with self._lock:
            self._all.append(conn)
        return conn, False

    def drop(self, origin: str) -> None:
        conn = getattr(self._local, "conns", {}).pop(origin, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


def post(job: Job, vapid: VapidHeaders, conns: Connections, deadline: float | None = None
         ) -> tuple[int | None, str | None]:
    """One POST to the push service: (status, or None on a network error; Retry-After).

    No POST starts after `deadline` (time.monotonic): past it the claim may be taken over by another worker,
    and the notice goes back to pending instead (EXPIRED).
    """
    if deadline is not None and time.monotonic() > deadline:
        return EXPIRED, None
    try:
        body = WebPusher(job.subscription_info).encode(job.data, "aes128gcm")["body"]
    except (WebPushException, ValueError):  # a browser key that is no point of P-256: never deliverable
        return UNUSABLE, None
    headers = {**job.headers, "TTL": str(job.ttl), "Content-Encoding": "aes128gcm",
               "Content-Type": "application/octet-stream", "Authorization": vapid.get(job.origin)}
    conn, reused = conns.get(job.origin)
    for _ in range(2):
        try:
            conn.request("POST", job.path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.will_close:
                conns.drop(job.origin)
            return resp.status, resp.getheader("Retry-After")
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # A kept-alive connection the service closed while idle: once more on a new one.
            if not reused:
                break
            conn, reused = conns.get(job.origin, fresh=True)
        except (OSError, http.client.HTTPException):
            break
    conns.drop(job.origin)
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
            stats: Counter, worker: str) -> None:
    """Outcomes in one transaction. Only rows this worker still holds change: a claim taken over after
    PUSH_CLAIM_TIMEOUT belongs to its new claimer."""
    _begin_write()
    mine = sa.and_(PushDelivery.claimed_by == worker, PushDelivery.state == "sending")
    max_attempts = setting("PUSH_MAX_ATTEMPTS")
    sent, sent_subs, gone, failed, expired = [], set(), set(), [], []
    for job, status, retry_after in results:
        if status in SENT:
            sent.append(job.delivery_id)
            if job.failures:
                sent_subs.add(job.subscription_id)
            stats["sent"] += 1
            continue
        if status == EXPIRED:
            expired.append(job.delivery_id)
            stats["released"] += 1
            continue
        if status == UNUSABLE:
            log.warning("push delivery %s: the subscription's keys do not encrypt, not retried", job.delivery_id)
            failed.append((job.delivery_id, None))
            stats["failed"] += 1
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
            db.session.execute(sa.update(PushDelivery).where(PushDelivery.id == job.delivery_id, mine).values(
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
        db.session.execute(sa.update(PushDelivery).where(PushDelivery.id.in_(sent), mine)
                           .values(state="sent", sent_at=now, last_status=201))
        if sent_subs:
            db.session.execute(sa.update(PushSubscription).where(PushSubscription.id.in_(sent_subs))
                               .values(failures=0))
    for did, status in failed:
        db.session.execute(sa.update(PushDelivery).where(PushDelivery.id == did, mine)
                           .values(state="failed", last_status=status))
    if expired:  # never POSTed: the attempt the claim counted did not happen
        db.session.execute(sa.update(PushDelivery).where(PushDelivery.id.in_(expired), mine).values(
            state="pending", claimed_by=None, claimed_at=None, attempts=PushDelivery.attempts - 1))
    if dead:
        db.session.execute(sa.update(PushDelivery).where(PushDelivery.id.in_(dead), mine).values(state="dropped"))
        stats["dropped"] += len(dead)
    if gone:
        # The browser unsubscribed or the subscription expired: delete it (its deliveries go with it).
        db.session.execute(sa.delete(PushSubscription).where(PushSubscription.id.in_(gone)))
    db.session.commit()


def send_due(now: datetime | None = None, worker: str | None = None) -> Counter:
    """Send every due delivery and record the outcomes. Returns counts by outcome.

    Batches are claimed ahead (the next one while half the current one is still in flight), so the sending
    threads never wait for the database. Outcomes are written as they arrive, every PUSH_RECORD_EVERY notices or
    PUSH_RECORD_DELAY seconds: a crash loses (and later repeats) only the notices since the last write.
    """
    stats: Counter = Counter()
    db.session.commit()  # the loop owns its transactions
    cfg = keys.settings()
    vapid = VapidHeaders(keys.vapid_signer(cfg["private_key"]), cfg["subject"], setting("PUSH_VAPID_REUSE"))
    worker = worker or worker_name()
    release_stale_claims(now or datetime.now(timezone.utc))
    with _Senders(setting("PUSH_CONCURRENCY"), vapid, Connections(setting("PUSH_TIMEOUT"))) as senders:
        _Loop(senders, now, worker, stats).run()
    return stats


class _Senders:
    """N threads taking notices from one queue and putting (job, status, retry_after) on another: no Future,
    lock or thread made per notice."""

    def __init__(self, n: int, vapid: VapidHeaders, conns: Connections):
        self.vapid, self.conns = vapid, conns
        self.todo: queue.SimpleQueue = queue.SimpleQueue()
        self.done: queue.SimpleQueue = queue.SimpleQueue()
        self.threads = [threading.Thread(target=self._run, name=f"push-{i}", daemon=True) for i in range(max(n, 1))]

    def __enter__(self) -> "_Senders":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        for _ in self.threads:
            self.todo.put(None)
        for t in self.threads:
            t.join()
        self.conns.close()

    def _run(self) -> None:
        while (job := self.todo.get()) is not None:
            try:
                outcome = post(job, self.vapid, self.conns, job.deadline)
            except Exception:  # noqa: BLE001 - a bug must not kill the thread and hang the batch; retried later
                log.exception("push delivery %s: unexpected error while sending", job.delivery_id)
                outcome = (None, None)
            self.done.put((job, *outcome))


class _Loop:
    def __init__(self, senders: _Senders, now: datetime | None, worker: str, stats: Counter):
        self.senders, self.now, self.worker, self.stats = senders, now, worker, stats
        self.batch, self.every, self.delay = (setting("PUSH_BATCH"), setting("PUSH_RECORD_EVERY"),
                                              setting("PUSH_RECORD_DELAY"))
        # No POST starts later than this after its claim: it finishes (or times out) before another worker may
        # take the claim over (PUSH_CLAIM_TIMEOUT).
        self.hold = setting("PUSH_CLAIM_TIMEOUT") - 3 * setting("PUSH_TIMEOUT")
        self.in_flight = 0
        self.more = True
        self.current = now

    def _claim_next(self) -> None:
        self.current = self.now or datetime.now(timezone.utc)
        ids = claim(self.worker, self.current, self.batch)
        if not ids:
            self.more = False
            return
        deadline = time.monotonic() + self.hold
        jobs, dead = _jobs(ids, self.current)
        db.session.commit()  # end the read; outcomes are written in their own (immediate) transactions
        if dead:
            _record([], dead, self.current, self.stats, self.worker)
        for job in jobs:
            job.deadline = deadline
            self.senders.todo.put(job)
        self.in_flight += len(jobs)

    def run(self) -> None:
        buf, oldest = [], 0.0
        while True:
            if self.more and self.in_flight <= self.batch // 2:
                self._claim_next()
                continue
            if not self.in_flight:
                break
            try:
                item = self.senders.done.get(timeout=max(oldest + self.delay - time.monotonic(), 0) if buf else None)
            except queue.Empty:  # the oldest unwritten outcome waited long enough
                self._write(buf)
                buf = []
                continue
            if not buf:
                oldest = time.monotonic()
            buf.append(item)
            self.in_flight -= 1
            if item[1] == EXPIRED:
                self.more = False  # too slow to send within a claim: the next run takes the rest
            if len(buf) >= self.every or not self.in_flight:
                self._write(buf)
                buf = []

    def _write(self, buf) -> None:
        _record(buf, [], self.current, self.stats, self.worker)
