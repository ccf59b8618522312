"""compute_pull and pull_pages: the changes of the principal's sites after a cursor, merged across tables in seq
order, a page at a time."""
import collections
import functools
import heapq
import operator
from datetime import timedelta

from .store import ENTITIES, HIDDEN_FIELDS, RESTRICTED_FIELDS, WIRE_FIELDS, Store
from .wire import Principal, PullResult, decode_cursor, encode_cursor, encode_wire, scope_hash


@functools.cache  # a few entities, two variants: asked for every record a push writes or a pull serializes
def change_fields(entity: str, restricted: bool) -> tuple:
    """The data fields of an entity's change: all of them, or the restricted variant's."""
    hidden = RESTRICTED_FIELDS.get(entity, ()) if restricted else ()
    return tuple(f for f in WIRE_FIELDS[entity] if f not in hidden)


def change_row(entity: str, rec: dict, fields: tuple) -> list:
    """A record (wire values) as a pull change in the compact form every page is built from (docs/PROTOCOL.md,
    "Page format 2"): [entity, id, seq, values in `fields` order], or a tombstone [entity, id, seq, null] (with
    merged_into last for a merged resident). sync.wire.expand_change gives the format 1 object."""
    if rec["deleted"]:
        if entity == "resident" and rec.get("merged_into"):
            return [entity, rec["id"], rec["seq"], None, rec["merged_into"]]
        return [entity, rec["id"], rec["seq"], None]
    get = rec.get
    return [entity, rec["id"], rec["seq"], [get(f) for f in fields]]


def change_text(entity: str, rec: dict, restricted: bool = False) -> str:
    """The change row as JSON text: what a store may keep per record and a pull splices in as it is."""
    return encode_wire(change_row(entity, rec, change_fields(entity, restricted)))


_ENTITY, _DELETED, _TEXT = operator.itemgetter(3), operator.itemgetter(2), operator.itemgetter(1)  # a page row's


def _delivered(rows) -> dict:
    """entity -> how many of a store's page rows are records sent whole (not tombstones). Counted in C: the rows of
    each entity, then, when the page holds tombstones (seldom), those taken off. A loop over the page's 2,000 rows
    in Python took ~0.5 ms, counting (entity, deleted) pairs ~0.37 ms, this ~0.15 ms."""
    delivered = collections.Counter(map(_ENTITY, rows))
    if any(map(_DELETED, rows)):
        delivered.subtract(_ENTITY(row) for row in rows if _DELETED(row))
    return dict(delivered)


# A device's last pull time is kept to the minute: a site's first pull is dozens of pages, and stamping the device
# row on each made every page a write to commit (a disk flush on PostgreSQL). Head office reads it in days.
PULL_STAMP_INTERVAL = timedelta(minutes=1)


def _stamp_due(last, now) -> bool:
    """Whether a pull at `now` records itself on the device (a stamp in the future is replaced, too)."""
    return last is None or not timedelta(0) <= now - last < PULL_STAMP_INTERVAL


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
    bound = lowest[limit - 1]
    if lowest[limit] > bound:
        return seqs, bound, True
    # Records sharing the bound's seq all go in this page: more follow only if some change lies beyond it.
    return seqs, bound, any(store.change_seqs(e, bound, sites, 1, include_deleted) for e in ENTITIES)


def compute_pull(store: Store, principal: Principal, client_id: str, cursor: str | None, limit: int,
                 page_format: int = 1) -> PullResult:
    """One page of changes, answered in page_format (1: change objects; 2: compact rows, and the programme figure
    only on the last page). A missing cursor, or one made for another role or set of sites, restarts from the
    beginning with reset=True: the device drops what it holds, so a site it lost leaves the phone."""
    return next(pull_pages(store, principal, client_id, cursor, limit, page_format))


