"""The Store protocol the push and pull run on, what a push writes, and an in-memory store (tests, vectors)."""
import copy
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Protocol

# The entities a device syncs, and the fields of each that go on the wire (docs/PROTOCOL.md).
WIRE_FIELDS = {
    "site": ("code", "name", "commune", "territory"),
    "action": ("code", "name", "description", "site_id"),
    "household": ("site_id", "building", "staircase", "floor", "door", "landlord_ref", "notes"),
    "resident": ("household_id", "site_id", "first_name", "last_name", "phone", "email", "consent_contact",
                 "consent_image", "duplicate_of"),
    "engagement": ("resident_id", "action_id", "site_id", "role", "status", "started_on", "ended_on"),
    "visit": ("household_id", "site_id", "resident_id", "user_id", "visited_at", "outcome", "interests", "needs",
              "follow_up", "consent_recontact", "note", "clock_suspect"),
    "event": ("title", "kind", "description", "starts_at", "ends_at", "place", "status", "site_ids"),
    "attendance": ("event_id", "resident_id", "site_id", "checked_in_at"),
    "headcount": ("event_id", "site_id", "category", "count", "counted_at"),
}
ENTITIES = tuple(WIRE_FIELDS)
# What a brief load (Store.load) gives at least: what apply_push reads of a record it only refers to.
BRIEF_FIELDS = ("id", "seq", "deleted", "site_id", "household_id", "resident_id", "event_id", "merged_into",
                "duplicate_of", "name_key", "client_id", "site_ids")
# Fields a role may not receive.
HIDDEN_FIELDS = {"gardien": {"resident": ("phone", "email")}}
# Per entity, the fields the restricted variant of a change leaves out. A store may keep two texts per record
# (full, restricted): that holds only while every role hiding fields of an entity hides the same ones.
RESTRICTED_FIELDS: dict[str, tuple] = {}
for _hidden in HIDDEN_FIELDS.values():
    for _entity, _fields in _hidden.items():
        assert RESTRICTED_FIELDS.setdefault(_entity, _fields) == _fields, "one restricted variant per entity"


@dataclass
class DeviceState:
    client_id: str
    user_id: str
    last_applied: int = 0
    app_version: str = ""
    pending_reported: int = 0
    last_push_at: datetime | None = None
    last_pull_at: datetime | None = None


@dataclass
class LogEntry:
    """A decided mutation: its body hash and the answer given, so a replay gets the same answer."""

    n: int
    op: str
    body_hash: str
    status: str
    reason: dict | None = None
    conflicts: list[str] = field(default_factory=list)


@dataclass
class Receipt:
    """A push request applied before, known by the digest of its exact bytes (docs/PROTOCOL.md, Replays): its
    device, the owner and counter of that device now, and the numbers the request carried."""

    client_id: str
    user_id: str
    last_applied: int
    first_n: int
    last_n: int


@dataclass
class WriteSet:
    """Everything one push writes, handed to the store at once (bulk inserts, per-row updates)."""

    client_id: str
    user_id: str
    inserts: dict = field(default_factory=dict)  # entity -> [record]
    updates: dict = field(default_factory=dict)  # entity -> {id: (record, set of changed fields)}
    log: list = field(default_factory=list)  # [LogEntry]
    rejections: list = field(default_factory=list)  # [{n, op, code, reason, args, site_id}]
    conflicts: list = field(default_factory=list)  # [{entity, entity_id, site_id, field, kept_*, lost_*}]
    suspicions: list = field(default_factory=list)  # [{resident_id, candidate_id, site_id}]
    receipt: tuple | None = None  # (digest of the request's bytes, its first n, its last n)


class Store(Protocol):
    def now(self) -> datetime: ...

    def lock_device(self, client_id: str, user_id: str) -> DeviceState:
        """The device's row, created for this user if new, locked until the end of the transaction.
        Raises ProtocolError 403 device_not_yours when another user owns it."""

    def save_device(self, device: DeviceState) -> None: ...

    def read_device(self, client_id: str, user_id: str) -> DeviceState:
        """As lock_device, without the lock: what a pull reads, since it writes nothing of the device but its pull
        stamp (a lock is a write on PostgreSQL, flushed at commit: ~2 ms a page)."""

    def stamp_pull(self, client_id: str, at: datetime) -> None:
        """The device's last pull time, and nothing else of it (the device read without a lock may be stale)."""

    def log_entries(self, client_id: str, ns: list[int]) -> dict[int, LogEntry]: ...

    def receipt(self, digest: str) -> Receipt | None:
        """The receipt a push that applied mutations left under this digest, with its device's owner and counter."""

    def next_seq(self, count: int) -> int:
        """Reserve count values of the change sequence (in commit order) and return the first."""

    def load(self, entity: str, ids, brief: bool = False) -> dict[str, dict]:
        """Records by id (deleted ones too), ids as strings. brief: the push only checks them, never changes
        them, so a store may leave out what a check never reads (free text, contact details, field versions);
        BRIEF_FIELDS lists what it must give."""

    def residents_of_households(self, household_ids) -> list[dict]: ...

    def attendances_for(self, event_ids, resident_ids) -> list[dict]: ...

    def write(self, ws: WriteSet) -> None: ...

    def change_seqs(self, entity: str, after_seq: int, site_ids, limit: int, include_deleted: bool,
                    up_to: int | None = None) -> list[int]:
        """The seqs of an entity's changes after after_seq (and at most up_to) in the given sites (None: all),
        ascending, at most limit: a pull finds its page's upper bound from these before it reads any record."""

    def changes_since(self, entity: str, after_seq: int, site_ids, up_to: int | None,
                      include_deleted: bool) -> list[dict]:
        """Records of an entity with after_seq < seq <= up_to (None: no bound) in the given sites, by seq, as wire
        values (ids as strings, times in ISO 8601): id, seq, deleted, merged_into (residents) and WIRE_FIELDS."""

    def progress(self) -> dict: ...

    # Optional: page_bound(after_seq, site_ids, limit, include_deleted) -> (bound, has_more, entities): the
    # limit-th lowest seq of all entities' changes after after_seq (None when at most limit remain), whether
    # changes follow the bound, and the entities with changes up to it; compute_pull otherwise uses change_seqs.
    # Optional: wire_changes(entity, after_seq, site_ids, up_to, include_deleted, restricted, encode) ->
    # [(seq, change JSON text, deleted)]: the same records as changes_since, already serialized (stored texts where the
    # store keeps them, encode(record) for the others). compute_pull uses it when the store has it.
    # Optional: pull_page(after_seq, site_ids, limit, include_deleted, restricted, encode) ->
    # ([(seq, change JSON text, deleted, entity)], has_more) or None: a whole page at once (restricted: the entities
    # sent without the role's hidden fields; encode: change_text). None when the record after the page's last one
    # shares its seq: compute_pull then takes the path above, which keeps such records together.


