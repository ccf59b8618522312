// Background Sync in the service worker: the outbox pushed with no page open, through the page's sync client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import './setup.mjs';
import { FakeServer } from './fake_server.mjs';
import { openUserDb, setDevice } from '../../pwa/src/db.js';
import { record } from '../../pwa/src/outbox.js';
import { syncOnce, OfflineError } from '../../pwa/src/sync/client.js';
import { backgroundPush, cookieStoreReader } from '../../pwa/src/sync/background.js';

// A logged-in phone (device session + user database) with one visit waiting.
async function phoneWithVisit() {
  const server = new FakeServer();
  server.put('household', 'h1', { site_id: 's1', building: 'A', staircase: '1', floor: '2', door: '21' });
  const uid = crypto.randomUUID();
  const db = await openUserDb(uid);
  await db.put('meta', crypto.randomUUID(), 'client_id');
  await db.put('meta', { id: uid, email: 'a@b.c' }, 'user');
  await setDevice('current_user', uid);
  await syncOnce(db, server.transport());
  await record(db, 'visit.create', { id: 'v1', household_id: 'h1', outcome: 'absent', interests: [], needs: [] });
  return { server, db };
}

test('with no page open, the worker pushes the outbox once; the last full sync is left to the page', async () => {
  const { server, db } = await phoneWithVisit();
  const lastSync = await db.get('meta', 'last_sync');
  assert.equal(await backgroundPush({ transport: server.transport(), scope: {} }), 'pushed');
  assert.equal(await db.count('outbox'), 0);
  assert.ok(server.rows.get('visit:v1'));
  assert.equal(server.requests.filter((r) => r.path.endsWith('pull')).length, 1, 'no pull from the worker');
  assert.equal(await db.get('meta', 'last_sync'), lastSync);
  assert.equal(await backgroundPush({ transport: server.transport(), scope: {} }), 'nothing to push');
  assert.equal(server.requests.filter((r) => r.path.endsWith('push')).length, 1, 'pushed exactly once');
});

test('no network: the event fails so that the browser tries again; the outbox is kept', async () => {
  const { server, db } = await phoneWithVisit();
  server.failNext.push(0);
  await assert.rejects(backgroundPush({ transport: server.transport(), scope: {} }), OfflineError);
  assert.equal(await db.count('outbox'), 1);
  assert.equal(await backgroundPush({ transport: server.transport(), scope: {} }), 'pushed');
  assert.equal(await db.count('outbox'), 0);
});

test('an expired session is left for the page to renew (no retry loop); the outbox is kept', async () => {
  const { server, db } = await phoneWithVisit();
  server.failNext.push(401);
  assert.equal(await backgroundPush({ transport: server.transport(), scope: {} }), 'session expired');
  assert.equal(await db.count('outbox'), 1);
  assert.equal((await db.get('meta', 'sync_error')).name, 'AuthError');
});

test('logged out: nothing to do', async () => {
  await setDevice('current_user', undefined);
  assert.equal(await backgroundPush({ transport: new FakeServer().transport(), scope: {} }), 'no session');
});

test('the CSRF cookie is read from the Cookie Store in the worker', async () => {
  const store = { get: async (name) => (name === 'csrf_access_token' ? { name, value: 'tok' } : null) };
  assert.equal(await cookieStoreReader(store)('csrf_access_token'), 'tok');
  assert.equal(await cookieStoreReader(store)('other'), null);
  assert.equal(await cookieStoreReader(undefined)('csrf_access_token'), null);
});