def pull_pages(store: Store, principal: Principal, client_id: str, cursor: str | None, limit: int,
               page_format: int = 1, pages: int = 1):
    """Up to `pages` consecutive pages from the cursor, each made when the one before has been taken (the caller
    may end its transaction between two: each page reads its own snapshot), ending with the last page
    (has_more false). The device is read, and its pull stamped when due, once, before the first page.

    A store with pull_page reads a page in one go; the others (and a page whose last seq is shared) find the
    page's bound first, then read each table up to it."""
    # The device is read, not locked: a concurrent push may commit after this read, and its changes then reach
    # these pages (read after) with last_applied not counting them yet, which the device takes as a lost answer
    # (it keeps those mutations and pushes them again, answered as replays); the reverse, a last_applied ahead of
    # a page, cannot happen. When due, the pull stamp comes first: from then on the device row is locked (a
    # push of this device waits for the pull), and a pull holding rows a push waits for never waits on that push
    # (its own text writes give up at once: SqlStore._store_texts).
    device = store.read_device(client_id, principal.user_id)
    now = store.now()
    if _stamp_due(device.last_pull_at, now):
        store.stamp_pull(client_id, now)
    for _ in range(pages):
        page = _page(store, principal, device.last_applied, cursor, limit, page_format)
        yield page
        if not page.has_more:
            return
        cursor = page.cursor


def _page(store: Store, principal: Principal, last_applied: int, cursor: str | None, limit: int,
          page_format: int) -> PullResult:
    scope = scope_hash(principal)
    after, reset = 0, True
    if cursor:
        seq, cursor_scope = decode_cursor(cursor)
        if cursor_scope == scope:
            after, reset = seq, False
    sites, include_deleted = principal.site_ids, not reset
    restricted = frozenset(HIDDEN_FIELDS.get(principal.role, {}))
    page = (store.pull_page(after, sites, limit, include_deleted, restricted, change_text)
            if hasattr(store, "pull_page") else None)
    if page is None:
        merged, has_more, delivered = _entity_by_entity(store, after, sites, limit, include_deleted, restricted)
    else:
        merged, has_more = page
        delivered = _delivered(merged)
    last_seq = merged[-1][0] if merged else after
    scope_sites = None if sites is None else sorted(sites)
    progress = store.progress() if page_format == 1 or not has_more else None
    fields = {e: change_fields(e, e in restricted) for e in ENTITIES if e in delivered}
    return PullResult(encode_cursor(last_seq, scope), has_more, reset, last_applied,
                      {"role": principal.role, "sites": scope_sites}, progress, list(map(_TEXT, merged)), delivered,
                      fields, page_format)


def _entity_by_entity(store: Store, after: int, sites, limit: int, include_deleted: bool, restricted) -> tuple:
    """The page's bound first, from seq-only queries, so that only the records of the page are read; then each
    table's records up to it, merged by seq: ([(seq, change text, deleted)], has_more, delivered)."""
    if hasattr(store, "page_bound"):  # the store finds it in one query, with the entities the page holds
        bound, has_more, entities = store.page_bound(after, sites, limit, include_deleted)
        seqs = dict.fromkeys((e for e in ENTITIES if e in entities), (after + 1,))
    else:
        seqs, bound, has_more = _page_bound(store, after, sites, limit, include_deleted)
    stored = getattr(store, "wire_changes", None)
    streams, delivered = [], {}
    for entity, found in seqs.items():
        if bound is not None and found[0] > bound:
            continue
        r = entity in restricted
        if stored is not None:
            rows = stored(entity, after, sites, bound, include_deleted, r,
                          lambda rec, e=entity, r=r: change_text(e, rec, r))
        else:
            rows = [(rec["seq"], change_text(entity, rec, r), rec["deleted"])
                    for rec in store.changes_since(entity, after, sites, bound, include_deleted)]
        if rows:
            streams.append(rows)
            delivered[entity] = sum(1 for row in rows if not row[2])
    return list(heapq.merge(*streams, key=lambda t: t[0])), has_more, delivered
