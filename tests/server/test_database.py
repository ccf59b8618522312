"""The database keeps what it answered: a commit the server acknowledged survives a crash of the machine."""
import sqlalchemy as sa

from server.extensions import db


def test_commits_are_durable(app):
    """A push answered "applied" lets the phone drop those records: the commit must already be on disk.
    SQLite in WAL mode: synchronous FULL (NORMAL may roll back committed transactions after a power cut).
    PostgreSQL: synchronous_commit on (the server's default, which Palier relies on)."""
    with app.app_context(), db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        else:
            assert conn.execute(sa.text("SHOW synchronous_commit")).scalar() == "on"
            assert conn.execute(sa.text("SHOW fsync")).scalar() == "on"
