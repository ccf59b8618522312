// Applying a pull page: the writes go out on the plain stores in one transaction narrowed to what the page holds;
// the marks of records the page brings are dropped, the others kept; a reset still clears every store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDb } from './setup.mjs';
import { applyPage, APPLY_CHUNK } from '../../pwa/src/sync/client.js';

const resident = (id, first) => ({ entity: 'resident', id, seq: 5, deleted: false,
  data: { household_id: 'h1', site_id: 's1', first_name: first, last_name: 'B' } });

async function phoneWithMarks() {
  const db = await freshDb();
  await db.put('household', { id: 'h1', site_id: 's1', door: '21', seq: 1 });
  await db.put('resident', { id: 'r1', household_id: 'h1', first_name: 'Ana', seq: 2 });
  await db.put('resident', { id: 'r3', household_id: 'h1', first_name: 'Léa', seq: 3 });
  await db.put('outbox', { n: 7, op: 'resident.update', at: 'x', args: { id: 'r1', changes: {} } });
  for (const [entity, id] of [['resident', 'r1'], ['resident', 'r2'], ['household', 'h1']]) {
    await db.put('local', { entity, id, n: 7, base: null });
  }
  return db;
}

test('a page drops the marks of the records it brings and keeps the others', async () => {
  const db = await phoneWithMarks();
  await applyPage(db, { reset: false, cursor: 'c2', progress: { engaged: 3 }, changes: [
    resident('r1', 'Anna'),
    { entity: 'resident', id: 'r3', seq: 6, deleted: true, data: null },
    { entity: 'widget', id: 'w1', seq: 7, deleted: false, data: {} }, // unknown to this version: skipped
  ] });
  assert.deepEqual((await db.getAllKeys('local')).map((k) => k.join(':')).sort(), ['household:h1', 'resident:r2']);
  assert.deepEqual(await db.get('resident', 'r1'),
    { id: 'r1', seq: 5, household_id: 'h1', site_id: 's1', first_name: 'Anna', last_name: 'B' });
  assert.equal(await db.get('resident', 'r3'), undefined);
  assert.equal(await db.get('meta', 'cursor'), 'c2');
  assert.deepEqual(await db.get('meta', 'progress'), { engaged: 3 });
  assert.equal(await db.count('outbox'), 1, 'the outbox is not the page\'s business');
  assert.ok(await db.get('household', 'h1'), 'a store the page does not name is left alone');
});

test('with no marks at all, a page is only writes', async () => {
  const db = await freshDb();
  await applyPage(db, { reset: false, cursor: 'c1', changes: [resident('r1', 'Ana'), resident('r2', 'Bea')] });
  assert.equal(await db.count('resident'), 2);
  assert.equal(await db.count('local'), 0);
});

test('a reset clears every entity store and every mark, even those the page does not name', async () => {
  const db = await phoneWithMarks();
  await applyPage(db, { reset: true, cursor: 'c0', changes: [resident('r9', 'Zoé')] });
  assert.equal(await db.count('household'), 0);
  assert.deepEqual((await db.getAll('resident')).map((r) => r.id), ['r9']);
  assert.equal(await db.count('local'), 0);
  assert.equal(await db.count('outbox'), 1, 'a reset keeps what waits to be sent');
});

test('an empty page moves the cursor only', async () => {
  const db = await phoneWithMarks();
  await applyPage(db, { reset: false, cursor: 'c3', changes: [] });
  assert.equal(await db.get('meta', 'cursor'), 'c3');
  assert.equal(await db.count('local'), 3);
  assert.equal(await db.count('resident'), 2);
});

// Counts the writes issued on a store by name, from the test's side of fake-indexeddb.
function countPuts(t, storeName) {
  const seen = { n: 0 };
  const put = IDBObjectStore.prototype.put;
  t.mock.method(IDBObjectStore.prototype, 'put', function counted(...args) {
    if (this.name === storeName) seen.n += 1;
    return put.apply(this, args);
  });
  return seen;
}

test('a large page is written a chunk per task: the main thread runs other tasks before the last chunk', async (t) => {
  const db = await freshDb();
  const total = APPLY_CHUNK * 4;
  const changes = Array.from({ length: total }, (_, i) => resident(`r${i}`, `P${i}`));
  const issued = countPuts(t, 'resident');
  const applied = applyPage(db, { reset: false, cursor: 'c9', changes });
  assert.equal(issued.n, APPLY_CHUNK, 'one chunk goes out at once, the rest later');
  // Other tasks queued now run while the page is still being written (a tap would be answered).
  const seenByTasks = [];
  let done = false;
  applied.then(() => { done = true; });
  while (!done) {
    await new Promise((resolve) => { setTimeout(resolve, 0); });
    if (!done) seenByTasks.push(issued.n);
  }
  assert.ok(seenByTasks.some((n) => n < total), `a task ran before the last chunk was issued (${seenByTasks})`);
  assert.equal(await db.count('resident'), total, 'one transaction still writes the whole page');
  assert.equal(await db.get('meta', 'cursor'), 'c9');
});

test('a chunk of records this version does not know is skipped without stalling the page', async () => {
  const db = await freshDb();
  const unknown = Array.from({ length: 3 }, (_, i) => ({ entity: 'widget', id: `w${i}`, seq: i, deleted: false, data: {} }));
  await applyPage(db, { reset: false, cursor: 'c1', changes: [...unknown, resident('r1', 'Ana'), resident('r2', 'Bea')] },
    { chunk: 2 });
  assert.deepEqual((await db.getAll('resident')).map((r) => r.id), ['r1', 'r2']);
  assert.equal(await db.get('meta', 'cursor'), 'c1');
});
