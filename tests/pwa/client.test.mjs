// The sync client against a fake transport speaking the protocol.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDb } from './setup.mjs';
import { FakeServer } from './fake_server.mjs';
import { record } from '../../pwa/src/outbox.js';
import { syncOnce, push, pull, applyPage, syncCondition, yieldToMain, AuthError, OfflineError, RetryableError } from '../../pwa/src/sync/client.js';

async function seeded() {
  const server = new FakeServer();
  server.put('site', 's1', { code: 's1', name: 'Vauban' });
  server.put('household', 'h1', { site_id: 's1', building: 'A', staircase: '1', floor: '2', door: '21' });
  server.put('resident', 'r1', { household_id: 'h1', site_id: 's1', first_name: 'Ana', last_name: 'B' });
  const db = await freshDb();
  await syncOnce(db, server.transport());
  return { server, db };
}

const visit = (id) => ({ id, household_id: 'h1', outcome: 'talked', interests: [], needs: ['isolement'],
  follow_up: false, consent_recontact: true, resident_id: null, note: '' });

test('first sync pulls the sites, households and residents', async () => {
  const { db } = await seeded();
  assert.equal((await db.getAll('household')).length, 1);
  assert.equal((await db.get('meta', 'progress')).goal, 1400);
  assert.ok(await db.get('meta', 'last_sync'));
});

test('recorded mutations are pushed in order, acknowledged and confirmed by the pull', async () => {
  const { server, db } = await seeded();
  await record(db, 'visit.create', visit('v1'));
  await record(db, 'visit.create', visit('v2'));
  await record(db, 'attendance.create', { id: 'a1', event_id: 'e1', resident_id: 'r1', checked_in_at: '2026-11-21T10:00:00+01:00' });
  await syncOnce(db, server.transport());
  const pushed = server.requests.filter((r) => r.path === '/api/sync/push').at(-1).body;
  assert.deepEqual(pushed.mutations.map((m) => m.n), [1, 2, 3]);
  assert.equal(pushed.pending, 3);
  assert.equal(await db.count('outbox'), 0);
  assert.equal(await db.count('local'), 0);
  assert.equal((await db.get('visit', 'v1'))._n, undefined, 'the server copy replaced the local one');
  assert.equal(server.rows.get('visit:v2').data.needs[0], 'isolement');
});

test('a network failure or a 5xx keeps the outbox; the retry sends the same n and body', async () => {
  const { server, db } = await seeded();
  await record(db, 'visit.create', visit('v1'));
  server.failNext.push(0);
  await assert.rejects(syncOnce(db, server.transport()), OfflineError);
  assert.equal(await db.count('outbox'), 1);
  assert.equal((await db.get('meta', 'sync_error')).name, 'OfflineError');
  server.failNext.push(503);
  await assert.rejects(syncOnce(db, server.transport()), RetryableError);
  assert.match((await db.get('meta', 'sync_error')).message, /Serveur indisponible \(503\)/);
  await syncOnce(db, server.transport());
  assert.equal(await db.count('outbox'), 0);
  assert.equal(await db.get('meta', 'sync_error'), undefined);
});

test('a response lost after the server committed is harmless: the replay applies nothing twice', async () => {
  const { server, db } = await seeded();
  await record(db, 'visit.create', visit('v1'));
  const t = server.transport();
  const lossy = { post: async (path, body) => { const r = await t.post(path, body); if (path.endsWith('push')) return { status: 0, body: null }; return r; } };
  await assert.rejects(push(db, lossy), RetryableError);
  const seqBefore = server.seq;
  await syncOnce(db, server.transport());
  assert.equal(server.seq, seqBefore, 'nothing applied again');
  const last = server.requests.filter((r) => r.path.endsWith('push')).at(-1).body;
  assert.equal(last.mutations[0].n, 1);
  assert.equal(await db.count('outbox'), 0);
});

