"""The sync Store on the Flask-SQLAlchemy session: bulk inserts, per-table loads, one transaction per push.

The caller (the sync view) commits; everything a push writes goes through `write` at its end, after the device
row and the change sequence were locked, so two pushes of one device serialize and seq order is commit order.
"""
import functools
import heapq
import itertools
import json
import operator
import re
import uuid
from datetime import date, datetime, timezone

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from sync.pull import change_text
from sync.store import BRIEF_FIELDS, RESTRICTED_FIELDS, WIRE_FIELDS, DeviceState, LogEntry, Receipt, WriteSet
from sync.wire import Principal, ProtocolError

from . import services
from .bulk import insert_many
from .database import TEXTS_AS_BYTES, in_autocommit, next_seq
from .models import (Action, Attendance, Conflict, Device, DuplicateSuspicion, Engagement, Event, HeadCount,
                     Household, MutationRun, PushReceipt, Rejection, Resident, Site, User, UTCDateTime, Visit,
                     event_sites)

MODELS = {"site": Site, "action": Action, "household": Household, "resident": Resident, "engagement": Engagement,
          "visit": Visit, "event": Event, "attendance": Attendance, "headcount": HeadCount}
TABLES = {e: m.__table__ for e, m in MODELS.items()}
# Columns holding UUIDs, per table: strings in the protocol, uuid.UUID for the database.
UUID_COLS = {e: frozenset(c.name for c in t.columns if isinstance(c.type, sa.Uuid)) for e, t in TABLES.items()}
_PULL_EXTRA = ("id", "seq", "deleted")
# UUIDs bound as their canonical text (what the protocol carries): no uuid.UUID per value on the way in.
STR_UUID = sa.Uuid(as_uuid=False)
# The stored pull texts (models.Synced.wire): every synced entity but events, whose site_ids live in another table.
WIRE_ENTITIES = frozenset(e for e in MODELS if e != "event")
_WIRE_COLS = frozenset({"wire", "wire_seq", "wire_restricted"})
# The columns a push's record may fill (the stored texts are made apart): a set, since `in table.c` is slow.
_WRITABLE = {e: frozenset(t.c.keys()) - _WIRE_COLS for e, t in TABLES.items()}
_SEQ = operator.itemgetter(0)  # a pull row's seq: the key its tables' rows are merged by
_TEXTS_AS_BYTES = {TEXTS_AS_BYTES: True}


def _hex_uuid(h: str) -> str:
    """A UUID as SQLite stores it (32 hex digits) in its canonical text form, without building a uuid.UUID."""
    if len(h) == 32:
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return str(uuid.UUID(h))


@functools.lru_cache(maxsize=4096)
def _json_text(text: str):
    """A JSON column read as text, decoded once per distinct value (a visit's interests and needs repeat a lot).
    The values are shared between records: they are only serialized, never changed."""
    return json.loads(text)


def _isoformat(v) -> str:
    return v.isoformat()


_PULL_COLUMNS: dict = {}


def _pull_columns(entity: str, dialect: str):
    """What a pull selects of a table: the names, the column expressions (UUIDs read as text, so no uuid.UUID per
    value) and the converters to wire values of the columns that need one. Made once per table and dialect."""
    key = (entity, dialect)
    if key not in _PULL_COLUMNS:
        t = TABLES[entity]
        names = [*_PULL_EXTRA, *(f for f in WIRE_FIELDS[entity] if f in t.c)]
        if entity == "resident":
            names.append("merged_into")
        columns, converters = [], []
        for name in names:
            col = t.c[name]
            if isinstance(col.type, sa.Uuid):
                if dialect == "postgresql":
                    col = sa.cast(col, sa.Text).label(name)
                else:
                    col = sa.type_coerce(col, sa.String).label(name)
                    converters.append((name, _hex_uuid))
            elif isinstance(col.type, sa.JSON):
                col = (sa.cast(col, sa.Text) if dialect == "postgresql" else sa.type_coerce(col, sa.String)).label(name)
                converters.append((name, _json_text))
            elif isinstance(col.type, (UTCDateTime, sa.Date)):
                converters.append((name, _isoformat))
            columns.append(col)
        _PULL_COLUMNS[key] = (names, columns, tuple(converters))
    return _PULL_COLUMNS[key]


_READ_COLUMNS: dict = {}


def _read_columns(entity: str, dialect: str, brief: bool = False):
    """What a push loads of a table: every column but the stored texts (brief: sync.store.BRIEF_FIELDS only),
    UUIDs read as text (converted from SQLite's 32 hex digits), the others through their types (records are
    compared and changed in place)."""
    key = (entity, dialect, brief)
    if key not in _READ_COLUMNS:
        t = TABLES[entity]
        names, columns, hex_cols = [], [], []
        for col in t.columns:
            if col.name in _WIRE_COLS or (brief and col.name not in BRIEF_FIELDS):
                continue
            if isinstance(col.type, sa.Uuid):
                if dialect == "postgresql":
                    expr = sa.cast(col, sa.Text).label(col.name)
                else:
                    expr = sa.type_coerce(col, sa.String).label(col.name)
                    hex_cols.append(col.name)
            else:
                expr = col
            names.append(col.name)
            columns.append(expr)
        _READ_COLUMNS[key] = (names, columns, tuple(hex_cols))
    return _READ_COLUMNS[key]


