"""Push and pull through the API: ownership, limits, scope changes, merges reaching devices, concurrency."""
import threading
import uuid
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from server.extensions import db
from server.models import Device, MutationRun, Rejection, Resident, Visit


def _now(**delta):
    return (datetime.now(timezone.utc) + timedelta(**delta)).isoformat()


def visit(n, household_id, **kw):
    args = {"id": str(uuid.uuid4()), "household_id": str(household_id), "visited_at": _now(), "outcome": "talked"}
    args.update(kw)
    return {"n": n, "op": "visit.create", "at": _now(), "args": args}


def push(api, client_id, mutations, **kw):
    return api.post("/api/sync/push", json={"client_id": client_id, "mutations": mutations, **kw})


def pull_all(api, client_id, cursor=None, limit=500):
    pages = []
    while True:
        resp = api.post("/api/sync/pull", json={"client_id": client_id, "cursor": cursor, "limit": limit})
        assert resp.status_code == 200, resp.get_json()
        body = resp.get_json()
        pages.append(body)
        cursor = body["cursor"]
        if not body["has_more"]:
            return pages, cursor


def test_device_of_another_user_is_403(world, as_role, login, make):
    cid = str(uuid.uuid4())
    assert push(as_role("gardien"), cid, [visit(1, world["own_household"])]).status_code == 200
    other = login(make.user("staff", sites=[]))
    resp = push(other, cid, [visit(2, world["own_household"])])
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "device_not_yours"
    resp = other.post("/api/sync/pull", json={"client_id": cid, "cursor": None})
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "device_not_yours"


def test_head_office_may_pull_but_not_push(world, as_role):
    cid = str(uuid.uuid4())
    assert push(as_role("head_office"), cid, []).status_code == 403
    pages, _ = pull_all(as_role("head_office"), cid)
    ids = {c["id"] for p in pages for c in p["changes"]}
    assert world["own_household"] in ids and world["other_household"] in ids
    assert pages[0]["scope"] == {"role": "head_office", "sites": None}


def test_too_many_mutations_is_413_and_nothing_applied(app, world, as_role):
    app.config["SYNC_MAX_MUTATIONS"] = 3
    cid = str(uuid.uuid4())
    resp = push(as_role("staff"), cid, [visit(n, world["own_household"]) for n in range(1, 5)])
    assert resp.status_code == 413
    assert resp.get_json()["error"]["code"] == "too_many_mutations"
    assert db.session.execute(sa.select(sa.func.count()).select_from(Visit)).scalar_one() == 0
    assert db.session.get(Device, uuid.UUID(cid)) is None


def test_body_too_large_is_413_json_with_or_without_content_length(app, world, as_role):
    app.config["MAX_CONTENT_LENGTH"] = 2000
    api = as_role("staff")
    cid = str(uuid.uuid4())
    big = [visit(1, world["own_household"], note="x" * 400), visit(2, world["own_household"], note="y" * 400),
           visit(3, world["own_household"], note="z" * 400), visit(4, world["own_household"], note="w" * 400)]
    resp = push(api, cid, big)
    assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "payload_too_large"
    import io
    import json
    raw = json.dumps({"client_id": cid, "mutations": big}).encode()
    # A chunked body as a de-chunking server (werkzeug, gunicorn) hands it over: no length, a terminated input.
    resp = api.client.post("/api/sync/push", input_stream=io.BytesIO(raw),
                           environ_overrides={"wsgi.input_terminated": True},
                           headers={**api._headers(), "Content-Type": "application/json",
                                    "Transfer-Encoding": "chunked"})
    assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "payload_too_large"
    assert db.session.execute(sa.select(sa.func.count()).select_from(Visit)).scalar_one() == 0


def test_malformed_envelope_is_422_and_nothing_applied(world, as_role):
    api = as_role("staff")
    cid = str(uuid.uuid4())
    m1, m3 = visit(1, world["own_household"]), visit(3, world["own_household"])
    for body in ({"client_id": cid, "mutations": [m1, m3]},
                 {"client_id": cid, "mutations": [{**m1, "op": "visit.explode"}]},
                 {"client_id": cid, "mutations": [m1], "extra": 1},
                 {"client_id": "nope", "mutations": [m1]}):
        resp = api.post("/api/sync/push", json=body)
        assert resp.status_code == 422, body
    assert db.session.execute(sa.select(sa.func.count()).select_from(Visit)).scalar_one() == 0


