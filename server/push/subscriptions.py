"""Subscribing with explicit consent and one-tap withdrawal; the unsubscribe token is derived, only its hash kept."""
import hashlib
import hmac
import uuid
from datetime import datetime, timezone

import sqlalchemy as sa
from flask import current_app

from ..extensions import db
from ..models import PushDelivery, PushSubscription, Site
from . import planning


def unsubscribe_token(subscription_id: uuid.UUID) -> str:
    """Unguessable without the server's secret; recomputed for every notification's unsubscribe link."""
    mac = hmac.new(current_app.config["SECRET_KEY"].encode(), b"push-unsubscribe:" + subscription_id.bytes,
                   hashlib.sha256)
    return mac.hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _withdraw(sub: PushSubscription, now: datetime) -> None:
    """Erase the endpoint and keys (nothing more to send), keep the consent record and its withdrawal time."""
    sub.withdrawn_at = now
    sub.endpoint = sub.p256dh = sub.auth = None
    db.session.execute(
        sa.update(PushDelivery).where(PushDelivery.subscription_id == sub.id, PushDelivery.state == "pending")
        .values(state="dropped").execution_options(synchronize_session=False))


def subscribe(site: Site, endpoint: str, p256dh: str, auth: str, kinds: list[str], consent_text_version: str,
              now: datetime | None = None) -> tuple[PushSubscription, str]:
    """Record a consent. The same browser subscribing again to the same site replaces its earlier consent
    (withdrawn at this instant), so every consent keeps its own record. The caller commits."""
    now = now or datetime.now(timezone.utc)
    earlier = db.session.execute(sa.select(PushSubscription).where(
        PushSubscription.site_id == site.id, PushSubscription.endpoint == endpoint)).scalar_one_or_none()
    if earlier is not None:
        _withdraw(earlier, now)
        db.session.flush()
    sub = PushSubscription(id=uuid.uuid4(), site_id=site.id, endpoint=endpoint, p256dh=p256dh, auth=auth,
                           kinds=sorted(set(kinds)), consent_at=now, consent_text_version=consent_text_version)
    token = unsubscribe_token(sub.id)
    sub.token_hash = token_hash(token)
    db.session.add(sub)
    db.session.flush()
    planning.plan_reminders(now, event_ids=_upcoming_event_ids(site.id, now))
    return sub, token


def _upcoming_event_ids(site_id, now):
    q = planning.events_of_site(site_id).where(planning.Event.ends_at > now)
    return [ev.id for ev in db.session.execute(q).scalars()]


def unsubscribe(token: str, now: datetime | None = None) -> PushSubscription | None:
    """Withdraw the consent the token belongs to; None (and nothing changed) for an unknown token.
    Idempotent: withdrawing twice keeps the first withdrawal time. The caller commits."""
    sub = db.session.execute(sa.select(PushSubscription).where(
        PushSubscription.token_hash == token_hash(token))).scalar_one_or_none()
    if sub is not None and sub.withdrawn_at is None:
        _withdraw(sub, now or datetime.now(timezone.utc))
    return sub
