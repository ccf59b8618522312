// Owns IndexedDB: one database per user, schema upgrades step by version, and the pulled records' stores.
import { openDB, deleteDB, unwrap } from 'idb';

export const ENTITIES = ['site', 'action', 'household', 'resident', 'engagement', 'visit', 'event',
  'attendance', 'headcount'];

const INDEXES = {
  household: ['site_id'],
  resident: ['household_id'],
  engagement: ['resident_id'],
  visit: ['household_id'],
  attendance: ['event_id'],
  headcount: ['event_id'],
};

// Each step moves the schema from version i to i + 1; never edit a shipped step, add one.
const STEPS = [
  (db) => {
    for (const entity of ENTITIES) {
      const store = db.createObjectStore(entity, { keyPath: 'id' });
      for (const field of INDEXES[entity] || []) store.createIndex(field, field);
    }
    // outbox: mutations not yet decided by the server, in order of n.
    db.createObjectStore('outbox', { keyPath: 'n' });
    // local: records changed on this phone and not yet confirmed by a pull: [entity, id] -> {n, base}. An update
    // or delete is marked when saved, a create once the server has decided it (outbox.js, writeLocal).
    db.createObjectStore('local', { keyPath: ['entity', 'id'] });
    // rejected: mutations the server refused, with its French reason, for the user to see.
    db.createObjectStore('rejected', { keyPath: 'n' });
    // meta: client_id, counter, cursor, last sync, progress, errors.
    db.createObjectStore('meta');
  },
];

export const DB_VERSION = STEPS.length;

export function dbName(userId) {
  return `palier-u-${userId}`;
}

export async function openUserDb(userId) {
  const db = await openDB(dbName(userId), DB_VERSION, {
    upgrade(udb, oldVersion) {
      for (let v = oldVersion; v < STEPS.length; v += 1) STEPS[v](udb);
    },
    // A newer version of the app in another tab wants to upgrade: let it.
    blocking() { db.close(); },
  });
  return db;
}

export async function dropUserDb(db, userId) {
  db.close();
  await deleteDB(dbName(userId));
}

// The plain IDBObjectStore under idb's wrapper, for bulk writes (a pull page): its requests cost no promise and no
// listeners each; their outcome is the transaction's (a failed request aborts it, and tx.done rejects).
export function rawStore(tx, name) {
  return unwrap(tx.objectStore(name));
}

export async function getMeta(db, key) {
  return db.get('meta', key);
}

export async function setMeta(db, key, value) {
  return db.put('meta', value, key);
}

export async function all(db, entity) {
  return db.getAll(entity);
}

export async function byIndex(db, entity, index, value) {
  return db.getAllFromIndex(entity, index, value);
}

export async function get(db, entity, id) {
  return db.get(entity, id);
}

// The device session (who is logged in on this phone) lives outside the user databases, so the app can
// open the right one offline.
const DEVICE_DB = 'palier-device';

function openDevice() {
  return openDB(DEVICE_DB, 1, { upgrade(db) { db.createObjectStore('kv'); } });
}

export async function getDevice(key) {
  const db = await openDevice();
  try { return await db.get('kv', key); } finally { db.close(); }
}

export async function setDevice(key, value) {
  const db = await openDevice();
  try {
    if (value === undefined) await db.delete('kv', key);
    else await db.put('kv', value, key);
  } finally { db.close(); }
}
