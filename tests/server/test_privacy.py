"""Residents' rights: the access export, erasure everywhere (database and phones), the audit log, push links."""
import json
import unicodedata
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from server.extensions import db

from .test_authz_matrix import _browser_subscription
from .test_sync_api import pull_all

FIRST, LAST = "Zéphirine", "Quenouille"
NEIGHBOUR_NOTES = "Mme Durand du 3e aide Mme QUÉNOUILLE pour ses courses\nCode porte 1234"


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch)).lower()


def tables_naming(*words) -> dict[str, int]:
    """Every table of the live database (read from the database itself, so a table added tomorrow is scanned
    too), every column: how many rows hold one of the words, accents and case ignored."""
    words = [_fold(w) for w in words]
    inspector = sa.inspect(db.engine)
    hits = {}
    for name in inspector.get_table_names():
        table = sa.Table(name, sa.MetaData(), autoload_with=db.engine)
        n = 0
        for row in db.session.execute(sa.select(table)):
            text = _fold(" ".join(json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else str(v)
                                  for v in row))
            n += any(w in text for w in words)
        if n:
            hits[name] = n
    return hits


@pytest.fixture
def person(world, make, as_role):
    """Zéphirine Quenouille of our site, present in every place personal data can reach, next to a housemate
    (Marcel Dubois) who must keep everything."""
    from server import privacy, push
    from server.database import next_seq
    from server.models import (Attendance, Conflict, DuplicateSuspicion, Event, Household, PushDelivery,
                               PushSubscription, Rejection, Resident, Site, Visit)

    hh = db.session.get(Household, uuid.UUID(world["own_household"]))
    site = db.session.get(Site, hh.site_id)
    hh.notes = "Interphone cassé\nMme Quenouille : appeler le soir"
    r = make.resident(hh, first_name=FIRST, last_name=LAST, phone="06 99 88 77 66", email="zq@exemple.fr",
                      consent_contact=True, consent_recorded_at=datetime(2026, 2, 1, 10, tzinfo=timezone.utc))
    mate = make.resident(hh, first_name="Marcel", last_name="Dubois")
    action = make.action(name="Laverie solidaire", site=site, description="Idée de Zéphirine Quenouille\nLe mardi")
    make.engagement(r, action)
    make.engagement(mate, action)
    now = datetime.now(timezone.utc)
    ev = uuid.UUID(world["own_event"])
    db.session.add_all([
        Attendance(event_id=ev, resident_id=r.id, site_id=site.id, checked_in_at=now, seq=next_seq(db.session)),
        Attendance(event_id=ev, resident_id=mate.id, site_id=site.id, checked_in_at=now, seq=next_seq(db.session)),
        Visit(household_id=hh.id, site_id=site.id, resident_id=r.id, visited_at=now, outcome="talked",
              note="Zéphirine aimerait un atelier couture", needs=["isolement"], seq=next_seq(db.session)),
        Visit(household_id=hh.id, site_id=site.id, visited_at=now, outcome="talked",
              note="M. Dubois partant pour le jardin\nZÉPHIRINE fatiguée", seq=next_seq(db.session)),
        Conflict(entity="resident", entity_id=r.id, site_id=site.id, field="last_name", kept_value=LAST,
                 kept_seq=r.seq, lost_value="QUENOUILE", lost_base_seq=r.seq - 1),
        Rejection(client_id=uuid.uuid4(), n=7, site_id=site.id, op="resident.create", code="invalid",
                  reason={"code": "invalid", "message": "Données invalides."},
                  args={"id": str(uuid.uuid4()), "household_id": str(hh.id), "first_name": FIRST,
                        "last_name": "Quenouille-Bis"}),
    ])
    # A phone created her twice; head office merged the duplicate into her (its tombstone keeps the name).
    dup = Resident(household_id=hh.id, site_id=site.id, first_name="zephirine", last_name="QUENOUILLE",
                   name_key="quenouille zephirine", duplicate_of=r.id, seq=next_seq(db.session))
    db.session.add(dup)
    # Her name written beyond her household: a neighbour's note and a visit of theirs (same site), a household of
    # the other site, the neighbour's notes conflict and a refused visit of theirs, an event and an action.
    party = Event(title="Goûter chez Zéphirine QUENOUILLE", kind="atelier", starts_at=now, ends_at=now,
                  description="Animé par Mme Quenouille\nApporter des gâteaux", place="Chez Mme Quenouille, bât. B",
                  seq=next_seq(db.session))
    party.sites = [site]
    neighbour = make.household(site, notes=NEIGHBOUR_NOTES)
    make.resident(neighbour, first_name="Josiane", last_name="Durand")
    far = make.household(db.session.get(Site, uuid.UUID(world["other_site"])),
                         notes="Sa cousine QUENOUILLE Zéphirine habite l'autre résidence\nChaudière révisée")
    db.session.add_all([
        party,
        Visit(household_id=neighbour.id, site_id=site.id, visited_at=now, outcome="talked",
              note="Mme Durand voit Zephirine Quenouille le mardi\nPartante pour l'atelier", seq=next_seq(db.session)),
        Conflict(entity="household", entity_id=neighbour.id, site_id=site.id, field="notes",
                 kept_value=NEIGHBOUR_NOTES, kept_seq=neighbour.seq, lost_base_seq=neighbour.seq - 1,
                 lost_value="Mme Quenouille garde leur chat\nBoîte aux lettres cassée"),
        Rejection(client_id=uuid.uuid4(), n=8, site_id=site.id, op="visit.create", code="invalid",
                  reason={"code": "invalid", "message": "Données invalides."},
                  args={"id": str(uuid.uuid4()), "household_id": str(neighbour.id),
                        "note": "M. Durand et Mme Quenouille absents"}),
    ])
    db.session.flush()
    suspicion = DuplicateSuspicion(resident_id=dup.id, candidate_id=r.id, site_id=site.id)
    db.session.add(suspicion)
    db.session.commit()
    assert as_role("head_office").post(f"/api/review/duplicates/{suspicion.id}/merge",
                                       json={"keep": str(r.id)}).status_code == 200
    # Her own reminder subscription, tied to her through a push link; an anonymous one of the same site.
    sub = _browser_subscription()
    _, token = push.subscribe(site, sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"], ["atelier"], "v1")
    other = _browser_subscription()
    anon_sub, _ = push.subscribe(site, other["endpoint"], other["keys"]["p256dh"], other["keys"]["auth"],
                                 ["atelier"], "v1")
    _, link = privacy.create_push_link(r, None)
    db.session.commit()
    assert as_role("anonymous").post("/api/public/subscriptions/link", json={
        "unsubscribe_token": token, "link_token": link}).status_code == 200
    linked = db.session.execute(sa.select(PushSubscription.id).where(PushSubscription.resident_id == r.id))
    db.session.add(PushDelivery(subscription_id=linked.scalar_one(), event_id=ev, due_at=now + timedelta(days=1)))
    db.session.commit()
    return {"id": str(r.id), "dup": str(dup.id), "mate": str(mate.id), "household": str(hh.id),
            "event": world["own_event"], "anon_sub": str(anon_sub.id), "neighbour": str(neighbour.id),
            "far": str(far.id), "party": str(party.id), "action": str(action.id)}


def _pull_all(api, client_id, cursor=None, limit=500):
    """test_sync_api.pull_all's pages as one list: (changes, cursor)."""
    pages, cursor = pull_all(api, client_id, cursor, limit)
    return [c for page in pages for c in page["changes"]], cursor


def _apply(replica: dict, changes):
    for c in changes:
        if c["deleted"]:
            replica.pop((c["entity"], c["id"]), None)
        else:
            replica[(c["entity"], c["id"])] = c["data"]


def _stored_wire(model, record_id) -> str:
    return db.session.execute(sa.select(model.__table__.c.wire).where(
        model.__table__.c.id == uuid.UUID(record_id))).scalar_one() or ""


def _notes(model, record_id) -> str:
    return db.session.execute(sa.select(model.notes).where(model.id == uuid.UUID(record_id))).scalar_one()


def _event_figures(event_id):
    from server.models import Attendance, HeadCount
    named = db.session.execute(sa.select(sa.func.count()).where(
        Attendance.event_id == uuid.UUID(event_id), Attendance.deleted.is_(False))).scalar_one()
    counted = db.session.execute(sa.select(sa.func.coalesce(sa.func.sum(HeadCount.count), 0)).where(
        HeadCount.event_id == uuid.UUID(event_id), HeadCount.deleted.is_(False))).scalar_one()
    return named, counted


# --- erasure ------------------------------------------------------------------------------------------------------

def test_erasure_removes_the_person_from_every_table_and_every_phone(person, as_role):
    from server import services
    from server.models import Action, Conflict, Event, Household
    gardien, admin = as_role("gardien"), as_role("admin")
    client_id = str(uuid.uuid4())
    replica = {}
    changes, cursor = _pull_all(gardien, client_id)
    _apply(replica, changes)
    assert ("resident", person["id"]) in replica
    before = tables_naming(FIRST, LAST)
    # The scan finds her wherever she is: it is not vacuous.
    assert {"residents", "visits", "households", "conflicts", "rejections", "events", "actions"} <= set(before), before
    assert before["households"] == 3 and before["visits"] == 3, before  # hers, the neighbour's, the far one
    # The neighbour's pull text is stored with her name: the erasure must not let a pull serve it again.
    assert "QUÉNOUILLE" in _stored_wire(Household, person["neighbour"])
    named, counted = _event_figures(person["event"])
    engaged = services.progress()["recorded"]

    resp = admin.post(f"/api/privacy/residents/{person['id']}/erase",
                      json={"reason": "Courrier de Mme Zéphirine QUENOUILLE du 3 mars"})
    assert resp.status_code == 200, resp.get_json()
    erased = resp.get_json()["erased"]
    assert erased["residents"] == 2 and erased["engagements"] == 1 and erased["attendances"] == 1
    assert erased["push_subscriptions"] == 1 and erased["conflicts"] >= 1 and erased["rejections_scrubbed"] == 2
    assert erased["notes_elsewhere_scrubbed"] == 3 and erased["conflicts_scrubbed"] == 1
    assert erased["agenda_scrubbed"] == 2
    assert erased["mentions_left_ambiguous"] == 0

    db.session.expire_all()
    assert tables_naming(FIRST, LAST) == {}
    assert tables_naming("06 99 88 77 66", "zq@exemple.fr") == {}
    # Her housemate and the rest of the notes are intact.
    assert {"residents", "visits"} <= set(tables_naming("Marcel", "Dubois"))
    assert tables_naming("Interphone cassé") == {"households": 1}
    # Beyond her household only the lines naming her went; the neighbour's review item stays.
    assert _notes(Household, person["neighbour"]) == "Code porte 1234"
    assert _notes(Household, person["far"]) == "Chaudière révisée"
    assert tables_naming("Partante pour l'atelier") == {"visits": 1}
    party = db.session.get(Event, uuid.UUID(person["party"]))
    assert (party.title, party.description, party.place) == (
        "Goûter chez [effacé]", "Apporter des gâteaux", "Chez [effacé], bât. B")
    assert db.session.get(Action, uuid.UUID(person["action"])).description == "Le mardi"
    conflict = db.session.execute(sa.select(Conflict).where(Conflict.entity_id == uuid.UUID(person["neighbour"])))
    conflict = conflict.scalar_one()
    assert (conflict.kept_value, conflict.lost_value) == ("Code porte 1234", "Boîte aux lettres cassée")
    # Counts stay right: the check-in became an anonymous head count; she no longer counts as engaged.
    assert _event_figures(person["event"]) == (named - 1, counted + 1)
    assert services.progress()["recorded"] == engaged - 1
    # The field device's next pull drops her and everything naming her.
    changes, cursor = _pull_all(gardien, client_id, cursor)
    tomb = [c for c in changes if c["entity"] == "resident" and c["id"] == person["id"]]
    assert tomb and tomb[-1]["deleted"] is True
    # The neighbour's household and visit come again, scrubbed, though nothing else of theirs changed.
    again = {(c["entity"], c["id"]): c["data"] for c in changes if not c["deleted"]}
    assert again[("household", person["neighbour"])]["notes"] == "Code porte 1234"
    assert again[("event", person["party"])]["title"] == "Goûter chez [effacé]"
    assert [d["note"] for (e, _), d in again.items()
            if e == "visit" and d["household_id"] == person["neighbour"]] == ["Partante pour l'atelier"]
    _apply(replica, changes)
    assert ("resident", person["id"]) not in replica
    assert ("resident", person["mate"]) in replica
    text = _fold(json.dumps(list(replica.values()), ensure_ascii=False))
    assert "quenouille" not in text and "zephirine" not in text
    assert "dubois" in text
    # A fresh device gets no trace either.
    fresh, _ = _pull_all(gardien, str(uuid.uuid4()))
    assert "quenouille" not in _fold(json.dumps(fresh, ensure_ascii=False))


def test_erasure_is_audited_without_the_personal_data(person, as_role, world):
    from server.models import AuditLog
    assert as_role("admin").post(f"/api/privacy/residents/{person['id']}/erase",
                                 json={"reason": "Demande de Zéphirine Quenouille, reçue le 3 mars"}).status_code == 200
    row = db.session.execute(sa.select(AuditLog).where(AuditLog.action == "privacy.erase")).scalar_one()
    assert row.subject == f"resident:{person['id']}"
    assert row.user_id == world.users["admin"].id
    assert row.details["reason"] == "Demande de [effacé] [effacé], reçue le 3 mars"
    assert row.details["residents"] == 2


def test_erasure_of_the_merged_tombstone_erases_the_person(person, as_role):
    resp = as_role("admin").post(f"/api/privacy/residents/{person['dup']}/erase", json={"reason": "Demande écrite"})
    assert resp.status_code == 200
    assert resp.get_json()["resident_id"] == person["id"]
    assert tables_naming(FIRST, LAST) == {}


def test_erasure_waits_for_a_pending_duplicate(world, as_role):
    """The world's resident has a suspected duplicate (maybe a namesake): head office decides first."""
    from server.models import Resident
    resp = as_role("admin").post(f"/api/privacy/residents/{world['own_resident']}/erase",
                                 json={"reason": "Demande écrite"})
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "pending_duplicate"
    assert db.session.get(Resident, uuid.UUID(world["own_resident"])).first_name == "Odette"  # nothing changed


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "ok"}, {"reason": "x" * 501},
                                  {"reason": "Demande", "extra": 1}])
