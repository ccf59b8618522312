// The device's side of docs/PROTOCOL.md: push the outbox in order, pull until has_more is false, drop what the
// server decided, re-apply what is still pending. The transport is a parameter: post(path, body) -> {status, body},
// and optionally postLines(path, body, onItem) for streamed pull pages (transport.js).
import { ENTITIES, rawStore } from '../db.js';
import { applyLocal, OPS, STORES } from '../outbox.js';

export const PUSH_BATCH = 500;
export const PULL_LIMIT = 2000;
// Writes of a pull page issued per task: a phone's main thread (which draws the screens and answers taps) is never
// held longer than the copying of this many records, ~10 ms on a modest phone, even for a page of PULL_LIMIT.
export const APPLY_CHUNK = 250;

// Gives the main thread back (a tap, a frame) before going on: scheduler.yield() where the browser has it (the
// rest of the sync keeps its place at the front of the queue), else a new task posted through a MessageChannel
// (no 4 ms clamp of nested timers, and not held by a page's or a test's timers).
export function yieldToMain() {
  if (typeof globalThis.scheduler?.yield === 'function') return globalThis.scheduler.yield();
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => { port1.close(); resolve(); };
    port2.postMessage(null);
  });
}

export class AuthError extends Error {
  constructor(message = 'Session expirée, reconnectez-vous.') { super(message); this.name = 'AuthError'; }
}

export class RetryableError extends Error {
  constructor(message) { super(message); this.name = 'RetryableError'; }
}

// No network, or the server could not be reached at all (fetch failed): a normal state in the field, shown
// calmly as "Hors ligne", never as an error. Retried like a server outage.
export class OfflineError extends RetryableError {
  constructor(message = 'Hors ligne') { super(message); this.name = 'OfflineError'; }
}

export class ProtocolError extends Error {
  constructor(message, status, body) { super(message); this.name = 'ProtocolError'; this.status = status; this.body = body; }
}

function check(resp) {
  if (resp.status === 401) throw new AuthError();
  if (resp.status === 0) throw new OfflineError();
  if (resp.status >= 500 || resp.status === 429) throw new RetryableError(`Serveur indisponible (${resp.status})`);
}

// What the status bar makes of the last sync error (meta sync_error, {name, message, at}) and the browser's own
// idea of the network: 'auth' (log in again), 'offline' (calm: records wait on the phone), 'server' (a real
// error), or null when the last sync went through.
export function syncCondition(error, online = true) {
  if (error?.name === 'AuthError') return 'auth';
  if (!online || error?.name === 'OfflineError') return 'offline';
  return error ? 'server' : null;
}

async function clientId(db) {
  const id = await db.get('meta', 'client_id');
  if (!id) throw new Error('no client_id: the session was not initialised');
  return id;
}

// Renumbers the outbox from next_expected, keeping its order (409 mutation_gap).
export async function renumber(db, nextExpected) {
  const tx = db.transaction(['outbox', 'local', 'rejected', 'meta'], 'readwrite');
  const entries = await tx.objectStore('outbox').getAll();
  await tx.objectStore('outbox').clear();
  const map = new Map();
  let n = nextExpected;
  for (const e of entries) {
    map.set(e.n, n);
    await tx.objectStore('outbox').add({ ...e, n });
    n += 1;
  }
  const locals = await tx.objectStore('local').getAll();
  for (const l of locals) if (map.has(l.n)) await tx.objectStore('local').put({ ...l, n: map.get(l.n) });
  await tx.objectStore('meta').put(n - 1, 'counter');
  await tx.done;
}

const keyOf = (entry) => [OPS[entry.op], entry.args.id];

// A create decided by the server gets its mark (base: nothing) if it has none, so that a create that the server
// refused, or accepted without storing anything (a second check-in), leaves the phone once the pull is done.
async function markDecidedCreates(tx, decided) {
  const local = tx.objectStore('local');
  const creates = decided.filter((e) => e.op.endsWith('.create'));
  const marks = await Promise.all(creates.map((e) => local.get(keyOf(e))));
  await Promise.all(creates.map((e, i) => !marks[i] && local.put({ entity: OPS[e.op], id: e.args.id, n: e.n, base: null })));
}

