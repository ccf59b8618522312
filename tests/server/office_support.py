"""The head office tests' world: two sites, residents engaged in every way the dashboard's definition must
handle (pending and merged duplicates, ended, paused, future, deleted), visits around Paris week boundaries, events
with attendance and head counts. Used by test_dashboard, test_lists and test_exports."""
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from server.extensions import db
from server.models import Attendance, DuplicateSuspicion, Event, HeadCount, UTCDateTime, Visit

PARIS = ZoneInfo("Europe/Paris")


def raw(sql, **params):
    types = {"no": sa.Boolean, "day": sa.Date, "today": sa.Date, "site": sa.Uuid, "action": sa.Uuid, "lo": UTCDateTime(),
             "hi": UTCDateTime(), "event": sa.Uuid}
    stmt = sa.text(sql).bindparams(*(sa.bindparam(k, type_=types[k]) for k in params if k in types))
    return db.session.execute(stmt, {"no": False, **params})


def paris(y, m, d, hh=12, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=PARIS)


@pytest.fixture
def office(make, login):
    """Two sites, two actions, residents engaged in every way the definition must handle, visits, events."""
    s1, s2 = make.site(name="Les Tilleuls"), make.site(name="Le Portel")
    a_site, a_all = make.action(name="Jardin partagé", site=s1), make.action(name="Portage de pain")
    h1, h2 = make.household(s1, building="A", door="12"), make.household(s2, building="C", door="3")
    r = {}

    def person(key, hh, first, last, **kw):
        r[key] = make.resident(hh, first_name=first, last_name=last, **kw)
        return r[key]

    def engage(res, action, start, **kw):
        return make.engagement(res, action, started_on=start, **kw)

    engage(person("r1", h1, "Odette", "Lemaire"), a_site, date(2026, 10, 6))
    engage(r["r1"], a_all, date(2026, 10, 20))  # two actions: still one person
    engage(person("r2", h1, "Jean", "Caron"), a_site, date(2026, 10, 13))
    dup = person("r2dup", h1, "Jean", "CARON", duplicate_of=r["r2"].id)  # pending suspected duplicate
    engage(dup, a_all, date(2026, 10, 27))
    db.session.add(DuplicateSuspicion(resident_id=dup.id, candidate_id=r["r2"].id, site_id=s1.id))
    engage(person("r3", h1, "Maryse", "Moreau"), a_site, date(2026, 10, 19))
    r3b = person("r3b", h1, "Maryse", "Moreau", duplicate_of=r["r3"].id)  # to be merged
    engage(r3b, a_all, date(2026, 10, 21))
    merge = DuplicateSuspicion(resident_id=r3b.id, candidate_id=r["r3"].id, site_id=s1.id)
    db.session.add(merge)
    engage(person("r4", h1, "Paul", "Fini"), a_site, date(2026, 10, 6), status="ended", ended_on=date(2026, 10, 25))
    engage(person("r5", h1, "Léa", "Future"), a_site, date(2026, 11, 20))
    engage(person("r6", h1, "Gone", "Deleted", deleted=True), a_site, date(2026, 10, 6))
    engage(person("r7", h1, "Eng", "Deleted"), a_site, date(2026, 10, 6), deleted=True)
    engage(person("r8", h1, "Anne", "Partie"), a_site, date(2026, 10, 6), ended_on=date(2026, 11, 1))
    engage(person("r8p", h1, "Paul", "Pause"), a_site, date(2026, 10, 6), status="paused")
    engage(person("r9", h2, "Gisèle", "Wattez"), a_all, date(2026, 11, 2))
    db.session.commit()
    make.programme()

    admin = login(make.user("admin"))
    assert admin.post(f"/api/review/duplicates/{merge.id}/merge", json={"keep": str(r["r3"].id)}).status_code == 200

    seq = make._seq
    visits = [  # (site, household, Paris time, outcome, deleted)
        (s1, h1, paris(2026, 10, 5, 10), "talked", False),
        (s1, h1, paris(2026, 10, 5, 11), "absent", False),
        (s1, h1, paris(2026, 10, 11, 23, 30), "refused", False),  # Sunday night in Paris: still W41
        (s1, h1, paris(2026, 10, 12, 0, 30), "talked", False),  # Monday 00:30 Paris, Sunday 22:30 UTC: W42
        (s1, h1, paris(2026, 10, 14), "absent", True),  # deleted: never counted
        (s2, h2, paris(2026, 10, 21), "absent", False),
        (s1, h1, paris(2026, 10, 4, 23, 59), "talked", False),  # the day before FROM
        (s2, h2, paris(2026, 11, 15, 23, 0), "talked", False),  # the last hour of TO
        (s2, h2, paris(2026, 11, 16, 0, 10), "talked", False),  # after TO
    ]
    for site, hh, at, outcome, deleted in visits:
        db.session.add(Visit(household_id=hh.id, site_id=site.id, visited_at=at, outcome=outcome, deleted=deleted,
                             seq=seq()))
    events = {}
    for key, title, sites, at, status in (("e1", "Atelier cuisine", [s1], paris(2026, 10, 10, 14), "scheduled"),
                                          ("e2", "Sortie pêche", [s2], paris(2026, 11, 7, 9), "cancelled"),
                                          ("e3", "Réunion", [s1, s2], paris(2026, 9, 1, 18), "scheduled")):
        ev = Event(title=title, kind="atelier", starts_at=at, ends_at=at + timedelta(hours=2), status=status,
                   seq=seq())
        ev.sites = sites
        db.session.add(ev)
        events[key] = ev
    db.session.flush()
    e1 = events["e1"]
    db.session.add_all([
        Attendance(event_id=e1.id, resident_id=r["r1"].id, site_id=s1.id, checked_in_at=paris(2026, 10, 10, 14),
                   seq=seq()),
        Attendance(event_id=e1.id, resident_id=r["r2"].id, site_id=s1.id, checked_in_at=paris(2026, 10, 10, 14),
                   deleted=True, seq=seq()),
        HeadCount(event_id=e1.id, site_id=s1.id, category="adults", count=30, counted_at=paris(2026, 10, 10, 15),
                  seq=seq()),
        HeadCount(event_id=e1.id, site_id=s1.id, category="children", count=12, counted_at=paris(2026, 10, 10, 15),
                  seq=seq()),
        HeadCount(event_id=e1.id, site_id=s1.id, category="adults", count=99, counted_at=paris(2026, 10, 10, 15),
                  deleted=True, seq=seq()),
    ])
    db.session.commit()
    return {"s1": s1, "s2": s2, "a_site": a_site, "a_all": a_all, "h1": h1, "h2": h2, "r": r, "events": events,
            "head": login(make.user("head_office")), "admin": admin}
