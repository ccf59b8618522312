"""The sync Store on the Flask-SQLAlchemy session: bulk inserts, per-table loads, one transaction per push.

The caller (the sync view) commits; everything a push writes goes through `write` at its end, after the device
row and the change sequence were locked, so two pushes of one device serialize and seq order is commit order.
"""
import functools
import json
import uuid
from datetime import datetime, timezone

import sqlalchemy as sa

from sync.store import WIRE_FIELDS, DeviceState, LogEntry, WriteSet
from sync.wire import Principal, ProtocolError

from . import services
from .database import next_seq
from .models import (Action, Attendance, Conflict, Device, DuplicateSuspicion, Engagement, Event, HeadCount,
                     Household, MutationLog, Rejection, Resident, Site, User, UTCDateTime, Visit, event_sites)

MODELS = {"site": Site, "action": Action, "household": Household, "resident": Resident, "engagement": Engagement,
          "visit": Visit, "event": Event, "attendance": Attendance, "headcount": HeadCount}
TABLES = {e: m.__table__ for e, m in MODELS.items()}
# Columns holding UUIDs, per table: strings in the protocol, uuid.UUID for the database.
UUID_COLS = {e: frozenset(c.name for c in t.columns if isinstance(c.type, sa.Uuid)) for e, t in TABLES.items()}
_PULL_EXTRA = ("id", "seq", "deleted")


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


def principal_for(user: User) -> Principal:
    sites = None if user.sees_all_sites else frozenset(str(s) for s in user.site_ids)
    return Principal(str(user.id), user.role, sites)


def _u(v):
    return v if v is None or isinstance(v, uuid.UUID) else uuid.UUID(v)


def _uuids(ids):
    return [_u(i) for i in ids]