def test_erasure_needs_a_reason(person, as_role, body):
    resp = as_role("admin").post(f"/api/privacy/residents/{person['id']}/erase", json=body)
    assert resp.status_code == 422
    assert set(resp.get_json()) == {"error"}
    assert tables_naming(LAST)  # nothing erased


def test_erasing_twice_changes_nothing_more(person, as_role):
    admin = as_role("admin")
    assert admin.post(f"/api/privacy/residents/{person['id']}/erase", json={"reason": "Demande"}).status_code == 200
    again = admin.post(f"/api/privacy/residents/{person['id']}/erase", json={"reason": "Demande"})
    assert again.status_code == 200
    erased = again.get_json()["erased"]
    assert erased["engagements"] == erased["attendances"] == erased["push_subscriptions"] == 0


def test_erasure_deletes_only_the_linked_subscription(person, as_role):
    from server.models import PushDelivery, PushSubscription
    as_role("admin").post(f"/api/privacy/residents/{person['id']}/erase", json={"reason": "Demande"})
    subs = db.session.execute(sa.select(PushSubscription.id)).scalars().all()
    assert subs == [uuid.UUID(person["anon_sub"])]
    assert db.session.execute(sa.select(sa.func.count()).select_from(PushDelivery).where(
        PushDelivery.subscription_id.not_in(subs))).scalar_one() == 0