def test_gap_and_changed_body_leave_everything_unchanged(world, as_role):
    api = as_role("staff")
    cid = str(uuid.uuid4())
    first = [visit(1, world["own_household"]), visit(2, world["own_household"])]
    assert push(api, cid, first).get_json()["last_applied"] == 2
    resp = push(api, cid, [visit(4, world["own_household"])])
    assert resp.status_code == 409 and resp.get_json()["error"]["details"] == {"next_expected": 3}
    changed = {**first[1], "args": {**first[1]["args"], "outcome": "absent"}}
    resp = push(api, cid, [changed, visit(3, world["own_household"])])
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "mutation_conflict"
    assert db.session.execute(sa.select(sa.func.count()).select_from(Visit)).scalar_one() == 2
    assert db.session.get(Device, uuid.UUID(cid)).last_applied == 2


def test_a_replay_across_pushes_is_answered_from_each_push_s_log_run(world, as_role):
    """The log keeps one run per push: a request re-sending the end of one push and the start of the next (each
    with a rejection) gets each mutation's own answer, and a changed body in the second run is still caught."""
    api = as_role("staff")
    cid = str(uuid.uuid4())
    hh = world["own_household"]
    ms = [visit(1, hh), visit(2, hh, outcome="peut-être"), visit(3, hh),
          visit(4, hh), visit(5, hh), visit(6, hh, outcome="jamais")]
    assert push(api, cid, ms[:3]).get_json()["last_applied"] == 3
    assert push(api, cid, ms[3:]).get_json()["last_applied"] == 6
    assert db.session.execute(sa.select(MutationRun.first_n, MutationRun.last_n)
                              .order_by(MutationRun.first_n)).all() == [(1, 3), (4, 6)]
    again = push(api, cid, [*ms[1:], visit(7, hh)]).get_json()
    assert [(r["n"], r["status"], bool(r.get("replayed"))) for r in again["results"]] == [
        (2, "rejected", True), (3, "applied", True), (4, "applied", True), (5, "applied", True),
        (6, "rejected", True), (7, "applied", False)]
    assert again["results"][0]["reason"]["code"] == again["results"][4]["reason"]["code"] == "invalid"
    changed = {**ms[4], "args": {**ms[4]["args"], "outcome": "absent"}}
    resp = push(api, cid, [ms[2], ms[3], changed])
    assert resp.status_code == 409 and resp.get_json()["error"]["details"] == {"n": 5}
    assert db.session.execute(sa.select(sa.func.count()).select_from(Visit)).scalar_one() == 5


def test_poison_record_is_recorded_for_head_office_with_its_args(world, as_role):
    api = as_role("staff")
    cid = str(uuid.uuid4())
    bad = visit(2, world["own_household"], outcome="peut-être")
    resp = push(api, cid, [visit(1, world["own_household"]), bad, visit(3, world["own_household"])])
    assert [r["status"] for r in resp.get_json()["results"]] == ["applied", "rejected", "applied"]
    assert resp.get_json()["results"][1]["reason"]["details"]["outcome"]
    listing = [r for r in as_role("head_office").get("/api/review/rejections").get_json()["items"]
               if r["client_id"] == cid]
    assert [(r["n"], r["code"], r["args"]["outcome"]) for r in listing] == [(2, "invalid", "peut-être")]
    assert push(api, cid, [visit(4, world["own_household"])]).get_json()["results"][0]["status"] == "applied"
    rid = listing[0]["id"]
    assert as_role("head_office").post(f"/api/review/rejections/{rid}/dismiss").status_code == 200
    rej = db.session.get(Rejection, uuid.UUID(rid))
    assert rej.status == "dismissed" and rej.args is None


def test_clock_is_data_implausible_times_are_flagged(world, as_role):
    api = as_role("staff")
    cid = str(uuid.uuid4())
    ahead = visit(1, world["own_household"], visited_at=_now(days=365))
    behind = visit(2, world["own_household"], visited_at=_now(days=-60))
    fine = visit(3, world["own_household"], visited_at=_now(hours=-3))
    assert push(api, cid, [ahead, behind, fine]).status_code == 200
    flags = {str(v.id): v.clock_suspect for v in db.session.execute(sa.select(Visit)).scalars()}
    assert flags == {ahead["args"]["id"]: True, behind["args"]["id"]: True, fine["args"]["id"]: False}


def test_losing_a_site_resets_the_device_and_its_rows_leave(world, as_role, make, login):
    from server.models import Site, User
    site_own, site_other = (db.session.get(Site, uuid.UUID(world[k])) for k in ("own_site", "other_site"))
    user = make.user("gardien", sites=[site_own, site_other])
    api = login(user)
    cid = str(uuid.uuid4())
    pages, cursor = pull_all(api, cid)
    held = {c["id"] for p in pages for c in p["changes"]}
    assert world["other_household"] in held and world["own_household"] in held
    resident = next(c for p in pages for c in p["changes"] if c["entity"] == "resident")
    assert "phone" not in resident["data"] and "email" not in resident["data"]
    user = db.session.get(User, user.id)
    user.sites = [site_own]
    db.session.commit()
    pages, _ = pull_all(api, cid, cursor)
    assert pages[0]["reset"] is True
    held = {c["id"] for p in pages for c in p["changes"]}
    assert world["own_household"] in held and not held & set(world.other_site_ids())


