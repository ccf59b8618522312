"""Head office's lists: filters, paging, newest first, search with accents, attendance, audit of personal data."""
from datetime import date

import pytest
import sqlalchemy as sa

from server import services
from server.extensions import db
from server.models import AuditLog

from .office_support import office, paris, raw  # noqa: F401 (office is a fixture)


def _get(api, url):
    resp = api.get(url)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_visits_newest_first_with_paging_and_totals(office):
    head = office["head"]
    live = raw("SELECT COUNT(*) FROM visits WHERE deleted = :no").scalar_one()
    first = _get(head, "/api/lists/visits?per_page=3")
    assert first["total"] == live == 8 and first["per_page"] == 3 and len(first["items"]) == 3
    pages = [first["items"]] + [_get(head, f"/api/lists/visits?per_page=3&page={p}")["items"] for p in (2, 3)]
    items = [v for page in pages for v in page]
    assert len(items) == 8 and len({v["id"] for v in items}) == 8
    times = [v["visited_at"] for v in items]
    assert times == sorted(times, reverse=True)
    assert items[0]["site_name"] == "Le Portel" and items[0]["building"] == "C"


def test_visit_filters_use_paris_days_outcome_site_and_staff(office, make):
    head = office["head"]
    body = _get(head, "/api/lists/visits?from=2026-10-05&to=2026-10-11")
    # W41 in Paris: the Sunday 23:30 refusal is in, the Monday 00:30 visit (still Sunday in UTC) is not
    assert sorted(v["outcome"] for v in body["items"]) == ["absent", "refused", "talked"]
    assert _get(head, "/api/lists/visits?outcome=refused")["total"] == 1
    assert _get(head, f"/api/lists/visits?site_id={office['s2'].id}")["total"] == 3
    nobody = make.user("staff")
    assert _get(head, f"/api/lists/visits?user_id={nobody.id}")["total"] == 0


def test_residents_search_ignores_accents_and_case_and_finds_doors(office):
    head = office["head"]
    found = _get(head, "/api/lists/residents?q=gisele")["items"]
    assert [(r["first_name"], r["last_name"]) for r in found] == [("Gisèle", "Wattez")]
    assert _get(head, "/api/lists/residents?q=WATTEZ%20gis%C3%A8le")["total"] == 1
    by_door = _get(head, f"/api/lists/residents?q=12&site_id={office['s1'].id}")
    assert by_door["total"] > 0 and all(r["door"] == "12" for r in by_door["items"])
    assert _get(head, "/api/lists/residents?q=personne%20inconnue")["total"] == 0
    # merged and deleted residents are not listed
    names = {r["id"] for r in _get(head, "/api/lists/residents?per_page=200")["items"]}
    assert str(office["r"]["r3b"].id) not in names and str(office["r"]["r6"].id) not in names


def test_residents_engaged_filter_matches_the_definition(office):
    head = office["head"]
    engaged = {r["id"] for r in _get(head, "/api/lists/residents?engaged=true&per_page=200")["items"]}
    r = office["r"]
    expected = {"r1", "r2", "r2dup", "r3", "r9"} | ({"r5"} if services.today() >= date(2026, 11, 20) else set())
    assert engaged == {str(r[k].id) for k in expected}
    assert not engaged & {str(r[k].id) for k in ("r4", "r7", "r8", "r8p")}
    not_engaged = {x["id"] for x in _get(head, "/api/lists/residents?engaged=false&per_page=200")["items"]}
    assert not engaged & not_engaged and str(r["r4"].id) in not_engaged
    by_action = _get(head, f"/api/lists/residents?action_id={office['a_all'].id}&per_page=200")["items"]
    assert {x["first_name"] for x in by_action} == {"Odette", "Jean", "Maryse", "Gisèle"}


def test_events_and_their_attendance(office):
    head = office["head"]
    body = _get(head, "/api/lists/events")
    assert [e["title"] for e in body["items"]] == ["Sortie pêche", "Atelier cuisine", "Réunion"]  # newest first
    e1 = next(e for e in body["items"] if e["title"] == "Atelier cuisine")
    assert (e1["named_attendance"], e1["head_count"]) == (1, 42)
    assert _get(head, f"/api/lists/events?site_id={office['s2'].id}")["total"] == 2  # Sortie, Réunion (two sites)
    assert _get(head, "/api/lists/events?kind=sortie")["total"] == 0
    assert _get(head, "/api/lists/events?from=2026-10-01&to=2026-10-31")["total"] == 1
    att = _get(head, f"/api/lists/events/{e1['event_id']}/attendance")
    assert [(a["first_name"], a["last_name"]) for a in att["items"]] == [("Odette", "Lemaire")]
    assert att["head_count_by_category"] == {"adults": 30, "children": 12} and att["head_count"] == 42
    assert len(att["head_counts"]) == 2


def test_engagements_filters(office):
    head = office["head"]
    live = raw("SELECT COUNT(*) FROM engagements WHERE deleted = :no").scalar_one()
    assert _get(head, "/api/lists/engagements?per_page=200")["total"] == live
    ended = _get(head, "/api/lists/engagements?status=ended")["items"]
    assert [(e["first_name"], e["status"], e["ended_on"]) for e in ended] == [("Paul", "ended", "2026-10-25")]
    starts = [e["started_on"] for e in _get(head, "/api/lists/engagements?per_page=200")["items"]]
    assert starts == sorted(starts, reverse=True)
    assert _get(head, f"/api/lists/engagements?site_id={office['s2'].id}")["total"] == 1
    assert _get(head, "/api/lists/engagements?from=2026-11-01&to=2026-11-30")["total"] == 2  # r9, r5


@pytest.mark.parametrize("url", ["/api/lists/visits?per_page=201", "/api/lists/visits?page=0",
                                 "/api/lists/visits?outcome=maybe", "/api/lists/visits?sort=asc",
                                 "/api/lists/residents?engaged=peut-etre", "/api/lists/events?kind=fete",
                                 "/api/lists/engagements?status=fini", "/api/lists/visits?from=2026-02-01&to=2026-01-01",
                                 "/api/lists/events/00000000-0000-0000-0000-000000000000/attendance?x=1"])
def test_bad_filters_are_422(office, url):
    resp = office["head"].get(url)
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "validation_error"


def test_lists_naming_residents_are_audited_without_the_search_words(office):
    head = office["head"]
    _get(head, "/api/lists/residents?q=gisele")
    row = db.session.execute(sa.select(AuditLog).where(AuditLog.action == "residents.list")).scalar_one()
    assert row.details["rows"] == 1 and "gisele" not in str(row.details).lower()


def test_unknown_event_is_404_and_field_roles_are_403(office, make, login):
    assert office["head"].get("/api/lists/events/00000000-0000-0000-0000-000000000000/attendance").status_code == 404
    staff = login(make.user("staff", sites=[office["s1"]]))
    for url in ("/api/lists/visits", "/api/lists/residents", "/api/lists/events", "/api/lists/engagements"):
        assert staff.get(url).status_code == 403
