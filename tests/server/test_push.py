"""Web Push sending against a real loopback push service: outcomes per status, headers, payload, exactly once."""
import logging
import threading
from collections import deque
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from server import push, tasks
from server.extensions import db
from server.models import PushAlert, PushDelivery, PushSubscription
from server.push.fake_service import FakePushService
from server.push.sending import topic_for
from tests.server.push_support import NOW, agenda, deliveries, fake_push, push_app, vapid  # noqa: F401


def test_each_status_in_turn_cleans_up_retries_or_alerts(agenda, make, fake_push, caplog):
    site = make.site(name="Vauban")
    ev = agenda.event([site], NOW + timedelta(hours=1, minutes=30))  # the 2 h reminder is due now
    statuses = {"ok": 201, "notfound": 404, "gone": 410, "busy": 429, "forbidden": 403, "toolarge": 413}
    subs = {}
    for name, status in statuses.items():
        subs[name] = agenda.subscribe(site, name=name, now=NOW - timedelta(hours=1))[0].id
        fake_push.scripts[name] = deque([status])
    with caplog.at_level(logging.WARNING, logger="palier.push"):
        stats = push.send_due(now=NOW)
    assert stats == {"sent": 1, "gone": 2, "retry": 1, "alert": 1, "too_large": 1}
    assert {r["name"]: r["status"] for r in fake_push.requests} == statuses and len(fake_push.requests) == 6

    by_sub = {d.subscription_id: d for d in deliveries(event_id=ev.id)}
    assert by_sub[subs["ok"]].state == "sent" and by_sub[subs["ok"]].sent_at == NOW
    # 404 and 410: the subscription and its deliveries are gone.
    assert db.session.get(PushSubscription, subs["notfound"]) is None
    assert db.session.get(PushSubscription, subs["gone"]) is None
    assert subs["notfound"] not in by_sub and subs["gone"] not in by_sub
    # 429: back to pending after Retry-After (120 s), unclaimed, one attempt counted.
    busy = by_sub[subs["busy"]]
    assert (busy.state, busy.claimed_by, busy.attempts, busy.last_status) == ("pending", None, 1, 429)
    assert busy.due_at == NOW + timedelta(seconds=120)
    # 403: failed, no retry, an alert row for head office and an ERROR log without the endpoint.
    assert (by_sub[subs["forbidden"]].state, by_sub[subs["forbidden"]].last_status) == ("failed", 403)
    alert = db.session.execute(sa.select(PushAlert)).scalar_one()
    assert (alert.push_service, alert.status, alert.count) == ("127.0.0.1", 403, 1)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "/push/" not in errors[0].getMessage()
    # 413: failed, not retried.
    assert (by_sub[subs["toolarge"]].state, by_sub[subs["toolarge"]].last_status) == ("failed", 413)
    forbidden_sub = db.session.get(PushSubscription, subs["forbidden"])
    assert (forbidden_sub.failures, forbidden_sub.last_failure_status) == (1, 403)

    # Before Retry-After nothing is sent; after it, only the rate-limited one, once.
    assert push.send_due(now=NOW + timedelta(seconds=60)) == {}
    assert push.send_due(now=NOW + timedelta(seconds=121)) == {"sent": 1}
    assert fake_push.deliveries() == {("ok", str(ev.id), "reminder"): 1, ("busy", str(ev.id), "reminder"): 1}
    assert db.session.get(PushSubscription, subs["busy"]).failures == 0


def test_rate_limited_attempts_are_bounded(agenda, make, fake_push):
    site = make.site()
    agenda.event([site], NOW + timedelta(hours=1))
    sub, _ = agenda.subscribe(site, name="busy", now=NOW - timedelta(hours=1))
    fake_push.scripts["busy"] = deque([429] * 10)
    now = NOW
    for _ in range(push.DEFAULTS["PUSH_MAX_ATTEMPTS"]):
        push.send_due(now=now)
        now += timedelta(seconds=121)
    (d,) = deliveries(subscription_id=sub.id)
    assert (d.state, d.attempts) == ("failed", 5)
    assert push.send_due(now=now + timedelta(hours=1)) == {}
    assert len(fake_push.requests) == 5