// Puts back the server's copy (the mark's base) of every record a refused mutation changed, then re-applies the
// other mutations on that record, accepted or still pending: the phone shows the server's state and what is
// still pending, never a refused change, even before the next pull (or if it fails).
async function undoRefused(tx, refusedEntries, entries, refused) {
  const local = tx.objectStore('local');
  const touched = new Map(refusedEntries.map((e) => [keyOf(e).join('\u0000'), keyOf(e)]));
  const undone = new Set();
  for (const [k, [entity, id]] of touched) {
    const store = tx.objectStore(entity);
    const [mark, current] = await Promise.all([local.get([entity, id]), store.get(id)]);
    if (mark) {
      await Promise.all([mark.base ? store.put(mark.base) : store.delete(id), local.delete([entity, id])]);
    } else if (current && current._n !== undefined) {
      await store.delete(id); // unmarked and local: created on this phone, so nothing to put back
    } else {
      continue; // nothing of this phone's on that record
    }
    undone.add(k);
  }
  for (const e of entries) {
    if (!refused.has(e.n) && undone.has(keyOf(e).join('\u0000'))) await applyLocal(tx, e);
  }
}

// Records the server's decisions: rejected ones keep their reason and their change is undone on the phone;
// decided ones leave the outbox.
async function settle(db, sent, body) {
  const tx = db.transaction([...STORES, 'rejected'], 'readwrite');
  const byN = new Map(sent.map((m) => [m.n, m]));
  const refused = new Set();
  for (const r of body.results || []) {
    const m = byN.get(r.n);
    if (r.status === 'rejected' && m) {
      refused.add(r.n);
      await tx.objectStore('rejected').put({ n: r.n, op: m.op, args: m.args, at: m.at, reason: r.reason });
    }
    if (r.conflicts && r.conflicts.length && m) {
      const list = (await tx.objectStore('meta').get('conflicts')) || [];
      list.push({ n: r.n, op: m.op, id: m.args.id, fields: r.conflicts });
      await tx.objectStore('meta').put(list.slice(-50), 'conflicts');
    }
  }
  const outbox = tx.objectStore('outbox');
  const entries = await outbox.getAll();
  const decided = entries.filter((e) => e.n <= body.last_applied);
  if (refused.size) await undoRefused(tx, [...refused].map((n) => byN.get(n)), entries, refused);
  await markDecidedCreates(tx, decided);
  for (const e of decided) outbox.delete(e.n);
  await tx.objectStore('meta').put(body.last_applied, 'last_applied');
  await tx.done;
}

export async function push(db, transport, { appVersion = '0.0.0', batch = PUSH_BATCH } = {}) {
  const cid = await clientId(db);
  let size = batch;
  let gaps = 0;
  for (;;) {
    const all = await db.getAll('outbox', null, size);
    if (!all.length) return;
    const total = await db.count('outbox');
    const mutations = all.map(({ n, op, at, args }) => ({ n, op, at, args }));
    const resp = await transport.post('/api/sync/push', {
      client_id: cid, app_version: appVersion, pending: total, mutations,
    });
    check(resp);
    if (resp.status === 409 && resp.body?.error?.code === 'mutation_gap' && gaps < 3) {
      gaps += 1;
      await renumber(db, resp.body.error.details.next_expected);
      continue;
    }
    if (resp.status === 413 && size > 1) { size = Math.ceil(size / 2); continue; }
    if (resp.status !== 200) {
      throw new ProtocolError(resp.body?.error?.message || `Envoi refusé (${resp.status})`, resp.status, resp.body);
    }
    await settle(db, mutations, resp.body);
  }
}

