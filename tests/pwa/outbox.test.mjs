// The outbox: record and entry in one transaction, numbered from the device's counter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDb } from './setup.mjs';
import { record, pending, isoLocal } from '../../pwa/src/outbox.js';
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