def test_payload_and_headers(agenda, make, fake_push, world):
    site = make.site(code="zac-3", name="ZAC 3")
    ev = agenda.event([site], NOW + timedelta(hours=25), title="Sortie pêche", kind="sortie", place="Parking")
    sub, token = agenda.subscribe(site, kinds=["sortie"], name="phone", now=NOW)
    assert push.send_due(now=NOW + timedelta(hours=1)) == {"sent": 1}  # the 24 h reminder
    assert push.send_due(now=NOW + timedelta(hours=23, minutes=1)) == {"sent": 1}  # the 2 h one
    first, second = fake_push.received
    assert first["payload"] == {
        "type": "reminder", "event_id": str(ev.id), "title": "Sortie pêche", "kind": "sortie",
        "starts_at": "2026-06-02T11:00:00+02:00", "place": "Parking", "url": f"/agenda/zac-3/events/{ev.id}",
        "unsubscribe_url": f"/agenda/zac-3/unsubscribe#{token}"}
    # Until the start, at most: a reminder is useless afterwards.
    assert first["ttl"] == 24 * 3600 and second["ttl"] == 2 * 3600 - 60
    assert (first["urgency"], second["urgency"]) == ("normal", "high")
    # One topic per event: the 2 h reminder replaces the 24 h one if that one still waits.
    assert first["topic"] == second["topic"] == topic_for(ev.id) and len(first["topic"]) <= 32
    # No personal data of the world's residents reaches the push service.
    text = repr(fake_push.received)
    assert all(s not in text for s in ("Odette", "Lemaire", "06 12 34 56 78", "own@exemple.fr"))


def test_fresh_vapid_claims_for_each_push_service(agenda, make, fake_push, vapid):
    """Two push services (two origins) in one batch: each JWT's aud is its own origin (checked by each)."""
    site = make.site()
    ev = agenda.event([site], NOW + timedelta(hours=1))
    with FakePushService(vapid_public_key=vapid["public_key"]) as other:
        for i in range(3):
            agenda.subscribe(site, name=f"a{i}", now=NOW - timedelta(hours=1))
            agenda.subscribe(site, name=f"b{i}", now=NOW - timedelta(hours=1), fake=other)
        assert push.send_due(now=NOW) == {"sent": 6}
        assert other.errors == [] and len(other.received) == 3
    assert len(fake_push.received) == 3 and {r["payload"]["event_id"] for r in fake_push.received} == {str(ev.id)}


def test_withdrawn_before_sending_is_not_sent(agenda, make, fake_push):
    site = make.site()
    agenda.event([site], NOW + timedelta(hours=1))
    _, token = agenda.subscribe(site, now=NOW - timedelta(hours=1))
    push.unsubscribe(token, now=NOW)
    db.session.commit()
    assert push.send_due(now=NOW) == {}
    assert fake_push.requests == [] and {d.state for d in deliveries()} == {"dropped"}


def test_claim_of_a_dead_worker_is_released(agenda, make, fake_push):
    site = make.site()
    agenda.event([site], NOW + timedelta(hours=1))
    agenda.subscribe(site, now=NOW - timedelta(hours=1))
    from server.push.sending import claim
    assert len(claim("dead-worker", NOW, 10)) == 1
    assert push.send_due(now=NOW + timedelta(minutes=5)) == {}  # still held by its claimer
    assert push.send_due(now=NOW + timedelta(minutes=11)) == {"sent": 1}
    assert len(fake_push.received) == 1