def _wire_scalar(v):
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).isoformat()  # as a pull reads it back from the UTC column
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, uuid.UUID):
        return str(v)
    return v


# Most values are already wire values: skipped by their exact type, without the isinstance chain (a hot path:
# ~15 values per record written by a push).
_PLAIN = frozenset({str, int, bool, float, type(None), list, dict})
_WIRE_KEYS = {e: (*_PULL_EXTRA, *WIRE_FIELDS[e]) for e in MODELS}


def wire_texts(entity: str, rec: dict) -> dict:
    """The stored texts of a record written by a push (Python values): the same JSON a pull would make from
    its columns (tests/server/test_sync_wire.py holds them equal)."""
    # rec[k], not rec.get(k): a record loaded brief lacks fields, and must fail loudly rather than be sent short.
    values = {}
    for k in _WIRE_KEYS[entity]:
        v = rec[k]
        values[k] = v if type(v) in _PLAIN else _wire_scalar(v)
    if entity == "resident":
        values["merged_into"] = _wire_scalar(rec["merged_into"])
    out = {"wire": change_text(entity, values), "wire_seq": rec["seq"]}
    if entity in RESTRICTED_FIELDS:
        out["wire_restricted"] = change_text(entity, values, True)
    return out


def principal_for(user: User) -> Principal:
    sites = None if user.sees_all_sites else frozenset(str(s) for s in user.site_ids)
    return Principal(str(user.id), user.role, sites)


def _u(v):
    return v if v is None or isinstance(v, uuid.UUID) else uuid.UUID(v)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(v):
    """A rejected mutation's args as head office will see them: NUL and lone surrogates (the usual reason it
    was rejected) become U+FFFD, since no database stores them and the record must not fail the whole push."""
    if isinstance(v, str):
        return _UNSTORABLE.sub("\ufffd", v)
    if isinstance(v, dict):
        return {_storable(k): _storable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_storable(x) for x in v]
    return v


def _strs(ids):
    return [str(i) for i in ids]


def _bind_type(t, column: str):
    """The type a column is bound with: UUID columns take canonical text (the records' own form)."""
    col_type = t.c[column].type
    return STR_UUID if isinstance(col_type, sa.Uuid) else col_type


def _bind(t, column: str, name: str):
    """A bound parameter for a column (_bind_type)."""
    return sa.bindparam(name, type_=_bind_type(t, column))


def _uuids(ids):
    return [_u(i) for i in ids]


_STATEMENTS: dict = {}


def _statement(key, build):
    """What build() makes (a statement, or a row shape's bound types), made once per key (its shape and
    dialect) and kept: building and cache-keying a statement each time costs more than running the small ones
    every push and pull runs."""
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        stmt = _STATEMENTS[key] = build()
    return stmt


def _insert_statement(table: sa.Table):
    """A table's INSERT, its values bound by column name at execution (one row a push: a run, a receipt)."""
    return _statement(("insert", table.name), lambda: sa.insert(table))


_PG_UUID_ARRAY = postgresql.ARRAY(STR_UUID)


_UUID_LIST_CHARS = re.compile(r"[0-9a-fA-F,-]*")


class _UuidArray(str):
    """A uuid[] parameter as the text of its literal, '{a,b,...}', which psycopg sends as that type as it is
    (_register_uuid_array), where for a list it checks and quotes every element: ~1 ms less for 500 ids, measured
    side by side. (Not text cast to uuid[] in the statement: once psycopg prepares it, PostgreSQL's generic plan
    casts it again for every row it scans, ~1 s for 500 ids.)"""

    @classmethod
    def of(cls, strs: list[str]):
        """When every text has a UUID's 36 characters, all hex digits and dashes (the ids a push loads: checked
        canonical by sync.ops), so that none can quote, escape or split an element; None otherwise."""
        joined = ",".join(strs)
        if (joined.count(",") != len(strs) - 1 or not all(len(s) == 36 for s in strs)
                or not _UUID_LIST_CHARS.fullmatch(joined)):
            return None
        return cls("{" + joined + "}")


@functools.cache
def _register_uuid_array() -> bool:
    """psycopg told, once, to send a _UuidArray as uuid[] text. False without psycopg (SQLite installs)."""
    try:
        import psycopg
    except ImportError:
        return False

    class Dumper(psycopg.adapt.Dumper):
        oid = psycopg.postgres.types["uuid"].array_oid

        def dump(self, obj):
            return obj.encode()

    psycopg.adapters.register_dumper(_UuidArray, Dumper)
    return True


def _scope_clause(t, entity):
    """Rows of the sites in the bound list `sites` (canonical UUID texts)."""
    sites = sa.bindparam("sites", expanding=True, type_=STR_UUID)
    if entity == "site":
        return t.c.id.in_(sites)
    if entity == "action":
        return sa.or_(t.c.site_id.is_(None), t.c.site_id.in_(sites))
    if entity == "event":
        return sa.exists().where(event_sites.c.event_id == t.c.id, event_sites.c.site_id.in_(sites))
    return t.c.site_id.in_(sites)