def test_changes_pushed_after_the_erasure_lose_their_args_at_the_next_purge(person, as_role):
    """A phone offline during the erasure sends its queued change about her afterwards: refused, it lands in
    the rejections with her new phone number, until the nightly purge drops it."""
    from server import privacy
    from server.models import Rejection
    as_role("admin").post(f"/api/privacy/residents/{person['id']}/erase", json={"reason": "Demande"})
    late = {"n": 1, "op": "resident.update", "at": datetime.now(timezone.utc).isoformat(),
            "args": {"id": person["id"], "base_seq": 0, "changes": {"phone": "07 11 22 33 44"}}}
    resp = as_role("staff").post("/api/sync/push", json={"client_id": str(uuid.uuid4()), "mutations": [late]})
    assert resp.get_json()["results"][0]["status"] == "rejected"
    assert tables_naming("07 11 22 33 44") == {"rejections": 1}
    assert privacy.purge()["rejections_of_erased"] == 1
    db.session.commit()
    assert tables_naming("07 11 22 33 44") == {}
    assert db.session.execute(sa.select(Rejection.status).where(Rejection.n == 1, Rejection.op == "resident.update")
                              ).scalar_one() == "dismissed"


def test_an_older_text_of_a_scrubbed_note_sent_after_the_erasure_is_a_conflict(person, as_role):
    """A phone offline during the erasure edits the neighbour's notes from the text it holds (naming her): the
    scrubbed note stays; the phone's text waits in a conflict for head office, as any edit of an older version."""
    from server.models import Conflict, Household
    base_seq = db.session.get(Household, uuid.UUID(person["neighbour"])).seq
    assert as_role("admin").post(f"/api/privacy/residents/{person['id']}/erase",
                                 json={"reason": "Demande"}).status_code == 200
    stale = {"n": 1, "op": "household.update", "at": datetime.now(timezone.utc).isoformat(),
             "args": {"id": person["neighbour"], "base_seq": base_seq,
                      "changes": {"notes": NEIGHBOUR_NOTES + "\nNouveau digicode"}}}
    resp = as_role("staff").post("/api/sync/push", json={"client_id": str(uuid.uuid4()), "mutations": [stale]})
    assert resp.status_code == 200, resp.get_json()
    db.session.expire_all()
    assert _notes(Household, person["neighbour"]) == "Code porte 1234"
    conflicts = db.session.execute(sa.select(Conflict).where(
        Conflict.entity_id == uuid.UUID(person["neighbour"]), Conflict.status == "open")).scalars().all()
    assert (NEIGHBOUR_NOTES + "\nNouveau digicode", "Code porte 1234", "notes") in [
        (c.lost_value, c.kept_value, c.field) for c in conflicts]


