"""compute_pull records the device's last pull time at most once a minute: a site's first pull is many pages."""
from datetime import datetime, timedelta, timezone

from sync import InMemoryStore, Principal, compute_pull
from sync.pull import PULL_STAMP_INTERVAL

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=timezone.utc)


def _pull_at(store, when, principal, client_id="c1"):
    store.clock = when
    compute_pull(store, principal, client_id, None, 10)
    return store.devices[client_id].last_pull_at


def test_a_pull_stamps_the_device_once_a_minute():
    store, gardien = InMemoryStore(), Principal("u1", "gardien", frozenset({"s1"}))
    assert _pull_at(store, T0, gardien) == T0  # a device's first pull
    almost = T0 + PULL_STAMP_INTERVAL - timedelta(seconds=1)
    assert _pull_at(store, almost, gardien) == T0  # the next pages of the same pull leave it
    assert _pull_at(store, T0 + PULL_STAMP_INTERVAL, gardien) == T0 + PULL_STAMP_INTERVAL
    # a stamp ahead of the clock (the server's clock was set back) is replaced at once
    assert _pull_at(store, T0, gardien) == T0