class SqlStore:
    def __init__(self, session):
        self.session = session
        dialect = session.get_bind().dialect
        self.dialect, self.driver = dialect.name, dialect.driver
        self._uuid_literals = self.driver == "psycopg" and _register_uuid_array()

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    # -- devices and the log --

    def lock_device(self, client_id, user_id):
        # A known device (every push but its first): one locking read. (SQLite: a writing request holds the
        # write lock from BEGIN IMMEDIATE already, server/database.py.)
        return self._device(client_id, user_id, True)

    def read_device(self, client_id, user_id):
        return self._device(client_id, user_id, False)

    def stamp_pull(self, client_id, at):
        t = Device.__table__
        stmt = _statement("stamp_pull", lambda: sa.update(t).where(t.c.client_id == sa.bindparam("cid")).values(
            last_pull_at=sa.bindparam("at")))
        self.session.execute(stmt, {"cid": _u(client_id), "at": at})

    def _device(self, client_id, user_id, lock):
        def build():
            q = sa.select(Device.__table__).where(Device.__table__.c.client_id == sa.bindparam("cid"))
            return q.with_for_update() if lock else q

        select = _statement(("device", lock), build)
        params = {"cid": _u(client_id)}
        row = self.session.execute(select, params).mappings().one_or_none()
        if row is None:
            if self.dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert
            # Two first pushes of a new device at once: the second INSERT waits for the first and does nothing.
            self.session.execute(insert(Device).values(client_id=_u(client_id), user_id=_u(user_id),
                                                       last_applied=0, app_version="", pending_reported=0,
                                                       created_at=self.now())
                                 .on_conflict_do_nothing(index_elements=["client_id"]))
            row = self.session.execute(select, params).mappings().one()
        if str(row["user_id"]) != user_id:
            raise ProtocolError(403, "device_not_yours", "Cet appareil est enregistré pour un autre utilisateur.")
        return DeviceState(client_id, user_id, row["last_applied"], row["app_version"], row["pending_reported"],
                           row["last_push_at"], row["last_pull_at"])

    def save_device(self, d: DeviceState):
        t = Device.__table__
        values = {"last_applied": d.last_applied, "app_version": d.app_version[:40],
                  "pending_reported": d.pending_reported, "last_push_at": d.last_push_at,
                  "last_pull_at": d.last_pull_at}
        stmt = _statement("save_device", lambda: sa.update(t).where(t.c.client_id == sa.bindparam("cid")).values(
            {n: _bind(t, n, "b_" + n) for n in values}))
        self.session.execute(stmt, {"cid": _u(d.client_id), **{"b_" + n: v for n, v in values.items()}})

    def log_entries(self, client_id, ns):
        cid = _u(client_id)
        t = MutationRun.__table__  # Core, not ORM: a replay is 500 hash compares and must stay cheap
        stmt = _statement("log_runs", lambda: sa.select(t.c.first_n, t.c.entries).where(
            t.c.client_id == sa.bindparam("cid"), t.c.last_n >= sa.bindparam("lo"), t.c.first_n <= sa.bindparam("hi")))
        wanted = set(ns)
        entries = {}
        for first_n, run in self.session.execute(stmt, {"cid": cid, "lo": min(wanted), "hi": max(wanted)}):
            for n, (op, status, body_hash) in enumerate(run, first_n):
                if n in wanted:
                    entries[n] = LogEntry(n, op, body_hash, status)
        rejected = [n for n, e in entries.items() if e.status == "rejected"]
        if rejected:
            for n, reason in self.session.execute(sa.select(Rejection.n, Rejection.reason).where(
                    Rejection.client_id == cid, Rejection.n.in_(rejected))):
                entries[n].reason = reason
        merged = [n for n, e in entries.items() if e.op.endswith(".update") and e.status == "applied"]
        if merged:
            for n, field in self.session.execute(sa.select(Conflict.lost_n, Conflict.field).where(
                    Conflict.lost_client_id == cid, Conflict.lost_n.in_(merged)).order_by(Conflict.field)):
                entries[n].conflicts.append(field)
        return entries

    def receipt(self, digest):
        r, d = PushReceipt.__table__, Device.__table__
        stmt = _statement("receipt", lambda: sa.select(r.c.client_id, d.c.user_id, d.c.last_applied, r.c.first_n,
                                                       r.c.last_n)
                          .join(d, d.c.client_id == r.c.client_id).where(r.c.digest == sa.bindparam("digest")))
        row = self.session.execute(stmt, {"digest": digest}).one_or_none()
        if row is None:
            return None
        return Receipt(str(row[0]), str(row[1]), row[2], row[3], row[4])

    def next_seq(self, count):
        return next_seq(self.session, count)

    # -- loading --

    def _records(self, entity, rows, brief=False):
        names, _columns, hex_cols = _read_columns(entity, self.dialect, brief)
        out = {}
        for row in rows:
            rec = dict(zip(names, row))
            for c in hex_cols:
                if rec[c] is not None:
                    rec[c] = _hex_uuid(rec[c])
            out[rec["id"]] = rec
        if entity == "event" and out:
            for ev, site in self.session.execute(sa.select(event_sites.c.event_id, event_sites.c.site_id).where(
                    sa.type_coerce(event_sites.c.event_id, STR_UUID).in_(list(out)))):
                out[str(ev)].setdefault("site_ids", []).append(str(site))
            for rec in out.values():
                rec.setdefault("site_ids", [])
        return out

    def _select(self, entity, *where, brief=False):
        # .all(): the rows fetched at once, not one driver fetchone per row as iterating the result does.
        return self.session.execute(sa.select(*_read_columns(entity, self.dialect, brief)[1]).where(*where)).all()

    def _in(self, col, ids):
        """A UUID column among ids (canonical texts). On PostgreSQL one array parameter (`= ANY`) rather than an
        expanded IN of up to ~500 placeholders: the same index plan, half the time for a push's loads (measured
        1.2-1.9 ms against 2.9-4.7 ms for 500 ids), and one statement text whatever the count. (Not the text of
        the array's literal cast to uuid[]: once the driver prepares the statement, PostgreSQL's generic plan casts
        it again for every row it scans, ~1 s for 500 ids.)"""
        strs = _strs(ids)
        if self.dialect == "postgresql":
            literal = _UuidArray.of(strs) if self._uuid_literals else None
            if literal is not None:  # no type: psycopg gives it its own (uuid[]), SQLAlchemy no bind cast
                return col == sa.func.any(sa.bindparam(None, literal, type_=sa.types.NullType()))
            return col == sa.func.any(sa.bindparam(None, strs, type_=_PG_UUID_ARRAY))
        return sa.type_coerce(col, STR_UUID).in_(strs)

    def load(self, entity, ids, brief=False):
        if not ids:
            return {}
        t = TABLES[entity]
        rows = self._select(entity, self._in(t.c.id, ids), brief=brief)
        return self._records(entity, rows, brief)

    def residents_of_households(self, household_ids):
        t = TABLES["resident"]
        rows = self._select("resident", self._in(t.c.household_id, household_ids))
        return list(self._records("resident", rows).values())

    def attendances_for(self, event_ids, resident_ids):
        if not resident_ids:
            return []
        t = TABLES["attendance"]
        rows = self._select("attendance", self._in(t.c.event_id, event_ids), self._in(t.c.resident_id, resident_ids))
        return list(self._records("attendance", rows).values())

    # -- writing: one executemany per table --

    def write(self, ws: WriteSet):
        now = self.now()
        for entity, records in ws.inserts.items():
            t = TABLES[entity]
            keys = sorted(_WRITABLE[entity] & set().union(*records))

            def row(rec, entity=entity, keys=keys):
                out = {k: rec.get(k) for k in keys}
                out["created_at"] = out["updated_at"] = now
                if entity in WIRE_ENTITIES:
                    out.update(wire_texts(entity, rec))
                return out

            first = row(records[0])
            binds = _statement(("insert", entity, tuple(first)), lambda: {k: _bind_type(t, k) for k in first})
            # The other rows made as insert_many takes them: on PostgreSQL, while the database inserts the first.
            insert_many(self.session, t, binds, itertools.chain([first], map(row, records[1:])))
        for entity, updates in ws.updates.items():
            t = TABLES[entity]
            groups: dict[frozenset, list] = {}
            for rec_id, (rec, fields) in updates.items():
                row = {f: rec[f] for f in fields}
                row["updated_at"] = now
                if entity in WIRE_ENTITIES:
                    row.update(wire_texts(entity, rec))
                row["id"] = rec_id
                groups.setdefault(frozenset(row), []).append({"b_" + k: v for k, v in row.items()})
            for names, rows in groups.items():
                stmt = sa.update(t).where(t.c.id == _bind(t, "id", "b_id")).values(
                    {k: _bind(t, k, "b_" + k) for k in names if k != "id"})
                self.session.execute(stmt.execution_options(synchronize_session=False), rows)
        cid, uid = _u(ws.client_id), _u(ws.user_id)
        if ws.log:
            # One row for the run: the log's entries are the push's decided mutations, numbered consecutively
            # (parse_push refuses other numbering), so the first and last n place every entry.
            first_n = ws.log[0].n
            if ws.log[-1].n - first_n + 1 != len(ws.log):
                raise ValueError("a push's log entries must be numbered consecutively")
            self.session.execute(_insert_statement(MutationRun.__table__), {
                "client_id": cid, "first_n": first_n, "last_n": ws.log[-1].n, "received_at": now,
                "entries": [[e.op, e.status, e.body_hash] for e in ws.log]})
        if ws.rejections:
            self.session.execute(sa.insert(Rejection), [
                {"id": uuid.uuid4(), "client_id": cid, "n": r["n"], "user_id": uid, "site_id": _u(r["site_id"]),
                 "op": r["op"], "code": r["code"], "reason": r["reason"], "args": _storable(r["args"]),
                 "status": "open",
                 "created_at": now} for r in ws.rejections])
        if ws.conflicts:
            self.session.execute(sa.insert(Conflict), [
                {**c, "id": uuid.uuid4(), "entity_id": _u(c["entity_id"]), "site_id": _u(c["site_id"]),
                 "kept_by": _u(c["kept_by"]), "lost_by": _u(c["lost_by"]), "lost_client_id": _u(c["lost_client_id"]),
                 "status": "open", "created_at": now} for c in ws.conflicts])
        if ws.receipt is not None:
            digest, first_n, last_n = ws.receipt
            self.session.execute(_insert_statement(PushReceipt.__table__), {
                "digest": digest, "client_id": cid, "first_n": first_n, "last_n": last_n, "received_at": now})
        if ws.suspicions:
            self.session.execute(sa.insert(DuplicateSuspicion), [
                {"id": uuid.uuid4(), "resident_id": _u(s["resident_id"]), "candidate_id": _u(s["candidate_id"]),
                 "site_id": _u(s["site_id"]), "status": "pending", "created_at": now} for s in ws.suspicions])

    # -- pull --

    # Pull statements are built once per shape with bound parameters (after, up_to, sites, lim): a page runs
    # about twenty of them, and building plus cache-keying a fresh statement each time cost more than running it.

    def _pull_stmt(self, kind, entity, site_ids, up_to, include_deleted, build, limited=False):
        def make():
            t = TABLES[entity]
            q = build(t).where(t.c.seq > sa.bindparam("after"))
            if not include_deleted:
                q = q.where(t.c.deleted.is_(False))
            if up_to is not None:
                q = q.where(t.c.seq <= sa.bindparam("up_to"))
            if site_ids is not None:
                q = q.where(_scope_clause(t, entity))
            q = q.order_by(t.c.seq)
            return q.limit(sa.bindparam("lim")) if limited else q

        return _statement((kind, entity, site_ids is None, up_to is None, include_deleted, limited, self.dialect), make)

    @staticmethod
    def _params(after_seq, site_ids, up_to, **more):
        params = {"after": after_seq, "up_to": up_to, **more}
        if site_ids is not None:
            params["sites"] = sorted(str(s) for s in site_ids) or [str(uuid.UUID(int=0))]
        return params

    def change_seqs(self, entity, after_seq, site_ids, limit, include_deleted, up_to=None):
        stmt = self._pull_stmt("seqs", entity, site_ids, up_to, include_deleted, lambda t: sa.select(t.c.seq), True)
        return self.session.execute(stmt, self._params(after_seq, site_ids, up_to, lim=limit)).scalars().all()

    def page_bound(self, after_seq, site_ids, limit, include_deleted):
        """The page's bound in one round trip: each table's limit + 1 lowest seqs (index range scans), merged and
        cut by the database; also which tables have changes in the page, so that the others are not asked."""
        def make():
            parts = []
            for entity in TABLES:
                sub = self._pull_stmt("seqs", entity, site_ids, None, include_deleted, lambda t: sa.select(t.c.seq),
                                      True).subquery()
                parts.append(sa.select(sa.literal(entity).label("entity"), sub.c.seq))
            seqs = sa.union_all(*parts).subquery()
            return sa.select(seqs.c.entity, seqs.c.seq).order_by(seqs.c.seq).limit(sa.bindparam("lim"))

        stmt = _statement(("bound", site_ids is None, include_deleted, self.dialect), make)
        lowest = self.session.execute(stmt, self._params(after_seq, site_ids, None, lim=limit + 1)).all()
        if len(lowest) <= limit:
            return None, False, {e for e, _s in lowest}
        bound = lowest[limit - 1][1]
        entities = {e for e, s in lowest if s <= bound}
        if lowest[limit][1] > bound:
            return bound, True, entities
        # Records sharing the bound's seq all go in this page: more follow only if some change lies beyond it.
        return bound, any(self.change_seqs(e, bound, site_ids, 1, include_deleted) for e in TABLES), set(TABLES)

    def pull_page(self, after_seq, site_ids, limit, include_deleted, restricted, encode):
        """A whole page from one snapshot: each table's limit + 1 lowest changes with their stored texts, merged
        by seq and cut after limit + 1. ([(seq, change text, deleted, entity)], has_more), or None when the page's
        last seq is shared with the next record (compute_pull's general path keeps records sharing a seq
        together). restricted: the entities sent without the role's hidden fields; encode: sync.pull.change_text,
        for records without a current text.

        PostgreSQL: one statement, merged and cut by the database (a merge of index range scans that stops at the
        cut, so it reads the page's rows and no others); one snapshot gives the page (READ COMMITTED gives each
        statement its own): a change committed meanwhile has a higher seq than any in it, and waits for the next
        page, never passed over by the cursor. SQLite: _merged_rows."""
        parts = self._page_parts(site_ids, include_deleted, restricted)
        params = self._params(after_seq, site_ids, None, lim=limit + 1)
        if self.dialect == "sqlite":
            rows = self._merged_rows(parts, params, limit + 1)
        else:
            def make():
                subs = [part.subquery() for part in parts]
                merged = sa.union_all(*(sa.select(sub.c.seq, sub.c.text, sub.c.deleted, sub.c.entity)
                                        for sub in subs)).subquery()
                return (sa.select(merged.c.seq, merged.c.text, merged.c.deleted, merged.c.entity)
                        .order_by(merged.c.seq).limit(sa.bindparam("lim")))

            stmt = _statement(("page", site_ids is None, include_deleted, restricted, self.dialect), make)
            result = self.session.execute(stmt, params, execution_options=_TEXTS_AS_BYTES)
            # The driver's tuples as they are: no Row per record (2,000 a page), and no column here needs a
            # result processor (seq, the text's bytes, the entity's name; a boolean from psycopg).
            rows = result.cursor.fetchall()
            result.close()
        has_more = len(rows) > limit
        if has_more:
            if rows[limit][0] == rows[limit - 1][0]:
                return None
            del rows[limit:]
        stale = {row[3] for row in rows if row[1] is None}
        if not stale:
            return rows, has_more
        # Records without a current text (and events): their entity's records of the page, serialized from their
        # columns (and their texts stored), in place of those rows.
        up_to = rows[-1][0]
        streams = [[row for row in rows if row[3] not in stale]]
        as_bytes = self.dialect == "sqlite" or self.driver == "psycopg"  # the page's texts: all of one type
        for entity in stale:
            r = entity in restricted
            streams.append([(seq, text.encode() if as_bytes else text, deleted, entity)
                            for seq, text, deleted in self.wire_changes(entity, after_seq, site_ids, up_to,
                                                                        include_deleted, r,
                                                                        lambda rec, e=entity, r=r: encode(e, rec, r))])
        return list(heapq.merge(*streams, key=_SEQ)), has_more

    def _page_parts(self, site_ids, include_deleted, restricted):
        """Each table's part of a page: its lowest changes after the cursor, in seq order, each with its stored
        text where it is current (NULL marks a record to serialize from its columns, and every event). The texts
        come as the UTF-8 bytes the database holds: the body is joined from them without decoding ~0.5-0.8 MB
        into str and encoding it back (SQLite: 1.2-1.8 ms a page with accents). SQLite casts them to BLOB;
        psycopg reads the page statement in binary format with bytea's loader for text (TEXTS_AS_BYTES,
        server/database.py): no convert_to, which made PostgreSQL check every byte and cost more than it saved."""
        def part(entity):
            def build(t):
                if entity not in WIRE_ENTITIES:  # events: always serialized (NULL marks it)
                    text = sa.cast(sa.null(), sa.Text)
                else:
                    text = sa.case((t.c.wire_seq == t.c.seq, t.c.wire_restricted if entity in restricted else t.c.wire))
                if self.dialect == "sqlite":  # the UTF-8 bytes SQLite stores, joined into the body as they are
                    text = sa.cast(text, sa.LargeBinary)
                return sa.select(t.c.seq, text.label("text"), t.c.deleted, sa.literal(entity).label("entity"))

            return self._pull_stmt(("page", entity in restricted), entity, site_ids, None, include_deleted, build, True)

        return _statement(("page parts", site_ids is None, include_deleted, restricted, self.dialect),
                          lambda: tuple(part(entity) for entity in TABLES))

    def _merged_rows(self, parts, params, count):
        """SQLite: the page's first `count` rows, each table's part read lazily (its cursor steps as rows are
        taken) and merged here. SQLite's own merge of the same parts sorted all their rows, texts included, in a
        temporary b-tree: up to count rows of every table with changes, ~2 ms more for a page of 2,000. One
        transaction is one snapshot on SQLite (a pull holds the write lock from BEGIN IMMEDIATE,
        server/database.py), so the page still comes from one."""
        conn = self.session.connection()
        results = [conn.execute(part, params) for part in parts]
        try:
            # The driver's tuples (no Row per record); `deleted` stays SQLite's 0 or 1.
            heads = [(first, result.cursor) for result in results if (first := result.cursor.fetchone()) is not None]
            if len(heads) == 1:  # the usual page: one table's run of changes
                first, cursor = heads[0]
                return [first, *cursor.fetchmany(count - 1)]
            merged = heapq.merge(*(itertools.chain((first,), cursor) for first, cursor in heads), key=_SEQ)
            return list(itertools.islice(merged, count))
        finally:
            for result in results:
                result.close()

    def changes_since(self, entity, after_seq, site_ids, up_to, include_deleted, stale_only=False):
        names, columns, converters = _pull_columns(entity, self.dialect)

        def build(t):
            q = sa.select(*columns)
            return q.where(sa.or_(t.c.wire_seq.is_(None), t.c.wire_seq != t.c.seq)) if stale_only else q

        stmt = self._pull_stmt(("rows", stale_only), entity, site_ids, up_to, include_deleted, build)
        params = self._params(after_seq, site_ids, up_to)
        out = []
        for row in self.session.execute(stmt, params):
            rec = dict(zip(names, row))
            for name, convert in converters:
                v = rec[name]
                if v is not None:
                    rec[name] = convert(v)
            out.append(rec)
        if entity == "event" and out:
            by_id = {rec["id"]: rec for rec in out}
            for rec in out:
                rec["site_ids"] = []
            for ev, site in self.session.execute(sa.select(event_sites.c.event_id, event_sites.c.site_id).where(
                    event_sites.c.event_id.in_(_uuids(by_id)))):
                by_id[str(ev)]["site_ids"].append(str(site))
        return out

    def wire_changes(self, entity, after_seq, site_ids, up_to, include_deleted, restricted, encode):
        """(seq, change text) of the records changes_since would give: the stored text where it is current
        (wire_seq = seq), read and spliced without parsing; the others serialized from their columns by
        encode, and their texts stored for the next pull."""
        if entity not in WIRE_ENTITIES:
            return [(rec["seq"], encode(rec), rec["deleted"])
                    for rec in self.changes_since(entity, after_seq, site_ids, up_to, include_deleted)]
        def build(t):  # the text only where it is current: NULL marks a record to serialize from its columns
            text = t.c.wire_restricted if restricted else t.c.wire
            return sa.select(t.c.seq, sa.case((t.c.wire_seq == t.c.seq, text)), t.c.deleted)

        stmt = self._pull_stmt(("wire", restricted), entity, site_ids, up_to, include_deleted, build)
        rows = self.session.execute(stmt, self._params(after_seq, site_ids, up_to)).all()
        if all(r[1] is not None for r in rows):
            return rows
        stale = self.changes_since(entity, after_seq, site_ids, up_to, include_deleted, stale_only=True)
        self._store_texts(entity, stale)
        return list(heapq.merge([r for r in rows if r[1] is not None],
                                [(rec["seq"], encode(rec), rec["deleted"]) for rec in stale], key=lambda p: p[0]))

    def _store_texts(self, entity, recs):
        """Keep the texts of records a pull had to serialize (written by something other than a push: review,
        imports, seeding), guarded by their seq. A cache: on PostgreSQL it gives up at once rather than wait for
        a row another transaction holds (a push must never wait on a pull, let alone deadlock with one)."""
        t = TABLES[entity]
        rows = []
        for rec in recs:
            texts = {"b_wire": change_text(entity, rec), "b_wire_seq": rec["seq"], "b_id": rec["id"]}
            if entity in RESTRICTED_FIELDS:
                texts["b_wire_restricted"] = change_text(entity, rec, True)
            rows.append(texts)
        values = {k[2:]: sa.bindparam(k) for k in rows[0] if k != "b_id"}
        values["updated_at"] = t.c.updated_at  # a cache write is no change: the column's onupdate must not fire
        # (retention reads updated_at as the record's last change: server/privacy.py)
        stmt = sa.update(t).where(t.c.id == _bind(t, "id", "b_id"), t.c.seq == sa.bindparam("b_wire_seq")).values(
            values)
        if in_autocommit(self.session.connection()):  # a page read outside a transaction: one of their own
            try:
                with self.session.get_bind().begin() as conn:
                    conn.execute(sa.text("SET LOCAL lock_timeout = '50ms'"))
                    conn.execute(stmt, rows)
            except sa.exc.OperationalError:
                pass  # locked by a writer: as below
            return
        try:
            with self.session.begin_nested():
                if self.dialect == "postgresql":
                    self.session.execute(sa.text("SET LOCAL lock_timeout = '50ms'"))
                self.session.execute(stmt.execution_options(synchronize_session=False), rows)
        except sa.exc.OperationalError:
            pass  # locked by a writer, which bumps seq anyway: the next pull serializes these again
        finally:
            if self.dialect == "postgresql":
                self.session.execute(sa.text("SET LOCAL lock_timeout = DEFAULT"))

    def progress(self):
        return services.progress()