def test_erasure_leaves_namesakes_and_longer_words_in_other_notes(world, make, as_role):
    """Beyond her household: "Mme Martin" may be the namesake of the site (left, counted), "Martine" and
    "Martinez" are other words, the civility form is not looked for on another site; her full name is struck."""
    from server.database import next_seq
    from server.models import Household, Site, Visit
    site = db.session.get(Site, uuid.UUID(world["own_site"]))
    zoe = make.resident(make.household(site, notes="Zoé : atelier couture"), first_name="Zoé", last_name="Martin")
    namesakes = make.household(site, notes="Mme Martin arrose les plantes du 2e\nMartine du 4e passe le jeudi")
    make.resident(namesakes, first_name="Paul", last_name="Martin")
    neighbour = make.household(site, notes="Zoé MARTIN aide au jardin\nM. Martinez absent")
    far = make.household(db.session.get(Site, uuid.UUID(world["other_site"])),
                         notes="Mme Martin présidente de l'amicale")
    visit = Visit(household_id=neighbour.id, site_id=site.id, visited_at=datetime.now(timezone.utc),
                  outcome="talked", note="Famille Martinet relogée\nZoe partante", seq=next_seq(db.session))
    db.session.add(visit)
    db.session.commit()
    untouched = {(Household, namesakes.id): namesakes.notes, (Household, far.id): far.notes,
                 (Visit, visit.id): visit.note}
    seqs = {key: db.session.get(*key).seq for key in untouched}
    gardien, client_id = as_role("gardien"), str(uuid.uuid4())
    _, cursor = _pull_all(gardien, client_id)

    resp = as_role("admin").post(f"/api/privacy/residents/{zoe.id}/erase", json={"reason": "Demande écrite"})
    assert resp.status_code == 200, resp.get_json()
    erased = resp.get_json()["erased"]
    assert erased["notes_elsewhere_scrubbed"] == 1 and erased["mentions_left_ambiguous"] == 1

    db.session.expire_all()
    assert _notes(Household, str(neighbour.id)) == "M. Martinez absent"
    for (model, record_id), text in untouched.items():
        row = db.session.get(model, record_id)
        assert (getattr(row, "notes", None) or row.note, row.seq) == (text, seqs[(model, record_id)])
    # Only the scrubbed neighbour (and her own household) come again at the next pull.
    changes, _ = _pull_all(gardien, client_id, cursor)
    households = {c["id"]: c["data"]["notes"] for c in changes if c["entity"] == "household"}
    assert households == {str(neighbour.id): "M. Martinez absent", str(zoe.household_id): ""}
    assert not [c for c in changes if c["entity"] == "visit"]


