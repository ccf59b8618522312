"""Engine behaviour per database: SQLite pragmas and write locking, the change sequence."""
from flask import Flask, request
from sqlalchemy import event, text

from .extensions import db
from .models import SyncState


def configure(app: Flask) -> None:
    """SQLite: WAL with durable commits, a busy timeout, foreign keys, and BEGIN IMMEDIATE for writing requests.

    A deferred SQLite transaction that reads and then writes fails at once (SQLITE_BUSY_SNAPSHOT) when another
    writer committed in between; taking the write lock up front makes writers queue instead.
    """
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        event.listen(engine, "before_cursor_execute", _texts_as_bytes())
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let us emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL, not WAL's usual NORMAL: with NORMAL a commit already answered may roll back after a power cut or
        # a system crash, and a phone that was told "applied" has dropped those records from its outbox. FULL
        # syncs the WAL at each commit (~0.2 ms on this project's machines).
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    @app.before_request
    def _writers_lock_first():
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            if db.session().in_transaction():
                # Only when the request shares an app context that already read (the test client inside a
                # fixture's context): end that read so that this request's transaction takes the lock.
                db.session.rollback()
            db.session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})


TEXTS_AS_BYTES = "palier_texts_as_bytes"


def _texts_as_bytes():
    """psycopg: a statement run with the execution option TEXTS_AS_BYTES gets its rows in binary format, its text
    columns as the UTF-8 bytes PostgreSQL holds (bytea's binary loader, for this cursor only): a pull page joins them
    into its body as they are, without decoding ~0.5 MB into str and encoding it back (~0.3-0.5 ms a page).
    Other columns load as usual (a varchar stays str)."""
    from psycopg import pq
    from psycopg.types.string import ByteaBinaryLoader

    def before_cursor_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        if context is not None and context.execution_options.get(TEXTS_AS_BYTES):
            cursor.format = pq.Format.BINARY
            cursor.adapters.register_loader("text", ByteaBinaryLoader)

    return before_cursor_execute


def reads_in_autocommit() -> bool:
    """PostgreSQL: the session's next transaction runs in autocommit, each statement a transaction of its own: a read
    then needs neither BEGIN nor COMMIT (two round trips, ~0.5 ms a streamed pull page). Call it when the session has
    no transaction yet; one already open (a session shared with a test's reads) goes on as it is. Elsewhere (SQLite),
    nothing changes. True when the transaction is in autocommit."""
    if db.session.get_bind().dialect.name != "postgresql" or db.session().in_transaction():
        return False
    db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    return True


def in_autocommit(connection) -> bool:
    """Whether this Connection runs each statement in a transaction of its own (reads_in_autocommit)."""
    return connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


def next_seq(session, count: int = 1) -> int:
    """Reserve `count` values of the change sequence and return the first one.

    The UPDATE row-locks sync_state until the transaction ends, so transactions get their seqs in commit order
    and a pull can never pass over a change that commits later with a smaller seq.
    """
    row = session.execute(
        text("UPDATE sync_state SET seq = seq + :n WHERE id = 1 RETURNING seq"), {"n": count}
    ).scalar_one_or_none()
    if row is None:
        session.add(SyncState(id=1, seq=count))
        session.flush()
        row = count
    return row - count + 1
