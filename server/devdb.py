"""Throwaway PostgreSQL databases for the test suite and the benchmarks: made per run, dropped after."""
import os
import uuid

import sqlalchemy as sa
from sqlalchemy.engine import make_url


def create_pg_database(base_url: str, prefix: str) -> tuple[str, callable]:
    """A fresh database on the server of `base_url`; returns its psycopg URL and a function that drops it."""
    url = make_url(base_url).set(drivername="postgresql+psycopg")
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop():
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop
