"""compute_pull: the changes of the principal's sites after a cursor, merged across tables in seq order."""
import heapq

from .store import ENTITIES, HIDDEN_FIELDS, WIRE_FIELDS, Store
from .wire import Principal, PullResult, decode_cursor, encode_cursor, scope_hash, wire_value


def _shape(entity: str, fields: tuple):
    """A fast row -> change function for one entity and role (plain dicts, no schema per row)."""

    def change(rec) -> dict:
        if rec["deleted"]:
            out = {"entity": entity, "id": str(rec["id"]), "seq": rec["seq"], "deleted": True, "data": None}
            if entity == "resident" and rec.get("merged_into"):
                out["merged_into"] = str(rec["merged_into"])
            return out
        return {"entity": entity, "id": str(rec["id"]), "seq": rec["seq"], "deleted": False,
                "data": {f: wire_value(rec.get(f)) for f in fields}}

    return change


def compute_pull(store: Store, principal: Principal, client_id: str, cursor: str | None, limit: int) -> PullResult:
    """One page of changes. A missing cursor, or one made for another role or set of sites, restarts from the
    beginning with reset=True: the device drops what it holds, so a site it lost leaves the phone."""
    scope = scope_hash(principal)
    after, reset = 0, True
    if cursor:
        seq, cursor_scope = decode_cursor(cursor)
        if cursor_scope == scope:
            after, reset = seq, False
    hidden = HIDDEN_FIELDS.get(principal.role, {})
    streams = []
    for entity in ENTITIES:
        rows = store.changes_since(entity, after, principal.site_ids, limit + 1, include_deleted=not reset)
        if rows:
            fields = tuple(f for f in WIRE_FIELDS[entity] if f not in hidden.get(entity, ()))
            shape = _shape(entity, fields)
            streams.append([(r["seq"], entity, r, shape) for r in rows])
    merged = heapq.merge(*streams, key=lambda t: t[0])
    changes, last_seq, has_more = [], after, False
    for seq, _entity, rec, shape in merged:
        if len(changes) >= limit and seq != last_seq:
            has_more = True
            break
        changes.append(shape(rec))
        last_seq = seq
    device = store.lock_device(client_id, principal.user_id)
    device.last_pull_at = store.now()
    store.save_device(device)
    sites = None if principal.site_ids is None else sorted(principal.site_ids)
    return PullResult(encode_cursor(last_seq, scope), has_more, reset, device.last_applied,
                      {"role": principal.role, "sites": sites}, store.progress(), changes)