def refresh_wire(session) -> int:
    """Store the pull texts of every record lacking a current one (rows written around the push: seeding,
    imports); returns how many. Pulls do the same for the records they meet, so this only saves that first
    pull its serializing."""
    store, count = SqlStore(session), 0
    for entity in sorted(WIRE_ENTITIES):
        stale = store.changes_since(entity, 0, None, None, True, stale_only=True)
        for i in range(0, len(stale), 2000):
            store._store_texts(entity, stale[i:i + 2000])
        count += len(stale)
    return count


# -- head office's review: merges, conflict resolutions. Each change takes a seq so it reaches devices. --

class ReviewError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _bump(session, model, where, values: dict) -> int:
    """Update rows and give each its own seq (one block for all of them); returns how many rows."""
    ids = session.execute(sa.select(model.id).where(where).order_by(model.id)).scalars().all()
    if not ids:
        return 0
    first = next_seq(session, len(ids))
    now = datetime.now(timezone.utc)
    t = model.__table__  # Core executemany: one statement, a seq per row
    session.execute(sa.update(t).where(t.c.id == sa.bindparam("b_id"))
                    .values(seq=sa.bindparam("b_seq"), updated_at=now, **values),
                    [{"b_id": i, "b_seq": first + k} for k, i in enumerate(ids)])
    return len(ids)