class InMemoryStore:
    """The protocol's reference store: dicts, no transactions needed (apply_push writes once, at the end)."""

    def __init__(self, now: datetime | None = None):
        self.tables: dict[str, dict[str, dict]] = {e: {} for e in ENTITIES}
        self.devices: dict[str, DeviceState] = {}
        self.log: dict[tuple[str, int], LogEntry] = {}
        self.rejections: list[dict] = []
        self.conflicts: list[dict] = []
        self.suspicions: list[dict] = []
        self.receipts: dict[str, tuple] = {}
        self.seq = 0
        self.clock = now
        self.programme = {"goal": 0, "baseline": 0}

    def now(self) -> datetime:
        return self.clock or datetime.now(timezone.utc)

    def lock_device(self, client_id, user_id):
        from .wire import ProtocolError
        dev = self.devices.get(client_id)
        if dev is None:
            dev = self.devices[client_id] = DeviceState(client_id, user_id)
        if dev.user_id != user_id:
            raise ProtocolError(403, "device_not_yours", "Cet appareil est enregistré pour un autre utilisateur.")
        return copy.copy(dev)

    def save_device(self, device):
        self.devices[device.client_id] = device

    read_device = lock_device

    def stamp_pull(self, client_id, at):
        self.devices[client_id].last_pull_at = at

    def log_entries(self, client_id, ns):
        return {n: self.log[(client_id, n)] for n in ns if (client_id, n) in self.log}

    def receipt(self, digest):
        found = self.receipts.get(digest)
        if found is None:
            return None
        client_id, first_n, last_n = found
        dev = self.devices[client_id]
        return Receipt(client_id, dev.user_id, dev.last_applied, first_n, last_n)

    def next_seq(self, count):
        self.seq += count
        return self.seq - count + 1

    def put(self, entity: str, record: dict) -> dict:
        """Seed a record (setup): stamps a seq."""
        rec = {"deleted": False, "field_versions": {}, **record, "seq": self.next_seq(1)}
        self.tables[entity][rec["id"]] = rec
        return rec

    def load(self, entity, ids, brief=False):
        table = self.tables[entity]
        return {i: copy.deepcopy(table[i]) for i in ids if i in table}

    def residents_of_households(self, household_ids):
        hh = set(household_ids)
        return [copy.deepcopy(r) for r in self.tables["resident"].values() if r["household_id"] in hh]

    def attendances_for(self, event_ids, resident_ids):
        ev, res = set(event_ids), set(resident_ids)
        return [copy.deepcopy(a) for a in self.tables["attendance"].values()
                if a["event_id"] in ev and a["resident_id"] in res]

    def write(self, ws):
        for entity, records in ws.inserts.items():
            for rec in records:
                self.tables[entity][rec["id"]] = copy.deepcopy(rec)
        for entity, rows in ws.updates.items():
            for rec_id, (rec, _fields) in rows.items():
                self.tables[entity][rec_id] = copy.deepcopy(rec)
        for entry in ws.log:
            self.log[(ws.client_id, entry.n)] = entry
        self.rejections.extend({"client_id": ws.client_id, "user_id": ws.user_id, **r} for r in ws.rejections)
        self.conflicts.extend(ws.conflicts)
        self.suspicions.extend({"status": "pending", **s} for s in ws.suspicions)
        if ws.receipt is not None:
            digest, first_n, last_n = ws.receipt
            self.receipts[digest] = (ws.client_id, first_n, last_n)

    def _changes(self, entity, after_seq, site_ids, include_deleted):
        rows = [rec for rec in self.tables[entity].values()
                if rec["seq"] > after_seq and (include_deleted or not rec["deleted"])
                and (site_ids is None or _in_scope(entity, rec, site_ids))]
        rows.sort(key=lambda r: r["seq"])
        return rows

    def change_seqs(self, entity, after_seq, site_ids, limit, include_deleted, up_to=None):
        return [r["seq"] for r in self._changes(entity, after_seq, site_ids, include_deleted)
                if up_to is None or r["seq"] <= up_to][:limit]

    def changes_since(self, entity, after_seq, site_ids, up_to, include_deleted):
        from .wire import wire_value
        return [wire_value(r) for r in self._changes(entity, after_seq, site_ids, include_deleted)
                if up_to is None or r["seq"] <= up_to]

    def progress(self):
        today = self.now().date()
        residents = self.tables["resident"]
        people = set()
        for e in self.tables["engagement"].values():
            r = residents.get(e["resident_id"])
            if e["deleted"] or e["status"] != "active" or r is None or r["deleted"]:
                continue
            if _as_date(e["started_on"]) <= today and (e.get("ended_on") is None or _as_date(e["ended_on"]) >= today):
                people.add(r.get("duplicate_of") or r["id"])
        return {"engaged": self.programme["baseline"] + len(people), "recorded": len(people),
                "baseline": self.programme["baseline"], "goal": self.programme["goal"], "as_of": self.now()}


def _as_date(v) -> date:
    return v if isinstance(v, date) else date.fromisoformat(v)


def _in_scope(entity: str, rec: dict, site_ids) -> bool:
    if entity == "site":
        return rec["id"] in site_ids
    if entity == "action":
        return rec.get("site_id") is None or rec["site_id"] in site_ids
    if entity == "event":
        return any(s in site_ids for s in rec.get("site_ids", ()))
    return rec["site_id"] in site_ids
