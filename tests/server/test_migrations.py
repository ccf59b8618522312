"""The migrations build exactly the models' schema, and come down to nothing; data migrations keep the data."""
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from server import create_app
from server.extensions import db
from server.sync_store import SqlStore


def _fresh_app(database_url):
    return create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True,
                       "SECRET_KEY": "test-secret-key-test-secret-key-0123456789"})


def _diff(app):
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        return compare_metadata(ctx, db.metadata)


@pytest.fixture
def own_database(app, tmp_path):
    """The URL of a database of its own (not the session's), dropped afterwards."""
    with app.app_context():
        base_url = sa.engine.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if base_url.get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
        return
    name = f"{base_url.database}_mig"
    admin = sa.create_engine(base_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _table(table_name, **types):
    """A lightweight table of a past schema: columns with the types given (None: left to the driver)."""
    return sa.table(table_name, *(sa.column(c, t) for c, t in types.items()))


@contextmanager
def _migrating(url):
    fresh = _fresh_app(url)
    try:
        with fresh.app_context():
            yield fresh
    finally:
        with fresh.app_context():
            db.session.remove()
            db.engine.dispose()


def test_upgrade_from_empty_gives_the_models_schema_and_downgrade_to_base(own_database):
    """Upgrade, compare with the models, downgrade."""
    with _migrating(own_database) as fresh:
        upgrade()
        assert _diff(fresh) == []
        tables = set(sa.inspect(db.engine).get_table_names())
        assert set(db.metadata.tables) <= tables
        downgrade(revision="base")
        db.engine.dispose()
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()  # and up again: the downgrade left nothing behind that blocks it
        assert _diff(fresh) == []
        db.engine.dispose()


def test_the_mutation_log_keeps_its_entries_through_runs_and_back(own_database):
    """b7e2f0c4d913 turns the log's rows (one per mutation) into runs, and its downgrade spreads them back."""
    user, device = uuid.uuid4(), uuid.uuid4()
    at = datetime(2026, 11, 20, 8, 30, tzinfo=timezone.utc)
    old_rows = [(1, "a" * 64, "visit.create", "applied"), (2, "b" * 64, "resident.update", "rejected")]
    with _migrating(own_database):
        upgrade(revision="a1d4c6e8f209")
        uid, when = sa.Uuid(), sa.DateTime(timezone=True)
        users = _table("users", id=uid, email=None, display_name=None, role=None, password_hash=None, active=None,
                       tokens_valid_after=when, created_at=when)
        devices = _table("devices", client_id=uid, user_id=uid, last_applied=None, app_version=None,
                         pending_reported=None, created_at=when)
        log = _table("mutation_log", client_id=uid, n=None, body_hash=None, op=None, status=None, user_id=uid,
                     received_at=when)
        with db.engine.begin() as conn:
            conn.execute(sa.insert(users), [{"id": user, "email": "g@palier.test", "display_name": "G",
                                             "role": "gardien", "password_hash": "x", "active": True,
                                             "tokens_valid_after": at, "created_at": at}])
            conn.execute(sa.insert(devices), [{"client_id": device, "user_id": user, "last_applied": 2,
                                               "app_version": "", "pending_reported": 0, "created_at": at}])
            conn.execute(sa.insert(log), [{"client_id": device, "n": n, "body_hash": h, "op": o, "status": s,
                                           "user_id": user, "received_at": at} for n, h, o, s in old_rows])
        upgrade()
        entries = SqlStore(db.session).log_entries(str(device), [1, 2])
        assert {n: (e.op, e.status, e.body_hash) for n, e in entries.items()} == {
            n: (o, s, h) for n, h, o, s in old_rows}
        db.session.rollback()
        downgrade(revision="a1d4c6e8f209")
        with db.engine.connect() as conn:
            back = conn.execute(sa.select(log.c.client_id, log.c.n, log.c.body_hash, log.c.op, log.c.status,
                                          log.c.user_id).order_by(log.c.n)).all()
        assert [tuple(r) for r in back] == [(device, n, h, o, s, user) for n, h, o, s in old_rows]
        db.engine.dispose()


def test_stored_pull_texts_of_the_old_format_are_never_sent_after_the_upgrade(own_database):
    """d5c3a8e1f046: the texts stored as format 1 objects are cleared, so a pull serializes the record as a row;
    its downgrade clears the rows the same way (the old code would splice them as objects)."""
    site = uuid.uuid4()
    at = datetime(2026, 11, 20, 8, 30, tzinfo=timezone.utc)
    sites = _table("sites", id=sa.Uuid(), seq=None, deleted=None, created_at=sa.DateTime(timezone=True),
                   updated_at=sa.DateTime(timezone=True), code=None, name=None, commune=None, territory=None,
                   wire=None, wire_seq=None)
    old_text = ('{"entity":"site","id":"%s","seq":7,"deleted":false,"data":{"code":"V","name":"Vauban",'
                '"commune":"Outreau","territory":""}}' % site)

    def texts():
        with db.engine.connect() as conn:
            return conn.execute(sa.select(sites.c.wire, sites.c.wire_seq)).one()

    with _migrating(own_database):
        upgrade(revision="b7e2f0c4d913")
        with db.engine.begin() as conn:
            conn.execute(sa.insert(sites), [{"id": site, "seq": 7, "deleted": False, "created_at": at,
                                             "updated_at": at, "code": "V", "name": "Vauban", "commune": "Outreau",
                                             "territory": "", "wire": old_text, "wire_seq": 7}])
        upgrade()
        assert tuple(texts()) == (None, None)
        page = SqlStore(db.session).wire_changes("site", 0, None, None, False, False, lambda rec: "serialized")
        assert [(seq, text) for seq, text, _deleted in page] == [(7, "serialized")]
        db.session.commit()
        assert tuple(texts()) == ('["site","%s",7,["V","Vauban","Outreau",""]]' % site, 7)  # stored again, a row
        db.session.remove()
        downgrade(revision="b7e2f0c4d913")
        assert tuple(texts()) == (None, None)
        db.engine.dispose()


def test_one_head(app):
    from alembic.script import ScriptDirectory
    from flask import current_app
    with app.app_context():
        config = current_app.extensions["migrate"].migrate.get_config()
        assert len(ScriptDirectory.from_config(config).get_heads()) == 1
