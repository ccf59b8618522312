"""Fixtures of the push and agenda tests (imported by tests/server/test_push*.py and test_agenda*.py)."""
import logging
from datetime import datetime, timedelta, timezone

import pytest

from server.extensions import db
from server.push import keys
from server.push.fake_service import FakePushService

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)  # 10:00 in Paris, outside quiet hours


@pytest.fixture
def vapid():
    return {**keys.new_key_pair(), "subject": "mailto:agenda@palier.test"}


@pytest.fixture
def push_app(app, vapid):
    """The app with VAPID keys in its config and the loopback push service allowed."""
    # The session's migrations ran alembic's fileConfig, which disables the loggers that existed then.
    logging.getLogger("palier.push").disabled = False
    app.config.update(VAPID_PRIVATE_KEY=vapid["private_key"], VAPID_PUBLIC_KEY=vapid["public_key"],
                      VAPID_SUBJECT=vapid["subject"], PUSH_ALLOW_HTTP=True, PUSH_ENDPOINT_HOSTS=["127.0.0.1"],
                      PUSH_CONCURRENCY=2)
    return app


@pytest.fixture
def fake_push(vapid):
    with FakePushService(vapid_public_key=vapid["public_key"]) as service:
        yield service
    assert service.errors == [], "the push service refused requests"


class Agenda:
    """Sites, events and subscriptions for the push tests, committed."""

    def __init__(self, make, fake):
        self.make, self.fake = make, fake

    def event(self, sites, starts_at, hours=2, kind="atelier", title="Atelier couture", place="Local commun"):
        from server.models import Event
        ev = Event(title=title, kind=kind, place=place, starts_at=starts_at,
                   ends_at=starts_at + timedelta(hours=hours), seq=self.make._seq())
        ev.sites = list(sites)
        db.session.add(ev)
        db.session.commit()
        return ev

    def subscribe(self, site, kinds=("atelier",), name=None, now=NOW, fake=None):
        from server import push
        browser = (fake or self.fake).new_subscription(name)
        sub, token = push.subscribe(site, browser["endpoint"], browser["keys"]["p256dh"], browser["keys"]["auth"],
                                    list(kinds), "v1", now=now)
        db.session.commit()
        return sub, token


@pytest.fixture
def agenda(push_app, make, fake_push):
    return Agenda(make, fake_push)


def deliveries(**where):
    import sqlalchemy as sa
    from server.models import PushDelivery
    q = sa.select(PushDelivery).order_by(PushDelivery.id)
    for k, v in where.items():
        q = q.where(getattr(PushDelivery, k) == v)
    db.session.commit()  # a fresh snapshot: other connections (workers) may have written
    return db.session.execute(q).scalars().all()
