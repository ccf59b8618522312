"""The migrations build exactly the models' schema, and come down to nothing."""
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from server import create_app
from server.extensions import db


def _fresh_app(database_url):
    return create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True,
                       "SECRET_KEY": "test-secret-key-test-secret-key-0123456789"})


def _diff(app):
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        return compare_metadata(ctx, db.metadata)


def test_upgrade_from_empty_gives_the_models_schema_and_downgrade_to_base(app, tmp_path):
    """A database of its own (not the session's): upgrade, compare with the models, downgrade."""
    with app.app_context():
        base_url = sa.engine.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if base_url.get_backend_name() == "sqlite":
        url, drop = f"sqlite:///{tmp_path / 'migrations.sqlite3'}", lambda: None
    else:
        name = f"{base_url.database}_mig"
        admin = sa.create_engine(base_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = base_url.set(database=name).render_as_string(hide_password=False)

        def drop():
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
    fresh = _fresh_app(url)
    try:
        with fresh.app_context():
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
    finally:
        with fresh.app_context():
            db.session.remove()
            db.engine.dispose()
        drop()


def test_one_head(app):
    from alembic.script import ScriptDirectory
    from flask import current_app
    with app.app_context():
        config = current_app.extensions["migrate"].migrate.get_config()
        assert len(ScriptDirectory.from_config(config).get_heads()) == 1