def test_gardien_never_receives_another_sites_rows(world, as_role):
    pages, _ = pull_all(as_role("gardien"), str(uuid.uuid4()), limit=2)
    assert len(pages) > 2
    held = {c["id"] for p in pages for c in p["changes"]}
    assert world["own_resident"] in held and not held & set(world.other_site_ids())
    seqs = [c["seq"] for p in pages for c in p["changes"]]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))


def test_merge_reaches_devices_at_next_pull(world, as_role):
    staff, head = as_role("staff"), as_role("head_office")
    cid1, cid2 = str(uuid.uuid4()), str(uuid.uuid4())
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    hh = world["own_household"]

    def create(n, rid, first, last):
        return {"n": n, "op": "resident.create", "at": _now(),
                "args": {"id": rid, "household_id": hh, "first_name": first, "last_name": last}}

    assert push(staff, cid1, [create(1, a, "Léa", "Caron")]).status_code == 200
    pages, cursor = pull_all(staff, cid2)
    assert push(staff, cid2, [create(1, b, "CARON", "lea"),
                              {"n": 2, "op": "attendance.create", "at": _now(),
                               "args": {"id": str(uuid.uuid4()), "event_id": world["own_event"], "resident_id": b,
                                        "checked_in_at": _now()}},
                              visit(3, hh, resident_id=b)]).status_code == 200
    dup = [d for d in head.get("/api/review/duplicates").get_json()["items"] if d["resident"]["id"] == b]
    assert [(d["resident"]["id"], d["candidate"]["id"]) for d in dup] == [(b, a)]
    resp = head.post(f"/api/review/duplicates/{dup[0]['id']}/merge", json={})
    assert resp.status_code == 200, resp.get_json()
    # A mutation still queued on a phone, naming the merged resident, follows merged_into.
    resp = push(staff, cid2, [{"n": 4, "op": "resident.update", "at": _now(),
                               "args": {"id": b, "base_seq": 0, "changes": {"consent_contact": True}}}])
    assert resp.get_json()["results"][0]["status"] == "applied"
    pages, _ = pull_all(staff, cid2, cursor)
    changes = {(c["entity"], c["id"]): c for p in pages for c in p["changes"]}
    assert changes[("resident", b)]["deleted"] and changes[("resident", b)]["merged_into"] == a
    assert changes[("resident", a)]["data"]["consent_contact"] is True
    assert all(c["data"]["resident_id"] == a for (e, _), c in changes.items() if e in ("attendance", "visit"))
    assert db.session.get(Resident, uuid.UUID(b)).merged_into == uuid.UUID(a)
    assert head.post(f"/api/review/duplicates/{dup[0]['id']}/merge", json={}).status_code == 409


def test_conflict_resolution_is_an_ordinary_change(world, as_role, login, make):
    from server.models import Site
    site = db.session.get(Site, uuid.UUID(world["own_site"]))
    s1, s2 = as_role("staff"), login(make.user("staff", sites=[site]))
    c1, c2 = str(uuid.uuid4()), str(uuid.uuid4())
    rid = world["own_resident"]
    pull_all(s1, c1)
    pages, cursor = pull_all(s2, c2)
    base = next(c["seq"] for p in pages for c in p["changes"] if c["id"] == rid)

    def upd(n, phone):
        return [{"n": n, "op": "resident.update", "at": _now(),
                 "args": {"id": rid, "base_seq": base, "changes": {"phone": phone}}}]

    assert push(s1, c1, upd(1, "06 01 01 01 01")).get_json()["results"][0].get("conflicts") is None
    losing = upd(1, "06 02 02 02 02")
    assert push(s2, c2, losing).get_json()["results"][0]["conflicts"] == ["phone"]
    # the replayed answer says the same
    assert push(s2, c2, losing).get_json()["results"][0] == {"n": 1, "status": "applied", "conflicts": ["phone"],
                                                             "replayed": True}
    head = as_role("head_office")
    (conflict,) = [c for c in head.get("/api/review/conflicts").get_json()["items"] if c["lost_client_id"] == c2]
    assert (conflict["kept_value"], conflict["lost_value"]) == ("06 01 01 01 01", "06 02 02 02 02")
    assert head.post(f"/api/review/conflicts/{conflict['id']}/resolve", json={"value": 12}).status_code == 422
    assert head.post(f"/api/review/conflicts/{conflict['id']}/resolve", json={"keep": "lost"}).status_code == 200
    pages, _ = pull_all(s2, c2, cursor)
    res = next(c for p in pages for c in p["changes"] if c["id"] == rid)
    assert res["data"]["phone"] == "06 02 02 02 02"
    assert conflict["id"] not in {c["id"] for c in head.get("/api/review/conflicts").get_json()["items"]}


