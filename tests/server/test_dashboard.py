"""The dashboard's figures against direct SQL counts (written here as raw SQL, not through server.office), on SQLite
and PostgreSQL, with suspected duplicates pending and merged, ended, paused, future and deleted engagements."""
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from server import services
from server.office import paris_today

from .office_support import PARIS, office, raw  # noqa: F401 (office is a fixture)

FROM, TO = date(2026, 10, 5), date(2026, 11, 15)  # ISO weeks 2026-W41 to 2026-W46
WEEK_ENDS = [date(2026, 10, 11), date(2026, 10, 18), date(2026, 10, 25), date(2026, 11, 1), date(2026, 11, 8),
             date(2026, 11, 15)]

# Engaged on a day: an active engagement from started_on to ended_on (or open); an ended one from started_on to
# its ended_on, and never today or later (it is over now); a paused one, or an ended one without ended_on, never.
ENGAGED_ON = """e.deleted = :no AND r.deleted = :no AND e.started_on <= :day
  AND ((e.status = 'active' AND (e.ended_on IS NULL OR e.ended_on >= :day))
       OR (e.status = 'ended' AND e.ended_on >= :day AND :day < :today))"""
ENGAGED_SQL = f"""
SELECT COUNT(DISTINCT COALESCE(r.duplicate_of, r.id))
FROM engagements e JOIN residents r ON r.id = e.resident_id
WHERE {ENGAGED_ON} {{extra}}
"""


def engaged_sql(day, extra="", **params):
    return raw(ENGAGED_SQL.format(extra=extra), day=day, today=services.today(), **params).scalar_one()


def _dashboard(api, **params):
    query = "&".join(f"{k}={v}" for k, v in {"from": FROM, "to": TO, **params}.items())
    resp = api.get(f"/api/dashboard?{query}")
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_engaged_figures_equal_direct_sql_counts(office):
    d = _dashboard(office["head"])
    counted = engaged_sql(TO)
    assert counted == 4  # r1, r2 (and its pending duplicate), r3 (merged with r3b), r9: the SQL is not vacuous
    assert d["engaged"]["counted_residents"] == counted
    assert d["baseline"] == 386 and d["goal"] == 1400 and d["baseline_included"] is True
    assert d["engaged"]["total"] == 386 + counted
    folded = raw(f"""SELECT COUNT(DISTINCT r.id) FROM engagements e JOIN residents r ON r.id = e.resident_id
                     WHERE {ENGAGED_ON} AND r.duplicate_of IS NOT NULL""", day=TO, today=services.today()).scalar_one()
    assert d["engaged"]["pending_duplicates"] == folded == 1


def test_today_the_dashboard_and_the_programme_progress_agree(office):
    d = office["head"].get("/api/dashboard").get_json()
    progress = office["head"].get("/api/programme/progress").get_json()
    assert (d["engaged"]["total"], d["engaged"]["counted_residents"]) == (progress["engaged"], progress["recorded"])
    assert d["engaged"]["counted_residents"] == engaged_sql(date.fromisoformat(d["to"]))


def test_progress_on_a_day_is_that_days_count_plus_the_baseline(office):
    """services.progress (every pull page carries it) binds its day: each week end's figure, then none without a
    programme."""
    import sqlalchemy as sa

    from server.extensions import db
    from server.models import Programme

    counts = [engaged_sql(day) for day in WEEK_ENDS]
    assert [(p["recorded"], p["engaged"], p["baseline"], p["goal"]) for p in map(services.progress, WEEK_ENDS)] == [
        (n, 386 + n, 386, 1400) for n in counts]
    db.session.execute(sa.delete(Programme))
    p = services.progress(TO)
    assert (p["recorded"], p["engaged"], p["baseline"], p["goal"]) == (counts[-1], counts[-1], 0, 0)
    db.session.rollback()


def test_weekly_series_is_the_count_at_each_week_end(office):
    d = _dashboard(office["head"])
    assert [w["week"] for w in d["engaged_weekly"]] == [f"2026-W{n}" for n in range(41, 47)]
    assert [w["week_start"] for w in d["engaged_weekly"]] == [(FROM + timedelta(weeks=i)).isoformat()
                                                              for i in range(6)]
    expected = [engaged_sql(day) for day in WEEK_ENDS]
    assert expected == [3, 4, 5, 4, 4, 4]  # r4, ended on 2026-10-25, still counts in the weeks it was engaged
    assert [w["engaged"] for w in d["engaged_weekly"]] == expected
    assert [w["total"] for w in d["engaged_weekly"]] == [386 + n for n in expected]


