// The outbox: a record and its outbox entry are written in ONE IndexedDB transaction, numbered from the
// device's counter, so nothing is lost on a closed tab and nothing is numbered twice.
import { ENTITIES } from './db.js';

export const OPS = {
  'visit.create': 'visit',
  'visit.delete': 'visit',
  'resident.create': 'resident',
  'resident.update': 'resident',
  'resident.delete': 'resident',
  'household.update': 'household',
  'engagement.create': 'engagement',
  'engagement.update': 'engagement',
  'attendance.create': 'attendance',
  'attendance.delete': 'attendance',
  'headcount.create': 'headcount',
};

const STORES = [...ENTITIES, 'outbox', 'local', 'meta'];

export function uuid() {
  return crypto.randomUUID();
}

// The record a created row takes its site from (the server derives it the same way).
const PARENT = { visit: ['household', 'household_id'], resident: ['household', 'household_id'],
  engagement: ['resident', 'resident_id'], attendance: ['resident', 'resident_id'] };

// The object stores saving one mutation touches: its entity, the parent it reads its site from, the outbox, the
// marks (not for a create) and the counter. A narrower transaction scope than every store is cheaper to open and commit.
export function storesFor(op) {
  const [entity, verb] = parseOp(op);
  if (verb !== 'create') return [entity, 'outbox', 'local', 'meta'];
  return PARENT[entity] ? [entity, PARENT[entity][0], 'outbox', 'meta'] : [entity, 'outbox', 'meta'];
}

// What applying a mutation needs to read first: for a create only its parent (for the site), since a create's
// id is new to the server (an id in use is rejected, id_exists); otherwise the record and its mark.
function readLocal(tx, entity, verb, args, hint) {
  if (verb === 'create') {
    const parent = PARENT[entity];
    return Promise.all([undefined, undefined, hint || (parent && tx.objectStore(parent[0]).get(args[parent[1]]))]);
  }
  return Promise.all([tx.objectStore(entity).get(args.id), tx.objectStore('local').get([entity, args.id]), undefined]);
}

// Issues the writes of a mutation's effect on the phone's copy; returns them, to be awaited with the commit.
// An update or delete leaves a mark holding the server's state before the first pending change (its base),
// restored if the server does not confirm the change. A create leaves no mark when saved: its base is "nothing"
// and its outbox entry already says it is pending; settle() marks it once the server has decided it.
function writeLocal(tx, entity, verb, entry, [before, mark, owner]) {
  const store = tx.objectStore(entity);
  const { args, n } = entry;
  if (verb === 'create') {
    const record = { ...args, _n: n };
    delete record.base_seq;
    if (PARENT[entity]) record.site_id = owner ? owner.site_id : null;
    if (entity === 'engagement') record.status = args.status || 'active';
    if (entity === 'resident') record.duplicate_of = null;
    return [store.put(record)];
  }
  // Without a mark, a copy carrying _n is one created on this phone, unknown to the server: its base is nothing.
  const base = mark ? mark.base : (before && before._n === undefined ? before : null);
  const markPut = tx.objectStore('local').put({ entity, id: args.id, n, base });
  if (verb === 'delete') return [markPut, store.delete(args.id)];
  return [markPut, before && store.put({ ...before, ...args.changes, _n: n })];
}

export function parseOp(op) {
  const entity = OPS[op];
  if (!entity) throw new Error(`unknown op ${op}`);
  return [entity, op.split('.')[1]];
}

// Applies a mutation's effect on the phone's copy, inside the caller's transaction: when re-applying the
// still-pending outbox on top of a pull, and when undoing a rejected change.
export async function applyLocal(tx, entry) {
  const [entity, verb] = parseOp(entry.op);
  await Promise.all(writeLocal(tx, entity, verb, entry, await readLocal(tx, entity, verb, entry.args)));
}

// The last mutation number used on this device (meta.counter, written by every save in its transaction).
async function lastNumber(tx) {
  return (await tx.objectStore('meta').get('counter')) || 0;
}

