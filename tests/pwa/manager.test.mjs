// The sync manager: when it runs, that runs never overlap, and that a request during a run is not lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDb } from './setup.mjs';
import { FakeServer } from './fake_server.mjs';
import { record } from '../../pwa/src/outbox.js';
import { syncOnce } from '../../pwa/src/sync/client.js';
import { createSyncManager } from '../../pwa/src/sync/manager.js';

const visit = (id) => ({ id, household_id: 'h1', outcome: 'talked', interests: [], needs: [], follow_up: false,
  consent_recontact: false, resident_id: null, note: '' });

// The fake server's transport, where the next request to a path can be held in flight until the test lets it
// go, and which counts how many requests were in flight at once.
function heldTransport(server) {
  const inner = server.transport();
  const t = {
    inFlight: 0,
    maxInFlight: 0,
    hold: null, // the path whose next request is held
    held: null, // resolves when the held request has reached the transport
    release: null,
    async post(path, body) {
      t.inFlight += 1;
      t.maxInFlight = Math.max(t.maxInFlight, t.inFlight);
      try {
        if (path === t.hold) {
          t.hold = null;
          const gate = new Promise((resolve) => { t.release = resolve; });
          t.heldResolve();
          await gate;
        }
        return await inner.post(path, body);
      } finally {
        t.inFlight -= 1;
      }
    },
    holdNext(path) {
      t.hold = path;
      t.held = new Promise((resolve) => { t.heldResolve = resolve; });
    },
  };
  return t;
}

async function phone() {
  const server = new FakeServer();
  server.put('site', 's1', { code: 's1', name: 'Vauban' });
  server.put('household', 'h1', { site_id: 's1', building: 'A', staircase: '1', floor: '2', door: '21' });
  const db = await freshDb();
  await syncOnce(db, server.transport());
  const transport = heldTransport(server);
  const changes = [];
  const manager = createSyncManager({ db, transport, appVersion: 't', win: {}, onChange: () => changes.push(1) });
  return { server, db, transport, manager, changes };
}

const pushes = (server) => server.requests.filter((r) => r.path === '/api/sync/push');
const pulls = (server) => server.requests.filter((r) => r.path === '/api/sync/pull');
const PULL = '/api/sync/pull';

test('a save while a sync is in flight is followed by a second push at once, not by the periodic sync', async (t) => {
  const { server, db, transport, manager } = await phone();
  t.after(() => manager.stop());
  await record(db, 'visit.create', visit('v1'));
  transport.holdNext(PULL);
  const first = manager.run();
  await transport.held; // the push is over (it found v1 only); the run is pulling
  await record(db, 'visit.create', visit('v2'));
  const second = manager.run(); // as the screen does after a save
  transport.release();
  await Promise.all([first, second]);
  const sent = pushes(server).map((r) => r.body.mutations.map((m) => m.args.id));
  assert.deepEqual(sent, [['v1'], ['v2']]);
  assert.equal(await db.count('outbox'), 0, 'the record saved mid-sync is on the server when run() resolves');
  assert.ok(server.rows.get('visit:v2'));
  assert.equal(transport.maxInFlight, 1, 'the follow-up started after the first run, never alongside it');
  assert.equal(manager.failures, 0);
});

test('a save while a push is in flight goes in the same run (the push reads the outbox until it is empty)', async (t) => {
  const { server, db, transport, manager } = await phone();
  t.after(() => manager.stop());
  await record(db, 'visit.create', visit('v1'));
  transport.holdNext('/api/sync/push');
  const first = manager.run();
  await transport.held;
  await record(db, 'visit.create', visit('v2'));
  const second = manager.run();
  transport.release();
  await Promise.all([first, second]);
  assert.deepEqual(pushes(server).map((r) => r.body.mutations.map((m) => m.args.id)), [['v1'], ['v2']]);
  assert.equal(await db.count('outbox'), 0);
  assert.equal(transport.maxInFlight, 1);
});

test('many requests during one run make exactly one follow-up run', async (t) => {
  const { server, db, transport, manager, changes } = await phone();
  t.after(() => manager.stop());
  await record(db, 'visit.create', visit('v1'));
  transport.holdNext(PULL);
  const runs = [manager.run()];
  await transport.held;
  for (const id of ['v2', 'v3', 'v4']) {
    await record(db, 'visit.create', visit(id));
    runs.push(manager.run());
  }
  transport.release();
  await Promise.all(runs);
  assert.equal(pushes(server).length, 2, 'one push for the run, one for all the requests made during it');
  assert.deepEqual(pushes(server)[1].body.mutations.map((m) => m.args.id), ['v2', 'v3', 'v4']);
  assert.equal(pulls(server).length, 1 + 2);
  assert.equal(changes.length, 2, 'the screen hears of each run');
  assert.equal(transport.maxInFlight, 1);
  // Idle again: the next request runs by itself, once.
  await manager.run();
  assert.equal(pulls(server).length, 1 + 3);
});

test('a request during a failing run waits for the backoff retry, which sends it', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { server, db, transport, manager } = await phone();
  t.after(() => manager.stop());
  await record(db, 'visit.create', visit('v1'));
  transport.holdNext(PULL);
  const first = manager.run();
  await transport.held;
  server.failNext.push(503); // the pull in flight fails
  await record(db, 'visit.create', visit('v2'));
  const second = manager.run();
  transport.release();
  await Promise.all([first, second]);
  assert.equal(pushes(server).length, 1, 'no immediate run against a server that just failed');
  assert.equal(manager.failures, 1);
  assert.equal(await db.count('outbox'), 1);
  t.mock.timers.tick(2000); // backoffDelay(1) is at most 2 s: the timer alone starts the retry
  for (let i = 0; i < 10_000 && manager.failures > 0; i += 1) await new Promise((r) => setImmediate(r));
  assert.equal(manager.failures, 0, 'the retry went through');
  assert.deepEqual(pushes(server).map((r) => r.body.mutations.map((m) => m.args.id)), [['v1'], ['v2']]);
  assert.equal(await db.count('outbox'), 0);
});

test('a run stopped midway (logout) makes no follow-up', async () => {
  const { server, db, transport, manager } = await phone();
  await record(db, 'visit.create', visit('v1'));
  transport.holdNext(PULL);
  const first = manager.run();
  await transport.held;
  await record(db, 'visit.create', visit('v2'));
  manager.run();
  manager.stop();
  transport.release();
  await first;
  assert.equal(pushes(server).length, 1);
  assert.equal(pulls(server).length, 2, 'the setup pull and the held one');
  assert.equal(await db.count('outbox'), 1);
});