def _aicha_benali(others=()):
    """The matcher of Aïcha Benali of the site "own", with these (site, first name, last name) namesakes."""
    from types import SimpleNamespace

    from server import privacy
    return privacy.NameMatcher([SimpleNamespace(site_id="own", first_name="Aïcha", last_name="Benali")],
                               others=list(others))


@pytest.mark.parametrize("note,site,kept", [
    # Her full name in either order, accents and case folded, on any site.
    ("Mme Durand aide Mme Benali pour ses courses\nCode 12", "own", "Code 12"),
    ("BENALI Aicha vient le mardi\nCode 12", "other", "Code 12"),
    ("aïcha benali, voisine\nCode 12", "other", "Code 12"),
    ("Mme A. Benali au 2e\nfamille Bénali relogée\nCode 12", "own", "Code 12"),
    ("M.Benali\nCode 12", "own", "Code 12"),
    ("Mme Be\u0301nali (accent typed apart)\nCode 12", "own", "Code 12"),
    # Her surname after a civility only on her sites; alone, or her first name alone, nowhere.
    ("Mme Benali au 2e\nCode 12", "other", "Mme Benali au 2e\nCode 12"),
    ("Benali absent\nAïcha partante", "own", "Benali absent\nAïcha partante"),
    # Whole words only.
    ("M. Benalia\nMme Benalim\nAïchas Benali", "own", "M. Benalia\nMme Benalim\nAïchas Benali"),
])
def test_a_name_is_found_outside_the_household_in_its_written_forms(note, site, kept):
    assert _aicha_benali().strike(note, site) == (kept, 0)


