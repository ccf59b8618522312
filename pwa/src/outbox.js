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

// Applies a mutation's effect on the phone's copy, inside the caller's transaction. Used when recording and
// when re-applying the still-pending outbox on top of a pull.
export async function applyLocal(tx, entry) {
  const entity = OPS[entry.op];
  if (!entity) throw new Error(`unknown op ${entry.op}`);
  const store = tx.objectStore(entity);
  const { args } = entry;
  const [, verb] = entry.op.split('.');
  const before = await store.get(args.id);
  const localStore = tx.objectStore('local');
  const key = [entity, args.id];
  const mark = await localStore.get(key);
  // base: the server's state before the first pending change, restored if the server does not confirm it.
  await localStore.put({ entity, id: args.id, n: entry.n, base: mark ? mark.base : (before || null) });
  if (verb === 'delete') {
    await store.delete(args.id);
    return;
  }
  if (verb === 'update') {
    if (!before) return;
    await store.put({ ...before, ...args.changes, _n: entry.n });
    return;
  }
  const record = { ...args, _n: entry.n };
  delete record.base_seq;
  if (entity === 'visit' || entity === 'resident') {
    const hh = await tx.objectStore('household').get(args.household_id);
    record.site_id = hh ? hh.site_id : null;
  } else if (entity === 'engagement' || entity === 'attendance') {
    const res = await tx.objectStore('resident').get(args.resident_id);
    record.site_id = res ? res.site_id : null;
  }
  if (entity === 'engagement') record.status = args.status || 'active';
  if (entity === 'resident') record.duplicate_of = null;
  await store.put(record);
}

// Records one mutation: outbox entry + local effect + counter, atomically. Returns the entry.
export async function record(db, op, args, now = () => new Date()) {
  const tx = db.transaction(STORES, 'readwrite');
  try {
    const meta = tx.objectStore('meta');
    const n = ((await meta.get('counter')) || 0) + 1;
    const entry = { n, op, at: isoLocal(now()), args };
    await meta.put(n, 'counter');
    await tx.objectStore('outbox').add(entry);
    await applyLocal(tx, entry);
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