test('401 raises AuthError and keeps the outbox', async () => {
  const { server, db } = await seeded();
  await record(db, 'visit.create', visit('v1'));
  server.failNext.push(401);
  await assert.rejects(syncOnce(db, server.transport()), AuthError);
  assert.equal(await db.count('outbox'), 1);
  assert.equal((await db.get('meta', 'sync_error')).name, 'AuthError');
});

test('a gap renumbers the outbox from next_expected', async () => {
  const { server, db } = await seeded();
  await db.put('meta', 40, 'counter'); // the device believes 40 were sent; the server knows none
  await record(db, 'visit.create', visit('v1'));
  await record(db, 'visit.create', visit('v2'));
  await syncOnce(db, server.transport());
  const pushes = server.requests.filter((r) => r.path.endsWith('push'));
  assert.deepEqual(pushes[0].body.mutations.map((m) => m.n), [41, 42]);
  assert.deepEqual(pushes[1].body.mutations.map((m) => m.n), [1, 2]);
  assert.equal(await db.count('outbox'), 0);
  assert.equal(await db.get('meta', 'counter'), 2);
  assert.ok(server.rows.get('visit:v2'));
});

test('a rejected mutation keeps its French reason, leaves the queue and its local copy', async () => {
  const { server, db } = await seeded();
  server.reject = (m) => (m.args.id === 'bad' ? { code: 'unknown_or_forbidden', message: 'Logement inconnu ou hors de vos sites.' } : null);
  await record(db, 'visit.create', visit('bad'));
  await record(db, 'visit.create', visit('good'));
  await syncOnce(db, server.transport());
  assert.equal(await db.count('outbox'), 0);
  const rej = await db.getAll('rejected');
  assert.equal(rej.length, 1);
  assert.equal(rej[0].reason.message, 'Logement inconnu ou hors de vos sites.');
  assert.equal(await db.get('visit', 'bad'), undefined, 'the refused visit is no longer shown as recorded');
  assert.ok(await db.get('visit', 'good'));
});

test('pending changes are re-applied on top of a pull, and a reset keeps the outbox', async () => {
  const { server, db } = await seeded();
  await record(db, 'resident.update', { id: 'r1', base_seq: 3, changes: { first_name: 'Anna' } });
  server.put('resident', 'r1', { household_id: 'h1', site_id: 's1', first_name: 'Ana', last_name: 'Dupont' });
  await pull(db, server.transport());
  let r = await db.get('resident', 'r1');
  assert.equal(r.last_name, 'Dupont');
  assert.equal(r.first_name, 'Anna', 'the pending change stays visible');
  await db.delete('meta', 'cursor'); // next pull is a reset
  await pull(db, server.transport());
  r = await db.get('resident', 'r1');
  assert.equal(r.first_name, 'Anna');
  assert.equal(await db.count('outbox'), 1);
});

test('a reset drops synced records the scope no longer holds', async () => {
  const { db } = await seeded();
  await applyPage(db, { reset: true, cursor: 'c', changes: [{ entity: 'site', id: 's2', seq: 9, deleted: false, data: { name: 'Autre' } }] });
  assert.equal(await db.get('household', 'h1'), undefined);
  assert.ok(await db.get('site', 's2'));
});

test('applying a page twice is harmless; tombstones delete', async () => {
  const { db } = await seeded();
  const page = { reset: false, cursor: 'c2', changes: [
    { entity: 'resident', id: 'r1', seq: 10, deleted: true, data: null, merged_into: 'r2' },
    { entity: 'resident', id: 'r2', seq: 11, deleted: false, data: { household_id: 'h1', first_name: 'Ana', last_name: 'B' } },
  ] };
  await applyPage(db, page);
  await applyPage(db, page);
  assert.equal(await db.get('resident', 'r1'), undefined);
  assert.equal((await db.getAll('resident')).length, 1);
});

test('has_more pages are pulled until the end', async () => {
  const server = new FakeServer();
  for (let i = 0; i < 25; i += 1) server.put('household', `h${i}`, { site_id: 's1', building: 'A', door: String(i) });
  const db = await freshDb();
  await pull(db, server.transport(), { limit: 10 });
  assert.equal((await db.getAll('household')).length, 25);
  assert.equal(server.requests.length, 3);
});

