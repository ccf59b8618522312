"""Many-row INSERTs of a push through the driver's executemany, values converted by their columns' own types.

SQLAlchemy's executemany builds a parameter dict per row and runs every value through the statement's
parameter machinery: for a push's 500 visits that was about half the time of the whole insert on SQLite, more
than the database's own work. Here the statement is compiled once per shape and dialect, each column's bind
processor is the one its type gives SQLAlchemy for that dialect (`dialect_impl(...).bind_processor`), and the
rows go to `Connection.exec_driver_sql` (engine events still fire) as the driver's own parameter lists, or on
PostgreSQL with psycopg to `COPY … FROM STDIN` on the same connection (no engine event: the driver's cursor).
tests/server/test_bulk.py holds the rows written this way equal to SQLAlchemy's, column by column.
"""
from __future__ import annotations

import itertools
import json

import sqlalchemy as sa

_COMPILED: dict = {}


class _Insert:
    def __init__(self, table: sa.Table, binds: dict, dialect):
        """binds: column name -> the bound parameter's type (what the column receives)."""
        stmt = sa.insert(table).values({name: sa.bindparam(name, type_=type_) for name, type_ in binds.items()})
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        # PostgreSQL with psycopg: COPY, whose rows psycopg sends in one stream and the server parses per column
        # type, rather than one INSERT per row (measured 18 against 29 ms for a push's 500 visits).
        self.copy = dialect.name == "postgresql" and dialect.driver == "psycopg"
        if self.copy:
            quote = dialect.identifier_preparer.quote
            self.sql = f"COPY {quote(table.name)} ({', '.join(quote(n) for n in binds)}) FROM STDIN"
        self.positional = self.copy or compiled.positional
        # The compiled statement's own parameter order (positional drivers) or names (the others).
        order = list(compiled.positiontup) if compiled.positional and not self.copy else list(binds)
        self.names = order
        self.processors = [binds[name].dialect_impl(dialect).bind_processor(dialect) for name in order]
        self.json = [isinstance(binds[name], sa.JSON) for name in order]
        if self.copy:
            # SQLAlchemy wraps a JSON value in psycopg's Json, which psycopg serializes at every row, however many
            # rows share it (two lists per visit: ~4 ms a push). COPY takes the column's text: the same
            # serializer's text, made once per content by _convert. (JSON null for None, as SQLAlchemy stores it.)
            text = getattr(dialect, "_json_serializer", None) or json.dumps
            self.processors = [text if is_json else proc for proc, is_json in zip(self.processors, self.json)]

    def params(self, rows: list[dict]) -> list:
        names = self.names
        columns = []
        for name, proc, is_json in zip(names, self.processors, self.json):
            values = [row[name] for row in rows]
            if proc is not None:  # None too: a JSON column makes it JSON null, as SQLAlchemy does
                values = _convert(values, proc, is_json)
            columns.append(values)
        if self.positional:
            return list(zip(*columns))
        return [dict(zip(names, values)) for values in zip(*columns)]


def _convert(values: list, proc, is_json: bool) -> list:
    """Each value through proc, once per object: a push's rows share their site, device, user and time objects
    (keyed by identity, which the rows keep alive; equal values of other types may convert otherwise). A JSON list
    of texts (a visit's interests and needs) once per content: equal lists of texts make the same JSON."""
    memo, out = {}, []
    for v in values:
        if is_json and type(v) is list and all(type(x) is str for x in v):
            key = tuple(v)
        else:
            key = id(v)
        if key in memo:
            out.append(memo[key])
        else:
            out.append(memo.setdefault(key, proc(v)))
    return out


# COPY's rows are made and sent this many at a time: psycopg sends every 32 kB it holds, so PostgreSQL inserts the
# first rows while the next are still being made, rather than only once all of them are.
COPY_CHUNK = 32


def insert_many(session, table: sa.Table, binds: dict, rows) -> None:
    """INSERT rows (an iterable of dicts with every key of binds) into table in one executemany on the session's
    connection, or one COPY. Rows may be made as they are taken: COPY takes them a chunk at a time."""
    conn = session.connection()
    dialect = conn.dialect
    key = (table.name, tuple(binds.items()), dialect.name, dialect.driver)
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = _COMPILED[key] = _Insert(table, binds, dialect)
    if not compiled.copy:
        rows = list(rows)
        if rows:
            conn.exec_driver_sql(compiled.sql, compiled.params(rows))
        return
    rows = iter(rows)
    chunk = list(itertools.islice(rows, COPY_CHUNK))
    if not chunk:
        return
    # The session's own connection, hence its transaction: the rows commit or roll back with the push.
    with conn.connection.dbapi_connection.cursor() as cursor, cursor.copy(compiled.sql) as copy:
        while chunk:
            for row in compiled.params(chunk):
                copy.write_row(row)
            chunk = list(itertools.islice(rows, COPY_CHUNK))