def test_per_site_and_per_action_equal_direct_sql(office):
    d = _dashboard(office["head"])
    per_site = {row["site_id"]: row["engaged"] for row in d["per_site"]}
    for key in ("s1", "s2"):
        site = office[key]
        assert per_site[str(site.id)] == engaged_sql(TO, "AND e.site_id = :site", site=site.id)
    assert per_site == {str(office["s1"].id): 3, str(office["s2"].id): 1}
    per_action = {row["action_id"]: row["engaged"] for row in d["per_action"]}
    for key in ("a_site", "a_all"):
        action = office[key]
        assert per_action[str(action.id)] == engaged_sql(TO, "AND e.action_id = :action", action=action.id)
    # a_all: r1, r2 (through its pending duplicate), r3 (through the merged r3b) and r9
    assert per_action == {str(office["a_site"].id): 3, str(office["a_all"].id): 4}
    assert {row["site_name"] for row in d["per_site"]} == {"Les Tilleuls", "Le Portel"}


def test_filters_by_site_and_action_leave_the_baseline_out(office):
    site = office["s1"]
    d = _dashboard(office["head"], site_id=site.id)
    expected = engaged_sql(TO, "AND e.site_id = :site", site=site.id)
    assert d["baseline_included"] is False
    assert d["engaged"]["counted_residents"] == d["engaged"]["total"] == expected == 3
    assert [w["engaged"] for w in d["engaged_weekly"]] == [
        engaged_sql(day, "AND e.site_id = :site", site=site.id) for day in WEEK_ENDS]
    action = office["a_all"]
    d = _dashboard(office["head"], action_id=action.id)
    assert d["engaged"]["total"] == engaged_sql(TO, "AND e.action_id = :action", action=action.id) == 4


def _visits_sql(lo, hi, site=None):
    extra = "AND site_id = :site" if site else ""
    params = {"site": site} if site else {}
    rows = raw(f"""SELECT outcome, COUNT(*) FROM visits WHERE deleted = :no AND visited_at >= :lo
                   AND visited_at < :hi {extra} GROUP BY outcome""", lo=lo, hi=hi, **params).all()
    out = {"absent": 0, "refused": 0, "talked": 0, **dict(rows)}
    out["total"] = sum(out.values())
    return out


def test_visits_per_week_in_paris_time_equal_direct_sql(office):
    d = _dashboard(office["head"])
    got = [{k: w[k] for k in ("absent", "refused", "talked", "total")} for w in d["visits_weekly"]]
    expected = []
    for i in range(6):
        monday = FROM + timedelta(weeks=i)
        lo = datetime.combine(monday, datetime.min.time(), PARIS)
        hi = datetime.combine(monday + timedelta(days=7), datetime.min.time(), PARIS)
        expected.append(_visits_sql(lo, hi))
    assert got == expected
    # hand-checked: the Sunday 23:30 refusal stays in W41, the Monday 00:30 visit (Sunday in UTC) is W42
    assert expected[0] == {"absent": 1, "refused": 1, "talked": 1, "total": 3}
    assert expected[1]["talked"] == 1 and expected[1]["total"] == 1
    assert sum(w["total"] for w in got) == 6  # the day before FROM, the deleted one and the one after TO are out
    s2 = _dashboard(office["head"], site_id=office["s2"].id)
    assert sum(w["total"] for w in s2["visits_weekly"]) == 2


def test_events_with_their_attendance_equal_direct_sql(office):
    d = _dashboard(office["head"])
    by_id = {e["event_id"]: e for e in d["events"]}
    assert set(by_id) == {str(office["events"]["e1"].id), str(office["events"]["e2"].id)}  # e3 is before FROM
    for ev in office["events"].values():
        if str(ev.id) not in by_id:
            continue
        named = raw("SELECT COUNT(*) FROM attendances WHERE event_id = :event AND deleted = :no",
                    event=ev.id).scalar_one()
        heads = raw("SELECT COALESCE(SUM(count), 0) FROM head_counts WHERE event_id = :event AND deleted = :no",
                    event=ev.id).scalar_one()
        assert (by_id[str(ev.id)]["named_attendance"], by_id[str(ev.id)]["head_count"]) == (named, heads)
    e1 = by_id[str(office["events"]["e1"].id)]
    assert (e1["named_attendance"], e1["head_count"], e1["sites"]) == (1, 42, ["Les Tilleuls"])
    assert by_id[str(office["events"]["e2"].id)]["status"] == "cancelled"


def test_figures_move_after_a_field_device_syncs(office, make, login):
    gardien = login(make.user("gardien", sites=[office["s2"]]))
    # Paris days, as the dashboard counts them: between 23:00 and midnight UTC a visit made now is tomorrow's.
    today = paris_today()
    before = _dashboard(office["head"], to=today, **{"from": today - timedelta(days=7)})
    rid = str(uuid.uuid4())
    now = datetime.now(timezone.utc).isoformat()
    mutations = [
        {"n": 1, "op": "resident.create", "at": now,
         "args": {"id": rid, "household_id": str(office["h2"].id), "first_name": "Rémi", "last_name": "Nouveau"}},
        {"n": 2, "op": "engagement.create", "at": now,
         "args": {"id": str(uuid.uuid4()), "resident_id": rid, "action_id": str(office["a_all"].id),
                  "role": "volunteer", "started_on": today.isoformat()}},
        {"n": 3, "op": "visit.create", "at": now,
         "args": {"id": str(uuid.uuid4()), "household_id": str(office["h2"].id), "visited_at": now,
                  "outcome": "talked", "resident_id": rid}},
    ]
    resp = gardien.post("/api/sync/push", json={"client_id": str(uuid.uuid4()), "mutations": mutations})
    assert [r["status"] for r in resp.get_json()["results"]] == ["applied"] * 3
    after = _dashboard(office["head"], to=today, **{"from": today - timedelta(days=7)})
    assert after["engaged"]["counted_residents"] == before["engaged"]["counted_residents"] + 1
    assert sum(w["talked"] for w in after["visits_weekly"]) == sum(w["talked"] for w in before["visits_weekly"]) + 1


def test_default_range_is_26_weeks_up_to_today(office):
    d = office["head"].get("/api/dashboard").get_json()
    assert len(d["engaged_weekly"]) in (26, 27) and d["engaged_weekly"][-1]["week_end"] == d["to"]


@pytest.mark.parametrize("query", ["?site=x", "?site_id=pas-un-uuid", "?from=2026-11-20&to=2026-11-01",
                                   "?from=2020-01-01&to=2026-01-01", "?to=2026-13-01", "?from=1&from=2",
                                   "?from=4054-11-19"])  # alone, after the default `to` (today): was a 500
def test_bad_filters_are_422_in_one_shape(office, query):
    resp = office["head"].get(f"/api/dashboard{query}")
    assert resp.status_code == 422, resp.get_json()
    assert set(resp.get_json()) == {"error"} and resp.get_json()["error"]["code"] == "validation_error"


def test_field_roles_are_refused(office, make, login):
    for role in ("gardien", "staff"):
        assert login(make.user(role, sites=[office["s1"]])).get("/api/dashboard").status_code == 403


# --- history: ending an engagement today never rewrites the weeks already shown ---------------------------------

def _six_weeks():
    """(from, the end of each week counted): five whole ISO weeks, then this week up to today."""
    today = services.today()
    frm = today - timedelta(days=today.weekday(), weeks=5)
    return frm, [frm + timedelta(days=6, weeks=i) for i in range(5)] + [today]


def _ended_world(make, login):
    site = make.site(name="Les Tilleuls")
    garden, bread = make.action(name="Jardin partagé", site=site), make.action(name="Portage de pain")
    hh = make.household(site)
    paul = make.resident(hh, first_name="Paul", last_name="Fini")
    dup = make.resident(hh, first_name="PAUL", last_name="Fini", duplicate_of=paul.id)  # pending: counts as Paul
    odette = make.resident(hh, first_name="Odette", last_name="Lemaire")
    return {"site": site, "garden": garden, "bread": bread, "paul": paul, "dup": dup, "odette": odette,
            "head": login(make.user("head_office")), "gardien": login(make.user("gardien", sites=[site]))}