@pytest.mark.parametrize("text,others,redacted,ambiguous", [
    ("Goûter chez Aïcha BENALI", [], "Goûter chez [effacé]", 0),
    ("Salle de Mme Be\u0301nali et de M. Durand", [], "Salle de [effacé] et de M. Durand", 0),
    ("Benali Aïcha et Mme Benali", [], "[effacé] et [effacé]", 0),
    ("Salle de Mme Benali", [("own", "Paul", "Benali")], "Salle de Mme Benali", 1),
    ("Salle Martine Benalim", [], "Salle Martine Benalim", 0),
])
def test_a_one_line_text_has_the_name_replaced(text, others, redacted, ambiguous):
    """Titles and places cannot lose a line: the name itself goes, the accents typed apart with it."""
    assert _aicha_benali(others).redact(text, "own") == (redacted, ambiguous)


@pytest.mark.parametrize("namesake,note,kept,ambiguous", [
    (("Paul", "Benali"), "Mme Benali au 2e", "Mme Benali au 2e", 1),
    (("Paul", "Benali"), "Aïcha Benali au 2e", "", 0),
    (("Aicha", "BENALI"), "Aïcha Benali au 2e", "Aïcha Benali au 2e", 1),
    (("Fatima", "Benali-Durand"), "Mme Benali au 2e", "Mme Benali au 2e", 1),
    (("Paul", "Benalia"), "Mme Benali au 2e", "", 0),
])
def test_a_namesake_of_the_site_makes_a_mention_ambiguous(namesake, note, kept, ambiguous):
    assert _aicha_benali([("own", *namesake)]).strike(note, "own") == (kept, ambiguous)
    # A namesake of another site changes nothing here.
    assert _aicha_benali([("other", *namesake)]).strike(note, "own") == ("", 0)


# --- access export ------------------------------------------------------------------------------------------------

def test_access_export_holds_everything_about_them_and_is_audited(person, as_role, world):
    from server.models import AuditLog
    resp = as_role("head_office").get(f"/api/privacy/residents/{person['id']}/export")
    assert resp.status_code == 200, resp.get_json()
    out = resp.get_json()
    assert out["resident"]["first_name"] == FIRST and out["resident"]["phone"] == "06 99 88 77 66"
    assert out["resident"]["consents"]["consent_contact"] is True
    assert out["resident"]["consents"]["consent_recorded_at"].startswith("2026-02-01T10:00")
    assert [m["id"] for m in out["merged_records"]] == [person["dup"]]
    assert "appeler le soir" in out["households"][0]["notes"]
    notes = {v["note"]: v["about_them"] for v in out["visits"]}
    assert notes["Zéphirine aimerait un atelier couture"] is True
    assert notes["M. Dubois partant pour le jardin\nZÉPHIRINE fatiguée"] is False
    assert [e["action"] for e in out["engagements"]] == ["Laverie solidaire"]
    assert [a["event"] for a in out["attendances"]] == ["Atelier own"]
    assert any(c["lost_value"] == "QUENOUILE" for c in out["conflicts"])
    assert sorted(r["args"].get("last_name") or r["args"]["note"] for r in out["rejected_mutations"]) == [
        "M. Durand et Mme Quenouille absents", "Quenouille-Bis"]
    # Of other households' notes, events and actions, only the lines naming her (the rest is others' business).
    assert sorted((m["entity"], m["field"], m["line"]) for m in out["mentions_elsewhere"]) == [
        ("action", "description", "Idée de Zéphirine Quenouille"),
        ("event", "description", "Animé par Mme Quenouille"),
        ("event", "place", "Chez Mme Quenouille, bât. B"),
        ("event", "title", "Goûter chez Zéphirine QUENOUILLE"),
        ("household", "notes", "Mme Durand du 3e aide Mme QUÉNOUILLE pour ses courses"),
        ("household", "notes", "Sa cousine QUENOUILLE Zéphirine habite l'autre résidence"),
        ("visit", "note", "Mme Durand voit Zephirine Quenouille le mardi")]
    assert {m["id"] for m in out["mentions_elsewhere"] if m["entity"] != "visit"} == {
        person["action"], person["party"], person["neighbour"], person["far"]}
    assert not any(m["ambiguous"] for m in out["mentions_elsewhere"])
    assert "Code porte" not in json.dumps(out)
    assert len(out["push_subscriptions"]) == 1 and out["push_subscriptions"][0]["kinds"] == ["atelier"]
    assert any(a["action"] == "resident.merge" for a in out["accesses"])
    # Nothing of the housemate beyond the shared household and its visits.
    assert "Marcel" not in json.dumps(out["resident"]) and out["merged_records"][0]["first_name"] == "zephirine"
    row = db.session.execute(sa.select(AuditLog).where(AuditLog.action == "privacy.export")).scalar_one()
    assert row.user_id == world.users["head_office"].id and row.subject == f"resident:{person['id']}"
    assert "Quenouille" not in json.dumps(row.details)


