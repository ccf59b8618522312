"""Streamed pull pages (docs/PROTOCOL.md, "Streamed pages"): up to `pages` pages in one answer, one per line, each
the page a request of its own would have given; a logout, a lost site or a failure ends the answer early after a
whole line, and nothing is lost or sent twice."""
import json
import uuid
from datetime import datetime, timezone

import brotli
import pytest
import sqlalchemy as sa
from flask_compress.compat import compression
from flask_jwt_extended import decode_token

from server.auth import revoke
from server.extensions import db
from server.models import AuditLog, Site, User
from server.sync_store import SqlStore

from .test_sync_pull_format import _pull, synced  # noqa: F401 (fixture)


def _lines(resp) -> list[dict]:
    body = resp.get_data()
    assert resp.status_code == 200, body[:300]
    assert resp.mimetype == "application/x-ndjson"
    assert body.endswith(b"\n")
    return [json.loads(line) for line in body.split(b"\n")[:-1]]


def _stream(api, limit, pages, client_id=None):
    """Every page of a first pull asked for `pages` at a time: (the pages, the number of answers)."""
    got, cursor, answers, client_id = [], None, 0, client_id or str(uuid.uuid4())
    while not got or got[-1]["has_more"]:
        answers += 1
        got += _lines(api.post("/api/sync/pull", json={"client_id": client_id, "cursor": cursor, "limit": limit,
                                                       "format": 2, "pages": pages}))
        cursor = got[-1]["cursor"]
    return got, answers


