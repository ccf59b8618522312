// Test setup: fake-indexeddb installed as the global IndexedDB (each test opens its own database name).
import '../../pwa/node_modules/fake-indexeddb/auto/index.mjs';
import { openUserDb } from '../../pwa/src/db.js';

let counter = 0;

// A user database with a device id, as after a login.
export async function freshDb(clientId = crypto.randomUUID()) {
  counter += 1;
  const db = await openUserDb(`test-${process.pid}-${counter}-${crypto.randomUUID()}`);
  await db.put('meta', clientId, 'client_id');
  return db;
}