def test_access_export_of_an_unknown_resident_is_404(as_role, world):
    resp = as_role("admin").get(f"/api/privacy/residents/{uuid.uuid4()}/export")
    assert resp.status_code == 404 and set(resp.get_json()) == {"error"}


# --- audit log ----------------------------------------------------------------------------------------------------

def test_reads_of_residents_are_audited(world, as_role):
    from server.models import AuditLog
    staff = as_role("staff")
    assert staff.get(f"/api/residents/{world['own_resident']}").status_code == 200
    assert staff.get("/api/residents?q=odette").status_code == 200
    assert staff.get(f"/api/residents/{world['other_resident']}").status_code == 404  # not a read: not audited
    rows = db.session.execute(sa.select(AuditLog).order_by(AuditLog.id)).scalars().all()
    assert [(r.action, r.subject) for r in rows] == [("resident.read", f"resident:{world['own_resident']}"),
                                                     ("residents.list", "residents")]
    assert all(r.user_id == world.users["staff"].id for r in rows)
    assert rows[1].details["searched"] is True and "odette" not in json.dumps(rows[1].details).lower()


def test_a_pull_delivering_residents_writes_one_row_per_page_with_counts(world, make, as_role):
    from server.models import AuditLog, Household
    hh = db.session.get(Household, uuid.UUID(world["own_household"]))
    for i in range(4):
        make.resident(hh, first_name=f"Prénom{i}", last_name="Famille")
    client_id = str(uuid.uuid4())
    changes, _ = _pull_all(as_role("gardien"), client_id, limit=3)
    delivered = sum(1 for c in changes if c["entity"] == "resident" and not c["deleted"])
    rows = db.session.execute(sa.select(AuditLog).where(AuditLog.action == "sync.pull")).scalars().all()
    assert delivered == 6  # Odette, her suspected duplicate, four new ones
    assert sum(r.details["residents"] for r in rows) == delivered
    assert 1 < len(rows) < len(changes)  # per page, not per record
    assert {r.subject for r in rows} == {f"device:{client_id}"}


def test_audit_endpoint_filters_and_pages(world, as_role):
    from server import audit
    from server.models import AuditLog
    admin, staff = world.users["admin"], world.users["staff"]
    t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    for i in range(5):
        audit.record("resident.read", f"resident:{i}", {}, user=staff).at = t0 + timedelta(days=i)
    audit.record("privacy.export", "resident:x", {}, user=admin).at = t0 + timedelta(days=2)
    db.session.commit()
    api = as_role("admin")
    body = api.get(f"/api/privacy/audit?user_id={staff.id}&per_page=2&page=2").get_json()
    assert body["total"] == 5 and [i["subject"] for i in body["items"]] == ["resident:2", "resident:1"]
    assert body["items"][0]["user_email"] == staff.email
    body = api.get("/api/privacy/audit?action=privacy.export").get_json()
    assert [i["subject"] for i in body["items"]] == ["resident:x"]
    body = api.get("/api/privacy/audit?from=2026-03-02T00:00:00%2B00:00&to=2026-03-04T00:00:00%2B00:00").get_json()
    assert sorted(i["subject"] for i in body["items"]) == ["resident:1", "resident:2", "resident:x"]
    assert db.session.execute(sa.select(sa.func.count()).select_from(AuditLog)).scalar_one() == 6  # reading it: no row
    for bad in ("from=hier", "user_id=42", "page=0", "to=2026-03-02T00:00:00", "unknown=1"):
        resp = api.get(f"/api/privacy/audit?{bad}")
        assert resp.status_code == 422 and set(resp.get_json()) == {"error"}, bad


