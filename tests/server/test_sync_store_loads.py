"""What a push loads by id (SqlStore.load and friends): on PostgreSQL with psycopg the ids go as the text of a uuid[]
literal (sync_store._UuidArray), made only from texts that cannot break out of it; the records are those the
driver's own array finds, on either database."""
import uuid

import pytest

import server.sync_store as sync_store
from server.extensions import db
from server.sync_store import SqlStore, _UuidArray


def test_the_literal_is_made_of_canonical_ids_only():
    ids = [str(uuid.uuid4()) for _ in range(3)]
    assert _UuidArray.of(ids) == "{" + ",".join(ids) + "}"
    assert isinstance(_UuidArray.of(ids), _UuidArray)
    assert _UuidArray.of([ids[0].upper()]) is not None  # PostgreSQL reads upper-case hex too
    # Anything that could quote, escape, split or pad an element, or is not 36 characters, is left to the driver.
    for bad in (["a" * 17 + "," + "b" * 18], ['"' + ids[0][1:]], ["{" + ids[0][1:]], [ids[0][:-1] + "}"],
                [ids[0][:-1] + "\\"], [ids[0][:-1] + " "], [ids[0][:-1]], [ids[0] + "0"], [ids[0][:-1] + "g"],
                [ids[0], ids[1][:-1], ids[2] + "0"], []):
        assert _UuidArray.of(bad) is None, bad


@pytest.mark.parametrize("literal", [True, False], ids=["literal", "driver-array"])
def test_loads_find_exactly_the_records_asked_for(world, monkeypatch, literal):
    if not literal:
        monkeypatch.setattr(_UuidArray, "of", classmethod(lambda cls, strs: None))
    store = SqlStore(db.session)
    unknown = str(uuid.uuid4())
    households = store.load("household", [world["own_household"], world["other_household"], unknown], brief=True)
    assert set(households) == {world["own_household"], world["other_household"]}
    assert households[world["own_household"]]["site_id"] == world["own_site"]
    residents = store.residents_of_households({world["own_household"], unknown})
    assert world["own_resident"] in {r["id"] for r in residents}
    assert {r["household_id"] for r in residents} == {world["own_household"]}
    assert store.load("resident", [unknown]) == {}


def test_the_literal_is_sent_with_psycopg_only(world, monkeypatch):
    """With psycopg (PostgreSQL) the literal is what is sent, elsewhere the driver's own parameters (the test above
    would pass either way)."""
    store = SqlStore(db.session)
    made = []
    real = _UuidArray.of.__func__

    def spy(cls, strs):
        made.append(real(cls, strs))
        return made[-1]

    monkeypatch.setattr(_UuidArray, "of", classmethod(spy))
    assert set(store.load("household", [world["own_household"]])) == {world["own_household"]}
    if store.driver == "psycopg":
        assert made == ["{" + world["own_household"] + "}"]
        assert sync_store._register_uuid_array()
    else:
        assert store.dialect == "sqlite" and made == []
