// The outbox: record and entry in one transaction, numbered from the device's counter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDb } from './setup.mjs';
import { record, pending, isoLocal, storesFor } from '../../pwa/src/outbox.js';
import { DB_VERSION } from '../../pwa/src/db.js';

const HH = { id: 'h1', site_id: 's1', building: 'A', staircase: '1', floor: '2', door: '21' };

test('a visit and its outbox entry are written together, numbered 1, 2, 3', async () => {
  const db = await freshDb();
  await db.put('household', HH);
  for (let i = 0; i < 3; i += 1) {
    await record(db, 'visit.create', { id: `v${i}`, household_id: 'h1', outcome: 'absent', interests: [], needs: [] });
  }
  const out = await pending(db);
  assert.deepEqual(out.map((e) => e.n), [1, 2, 3]);
  assert.equal(out[0].op, 'visit.create');
  const v = await db.get('visit', 'v0');
  assert.equal(v.site_id, 's1', 'the local copy knows its site from the household');
  assert.equal(v._n, 1);
  assert.equal(await db.get('meta', 'counter'), 3);
  assert.equal(await db.count('local'), 0, 'a saved create leaves no mark: its base is nothing');
});

test('the counter survives an emptied outbox: numbers are never reused', async () => {
  const db = await freshDb();
  await db.put('household', HH);
  await record(db, 'visit.create', { id: 'v1', household_id: 'h1', outcome: 'absent' });
  await record(db, 'visit.create', { id: 'v2', household_id: 'h1', outcome: 'absent' }, { parent: HH });
  await db.clear('outbox'); // acknowledged by the server
  assert.equal(await db.get('meta', 'counter'), 2, 'each save writes the counter, the guessed one included');
  assert.equal((await record(db, 'visit.create', { id: 'v3', household_id: 'h1', outcome: 'absent' }, { parent: HH })).n, 3);
});

test('two saves at once (two tabs) take two numbers', async () => {
  const db = await freshDb();
  await db.put('household', HH);
  const entries = await Promise.all([1, 2, 3].map((i) => record(db, 'visit.create', { id: `v${i}`, household_id: 'h1', outcome: 'absent' })));
  assert.deepEqual(entries.map((e) => e.n).sort(), [1, 2, 3]);
});

test('a save opens its transaction over the stores it touches only', () => {
  assert.deepEqual(storesFor('visit.create'), ['visit', 'household', 'outbox', 'meta']);
  assert.deepEqual(storesFor('headcount.create'), ['headcount', 'outbox', 'meta']);
  assert.deepEqual(storesFor('resident.update'), ['resident', 'outbox', 'local', 'meta']);
});

test('a failed write leaves neither record, entry nor counter behind', async () => {
  const db = await freshDb();
  await record(db, 'visit.create', { id: 'v1', household_id: 'h1', outcome: 'absent' });
  await assert.rejects(record(db, 'nope.create', { id: 'x' }));
  assert.equal((await pending(db)).length, 1);
  assert.equal(await db.get('meta', 'counter'), 1);
});

test('an update changes the local copy and keeps the server state as base', async () => {
  const db = await freshDb();
  await db.put('resident', { id: 'r1', household_id: 'h1', site_id: 's1', first_name: 'Ana', last_name: 'B', seq: 7 });
  await record(db, 'resident.update', { id: 'r1', base_seq: 7, changes: { first_name: 'Anna' } });
  await record(db, 'resident.update', { id: 'r1', base_seq: 7, changes: { last_name: 'Bo' } });
  const r = await db.get('resident', 'r1');
  assert.equal(r.first_name, 'Anna');
  assert.equal(r.last_name, 'Bo');
  const mark = await db.get('local', ['resident', 'r1']);
  assert.equal(mark.n, 2);
  assert.equal(mark.base.first_name, 'Ana', 'base is the state before the first pending change');
});

test('capture times carry the phone offset', () => {
  assert.match(isoLocal(new Date()), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/);
});

test('the schema version is the number of upgrade steps', () => {
  assert.ok(DB_VERSION >= 1);
});

test('a visit saved with its household on screen reads nothing first, and still takes the right number', async () => {
  const db = await freshDb();
  await db.put('household', HH);
  const v = (id) => ({ id, household_id: 'h1', outcome: 'absent', interests: [], needs: [] });
  assert.equal((await record(db, 'visit.create', v('v1'), { parent: HH })).n, 1);
  assert.equal((await record(db, 'visit.create', v('v2'), { parent: HH })).n, 2);
  assert.equal((await db.get('visit', 'v2')).site_id, 's1', 'the site comes from the household given');
  // Another context (a tab, the service worker after a gap) moves the numbers behind this page's back.
  await db.put('outbox', { n: 3, op: 'visit.create', at: 'x', args: v('other') });
  await db.put('meta', 3, 'counter');
  assert.equal((await record(db, 'visit.create', v('v4'), { parent: HH })).n, 4, 'a stale guess is caught (too low)');
  await db.clear('outbox');
  await db.put('meta', 1, 'counter'); // renumbered from next_expected 2
  assert.equal((await record(db, 'visit.create', v('v5'), { parent: HH })).n, 2, 'a stale guess is caught (too high)');
  assert.deepEqual((await pending(db)).map((e) => [e.n, e.args.id]), [[2, 'v5']]);
  assert.equal(await db.get('visit', 'v5').then((r) => r._n), 2);
  // A parent that is not the visit's own is ignored: the household is read.
  const wrong = { ...HH, id: 'h2', site_id: 's9' };
  await record(db, 'visit.create', v('v6'), { parent: wrong });
  assert.equal((await db.get('visit', 'v6')).site_id, 's1');
});
