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



def test_a_push_committed_after_the_pull_read_the_device_is_taken_as_a_lost_answer():
    """compute_pull reads the device without a lock. A push of that device committing between that read and the
    page: the page carries the push's record while last_applied does not count it yet, so the device keeps the
    mutation and sends it again, answered as a replay; it is never dropped unseen, nor applied twice."""
    import json

    from sync import apply_push, parse_push, request_digest

    S1, H1 = "51000000-0000-4000-8000-000000000001", "41000000-0000-4000-8000-000000000001"
    V1 = "71000000-0000-4000-8000-000000000001"
    CID = "c1000000-0000-4000-8000-000000000001"
    store = InMemoryStore(now=T0)
    staff = Principal("u1", "staff", frozenset({S1}))
    store.put("site", {"id": S1, "code": "A", "name": "A", "commune": "", "territory": ""})
    store.put("household", {"id": H1, "site_id": S1, "building": "A", "staircase": "1", "floor": "1",
                            "door": "1", "landlord_ref": "R1", "notes": ""})
    body = {"client_id": CID, "app_version": "t", "pending": 1, "mutations": [
        {"n": 1, "op": "visit.create", "at": T0.isoformat(),
         "args": {"id": V1, "household_id": H1, "visited_at": T0.isoformat(), "outcome": "talked"}}]}

    def push():
        result = apply_push(store, staff, parse_push(body, 500), request_digest(json.dumps(body).encode()))
        assert [r.status for r in result.results] == ["applied"], result.results
        return result

    read = store.read_device

    def read_then_push_commits(client_id, user_id):
        device = read(client_id, user_id)
        push()
        return device

    store.read_device = read_then_push_commits
    page = compute_pull(store, staff, CID, None, 10, 2)
    del store.read_device
    assert V1 in [json.loads(t)[1] for t in page.change_texts] and page.last_applied == 0
    again = push()  # the device still holds n=1: sent again, not applied twice
    assert [(r.n, r.status, r.replayed) for r in again.results] == [(1, "applied", True)]
    assert sum(1 for rec in store.tables["visit"].values() if not rec["deleted"]) == 1
    assert compute_pull(store, staff, CID, page.cursor, 10, 2).last_applied == 1