def merge_duplicate(session, suspicion: DuplicateSuspicion, keep_id, user) -> dict:
    """Keep one resident of a suspected pair; every reference of the other moves to it; the other becomes a
    tombstone with merged_into. Attendances at an event both had are deduplicated (the kept one's stands)."""
    if suspicion.status != "pending":
        raise ReviewError(409, "already_reviewed", "Ce doublon a déjà été traité.")
    pair = {suspicion.resident_id, suspicion.candidate_id}
    keep_id = keep_id or suspicion.candidate_id
    if keep_id not in pair:
        raise ReviewError(422, "validation_error", "La personne gardée doit être l'une des deux.")
    (gone_id,) = pair - {keep_id}
    next_seq(session, 0)  # take the sequence lock first: pushes and merges serialize
    keep, gone = session.get(Resident, keep_id), session.get(Resident, gone_id)
    if keep.deleted or gone.deleted:
        raise ReviewError(409, "deleted", "L'une des deux personnes a été supprimée.")
    def events_of(rid, live_only):
        q = sa.select(Attendance.event_id).where(Attendance.resident_id == rid)
        return q.where(Attendance.deleted.is_(False)) if live_only else q

    # (event, resident) is unique: where both were checked in, the kept one's check-in stands.
    moved = {"attendances_revived": _bump(session, Attendance, sa.and_(
        Attendance.resident_id == keep_id, Attendance.deleted.is_(True),
        Attendance.event_id.in_(events_of(gone_id, True))), {"deleted": False})}
    moved["attendances_dropped"] = _bump(session, Attendance, sa.and_(
        Attendance.resident_id == gone_id, Attendance.deleted.is_(False),
        Attendance.event_id.in_(events_of(keep_id, False))), {"deleted": True})
    moved["attendances"] = _bump(session, Attendance, sa.and_(Attendance.resident_id == gone_id,
                                                              Attendance.deleted.is_(False)), {"resident_id": keep_id})
    moved["engagements"] = _bump(session, Engagement, Engagement.resident_id == gone_id, {"resident_id": keep_id})
    moved["visits"] = _bump(session, Visit, Visit.resident_id == gone_id, {"resident_id": keep_id})
    _bump(session, Resident, Resident.duplicate_of == gone_id, {"duplicate_of": keep_id})
    _bump(session, Resident, Resident.id == gone_id, {"deleted": True, "merged_into": keep_id, "duplicate_of": None})
    if keep.duplicate_of is not None:
        _bump(session, Resident, Resident.id == keep_id, {"duplicate_of": None})
    session.execute(sa.update(DuplicateSuspicion).where(
        DuplicateSuspicion.status == "pending",
        sa.or_(DuplicateSuspicion.resident_id == gone_id, DuplicateSuspicion.candidate_id == gone_id))
        .values(status="merged", resolved_by=user.id, resolved_at=datetime.now(timezone.utc))
        .execution_options(synchronize_session=False))
    session.add(_audit(user, "resident.merge", f"resident:{gone_id}", {"into": str(keep_id), **moved}))
    return {"kept": str(keep_id), "merged": str(gone_id), **moved}


