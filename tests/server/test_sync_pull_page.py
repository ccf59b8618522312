"""A pull page read in one statement (SqlStore.pull_page) and the device's last pull time.

pull_page must give exactly the pages the general path gives (the page's bound first, then each table up to it):
the same changes in the same order, the same has_more, for every role's scope and hidden fields, with records
lacking a current stored text (fixtures, a row changed around the push), events (always serialized), tombstones
and records sharing a seq."""
import json
import uuid
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from server.extensions import db
from server.models import Device, Visit
from server.sync_store import SqlStore, principal_for
from sync import compute_pull
from sync.pull import change_text

from .test_sync_api import pull_all, push, visit
from .test_sync_wire import _every_op


class _WithoutPullPage:
    """The same store, without pull_page: compute_pull takes its general path."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        if name == "pull_page":
            raise AttributeError(name)
        return getattr(self._store, name)


def _page(result):
    # The texts as the device reads them: SQLite's page gives UTF-8 bytes, the general path str.
    texts = [t.decode() if isinstance(t, bytes) else t for t in result.change_texts]
    return texts, result.has_more, result.cursor, result.delivered


def test_pull_page_gives_the_pages_of_the_general_path(world, as_role):
    staff = as_role("staff")
    assert push(staff, str(uuid.uuid4()), _every_op(world)).status_code == 200
    assert push(staff, str(uuid.uuid4()), [visit(n, world["own_household"]) for n in range(1, 6)]).status_code == 200
    from server.database import next_seq
    seqs = sorted(db.session.execute(sa.select(Visit.seq)).scalars())
    # a visit changed around the push (its text is stale), and two visits sharing a seq
    db.session.execute(sa.update(Visit).where(Visit.seq == seqs[0]).values(note="après", seq=next_seq(db.session)))
    db.session.execute(sa.update(Visit).where(Visit.seq.in_(seqs[2:4])).values(seq=seqs[2]))
    db.session.commit()

    store = SqlStore(db.session)
    pages_seen = 0
    for role in ("gardien", "staff", "head_office"):
        principal = principal_for(world.users[role])
        for limit in (1, 2, 3, 7, 500):
            client_id = str(uuid.uuid4())
            cursor, has_more = None, True
            while has_more:
                one = _page(compute_pull(store, principal, client_id, cursor, limit))
                general = _page(compute_pull(_WithoutPullPage(store), principal, client_id, cursor, limit))
                assert one == general, (role, limit, cursor)
                db.session.commit()
                _texts, has_more, cursor, _delivered = one
                pages_seen += 1
    assert pages_seen > 30


def test_pull_page_gives_way_when_the_next_record_shares_its_last_seq(world, as_role):
    staff = as_role("staff")
    assert push(staff, str(uuid.uuid4()), [visit(n, world["own_household"]) for n in range(1, 4)]).status_code == 200
    seqs = sorted(db.session.execute(sa.select(Visit.seq)).scalars())
    db.session.execute(sa.update(Visit).where(Visit.seq.in_(seqs[1:3])).values(seq=seqs[1]))
    db.session.commit()
    store, sites = SqlStore(db.session), principal_for(world.users["staff"]).site_ids
    # a page of one would split the two visits of seqs[1]: compute_pull's general path keeps them together
    assert store.pull_page(seqs[0], sites, 1, True, frozenset(), change_text) is None
    rows, has_more = store.pull_page(seqs[0], sites, 2, True, frozenset(), change_text)
    assert [r[0] for r in rows] == [seqs[1], seqs[1]] and has_more is False
    db.session.rollback()


def _last_pull_at(client_id):
    db.session.expire_all()
    return db.session.execute(sa.select(Device.last_pull_at).where(
        Device.client_id == uuid.UUID(client_id))).scalar_one()


def test_the_device_is_stamped_once_a_minute_however_many_pages(world, as_role):
    staff = as_role("staff")
    client_id = str(uuid.uuid4())
    pages, _ = pull_all(staff, client_id, limit=1)
    assert len(pages) > 3
    first = _last_pull_at(client_id)
    assert first is not None and abs(datetime.now(timezone.utc) - first) < timedelta(minutes=1)
    pull_all(staff, client_id, limit=1)
    assert _last_pull_at(client_id) == first  # the pages of a pull within the minute: not rewritten
    # a stamp older than a minute, or ahead of the clock, is replaced by the next page
    for stale in (first - timedelta(minutes=2), first + timedelta(hours=1)):
        db.session.execute(sa.update(Device).where(Device.client_id == uuid.UUID(client_id))
                           .values(last_pull_at=stale))
        db.session.commit()
        assert staff.post("/api/sync/pull", json={"client_id": client_id, "cursor": None}).status_code == 200
        now = _last_pull_at(client_id)
        assert now != stale and abs(datetime.now(timezone.utc) - now) < timedelta(minutes=1)


def test_the_pull_stamp_writes_the_pull_time_and_nothing_else_of_the_device(world, as_role):
    """The pull reads the device without a lock: its stamp must not write back a last_applied read before a push
    committed (the device would then be asked for mutations already applied)."""
    staff = as_role("staff")
    client_id = str(uuid.uuid4())
    assert push(staff, client_id, [visit(1, world["own_household"])]).status_code == 200
    store = SqlStore(db.session)
    read = store.read_device(client_id, str(world.users["staff"].id))
    assert read.last_applied == 1
    db.session.execute(sa.update(Device).where(Device.client_id == uuid.UUID(client_id)).values(last_applied=7))
    store.stamp_pull(client_id, datetime.now(timezone.utc))
    db.session.commit()
    db.session.expire_all()
    device = db.session.get(Device, uuid.UUID(client_id))
    assert device.last_applied == 7 and device.last_pull_at is not None


def test_a_pull_page_without_a_stamp_due_writes_nothing_on_postgresql(world, as_role):
    """PostgreSQL gives a transaction an id when it writes or locks a row, and flushes its commit to disk; a pull
    page that has nothing to write (stamp not due, texts current, no resident audited) must get none."""
    if db.engine.dialect.name != "postgresql":
        # SQLite: a pull holds the write lock from BEGIN IMMEDIATE (server/database.py); there is no row lock.
        assert db.engine.dialect.name == "sqlite"
        return
    staff = as_role("staff")
    client_id = str(uuid.uuid4())
    assert push(staff, client_id, [visit(n, world["own_household"]) for n in range(1, 4)]).status_code == 200
    pull_all(staff, client_id)  # stamps the device, stores the fixtures' texts
    db.session.commit()
    store, principal = SqlStore(db.session), principal_for(world.users["staff"])
    page = compute_pull(store, principal, client_id, None, 2, 2)
    assert len(page.change_texts) == 2 and page.has_more
    assert db.session.execute(sa.text("SELECT pg_current_xact_id_if_assigned()")).scalar() is None
    db.session.rollback()
    # the locking read a push takes does get one: the check above can fail
    store.lock_device(client_id, principal.user_id)
    assert db.session.execute(sa.text("SELECT pg_current_xact_id_if_assigned()")).scalar() is not None
    db.session.rollback()


def test_a_page_gives_its_texts_as_the_utf8_bytes_the_database_holds(world, as_role):
    """The page's stored texts come as bytes on both databases (SQLite: cast to BLOB; psycopg: binary rows with
    bytea's loader for text), accents included, and joined into the body as they are; the rest of the page's
    columns, and every other statement's text columns, load as usual."""
    staff = as_role("staff")
    note = "Visite à l'étage, « bien reçue »"
    assert push(staff, str(uuid.uuid4()), [visit(1, world["own_household"], note=note)]).status_code == 200
    pull_all(staff, str(uuid.uuid4()))  # the fixtures' texts stored
    db.session.commit()
    store, principal = SqlStore(db.session), principal_for(world.users["staff"])
    rows, has_more = store.pull_page(0, principal.site_ids, 500, False, frozenset(), change_text)
    assert not has_more and rows
    assert all(type(seq) is int and type(text) is bytes and type(entity) is str for seq, text, _d, entity in rows)
    (mine,) = [text.decode() for _s, text, _d, entity in rows if entity == "visit" and note in text.decode()]
    stored = db.session.execute(sa.select(Visit.wire).where(Visit.note == note)).scalar_one()
    assert type(stored) is str and mine == stored  # the same text; other statements still read str
    page = compute_pull(store, principal, str(uuid.uuid4()), None, 500, 2)
    assert note in json.loads(page.to_json())["changes"][-1][3]