def _engaged(api, frm, to, **params):
    d = _dashboard(api, **{"from": frm, "to": to, **params})
    return d, [w["engaged"] for w in d["engaged_weekly"]]


def test_ending_an_engagement_keeps_the_weeks_it_was_engaged(make, login):
    frm, ends = _six_weeks()
    w = _ended_world(make, login)
    paul_garden = make.engagement(w["paul"], w["garden"], started_on=frm)
    dup_bread = make.engagement(w["dup"], w["bread"], started_on=frm + timedelta(days=2))
    make.engagement(w["odette"], w["garden"], started_on=frm + timedelta(weeks=1))
    before, shown = _engaged(w["head"], frm, ends[-1])
    assert shown == [1, 2, 2, 2, 2, 2]  # Paul once with his pending duplicate, then Odette

    # Paul's engagements end with the third week (his duplicate's too), recorded today by a phone.
    last = ends[2]
    resp = w["gardien"].post("/api/sync/push", json={"client_id": str(uuid.uuid4()), "mutations": [
        {"n": n, "op": "engagement.update", "at": datetime.now(timezone.utc).isoformat(),
         "args": {"id": str(e.id), "base_seq": e.seq, "changes": {"status": "ended", "ended_on": last.isoformat()}}}
        for n, e in enumerate((paul_garden, dup_bread), 1)]})
    assert [r["status"] for r in resp.get_json()["results"]] == ["applied", "applied"], resp.get_json()

    after, weekly = _engaged(w["head"], frm, ends[-1])
    assert weekly[:3] == shown[:3] and weekly == [1, 2, 2, 1, 1, 1]
    assert weekly == [engaged_sql(day) for day in ends]
    assert after["engaged"]["counted_residents"] == services.progress()["recorded"] == engaged_sql(ends[-1]) == 1
    assert after["engaged"]["pending_duplicates"] == 0
    site = {"site_id": w["site"].id}
    assert _engaged(w["head"], frm, ends[-1], **site)[1] == weekly
    assert _engaged(w["head"], frm, ends[-1], action_id=w["bread"].id)[1] == [1, 1, 1, 0, 0, 0]

    # On the third week's last day, as last month's export read it: Paul (once), Odette; per site and per action.
    d, _ = _engaged(w["head"], frm, last)
    assert d["engaged"]["counted_residents"] == engaged_sql(last) == 2 and d["engaged"]["pending_duplicates"] == 1
    assert {r["site_id"]: r["engaged"] for r in d["per_site"]} == {str(w["site"].id): 2}
    per_action = {r["action_id"]: r["engaged"] for r in d["per_action"]}
    assert per_action == {str(a.id): engaged_sql(last, "AND e.action_id = :action", action=a.id)
                          for a in (w["garden"], w["bread"])} == {str(w["garden"].id): 2, str(w["bread"].id): 1}
    assert services.progress(last)["recorded"] == 2


def test_an_ended_engagement_is_not_counted_today_even_with_a_later_end(make, login):
    frm, ends = _six_weeks()
    w = _ended_world(make, login)
    make.engagement(w["paul"], w["garden"], started_on=frm, status="ended", ended_on=ends[-1] + timedelta(days=10))
    d, weekly = _engaged(w["head"], frm, ends[-1])
    assert weekly == [engaged_sql(day) for day in ends] == [1, 1, 1, 1, 1, 0]
    assert d["engaged"]["counted_residents"] == services.progress()["recorded"] == 0
    listed = w["head"].get(f"/api/lists/residents?site_id={w['site'].id}&engaged=true").get_json()
    assert listed["total"] == 0


def test_paused_and_ended_without_an_end_count_on_no_day(make, login):
    """No date records when a pause began, nor when an engagement ended without ended_on: counting them on no day
    is what the figures always showed, so no week moves."""
    frm, ends = _six_weeks()
    w = _ended_world(make, login)
    make.engagement(w["paul"], w["garden"], started_on=frm, status="ended")
    make.engagement(w["odette"], w["garden"], started_on=frm, status="paused")
    assert _engaged(w["head"], frm, ends[-1])[1] == [engaged_sql(day) for day in ends] == [0] * 6