// A page of format 2 (docs/PROTOCOL.md, "Page format 2") as format 1: each row [entity, id, seq, values], or
// tombstone [entity, id, seq, null, merged_into?], becomes {entity, id, seq, deleted, data, merged_into?}, the values
// named by the page's fields[entity] (a field this version does not know is kept, as format 1 keeps it). A page of
// format 1 (an older server) is returned as it is.
export function expandPage(body) {
  if (body.format !== 2) return body;
  const { format, fields, changes: rows, ...head } = body;
  const changes = rows.map((r) => {
    const values = r[3];
    if (values === null) {
      const c = { entity: r[0], id: r[1], seq: r[2], deleted: true, data: null };
      if (r.length > 4) c.merged_into = r[4];
      return c;
    }
    const names = fields[r[0]];
    const data = {};
    for (let k = 0; k < names.length; k += 1) data[names[k]] = values[k];
    return { entity: r[0], id: r[1], seq: r[2], deleted: false, data };
  });
  return { ...head, changes };
}

// Issues the page's writes in the open transaction, `chunk` at a time: the next chunk goes out from the answer to
// the first request of the one before (an event of its own, so the main thread runs other tasks in between, and
// the transaction stays open as requests are pending), while the store still has the rest of that chunk to write.
function writeChanges(stores, changes, chunk) {
  let i = 0;
  const issue = () => {
    let first = null;
    for (const end = Math.min(i + chunk, changes.length); i < end; i += 1) {
      const c = changes[i];
      const store = stores[c.entity];
      if (!store) continue; // an entity this version does not know yet
      const req = c.deleted ? store.delete(c.id) : store.put({ ...c.data, id: c.id, seq: c.seq });
      first ??= req;
    }
    if (i >= changes.length) return;
    if (first) first.onsuccess = issue; else issue(); // nothing written in this chunk: nothing to wait for
  };
  issue();
}

// Applies one pull page, of format 1 or 2, in one transaction: put or delete by (entity, id), idempotent. The
// transaction covers only the stores the page writes; the writes go out on the plain stores in chunks of
// APPLY_CHUNK (writeChanges), and only the commit is awaited. A page without progress (format 2 before its last
// page) keeps the stored figure.
export async function applyPage(db, body, { chunk = APPLY_CHUNK } = {}) {
  const page = expandPage(body);
  const present = new Set();
  for (const c of page.changes) present.add(c.entity);
  const entities = ENTITIES.filter((e) => page.reset || present.has(e));
  const tx = db.transaction([...entities, 'local', 'meta'], 'readwrite');
  const stores = Object.fromEntries(entities.map((e) => [e, rawStore(tx, e)]));
  const local = rawStore(tx, 'local');
  if (page.reset) {
    for (const e of entities) stores[e].clear();
    local.clear();
  } else {
    // The server's copy replaces a local change's mark. The marks are few: read once, in the same round trip as
    // the writes (a request issued first is answered first), never probed per row.
    const marks = local.getAllKeys();
    marks.onsuccess = () => {
      if (!marks.result.length) return;
      const marked = new Set(marks.result.map(([e, id]) => `${e}\u0000${id}`));
      for (const c of page.changes) if (marked.has(`${c.entity}\u0000${c.id}`)) local.delete([c.entity, c.id]);
    };
  }
  const meta = rawStore(tx, 'meta');
  meta.put(page.cursor, 'cursor');
  if (page.progress) meta.put(page.progress, 'progress');
  if (page.scope) meta.put(page.scope, 'scope');
  writeChanges(stores, page.changes, chunk);
  await tx.done;
}

// After the last page: undo local changes the server decided but did not confirm, then re-apply the outbox.
export async function reconcile(db, lastApplied) {
  const tx = db.transaction([...STORES, 'rejected'], 'readwrite');
  const outbox = tx.objectStore('outbox');
  // Entries decided out of settle()'s sight (e.g. a push whose answer was lost) are treated the same way.
  const decided = await outbox.getAll(IDBKeyRange.upperBound(lastApplied));
  await markDecidedCreates(tx, decided);
  for (const e of decided) outbox.delete(e.n);
  const local = tx.objectStore('local');
  for (const mark of await local.getAll()) {
    if (mark.n > lastApplied) continue;
    const store = tx.objectStore(mark.entity);
    const current = await store.get(mark.id);
    if (!current || current._n !== undefined) {
      if (mark.base) await store.put(mark.base); else if (current) await store.delete(mark.id);
    }
    await local.delete([mark.entity, mark.id]);
  }
  for (const entry of await outbox.getAll()) await applyLocal(tx, entry);
  tx.objectStore('meta').put(lastApplied, 'last_applied');
  await tx.done;
}