test('more than 500 pending mutations go in batches of 500', async () => {
  const { server, db } = await seeded();
  for (let i = 0; i < 501; i += 1) await record(db, 'visit.create', visit(`v${i}`));
  await syncOnce(db, server.transport());
  const sizes = server.requests.filter((r) => r.path.endsWith('push')).map((r) => r.body.mutations.length);
  assert.deepEqual(sizes, [500, 1]);
  assert.equal(await db.count('outbox'), 0);
});

test('no network is "offline" (calm), a 5xx a server error, a 401 an auth problem', async () => {
  const { server, db } = await seeded();
  await record(db, 'visit.create', visit('v1'));
  const condition = async (status) => {
    server.failNext.push(status);
    await assert.rejects(syncOnce(db, server.transport()));
    return syncCondition(await db.get('meta', 'sync_error'));
  };
  assert.equal(await condition(0), 'offline');
  assert.equal(await condition(502), 'server');
  assert.equal(await condition(429), 'server');
  assert.equal(await condition(401), 'auth');
  assert.equal(syncCondition(undefined, false), 'offline', 'the browser knows it is offline before any attempt');
  assert.equal(syncCondition({ name: 'AuthError' }, false), 'auth', 'a session to renew is said even offline');
  await syncOnce(db, server.transport());
  assert.equal(syncCondition(await db.get('meta', 'sync_error')), null);
});

const cutPull = (server) => {
  const t = server.transport();
  return { post: async (path, body) => (path.endsWith('pull') ? { status: 0, body: null } : t.post(path, body)) };
};

test('a refused update is undone at once: the server copy is back even when the pull fails', async () => {
  const { server, db } = await seeded();
  server.reject = (m) => (m.op === 'resident.update' && m.args.changes.first_name
    ? { code: 'invalid', message: 'Prénom invalide.' } : null);
  await record(db, 'resident.update', { id: 'r1', base_seq: 3, changes: { first_name: 'Anna' } });
  assert.equal((await db.get('resident', 'r1')).first_name, 'Anna');
  await assert.rejects(syncOnce(db, cutPull(server)), OfflineError);
  const r = await db.get('resident', 'r1');
  assert.equal(r.first_name, 'Ana', "the server's version is restored");
  assert.equal(r._n, undefined);
  assert.equal(await db.count('local'), 0);
  const [rej] = await db.getAll('rejected');
  assert.equal(rej.reason.message, 'Prénom invalide.', 'the refused item stays in sight with its reason');
  assert.equal(rej.args.changes.first_name, 'Anna');
});

test('a refused update under a later pending change: only the refused part is undone', async () => {
  const { server, db } = await seeded();
  server.reject = (m) => (m.args.changes?.first_name ? { code: 'invalid', message: 'non' } : null);
  await record(db, 'resident.update', { id: 'r1', base_seq: 3, changes: { first_name: 'Anna' } });
  await assert.rejects(syncOnce(db, cutPull(server)), OfflineError);
  // Offline again, the user changes another field of the same resident.
  await record(db, 'resident.update', { id: 'r1', base_seq: 3, changes: { last_name: 'Bo' } });
  let r = await db.get('resident', 'r1');
  assert.deepEqual([r.first_name, r.last_name], ['Ana', 'Bo']);
  await syncOnce(db, server.transport());
  r = await db.get('resident', 'r1');
  assert.deepEqual([r.first_name, r.last_name, r._n], ['Ana', 'Bo', undefined]);
  assert.equal(server.rows.get('resident:r1').data.last_name, 'Bo');
});