class SqlStore:
    def __init__(self, session):
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    # -- devices and the log --

    def lock_device(self, client_id, user_id):
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        # Two first pushes of a new device at once: the second INSERT waits for the first and does nothing.
        self.session.execute(insert(Device).values(client_id=_u(client_id), user_id=_u(user_id), last_applied=0,
                                                   app_version="", pending_reported=0, created_at=self.now())
                             .on_conflict_do_nothing(index_elements=["client_id"]))
        row = self.session.execute(sa.select(Device.__table__).where(Device.client_id == _u(client_id))
                                   .with_for_update()).mappings().one()
        if str(row["user_id"]) != user_id:
            raise ProtocolError(403, "device_not_yours", "Cet appareil est enregistré pour un autre utilisateur.")
        return DeviceState(client_id, user_id, row["last_applied"], row["app_version"], row["pending_reported"],
                           row["last_push_at"], row["last_pull_at"])

    def save_device(self, d: DeviceState):
        self.session.execute(sa.update(Device).where(Device.client_id == _u(d.client_id)).values(
            last_applied=d.last_applied, app_version=d.app_version[:40], pending_reported=d.pending_reported,
            last_push_at=d.last_push_at, last_pull_at=d.last_pull_at))

    def log_entries(self, client_id, ns):
        cid = _u(client_id)
        t = MutationLog.__table__  # Core, not ORM: a replay is 500 hash compares and must stay cheap
        rows = self.session.execute(sa.select(t.c.n, t.c.op, t.c.body_hash, t.c.status).where(
            t.c.client_id == cid, t.c.n.between(min(ns), max(ns))))
        entries = {n: LogEntry(n, op, h, status) for n, op, h, status in rows}
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

    def next_seq(self, count):
        return next_seq(self.session, count)

    # -- loading --

    def _records(self, entity, rows):
        cols = UUID_COLS[entity]
        out = {}
        for row in rows:
            rec = dict(row)
            for c in cols:
                if rec.get(c) is not None:
                    rec[c] = str(rec[c])
            out[rec["id"]] = rec
        if entity == "event" and out:
            for ev, site in self.session.execute(sa.select(event_sites.c.event_id, event_sites.c.site_id).where(
                    event_sites.c.event_id.in_(_uuids(out)))):
                out[str(ev)].setdefault("site_ids", []).append(str(site))
            for rec in out.values():
                rec.setdefault("site_ids", [])
        return out

    def load(self, entity, ids):
        if not ids:
            return {}
        t = TABLES[entity]
        return self._records(entity, self.session.execute(sa.select(t).where(t.c.id.in_(_uuids(ids)))).mappings())

    def residents_of_households(self, household_ids):
        t = TABLES["resident"]
        q = sa.select(t).where(t.c.household_id.in_(_uuids(household_ids)))
        return list(self._records("resident", self.session.execute(q).mappings()).values())

    def attendances_for(self, event_ids, resident_ids):
        if not resident_ids:
            return []
        t = TABLES["attendance"]
        q = sa.select(t).where(t.c.event_id.in_(_uuids(event_ids)), t.c.resident_id.in_(_uuids(resident_ids)))
        return list(self._records("attendance", self.session.execute(q).mappings()).values())

    # -- writing: one executemany per table --

    def _row(self, entity, rec, now):
        cols, known, uuids = UUID_COLS[entity], TABLES[entity].c, self._uuid_cache
        row = {}
        for k, v in rec.items():
            if k in cols and v is not None and not isinstance(v, uuid.UUID):
                u = uuids.get(v)
                if u is None:
                    u = uuids[v] = uuid.UUID(v)
                v = u
            if k in known:
                row[k] = v
        row["updated_at"] = now
        return row

    def write(self, ws: WriteSet):
        now = self.now()
        self._uuid_cache = {}  # a batch names the same household, site, user and device 500 times
        for entity, records in ws.inserts.items():
            rows = [self._row(entity, r, now) for r in records]
            for r in rows:
                r["created_at"] = now
            self.session.execute(sa.insert(TABLES[entity]), rows)
        for entity, updates in ws.updates.items():
            t = TABLES[entity]
            groups: dict[frozenset, list] = {}
            for rec_id, (rec, fields) in updates.items():
                fields = frozenset(fields)
                row = {"b_" + f: v for f, v in self._row(entity, {f: rec[f] for f in fields}, now).items()}
                row["b_id"] = _u(rec_id)
                groups.setdefault(fields, []).append(row)
            for fields, rows in groups.items():
                stmt = sa.update(t).where(t.c.id == sa.bindparam("b_id")).values(
                    {f: sa.bindparam("b_" + f) for f in (*fields, "updated_at")})
                self.session.execute(stmt.execution_options(synchronize_session=False), rows)
        cid, uid = _u(ws.client_id), _u(ws.user_id)
        if ws.log:
            self.session.execute(sa.insert(MutationLog), [
                {"client_id": cid, "n": e.n, "body_hash": e.body_hash, "op": e.op, "status": e.status,
                 "user_id": uid, "received_at": now} for e in ws.log])
        if ws.rejections:
            self.session.execute(sa.insert(Rejection), [
                {"id": uuid.uuid4(), "client_id": cid, "n": r["n"], "user_id": uid, "site_id": _u(r["site_id"]),
                 "op": r["op"], "code": r["code"], "reason": r["reason"], "args": r["args"], "status": "open",
                 "created_at": now} for r in ws.rejections])
        if ws.conflicts:
            self.session.execute(sa.insert(Conflict), [
                {**c, "id": uuid.uuid4(), "entity_id": _u(c["entity_id"]), "site_id": _u(c["site_id"]),
                 "kept_by": _u(c["kept_by"]), "lost_by": _u(c["lost_by"]), "lost_client_id": _u(c["lost_client_id"]),
                 "status": "open", "created_at": now} for c in ws.conflicts])
        if ws.suspicions:
            self.session.execute(sa.insert(DuplicateSuspicion), [
                {"id": uuid.uuid4(), "resident_id": _u(s["resident_id"]), "candidate_id": _u(s["candidate_id"]),
                 "site_id": _u(s["site_id"]), "status": "pending", "created_at": now} for s in ws.suspicions])

    # -- pull --

    def _scoped(self, q, t, entity, after_seq, site_ids, include_deleted):
        q = q.where(t.c.seq > after_seq)
        if not include_deleted:
            q = q.where(t.c.deleted.is_(False))
        if site_ids is None:
            return q
        sites = _uuids(site_ids) or [uuid.UUID(int=0)]
        if entity == "site":
            return q.where(t.c.id.in_(sites))
        if entity == "action":
            return q.where(sa.or_(t.c.site_id.is_(None), t.c.site_id.in_(sites)))
        if entity == "event":
            return q.where(sa.exists().where(event_sites.c.event_id == t.c.id, event_sites.c.site_id.in_(sites)))
        return q.where(t.c.site_id.in_(sites))

    def change_seqs(self, entity, after_seq, site_ids, limit, include_deleted, up_to=None):
        t = TABLES[entity]
        q = self._scoped(sa.select(t.c.seq), t, entity, after_seq, site_ids, include_deleted)
        if up_to is not None:
            q = q.where(t.c.seq <= up_to)
        return self.session.execute(q.order_by(t.c.seq).limit(limit)).scalars().all()

    def changes_since(self, entity, after_seq, site_ids, up_to, include_deleted):
        t = TABLES[entity]
        names, columns, converters = _pull_columns(entity, self.dialect)
        q = self._scoped(sa.select(*columns), t, entity, after_seq, site_ids, include_deleted)
        if up_to is not None:
            q = q.where(t.c.seq <= up_to)
        out = []
        for row in self.session.execute(q.order_by(t.c.seq)):
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

    def progress(self):
        return services.progress()


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