// The pull page format asked for: compact rows (docs/PROTOCOL.md, "Page format 2"), a site's first pull ~40% smaller
// and parsed about twice as fast as format 1, which the client still takes from a server that answers it.
export const PAGE_FORMAT = 2;

// A server older than format 2 refuses the field (422 validation_error, details.format): the pull goes on without it.
const formatRefused = (resp) => resp.status === 422 && resp.body?.error?.details?.format !== undefined;

// Pages asked for in one answer, one per line (docs/PROTOCOL.md, "Streamed pages"): a site's first pull (~18 pages of
// PULL_LIMIT) in one or two requests instead of a round trip per page, each page applied as soon as it arrives.
export const PULL_PAGES = 20;

// A server older than streamed pages refuses the field (422 validation_error, details.pages): asked again without it.
const pagesRefused = (resp) => resp.status === 422 && resp.body?.error?.details?.pages !== undefined;

// Each page is applied after a yield to the main thread: the answer's parsing was a task of its own, and a tap
// waiting since then is answered before the page's writes begin. A transport with postLines gets the pages of an
// answer one by one; each applied page stored its cursor, so an answer cut (or ended early by the server) goes on
// from the last page applied, nothing twice and nothing missed.
export async function pull(db, transport, { limit = PULL_LIMIT, pause = yieldToMain } = {}) {
  const cid = await clientId(db);
  let lastApplied = (await db.get('meta', 'last_applied')) || 0;
  let format = PAGE_FORMAT;
  let pages = transport.postLines ? PULL_PAGES : 1;
  let more = true;
  const apply = async (page) => {
    await pause();
    await applyPage(db, page);
    lastApplied = page.last_applied ?? lastApplied;
    more = page.has_more;
  };
  while (more) {
    const request = { client_id: cid, cursor: (await db.get('meta', 'cursor')) ?? null, limit };
    if (format !== 1) request.format = format;
    if (pages > 1) request.pages = pages;
    const resp = pages > 1 ? await transport.postLines('/api/sync/pull', request, apply)
      : await transport.post('/api/sync/pull', request);
    check(resp);
    if (format !== 1 && formatRefused(resp)) { format = 1; pages = 1; continue; }
    if (pages > 1 && pagesRefused(resp)) { pages = 1; continue; }
    if (resp.status !== 200) {
      throw new ProtocolError(resp.body?.error?.message || `Réception refusée (${resp.status})`, resp.status, resp.body);
    }
    if (resp.items === undefined) await apply(resp.body); // one page as JSON: asked for one, or an older server
    else if (resp.cut && more) throw new OfflineError(); // the network lost mid-answer: the pages applied stay
    else if (!resp.items) throw new RetryableError('Réception interrompue : aucune page reçue');
  }
  await reconcile(db, lastApplied);
}

// One full round: push, then pull (or only the push: `pull: false`, the service worker's Background Sync).
// Records the outcome for the status bar; "last successful sync" means a full round.
export async function syncOnce(db, transport, opts = {}) {
  const now = opts.now || (() => new Date());
  try {
    await push(db, transport, opts);
    if (opts.pull !== false) {
      await pull(db, transport, opts);
      await db.put('meta', now().toISOString(), 'last_sync');
    }
    await db.delete('meta', 'sync_error');
  } catch (err) {
    await db.put('meta', { name: err.name, message: err.message, at: now().toISOString() }, 'sync_error');
    throw err;
  }
}

export { OPS };
