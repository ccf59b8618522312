"""server/bulk.py writes exactly what SQLAlchemy's own executemany writes: compared as the database stores it."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from server import bulk
from server.bulk import insert_many
from server.extensions import db
from server.models import Resident, Visit
from server.sync_store import STR_UUID, _bind_type


def _binds(table, names):
    return {k: _bind_type(table, k) for k in names}


def _stored(table, ids):
    """The rows as the driver reads them back, without any type processing: what is really on disk."""
    cols = [c.name for c in table.columns if c.name != "id"]
    conn = db.session.connection()
    out = {}
    for i in ids:
        sql = sa.select(*[sa.type_coerce(table.c[c], sa.types.NullType()) for c in cols]).where(
            table.c.id == sa.bindparam("i", type_=STR_UUID))
        out[i] = conn.execute(sql, {"i": i}).one()
    return cols, out


def _both_ways(table, rows):
    """The rows inserted twice, under other ids: by SQLAlchemy's executemany and by insert_many."""
    a = [{**r, "id": str(uuid.uuid4())} for r in rows]
    b = [{**r, "id": str(uuid.uuid4())} for r in rows]
    binds = _binds(table, a[0])
    db.session.execute(sa.insert(table).values({k: sa.bindparam(k, type_=t) for k, t in binds.items()}), a)
    insert_many(db.session, table, binds, iter(b))  # rows may come from a generator, made as they are taken
    cols, got_a = _stored(table, [r["id"] for r in a])
    _cols, got_b = _stored(table, [r["id"] for r in b])
    for ra, rb in zip(a, b):
        assert dict(zip(cols, got_b[rb["id"]])) == dict(zip(cols, got_a[ra["id"]]))
    return cols, got_b


@pytest.mark.parametrize("chunk", [None, 1, 3], ids=["one-chunk", "chunks-of-1", "chunks-of-3"])
def test_visits_as_sqlalchemy_writes_them(make, monkeypatch, chunk):
    """chunk: COPY's rows taken and sent that many at a time (PostgreSQL), the last chunk short (4 rows by 3)."""
    if chunk is not None:
        monkeypatch.setattr(bulk, "COPY_CHUNK", chunk)
    site = make.site()
    hh = make.household(site)
    r = make.resident(hh)
    paris = timezone(timedelta(hours=1))
    base = {"household_id": str(hh.id), "site_id": str(site.id), "user_id": None, "client_id": str(uuid.uuid4()),
            "deleted": False, "clock_suspect": False, "follow_up": False, "consent_recontact": False}
    rows = [
        {**base, "seq": 10, "resident_id": str(r.id), "visited_at": datetime(2026, 3, 1, 9, 30, tzinfo=paris),
         "received_at": datetime(2026, 3, 1, 8, 31, 5, 123456, tzinfo=timezone.utc), "outcome": "talked",
         "interests": ["jardin", "laverie"],
         "needs": ["anti\\slash", "tab\tici", 'guillemet "', "ligne\nsuite", "é\u2028"],  # COPY's escapes
         "note": "Mme Ébène, 3ᵉ étage ; « ok »",
         "clock_suspect": True, "wire": '{"x":1}', "wire_seq": 10, "created_at": datetime.now(timezone.utc),
         "updated_at": datetime.now(timezone.utc)},
        {**base, "seq": 11, "resident_id": None, "visited_at": datetime(2026, 3, 1, 23, 59, 59, tzinfo=timezone.utc),
         "received_at": datetime(2026, 3, 2, tzinfo=timezone.utc), "outcome": "absent", "interests": [],
         "needs": ["budget"], "note": "", "follow_up": True, "wire": None, "wire_seq": None,
         "created_at": datetime.now(timezone.utc), "updated_at": datetime.now(timezone.utc)},
    ]
    # Equal values in other objects, and JSON lists that are equal but hold other types than texts.
    rows.append({**rows[0], "seq": 12, "interests": list(rows[0]["interests"]), "needs": [1, True, None]})
    rows.append({**rows[1], "seq": 13, "needs": [True, 1, "budget"], "visited_at": rows[0]["visited_at"]})
    cols, got = _both_ways(Visit.__table__, rows)
    # And read back through the model, the values are the ones given.
    db.session.flush()
    v = db.session.execute(sa.select(Visit).where(Visit.seq == 10).order_by(Visit.created_at)).scalars().first()
    assert v.visited_at == rows[0]["visited_at"] and v.interests == ["jardin", "laverie"]
    assert v.note == rows[0]["note"] and str(v.resident_id) == str(r.id)


def test_residents_json_and_nulls_as_sqlalchemy_writes_them(make):
    hh = make.household(make.site())
    base = {"household_id": str(hh.id), "site_id": str(hh.site_id), "first_name": "Zoé", "last_name": "N'Diaye",
            "name_key": "ndiaye zoe", "deleted": False, "consent_contact": True, "consent_image": False,
            "created_at": datetime.now(timezone.utc), "updated_at": datetime.now(timezone.utc)}
    rows = [{**base, "seq": 20, "phone": "", "email": "", "field_versions": {"phone": {"seq": 3, "by": None}},
             "consent_recorded_at": None, "duplicate_of": None, "merged_into": None},
            {**base, "seq": 21, "phone": "06 01 02 03 04", "email": "z@example.org", "field_versions": {},
             "consent_recorded_at": datetime.now(timezone.utc), "duplicate_of": None, "merged_into": None}]
    _both_ways(Resident.__table__, rows)


def test_no_rows_insert_nothing(make):
    before = db.session.execute(sa.select(sa.func.count()).select_from(Visit.__table__)).scalar_one()
    insert_many(db.session, Visit.__table__, _binds(Visit.__table__, Visit.__table__.c.keys()), iter([]))
    assert db.session.execute(sa.select(sa.func.count()).select_from(Visit.__table__)).scalar_one() == before