test('accepted then refused in one batch: the accepted change stays, the refused one goes', async () => {
  const { server, db } = await seeded();
  server.reject = (m) => (m.args.changes?.first_name === 'Zoé' ? { code: 'invalid', message: 'non' } : null);
  await record(db, 'resident.update', { id: 'r1', base_seq: 3, changes: { last_name: 'Bo' } });
  await record(db, 'resident.update', { id: 'r1', base_seq: 3, changes: { first_name: 'Zoé' } });
  await assert.rejects(syncOnce(db, cutPull(server)), OfflineError);
  let r = await db.get('resident', 'r1');
  assert.deepEqual([r.first_name, r.last_name], ['Ana', 'Bo'], 'before the pull: base + the accepted change');
  await syncOnce(db, server.transport());
  r = await db.get('resident', 'r1');
  assert.deepEqual([r.first_name, r.last_name, r._n], ['Ana', 'Bo', undefined]);
  assert.equal(await db.count('local'), 0);
});

test('a refused delete puts the record back; a refused create and its update leave nothing', async () => {
  const { server, db } = await seeded();
  server.reject = (m) => (['resident.delete', 'resident.create'].includes(m.op) || m.args.id === 'r9'
    ? { code: 'unknown_or_forbidden', message: 'non' } : null);
  await record(db, 'resident.delete', { id: 'r1' });
  await record(db, 'resident.create', { id: 'r9', household_id: 'h1', first_name: 'Léa', last_name: 'C' });
  await record(db, 'resident.update', { id: 'r9', base_seq: 0, changes: { first_name: 'Léo' } });
  assert.equal(await db.get('resident', 'r1'), undefined);
  await assert.rejects(syncOnce(db, cutPull(server)), OfflineError);
  assert.equal((await db.get('resident', 'r1')).first_name, 'Ana');
  assert.equal(await db.get('resident', 'r9'), undefined);
  assert.equal((await db.getAll('rejected')).length, 3);
});

test('a create accepted without a record (a second check-in) leaves the phone after the pull', async () => {
  const { server, db } = await seeded();
  server.applyMutation = () => {}; // applied, stores nothing: the first check-in stands
  await record(db, 'attendance.create', { id: 'a2', event_id: 'e1', resident_id: 'r1', checked_in_at: '2026-11-21T10:00:00+01:00' });
  await syncOnce(db, server.transport());
  assert.equal(await db.get('attendance', 'a2'), undefined);
  assert.equal(await db.count('local'), 0);
});

test('numbers go on after a sync emptied the outbox', async () => {
  const { server, db } = await seeded();
  await record(db, 'visit.create', visit('v1'));
  await record(db, 'visit.create', visit('v2'));
  await syncOnce(db, server.transport());
  assert.equal(await db.count('outbox'), 0);
  assert.equal((await record(db, 'visit.create', visit('v3'))).n, 3);
  assert.equal(await db.get('meta', 'counter'), 3);
  await syncOnce(db, server.transport());
  assert.ok(server.rows.get('visit:v3'), 'no mutation_conflict: the number was new to the server');
});

test('each pulled page is applied after a yield to the main thread', async () => {
  const server = new FakeServer();
  for (let i = 0; i < 25; i += 1) server.put('household', `h${i}`, { site_id: 's1', building: 'A', door: String(i) });
  const db = await freshDb();
  const before = []; // what the phone held at each yield
  await pull(db, server.transport(), { limit: 10, pause: async () => { before.push(await db.count('household')); } });
  assert.deepEqual(before, [0, 10, 20], 'one yield before each of the 3 pages is applied');
  assert.equal(await db.count('household'), 25);
});

test('yieldToMain resumes in a new task, after every pending microtask, and uses scheduler.yield() where present', async (t) => {
  let steps = 0;
  const chain = (async () => { for (let i = 0; i < 1000; i += 1) { await null; steps += 1; } })();
  await yieldToMain();
  assert.equal(steps, 1000, 'a microtask would have resumed after one step');
  await chain;
  const calls = [];
  t.after(() => { delete globalThis.scheduler; });
  globalThis.scheduler = { yield: () => { calls.push('yield'); return Promise.resolve(); } };
  await yieldToMain();
  assert.deepEqual(calls, ['yield']);
});
