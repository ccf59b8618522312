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

// Applies a mutation's effect on the phone's copy, inside the caller's transaction. Used when recording and
// when re-applying the still-pending outbox on top of a pull. Reads are issued together, then writes together:
// one round trip each rather than one per request (a save is on the user's path; docs/benchmarks.md, PWA).
export async function applyLocal(tx, entry) {
  const entity = OPS[entry.op];
  if (!entity) throw new Error(`unknown op ${entry.op}`);
  const store = tx.objectStore(entity);
  const { args } = entry;
  const [, verb] = entry.op.split('.');
  const localStore = tx.objectStore('local');
  const key = [entity, args.id];
  const parent = verb !== 'delete' && verb !== 'update' ? PARENT[entity] : undefined;
  const [before, mark, owner] = await Promise.all([store.get(args.id), localStore.get(key),
    parent ? tx.objectStore(parent[0]).get(args[parent[1]]) : undefined]);
  // base: the server's state before the first pending change, restored if the server does not confirm it.
  const markPut = localStore.put({ entity, id: args.id, n: entry.n, base: mark ? mark.base : (before || null) });
  if (verb === 'delete') {
    await Promise.all([markPut, store.delete(args.id)]);
    return;
  }
  if (verb === 'update') {
    await Promise.all([markPut, before && store.put({ ...before, ...args.changes, _n: entry.n })]);
    return;
  }
  const record = { ...args, _n: entry.n };
  delete record.base_seq;
  if (parent) record.site_id = owner ? owner.site_id : null;
  if (entity === 'engagement') record.status = args.status || 'active';
  if (entity === 'resident') record.duplicate_of = null;
  await Promise.all([markPut, store.put(record)]);
}

// Records one mutation: outbox entry + local effect + counter, atomically. Returns the entry.
export async function record(db, op, args, now = () => new Date()) {
  const tx = db.transaction(STORES, 'readwrite');
  try {
    const meta = tx.objectStore('meta');
    const n = ((await meta.get('counter')) || 0) + 1;
    const entry = { n, op, at: isoLocal(now()), args };
    await Promise.all([meta.put(n, 'counter'), tx.objectStore('outbox').add(entry), applyLocal(tx, entry)]);
    await tx.done;
    return entry;
  } catch (err) {
    // A script error does not abort an IndexedDB transaction by itself: all or nothing, explicitly.
    tx.done.catch(() => {});
    try { tx.abort(); } catch { /* already finished */ }
    throw err;
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
