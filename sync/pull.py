"""compute_pull: the changes of the principal's sites after a cursor, merged across tables in seq order."""
import heapq

from .store import ENTITIES, HIDDEN_FIELDS, WIRE_FIELDS, Store
from .wire import Principal, PullResult, decode_cursor, encode_cursor, scope_hash


def _shape(entity: str, fields: tuple):
    """A fast record -> change function for one entity and role: the store gives wire values already."""

    def change(rec) -> dict:
        if rec["deleted"]:
            out = {"entity": entity, "id": rec["id"], "seq": rec["seq"], "deleted": True, "data": None}
            if entity == "resident" and rec.get("merged_into"):
                out["merged_into"] = rec["merged_into"]
            return out
        get = rec.get
        return {"entity": entity, "id": rec["id"], "seq": rec["seq"], "deleted": False,
                "data": {f: get(f) for f in fields}}

    return change


def _page_bound(store: Store, after: int, sites, limit: int, include_deleted: bool):
    """Each table's first seqs, the page's highest seq and whether more follow (bound None: everything fits).
    Only the limit + 1 lowest seqs of all tables matter, so each table is asked only below those found so far."""
    seqs, lowest = {}, []
    for entity in ENTITIES:
        cap = lowest[limit] if len(lowest) > limit else None
        found = store.change_seqs(entity, after, sites, limit + 1, include_deleted, cap)
        if found:
            seqs[entity] = found
            lowest = heapq.nsmallest(limit + 1, heapq.merge(lowest, found))
    if len(lowest) <= limit:
        return seqs, None, False
    return seqs, lowest[limit - 1], lowest[limit] > lowest[limit - 1]


def compute_pull(store: Store, principal: Principal, client_id: str, cursor: str | None, limit: int) -> PullResult:
    """One page of changes. A missing cursor, or one made for another role or set of sites, restarts from the
    beginning with reset=True: the device drops what it holds, so a site it lost leaves the phone.

    The page's upper seq bound comes first, from seq-only queries, so only the records of the page are read."""
    scope = scope_hash(principal)
    after, reset = 0, True
    if cursor:
        seq, cursor_scope = decode_cursor(cursor)
        if cursor_scope == scope:
            after, reset = seq, False
    sites, include_deleted = principal.site_ids, not reset
    seqs, bound, has_more = _page_bound(store, after, sites, limit, include_deleted)
    hidden = HIDDEN_FIELDS.get(principal.role, {})
    streams = []
    for entity, found in seqs.items():
        if bound is not None and found[0] > bound:
            continue
        rows = store.changes_since(entity, after, sites, bound, include_deleted)
        if rows:
            shape = _shape(entity, tuple(f for f in WIRE_FIELDS[entity] if f not in hidden.get(entity, ())))
            streams.append([(r["seq"], shape(r)) for r in rows])
    changes = [c for _seq, c in heapq.merge(*streams, key=lambda t: t[0])]
    last_seq = changes[-1]["seq"] if changes else after
    device = store.lock_device(client_id, principal.user_id)
    device.last_pull_at = store.now()
    store.save_device(device)
    scope_sites = None if sites is None else sorted(sites)
    return PullResult(encode_cursor(last_seq, scope), has_more, reset, device.last_applied,
                      {"role": principal.role, "sites": scope_sites}, store.progress(), changes)