def test_audit_record_joins_the_callers_transaction(app, world):
    from server import audit
    from server.models import AuditLog
    audit.record("resident.read", "resident:1", {"at": datetime(2026, 1, 1, tzinfo=timezone.utc)}, user=None)
    db.session.rollback()
    assert db.session.execute(sa.select(sa.func.count()).select_from(AuditLog)).scalar_one() == 0
    row = audit.record("resident.read", "resident:1", {"id": uuid.UUID(int=1)}, user=None)
    db.session.commit()
    assert row.user_id is None and row.details == {"id": str(uuid.UUID(int=1))}


# --- push links ---------------------------------------------------------------------------------------------------

def _subscription(world):
    from server import push
    from server.models import Site
    site = db.session.get(Site, uuid.UUID(world["own_site"]))
    b = _browser_subscription()
    sub, token = push.subscribe(site, b["endpoint"], b["keys"]["p256dh"], b["keys"]["auth"], ["atelier"], "v1")
    db.session.commit()
    return sub, token


def test_a_push_link_ties_one_subscription_once(world, as_role, app):
    from server.models import PushSubscription
    staff, anon = as_role("staff"), as_role("anonymous")
    resp = staff.post(f"/api/privacy/residents/{world['own_resident']}/push-link")
    assert resp.status_code == 201
    link = resp.get_json()
    assert link["url"].endswith("#lien=" + link["token"])  # in the fragment: never sent to a server
    sub, token = _subscription(world)
    assert anon.post("/api/public/subscriptions/link",
                     json={"unsubscribe_token": token, "link_token": link["token"]}).status_code == 200
    db.session.expire_all()
    assert db.session.get(PushSubscription, sub.id).resident_id == uuid.UUID(world["own_resident"])
    other, other_token = _subscription(world)
    again = anon.post("/api/public/subscriptions/link",
                      json={"unsubscribe_token": other_token, "link_token": link["token"]})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "link_expired"
    assert db.session.get(PushSubscription, other.id).resident_id is None


def test_a_push_link_expires_and_stays_on_its_site(world, as_role, app, make):
    from server.models import PushLink, Site
    staff, anon = as_role("staff"), as_role("anonymous")
    token = staff.post(f"/api/privacy/residents/{world['own_resident']}/push-link").get_json()["token"]
    link = db.session.execute(sa.select(PushLink)).scalar_one()
    link.expires_at = datetime.now(timezone.utc) - timedelta(seconds=1)
    db.session.commit()
    _, unsub = _subscription(world)
    resp = anon.post("/api/public/subscriptions/link", json={"unsubscribe_token": unsub, "link_token": token})
    assert resp.status_code == 409
    fresh = staff.post(f"/api/privacy/residents/{world['own_resident']}/push-link").get_json()["token"]
    from server import push
    b = _browser_subscription()
    _, elsewhere = push.subscribe(db.session.get(Site, uuid.UUID(world["other_site"])), b["endpoint"],
                                  b["keys"]["p256dh"], b["keys"]["auth"], ["atelier"], "v1")
    db.session.commit()
    resp = anon.post("/api/public/subscriptions/link", json={"unsubscribe_token": elsewhere, "link_token": fresh})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "link_mismatch"
    for body in ({"unsubscribe_token": "nope", "link_token": fresh}, {"unsubscribe_token": unsub, "link_token": "x"}):
        resp = anon.post("/api/public/subscriptions/link", json=body)
        assert resp.status_code == 404 and set(resp.get_json()) == {"error"}
    # Only its hash is stored.
    assert fresh not in json.dumps([str(v) for v in db.session.execute(sa.select(PushLink.__table__)).all()])


# --- names in free text -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("first,last,note,kept", [
    ("Yves", "Le Gall", "Le code de la porte change\nM. LE GALL absent le mardi", "Le code de la porte change"),
    ("Hélène", "Ba", "Mme Ba préfère le matin\nBalcon à réparer", "Balcon à réparer"),
    ("Jean", "de La Fontaine", "Voisin de palier aimable\nFontaine : rappeler", "Voisin de palier aimable"),
    ("Zoé", "Martin", "zoe partante\nRien à signaler", "Rien à signaler"),
])
def test_only_the_lines_naming_the_person_are_struck(first, last, note, kept):
    """Particles of names ("le", "de la") are everyday words: they strike nothing; accents and case are ignored."""
    from types import SimpleNamespace

    from server import privacy
    words = privacy._name_tokens([SimpleNamespace(first_name=first, last_name=last)])
    assert privacy._without_lines_naming(note, words) == kept
    assert privacy._redact(f"Demande de {first} {last}", words).count(privacy.ERASED_MARK) >= 2