def keep_apart(session, suspicion: DuplicateSuspicion, user) -> None:
    """Two different people after all: the new one stops pointing at the other (and counts on its own)."""
    if suspicion.status != "pending":
        raise ReviewError(409, "already_reviewed", "Ce doublon a déjà été traité.")
    _bump(session, Resident, sa.and_(Resident.id == suspicion.resident_id,
                                     Resident.duplicate_of == suspicion.candidate_id), {"duplicate_of": None})
    suspicion.status, suspicion.resolved_by, suspicion.resolved_at = "distinct", user.id, datetime.now(timezone.utc)
    session.add(_audit(user, "resident.keep_apart", f"resident:{suspicion.resident_id}",
                       {"other": str(suspicion.candidate_id)}))


def resolve_conflict(session, conflict: Conflict, value, user) -> None:
    """Set the field to the chosen value: an ordinary change (new seq, version by head office)."""
    if conflict.status != "open":
        raise ReviewError(409, "already_reviewed", "Ce conflit a déjà été traité.")
    model = MODELS[conflict.entity]
    seq = next_seq(session)
    row = session.get(model, conflict.entity_id)
    if row is None or row.deleted:
        raise ReviewError(409, "deleted", "Cet élément a été supprimé.")
    versions = dict(row.field_versions or {})
    if getattr(row, conflict.field) != value:
        setattr(row, conflict.field, value)
        versions[conflict.field] = {"seq": seq, "by": None, "user": str(user.id)}
        row.field_versions = versions
        if conflict.entity == "resident" and conflict.field in ("first_name", "last_name"):
            from sync.rules import name_key
            row.name_key = name_key(row.first_name, row.last_name)
        if conflict.entity == "engagement" and conflict.field == "status":
            from sync.rules import ended_on_default
            end = ended_on_default(row.status, row.ended_on, row.started_on, datetime.now(timezone.utc))
            if end is not None:  # as a push ending it does: the weeks it counted in stay as they were shown
                row.ended_on = end
        row.seq = seq
    conflict.status, conflict.resolved_by = "resolved", user.id
    conflict.resolved_at = datetime.now(timezone.utc)
    conflict.resolution = {"value": _json_value(value)}


def _json_value(v):
    from sync.wire import wire_value
    return wire_value(v)


def _audit(user, action, subject, details):
    from .models import AuditLog
    return AuditLog(user_id=user.id, action=action, subject=subject, details=details)