@pytest.mark.parametrize("role", ["gardien", "staff", "head_office"])
def test_streamed_pages_are_the_pages_of_a_pull_page_by_page(synced, as_role, role):  # noqa: F811
    api = as_role(role)
    paged = _pull(api, 2, 2)
    streamed, answers = _stream(api, 2, 3)
    assert len(paged) >= 7
    assert answers == -(-len(paged) // 3)  # every answer but the last holds 3 pages
    strip = lambda p: {k: v for k, v in p.items() if k != "progress"} | {"as_of": None}  # noqa: E731
    assert [strip(p) for p in streamed] == [strip(p) for p in paged]


@pytest.mark.parametrize(("extra", "message"), [
    ({"format": 2, "pages": 0}, "Entre 1 et 20."),
    ({"format": 2, "pages": 21}, "Entre 1 et 20."),
    ({"format": 2, "pages": "3"}, "Entre 1 et 20."),
    ({"format": 2, "pages": True}, "Entre 1 et 20."),
    ({"pages": 3}, "Plusieurs pages par réponse : seulement avec le format 2."),
    ({"format": 1, "pages": 3}, "Plusieurs pages par réponse : seulement avec le format 2."),
])
def test_pages_out_of_bounds_or_without_format_2_are_refused(world, as_role, extra, message):
    resp = as_role("staff").post("/api/sync/pull", json={"client_id": str(uuid.uuid4()), **extra})
    assert resp.status_code == 422
    assert resp.get_json()["error"]["details"] == {"pages": [message]}


def test_one_page_asked_for_is_the_plain_json_answer(world, as_role):
    resp = as_role("staff").post("/api/sync/pull", json={"client_id": str(uuid.uuid4()), "format": 2, "pages": 1})
    assert resp.status_code == 200 and resp.mimetype == "application/json" and resp.get_json()["format"] == 2


def _open_stream(api, pages=5, limit=1, client_id=None, cursor=None, **kw):
    """A streamed answer read line by line as the server makes them (the test client, unbuffered)."""
    resp = api.post("/api/sync/pull", json={"client_id": client_id or str(uuid.uuid4()), "cursor": cursor,
                                            "limit": limit, "format": 2, "pages": pages}, buffered=False, **kw)
    assert resp.status_code == 200 and resp.mimetype == "application/x-ndjson"
    return resp, iter(resp.response)


def _whole(line: bytes) -> dict:
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    return json.loads(line)


def _deactivate(world, role):
    db.session.get(User, world.users[role].id).active = False


def _log_out(world, role, api):
    claims = decode_token(api.token)
    revoke(claims["jti"], world.users[role].id, datetime.fromtimestamp(claims["exp"], timezone.utc))


def _take_other_site(world, role):
    db.session.get(User, world.users[role].id).sites = [db.session.get(Site, uuid.UUID(world["own_site"]))]


@pytest.fixture
def recheck_every_page(app, monkeypatch):
    monkeypatch.setitem(app.config, "SYNC_PULL_RECHECK_SECONDS", 0)


@pytest.mark.parametrize(("change", "next_status"), [(_deactivate, 401), (_log_out, 401), (_take_other_site, 200)])
def test_a_token_no_longer_good_or_a_changed_scope_ends_the_answer_after_the_page_in_hand(
        synced, world, login, recheck_every_page, change, next_status):  # noqa: F811
    user = db.session.get(User, world.users["staff"].id)
    user.sites = [db.session.get(Site, uuid.UUID(k)) for k in (world["own_site"], world["other_site"])]
    db.session.commit()
    api = login(user)
    client_id = str(uuid.uuid4())
    resp, lines = _open_stream(api, client_id=client_id)
    first = _whole(next(lines))
    assert first["has_more"] and len(first["scope"]["sites"]) == 2
    assert _whole(next(lines))["has_more"]  # the token still stands: the answer goes on
    args = (world, "staff", api) if change is _log_out else (world, "staff")
    change(*args)
    db.session.commit()
    assert list(lines) == []  # ended, after whole lines only
    resp.close()
    again = api.post("/api/sync/pull", json={"client_id": client_id, "cursor": first["cursor"], "limit": 1,
                                             "format": 2, "pages": 5})
    assert again.status_code == next_status
    if next_status == 200:  # the site taken away leaves the phone: the next answer starts over without it
        (head, *_) = _lines(again)
        assert head["reset"] is True and head["scope"]["sites"] == [world["own_site"]]


def test_a_failure_after_the_first_page_ends_the_answer_and_the_next_one_resumes(
        synced, as_role, monkeypatch, caplog):  # noqa: F811
    api = as_role("staff")
    paged = _pull(api, 2, 2)
    calls, real = [], SqlStore.pull_page

    def failing(*a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the database went away")
        return real(*a, **kw)

    monkeypatch.setattr(SqlStore, "pull_page", failing)
    client_id = str(uuid.uuid4())
    got = _lines(api.post("/api/sync/pull", json={"client_id": client_id, "limit": 2, "format": 2, "pages": 20}))
    assert len(got) == 2 and got[-1]["has_more"]  # two whole pages, then the end of the answer
    assert "streamed pull stopped after a page" in caplog.text
    monkeypatch.setattr(SqlStore, "pull_page", real)
    # the device asks again from the last page it applied
    resumed = _lines(api.post("/api/sync/pull", json={"client_id": client_id, "cursor": got[-1]["cursor"],
                                                      "limit": 2, "format": 2, "pages": 20}))
    strip = lambda p: {k: v for k, v in p.items() if k != "progress"}  # noqa: E731
    assert [strip(p) for p in got + resumed] == [strip(p) for p in paged]  # nothing lost, nothing twice


def test_a_streamed_answer_delivering_residents_is_audited_once_with_its_counts(synced, world, as_role):  # noqa: F811
    api = as_role("staff")
    pages, answers = _stream(api, 1, 4)
    with_residents = [p for p in pages if any(row[0] == "resident" and row[3] is not None for row in p["changes"])]
    rows = db.session.scalars(sa.select(AuditLog).where(AuditLog.action == "sync.pull").order_by(AuditLog.id)).all()
    assert answers > 1 and 1 < len(rows) <= answers  # one row per answer delivering residents, not per page
    assert {r.user_id for r in rows} == {world.users["staff"].id}
    assert sum(r.details["residents"] for r in rows) == sum(
        1 for p in with_residents for row in p["changes"] if row[0] == "resident" and row[3] is not None)
    assert sum(r.details["pages"] for r in rows) == len(with_residents)
    assert rows[0].details["reset"] is True and not any(r.details["reset"] for r in rows[1:])


def test_a_cut_answer_has_its_audit_row_before_the_residents_leave_and_its_counts_when_it_ends(
        synced, world, as_role):  # noqa: F811
    def audited():
        return db.session.scalars(sa.select(AuditLog).where(AuditLog.action == "sync.pull")).all()

    def residents(page):
        return sum(1 for r in page["changes"] if r[0] == "resident" and r[3] is not None)

    resp, lines = _open_stream(as_role("staff"), pages=20)
    sent = [_whole(next(lines))]
    while not residents(sent[-1]):
        assert audited() == []
        sent.append(_whole(next(lines)))
    (row,) = audited()  # stored with the first page carrying residents, before it was handed over
    sent += [_whole(next(lines)) for _ in range(3)]
    resp.close()  # the phone went away: the answer is closed after a few more pages
    db.session.expire_all()
    (row,) = audited()
    counts = [residents(p) for p in sent]
    assert sum(counts) > counts[-4] > 0
    assert row.details == {"residents": sum(counts), "reset": True, "pages": sum(1 for n in counts if n)}


@pytest.mark.parametrize(("accept", "chosen"), [("gzip, deflate, br, zstd", "zstd"), ("br", "br"),
                                                ("gzip", None), ("identity", None), (None, None)])
def test_a_streamed_answer_is_compressed_a_whole_line_at_a_time(synced, as_role, accept, chosen):  # noqa: F811
    """Every piece of a compressed answer decompresses to whole lines: a phone applies each page as soon as it
    came, never a page late (the compressor is flushed at each line)."""
    api = as_role("staff")
    body = {"client_id": str(uuid.uuid4()), "limit": 2, "format": 2, "pages": 20}
    plain = _lines(api.post("/api/sync/pull", json=body))
    resp, pieces = _open_stream(api, pages=20, limit=2, client_id=body["client_id"],
                                headers={} if accept is None else {"Accept-Encoding": accept})
    assert resp.headers.get("Content-Encoding") == chosen and "Accept-Encoding" in resp.headers["Vary"]
    decode = {"zstd": compression.zstd.ZstdDecompressor().decompress, "br": brotli.Decompressor().process,
              None: bytes}[chosen]
    texts = [decode(piece) for piece in pieces]
    resp.close()
    if chosen:  # each piece is one whole line, as it was made; the last closes the compressed stream
        assert texts[-1] == b"" and all(t.count(b"\n") == 1 and t.endswith(b"\n") for t in texts[:-1])
    got = [json.loads(line) for line in b"".join(texts).split(b"\n")[:-1]]
    strip = lambda p: {k: v for k, v in p.items() if k != "progress"}  # noqa: E731
    assert len(got) == len(plain) > 3 and [strip(p) for p in got] == [strip(p) for p in plain]


def test_each_page_of_a_stream_is_a_transaction_of_its_own(synced, as_role, monkeypatch):  # noqa: F811
    """SQLite: a page may write (its audit row, stored texts), so its transaction begins IMMEDIATE like the first
    page's, or a push committing between its read and its write would fail it (SQLITE_BUSY_SNAPSHOT).
    PostgreSQL: pages after the first read in autocommit, writing nothing (no transaction id, so no commit flushed
    to disk), the stamp and the audit row being written in earlier ones."""
    begins, xids, real = [], [], SqlStore.pull_page

    def pull_page(store, *a, **kw):
        if db.engine.dialect.name == "postgresql":
            xids.append(db.session.execute(sa.text("SELECT pg_current_xact_id_if_assigned()")).scalar())
        return real(store, *a, **kw)

    monkeypatch.setattr(SqlStore, "pull_page", pull_page)
    listen = lambda conn, cur, statement, *a: statement.startswith("BEGIN") and begins.append(statement)  # noqa: E731
    sa.event.listen(db.engine, "before_cursor_execute", listen)
    try:
        pages = _lines(as_role("staff").post("/api/sync/pull", json={
            "client_id": str(uuid.uuid4()), "limit": 2, "format": 2, "pages": 20}))
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listen)
    assert len(pages) > 3
    if db.engine.dialect.name == "sqlite":
        assert begins[:len(pages)] == ["BEGIN IMMEDIATE"] * len(pages)
        assert begins[len(pages):] in ([], ["BEGIN DEFERRED"])  # the audit row's counts, when the answer ends
    else:
        assert db.engine.dialect.name == "postgresql" and begins == []
        assert xids[0] is not None and xids[1:] == [None] * (len(pages) - 1)  # the first page's stamp: an id


def _stale_visit_last() -> tuple[uuid.UUID, int]:
    """A visit changed without its stored text (as review or an import would): it takes the highest seq, so a
    stream meets it on a later page, which must serialize it and store its text."""
    from server.database import next_seq
    from server.models import Visit

    first = db.session.scalars(sa.select(Visit).order_by(Visit.seq)).first()
    seq = next_seq(db.session)
    db.session.execute(sa.update(Visit).where(Visit.id == first.id).values(note="revue au bureau", seq=seq))
    db.session.commit()
    return first.id, seq


def _stored_text_seq(visit_id) -> int | None:
    from server.models import Visit

    db.session.rollback()
    return db.session.execute(sa.select(Visit.wire_seq).where(Visit.id == visit_id)).scalar_one()


def test_later_pages_of_a_stream_read_in_autocommit_on_postgresql_and_still_store_their_texts(
        synced, as_role, monkeypatch):  # noqa: F811
    """PostgreSQL: a stream's pages after the first read outside a transaction block (no BEGIN, no COMMIT: two round
    trips less a page); the texts such a page had to serialize are stored all the same, in a transaction of their
    own. SQLite: every page is a transaction (BEGIN IMMEDIATE), as before."""
    api = as_role("staff")
    visit_id, seq = _stale_visit_last()
    assert _stored_text_seq(visit_id) != seq
    autocommit, real = [], SqlStore.pull_page

    def pull_page(store, *a, **kw):
        out = real(store, *a, **kw)
        autocommit.append(store.session.connection().connection.driver_connection.autocommit
                          if db.engine.dialect.name == "postgresql" else False)
        return out

    monkeypatch.setattr(SqlStore, "pull_page", pull_page)
    pages = _lines(api.post("/api/sync/pull", json={"client_id": str(uuid.uuid4()), "limit": 2, "format": 2,
                                                    "pages": 20}))
    assert len(pages) > 3 and not pages[-1]["has_more"]
    last = [row for row in pages[-1]["changes"] if row[1] == str(visit_id)]
    assert len(last) == 1 and last[0][2] == seq and "revue au bureau" in last[0][3]
    assert _stored_text_seq(visit_id) == seq  # the text stored by the page that serialized it
    if db.engine.dialect.name == "postgresql":
        assert autocommit == [False] + [True] * (len(pages) - 1)
        # and no connection goes back to the pool in autocommit: the next request's transaction is a transaction
        db.session.remove()
        pooled = [db.engine.raw_connection() for _ in range(db.engine.pool.checkedin())]
        try:
            assert pooled and not any(conn.driver_connection.autocommit for conn in pooled)
        finally:
            for conn in pooled:
                conn.close()
    else:
        assert db.engine.dialect.name == "sqlite" and not any(autocommit)
    monkeypatch.setattr(SqlStore, "pull_page", real)
    db.session.rollback()
    again = _lines(api.post("/api/sync/pull", json={"client_id": str(uuid.uuid4()), "limit": 2, "format": 2,
                                                    "pages": 20}))
    strip = lambda p: {k: v for k, v in p.items() if k != "progress"}  # noqa: E731
    assert [strip(p) for p in again] == [strip(p) for p in pages]  # from the stored text, the same pages


@pytest.mark.timeout(60)  # a wait for the held row instead of giving up fails here, not at the suite's 300 s
def test_a_later_page_gives_up_storing_a_text_whose_row_a_writer_holds(synced, as_role):  # noqa: F811
    """PostgreSQL: the texts a page read in autocommit stores wait at most lock_timeout for a row another
    transaction holds (a push never waits on a pull, and a pull never waits long on a push); the page is still
    answered, from the serialized text, and a later pull stores it."""
    if db.engine.dialect.name != "postgresql":
        # SQLite: a pull holds the write lock from BEGIN IMMEDIATE (server/database.py); there is no row lock.
        assert db.engine.dialect.name == "sqlite"
        return
    from server.models import Visit

    api = as_role("staff")
    visit_id, seq = _stale_visit_last()
    with db.engine.connect() as writer:
        writer.execute(sa.select(Visit.id).where(Visit.id == visit_id).with_for_update())  # held until rollback
        pages = _lines(api.post("/api/sync/pull", json={"client_id": str(uuid.uuid4()), "limit": 2, "format": 2,
                                                        "pages": 20}))
        assert not pages[-1]["has_more"]
        assert [row[2] for row in pages[-1]["changes"] if row[1] == str(visit_id)] == [seq]
        assert _stored_text_seq(visit_id) != seq  # given up, not waited for
        writer.rollback()
    _lines(api.post("/api/sync/pull", json={"client_id": str(uuid.uuid4()), "limit": 2, "format": 2, "pages": 20}))
    assert _stored_text_seq(visit_id) == seq