// The last number this page used, per open database (the counter kept in memory; it is still written, in the
// save's transaction, and checked: another tab, the service worker or a renumbering may have moved it).
const lastSeen = new WeakMap();

class StaleNumber extends Error {}

async function recordIn(db, op, args, at, parent, guess) {
  const [entity, verb] = parseOp(op);
  // 'relaxed' (Chromium's default since 121, said here for older phones): the commit is reported once the OS
  // holds the data, not after a flush to disk. A closed tab or a killed browser loses nothing; only a power
  // loss in the next seconds could, as with Firefox's and Safari's defaults.
  const tx = db.transaction(storesFor(op), 'readwrite', { durability: 'relaxed' });
  try {
    let entry;
    let writes;
    if (guess !== undefined) {
      // Optimistic: the number read (issued first, so it sees the state before these writes) must be the one
      // guessed; another tab, the service worker or a renumbering may have moved it, and then all is undone.
      const last = lastNumber(tx);
      entry = { n: guess + 1, op, at, args };
      writes = [tx.objectStore('meta').put(entry.n, 'counter'), tx.objectStore('outbox').add(entry),
        ...writeLocal(tx, entity, verb, entry, [undefined, undefined, parent])];
      for (const w of writes) w.catch(() => {}); // an abort rejects them all; the error that matters is below
      if ((await last) !== guess) throw new StaleNumber();
    } else {
      const [last, read] = await Promise.all([lastNumber(tx), readLocal(tx, entity, verb, args, parent)]);
      entry = { n: last + 1, op, at, args };
      writes = [tx.objectStore('meta').put(entry.n, 'counter'), tx.objectStore('outbox').add(entry),
        ...writeLocal(tx, entity, verb, entry, read)];
    }
    await Promise.all([...writes, tx.done]);
    lastSeen.set(db, entry.n);
    return entry;
  } catch (err) {
    // A script error does not abort an IndexedDB transaction by itself: all or nothing, explicitly.
    tx.done.catch(() => {});
    try { tx.abort(); } catch { /* already finished */ }
    throw err;
  }
}

// Records one mutation: outbox entry + local effect + counter, atomically, in one transaction over the stores
// the mutation touches. Reads (the counter, the parent or the record and its mark) go in one round trip, then
// every write at once. A create whose parent the screen passes (`parent`, e.g. the household of a visit) reads
// nothing first: its number comes from the page's memory, checked against the counter read in the same round
// trip (docs/benchmarks.md, PWA: a save is on the user's path). Two tabs cannot take the same number: IndexedDB
// runs overlapping readwrite transactions one after the other. Returns the entry.
export async function record(db, op, args, { now = () => new Date(), parent } = {}) {
  const [entity, verb] = parseOp(op);
  const link = PARENT[entity];
  const hint = verb === 'create' && link && parent && parent.id === args[link[1]] ? parent : undefined;
  const blind = verb === 'create' && (!link || hint);
  const at = isoLocal(now());
  const guess = blind ? lastSeen.get(db) : undefined;
  try {
    return await recordIn(db, op, args, at, hint, guess);
  } catch (err) {
    if (guess === undefined || !(err instanceof StaleNumber || err?.name === 'ConstraintError')) throw err;
    lastSeen.delete(db);
    return recordIn(db, op, args, at, hint, undefined);
  }
}

export async function pending(db) {
  return db.getAll('outbox');
}

export async function pendingCount(db) {
  return db.count('outbox');
}

// ISO 8601 with the phone's offset, as the protocol wants (2026-11-21T09:30:00+01:00).
export function isoLocal(d) {
  const pad = (x, w = 2) => String(Math.abs(x)).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:`
    + `${pad(d.getMinutes())}:${pad(d.getSeconds())}${sign}${pad(Math.trunc(off / 60))}:${pad(off % 60)}`;
}

export { STORES };