def test_review_is_for_head_office_and_admin(as_role, world):
    for role in ("gardien", "staff"):
        assert as_role(role).get("/api/review/conflicts").status_code == 403
    for role in ("head_office", "admin"):
        assert as_role(role).get("/api/review/duplicates").status_code == 200


def test_same_batch_from_two_connections_at_once(app, world, login):
    """Two threads, each with its own client and app context: one copy, no 500, both answers agree."""
    from server.models import User
    user = db.session.get(User, world.users["staff"].id)
    cid = str(uuid.uuid4())
    batch = [visit(n, world["own_household"]) for n in range(1, 51)]
    answers, barrier = [], threading.Barrier(2)

    email = user.email
    db.session.rollback()  # the test's own session holds nothing while the two requests race

    def run():
        # Each request of a test client pushes its own app context, hence its own session and connection.
        client = app.test_client()
        resp = client.post("/api/auth/login", json={"email": email, "password": "motdepasse-solide",
                                                    "mode": "bearer"})
        token = resp.get_json()["access_token"]
        barrier.wait(timeout=60)  # a thread that failed to log in must not leave the other hanging
        r = client.post("/api/sync/push", json={"client_id": cid, "mutations": batch},
                        headers={"Authorization": f"Bearer {token}"})
        answers.append((r.status_code, r.get_json()))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s for s, _ in answers] == [200, 200], answers
    assert sorted(any(r.get("replayed") for r in body["results"]) for _, body in answers) == [False, True]
    db.session.rollback()
    assert db.session.execute(sa.select(sa.func.count()).select_from(Visit)).scalar_one() == 50
    # One log run (one push applied them), of 50 entries.
    assert db.session.execute(sa.select(MutationRun.first_n, MutationRun.last_n)).all() == [(1, 50)]


def _engagement(world, make, started_on):
    from server.models import Action
    res = db.session.get(Resident, uuid.UUID(world["own_resident"]))
    return make.engagement(res, db.session.get(Action, uuid.UUID(world["own_action"])), started_on=started_on)


def _update(n, e, base_seq, **changes):
    return {"n": n, "op": "engagement.update", "at": _now(),
            "args": {"id": str(e.id), "base_seq": base_seq, "changes": changes}}


def test_ending_an_engagement_without_a_date_ends_it_the_day_the_server_learns_it(world, as_role, make):
    """The figures counted the engagement until today: filling today keeps the weeks it counted in as shown."""
    from server import services
    from server.models import Engagement
    today = services.today()
    e = _engagement(world, make, today - timedelta(days=30))
    base = e.seq
    body = push(as_role("gardien"), str(uuid.uuid4()), [_update(1, e, base, status="ended")]).get_json()
    assert body["results"][0] == {"n": 1, "status": "applied"}
    db.session.expire_all()
    assert db.session.get(Engagement, e.id).ended_on == today
    pages, _ = pull_all(as_role("staff"), str(uuid.uuid4()))
    (pulled,) = [c for p in pages for c in p["changes"] if c["id"] == str(e.id)]
    assert (pulled["data"]["status"], pulled["data"]["ended_on"]) == ("ended", today.isoformat())
    # The filled date is a default: a phone's own date, even from an older base, replaces it without a conflict.
    body = push(as_role("staff"), str(uuid.uuid4()), [_update(1, e, base, ended_on=(today - timedelta(days=3))
                                                              .isoformat())]).get_json()
    assert body["results"][0] == {"n": 1, "status": "applied"}
    db.session.expire_all()
    assert db.session.get(Engagement, e.id).ended_on == today - timedelta(days=3)


def test_resolving_a_status_conflict_to_ended_fills_the_end_too(world, as_role, login, make):
    from server import services
    from server.models import Engagement, Site
    e = _engagement(world, make, services.today() - timedelta(days=30))
    base = e.seq
    other = login(make.user("staff", sites=[db.session.get(Site, uuid.UUID(world["own_site"]))]))
    assert push(as_role("staff"), str(uuid.uuid4()), [_update(1, e, base, status="paused")]).status_code == 200
    c2 = str(uuid.uuid4())
    assert push(other, c2, [_update(1, e, base, status="ended")]).get_json()["results"][0]["conflicts"] == ["status"]
    db.session.expire_all()
    assert (db.session.get(Engagement, e.id).status, db.session.get(Engagement, e.id).ended_on) == ("paused", None)
    head = as_role("head_office")
    (conflict,) = [c for c in head.get("/api/review/conflicts").get_json()["items"] if c["lost_client_id"] == c2]
    assert head.post(f"/api/review/conflicts/{conflict['id']}/resolve", json={"keep": "lost"}).status_code == 200
    db.session.expire_all()
    row = db.session.get(Engagement, e.id)
    assert (row.status, row.ended_on) == ("ended", services.today())