def test_exactly_once_with_two_workers_at_the_same_time(push_app, agenda, make, fake_push):
    # One request at a time per worker; the first request waits until the other worker's arrives, so both
    # hold claims at the same moment.
    push_app.config.update(PUSH_BATCH=4, PUSH_REMINDER_OFFSETS=[120], PUSH_CONCURRENCY=1)
    fake_push.gate = threading.Barrier(2)
    site = make.site()
    events = [agenda.event([site], NOW + timedelta(minutes=90 + i)) for i in range(4)]
    for i in range(15):
        agenda.subscribe(site, name=f"s{i}", now=NOW - timedelta(hours=1))
    assert len(deliveries(state="pending")) == 60
    start = threading.Barrier(2)
    results, failures = {}, []

    def worker(name):
        try:
            with push_app.app_context():
                start.wait()
                results[name] = push.send_due(now=NOW, worker=name)
                db.session.remove()
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            failures.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("worker-1", "worker-2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    counts = fake_push.deliveries()
    assert len(counts) == 60 and set(counts.values()) == {1}
    assert results["worker-1"]["sent"] + results["worker-2"]["sent"] == 60
    rows = deliveries()
    assert {d.state for d in rows} == {"sent"} and {d.attempts for d in rows} == {1}
    assert {d.claimed_by for d in rows} == {"worker-1", "worker-2"}  # both really worked
    # Claims come in batches of PUSH_BATCH: 15 of them, shared by the two workers.
    assert sum(-(-r["sent"] // 4) for r in results.values()) == 15
    assert {(d.subscription_id, d.event_id) for d in rows} == {
        (s, e.id) for s in {d.subscription_id for d in rows} for e in events}


def test_jobs_run_inline_in_tests_and_the_tick_plans_and_sends(push_app, agenda, make, fake_push):
    """The tick runs on the wall clock: no quiet hours here (equal bounds), an event whose 2 h reminder is due."""
    assert tasks.huey.immediate is True
    push_app.config["PUSH_QUIET_HOURS"] = ["00:00", "00:00"]
    site = make.site()
    agenda.event([site], datetime.now(NOW.tzinfo) + timedelta(hours=1, minutes=55))
    agenda.subscribe(site, now=NOW - timedelta(days=365))
    db.session.execute(sa.delete(PushDelivery))  # as if the subscription came before the planner ran
    db.session.commit()
    result = tasks.push_tick.call_local()  # periodic tasks keep no result in huey: call the body
    assert result == {"planned": 1, "sent": 1}
    assert len(fake_push.received) == 1 and fake_push.received[0]["urgency"] == "high"


def test_jobs_backend_follows_the_url(tmp_path):
    from huey import RedisHuey, SqliteHuey
    assert isinstance(tasks.make_huey("redis://127.0.0.1:6379/0"), RedisHuey)
    h = tasks.make_huey(f"sqlite:///{tmp_path}/j/jobs.sqlite3")
    assert isinstance(h, SqliteHuey) and (tmp_path / "j").is_dir()


def test_a_reminder_overtaken_by_the_next_one_is_dropped(agenda, make, fake_push):
    """The worker was down: the 24 h reminder is still pending when the 2 h one is due. Only the latter goes."""
    site = make.site()
    ev = agenda.event([site], NOW + timedelta(hours=1, minutes=30))
    agenda.subscribe(site, name="late", now=NOW - timedelta(days=2))
    assert {d.offset_minutes for d in deliveries(state="pending")} == {1440, 120}
    assert push.send_due(now=NOW) == {"sent": 1, "dropped": 1}
    assert [(d.offset_minutes, d.state) for d in deliveries(event_id=ev.id)] == [(1440, "dropped"), (120, "sent")]


def test_a_worker_that_dies_between_sending_and_recording(agenda, make, fake_push, monkeypatch):
    """The claim (state 'sending', attempt counted) is committed before the POST; the outcome after it. A crash in
    between: nothing is re-sent while the claim may still be live, then it is sent again once, same Topic."""
    from server.push import sending
    site = make.site()
    ev = agenda.event([site], NOW + timedelta(hours=1))
    agenda.subscribe(site, name="a", now=NOW - timedelta(hours=1))
    real_record = sending._record

    def crash(results, *args):
        if results:  # the POST went out and was accepted; the process dies before writing it down
            raise SystemExit("worker killed")
        return real_record(results, *args)

    monkeypatch.setattr(sending, "_record", crash)
    with pytest.raises(SystemExit):
        push.send_due(now=NOW, worker="dead-worker")
    monkeypatch.setattr(sending, "_record", real_record)
    db.session.rollback()
    (d,) = deliveries()
    assert (d.state, d.claimed_by, d.attempts) == ("sending", "dead-worker", 1)
    assert len(fake_push.received) == 1

    assert push.send_due(now=NOW + timedelta(minutes=9)) == {}  # the lease (600 s) still runs
    assert push.send_due(now=NOW + timedelta(minutes=11)) == {"sent": 1}
    (d,) = deliveries()
    assert (d.state, d.attempts) == ("sent", 2)  # attempts 2 on a sent row: it may have arrived twice
    first, second = fake_push.received
    assert first["topic"] == second["topic"] == topic_for(ev.id)  # the service replaces it if still undelivered
    assert fake_push.deliveries() == {("a", str(ev.id), "reminder"): 2}


def test_an_outcome_from_a_claim_taken_over_changes_nothing(agenda, make, fake_push):
    """A worker that was only slow (not dead) writes its outcome after another took its claim over: the row is
    the new claimer's, the late outcome is ignored."""
    from collections import Counter

    from server.push import sending
    site = make.site()
    agenda.event([site], NOW + timedelta(hours=1))
    agenda.subscribe(site, name="a", now=NOW - timedelta(hours=1))
    (did,) = sending.claim("slow-worker", NOW, 10)
    jobs, _ = sending._jobs([did], NOW)
    db.session.commit()
    sending.release_stale_claims(NOW + timedelta(minutes=11))
    assert sending.claim("new-worker", NOW + timedelta(minutes=11), 10) == [did]
    sending._record([(jobs[0], 429, "60")], [], NOW, Counter(), "slow-worker")
    (d,) = deliveries()
    assert (d.state, d.claimed_by, d.last_status) == ("sending", "new-worker", None)
    db.session.commit()
    sending._record([(jobs[0], 201, None)], [], NOW, Counter(), "new-worker")
    assert deliveries()[0].state == "sent"


def test_no_post_starts_once_the_claim_is_too_old(agenda, make, fake_push, push_app):
    """A worker stuck behind slow push services does not start a POST another worker may be about to repeat:
    the notice goes back to pending, its attempt not counted."""
    push_app.config.update(PUSH_CLAIM_TIMEOUT=30, PUSH_TIMEOUT=10)  # deadline: 30 - 3 x 10 = now
    site = make.site()
    agenda.event([site], NOW + timedelta(hours=1))
    agenda.subscribe(site, name="a", now=NOW - timedelta(hours=1))
    assert push.send_due(now=NOW) == {"released": 1}
    assert fake_push.requests == []
    (d,) = deliveries()
    assert (d.state, d.claimed_by, d.attempts) == ("pending", None, 0)
    push_app.config.update(PUSH_CLAIM_TIMEOUT=600)
    assert push.send_due(now=NOW) == {"sent": 1}


def test_vapid_header_signed_once_per_origin_with_fresh_claims(agenda, make, fake_push, vapid, monkeypatch):
    from server.push import keys
    signer = keys.vapid_signer(vapid["private_key"])
    seen = []
    real_sign = signer.sign

    def spy(claims, *a, **kw):
        seen.append(claims)
        return real_sign(claims, *a, **kw)

    monkeypatch.setattr(signer, "sign", spy)
    site = make.site()
    agenda.event([site], NOW + timedelta(hours=1))
    with FakePushService(vapid_public_key=vapid["public_key"]) as other:
        for i in range(4):
            agenda.subscribe(site, name=f"a{i}", now=NOW - timedelta(hours=1))
            agenda.subscribe(site, name=f"b{i}", now=NOW - timedelta(hours=1), fake=other)
        assert push.send_due(now=NOW) == {"sent": 8}
        assert other.errors == []
    # Two origins, two signatures, each with its own dict and audience.
    assert sorted(c["aud"] for c in seen) == sorted([fake_push.origin, other.origin])
    assert seen[0] is not seen[1]


def test_unusable_browser_keys_fail_without_retry(agenda, make, fake_push):
    site = make.site()
    agenda.event([site], NOW + timedelta(hours=1))
    sub, _ = agenda.subscribe(site, name="a", now=NOW - timedelta(hours=1))
    # 65 bytes starting with 4, yet no point of P-256: the schema lets it through, the ECDH refuses it.
    db.session.execute(sa.update(PushSubscription).where(PushSubscription.id == sub.id)
                       .values(p256dh=keys_b64(b"\x04" + b"\x01" * 64)))
    db.session.commit()
    assert push.send_due(now=NOW) == {"failed": 1}
    assert fake_push.requests == [] and deliveries()[0].state == "failed"


def keys_b64(raw: bytes) -> str:
    from server.push.keys import b64url
    return b64url(raw)
