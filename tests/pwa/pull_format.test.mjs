// Pull pages of format 2 (docs/PROTOCOL.md, "Page format 2"): rows expanded into the format 1 changes and applied
// as those, progress kept across the pages that carry none, format 2 asked for in every request, and format 1
// pages (an older server) still applied.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDb } from './setup.mjs';
import { FakeServer } from './fake_server.mjs';
import { ENTITIES } from '../../pwa/src/db.js';
import { applyPage, expandPage, pull, PAGE_FORMAT, ProtocolError } from '../../pwa/src/sync/client.js';

const VISIT = ['household_id', 'site_id', 'resident_id', 'user_id', 'visited_at', 'outcome', 'interests', 'needs',
  'follow_up', 'consent_recontact', 'note', 'clock_suspect'];
const RESIDENT = ['household_id', 'site_id', 'first_name', 'last_name', 'phone', 'email', 'consent_contact',
  'consent_image', 'duplicate_of'];
// What a gardien may see of a resident: no phone, no email.
const RESIDENT_GARDIEN = RESIDENT.filter((f) => f !== 'phone' && f !== 'email');

const visitValues = ['h1', 's1', null, 'u1', '2026-11-21T09:29:40+01:00', 'talked', ['a1'], ['isolement'], true, true,
  'Rappeler lundi', false];

function page(changes, head = {}) {
  return { format: 2, cursor: 'c1', has_more: false, reset: false, last_applied: 0,
    scope: { role: 'gardien', sites: ['s1'] }, progress: { engaged: 5 },
    fields: { visit: VISIT, resident: RESIDENT_GARDIEN }, changes, ...head };
}

async function held(db) {
  const out = {};
  for (const e of ENTITIES) {
    const records = await db.getAll(e);
    if (records.length) out[e] = records;
  }
  return out;
}

test('a live row expands into the format 1 change, its values named by the page\'s fields', () => {
  const body = page([['visit', 'v1', 12, visitValues]]);
  const { changes, ...rest } = expandPage(body);
  assert.deepEqual(changes, [{ entity: 'visit', id: 'v1', seq: 12, deleted: false, data: {
    household_id: 'h1', site_id: 's1', resident_id: null, user_id: 'u1', visited_at: '2026-11-21T09:29:40+01:00',
    outcome: 'talked', interests: ['a1'], needs: ['isolement'], follow_up: true, consent_recontact: true,
    note: 'Rappeler lundi', clock_suspect: false } }]);
  assert.deepEqual(rest, { cursor: 'c1', has_more: false, reset: false, last_applied: 0,
    scope: { role: 'gardien', sites: ['s1'] }, progress: { engaged: 5 } }, 'format 1: no format, no fields');
});

test('a gardien\'s resident expands without phone or email: the fields are the page\'s, not a fixed list', () => {
  const [c] = expandPage(page([['resident', 'r1', 3, ['h1', 's1', 'Ana', 'B', true, false, null]]])).changes;
  assert.deepEqual(c.data, { household_id: 'h1', site_id: 's1', first_name: 'Ana', last_name: 'B',
    consent_contact: true, consent_image: false, duplicate_of: null });
  assert.ok(!('phone' in c.data) && !('email' in c.data));
  const staff = page([['resident', 'r1', 3, ['h1', 's1', 'Ana', 'B', '0600', 'a@b.fr', true, false, null]]],
    { fields: { resident: RESIDENT } });
  assert.equal(expandPage(staff).changes[0].data.phone, '0600');
});

test('tombstones expand with and without merged_into', () => {
  const { changes } = expandPage(page([['resident', 'r1', 7, null, 'r2'], ['household', 'h9', 8, null]]));
  assert.deepEqual(changes, [
    { entity: 'resident', id: 'r1', seq: 7, deleted: true, data: null, merged_into: 'r2' },
    { entity: 'household', id: 'h9', seq: 8, deleted: true, data: null },
  ]);
  assert.ok(!('merged_into' in changes[1]));
});

test('a format 1 page (no format field) is taken as it is', () => {
  const body = { cursor: 'c', has_more: false, reset: false,
    changes: [{ entity: 'site', id: 's1', seq: 1, deleted: false, data: {} }] };
  assert.equal(expandPage(body), body);
});

test('a format 2 page is written as its expansion: unknown entities skipped, unknown fields kept', async () => {
  const db = await freshDb();
  await db.put('household', { id: 'h9', site_id: 's1', seq: 2 });
  await applyPage(db, page([
    ['visit', 'v1', 12, visitValues],
    ['resident', 'r1', 13, ['h1', 's1', 'Ana', 'B', true, false, null, 'Nana']],
    ['resident', 'r2', 14, ['h1', 's1', 'Léa', 'C', false, false, 'r1', null]],
    ['widget', 'w1', 15, [1]], // an entity this version does not know yet
    ['household', 'h9', 16, null],
  ], { fields: { visit: VISIT, resident: [...RESIDENT_GARDIEN, 'nickname'], widget: ['size'] } }), { chunk: 2 });
  assert.deepEqual(await held(db), {
    resident: [
      { household_id: 'h1', site_id: 's1', first_name: 'Ana', last_name: 'B', consent_contact: true,
        consent_image: false, duplicate_of: null, nickname: 'Nana', id: 'r1', seq: 13 },
      { household_id: 'h1', site_id: 's1', first_name: 'Léa', last_name: 'C', consent_contact: false,
        consent_image: false, duplicate_of: 'r1', nickname: null, id: 'r2', seq: 14 },
    ],
    visit: [{ ...expandPage(page([['visit', 'v1', 12, visitValues]])).changes[0].data, id: 'v1', seq: 12 }],
  }, 'the widget skipped, the household deleted');
  assert.equal((await db.get('visit', 'v1')).note, 'Rappeler lundi');
  assert.equal(await db.get('meta', 'cursor'), 'c1');
  assert.deepEqual(await db.get('meta', 'progress'), { engaged: 5 });
});

test('a reset page of format 2 clears every store and mark before its rows', async () => {
  const db = await freshDb();
  await db.put('household', { id: 'h1', site_id: 's1', seq: 1 });
  await db.put('local', { entity: 'household', id: 'h1', n: 3, base: null });
  await applyPage(db, page([['resident', 'r9', 20, ['h2', 's1', 'Zoé', 'D', true, true, null]]], { reset: true }));
  assert.equal(await db.count('household'), 0);
  assert.equal(await db.count('local'), 0);
  assert.deepEqual((await db.getAll('resident')).map((r) => [r.id, r.first_name, r.seq]), [['r9', 'Zoé', 20]]);
});

test('the marks of records a format 2 page brings are dropped, the others kept', async () => {
  const db = await freshDb();
  for (const id of ['r1', 'r2', 'r3']) await db.put('local', { entity: 'resident', id, n: 4, base: null });
  await applyPage(db, page([['resident', 'r1', 21, ['h1', 's1', 'Ana', 'B', true, true, null]],
    ['resident', 'r3', 22, null]]));
  assert.deepEqual((await db.getAllKeys('local')).map((k) => k.join(':')), ['resident:r2']);
});

// Answers the given bodies in order and keeps the requests.
function scripted(answers) {
  const sent = [];
  return { sent, post: async (path, body) => { sent.push(body); return answers.shift() ?? { status: 0, body: null }; } };
}

const visitRows = (from, n) => Array.from({ length: n }, (_, i) => ['visit', `v${from + i}`, from + i, visitValues]);
const figure = { engaged: 412, goal: 1400, baseline: 386, as_of: '2026-11-21T09:40:02+00:00' };

test('a pull of three pages: format 2 asked each time, progress null until the last page, which is stored', async () => {
  const db = await freshDb();
  await db.put('meta', { engaged: 1 }, 'progress'); // the figure of an earlier pull
  const seenProgress = [];
  const tr = scripted([
    { status: 200, body: page(visitRows(1, 3), { cursor: 'p1', has_more: true, reset: true, progress: null }) },
    { status: 200, body: page(visitRows(4, 3), { cursor: 'p2', has_more: true, progress: null }) },
    { status: 200, body: page(visitRows(7, 2), { cursor: 'p3', has_more: false, progress: figure, last_applied: 0 }) },
  ]);
  await pull(db, tr, { limit: 3, pause: async () => { seenProgress.push(await db.get('meta', 'progress')); } });
  assert.equal(PAGE_FORMAT, 2);
  assert.deepEqual(tr.sent.map((b) => [b.cursor, b.limit, b.format]), [[null, 3, 2], ['p1', 3, 2], ['p2', 3, 2]]);
  assert.deepEqual(seenProgress, [{ engaged: 1 }, { engaged: 1 }, { engaged: 1 }],
    'a page without a figure keeps the stored one');
  assert.deepEqual(await db.get('meta', 'progress'), figure);
  assert.equal(await db.count('visit'), 8);
  assert.equal(await db.get('meta', 'cursor'), 'p3');
});

test('a pull cut after a page without progress keeps the earlier figure', async () => {
  const db = await freshDb();
  await db.put('meta', figure, 'progress');
  const tr = scripted([{ status: 200, body: page(visitRows(1, 2), { cursor: 'p1', has_more: true, progress: null }) }]);
  await assert.rejects(pull(db, tr, { pause: async () => {} }), { name: 'OfflineError' });
  assert.deepEqual(await db.get('meta', 'progress'), figure);
  assert.equal(await db.count('visit'), 2);
});

test('format 1 pages from a server that ignores the field are applied as before', async () => {
  const db = await freshDb();
  const tr = scripted([{ status: 200, body: { cursor: 'p1', has_more: false, reset: true, last_applied: 0, progress: figure,
    changes: [{ entity: 'household', id: 'h1', seq: 1, deleted: false, data: { site_id: 's1', door: '21' } }] } }]);
  await pull(db, tr, { pause: async () => {} });
  assert.equal(tr.sent[0].format, 2);
  assert.deepEqual(await db.get('household', 'h1'), { site_id: 's1', door: '21', id: 'h1', seq: 1 });
  assert.deepEqual(await db.get('meta', 'progress'), figure);
});

test('a server that refuses the format field (422, details.format) is asked again without it', async () => {
  const db = await freshDb();
  const refused = { status: 422, body: { error: { code: 'validation_error', message: 'Données invalides.',
    details: { format: ['Champ inconnu.'] } } } };
  const format1 = (cursor, hasMore, seq) => ({ status: 200, body: { cursor, has_more: hasMore, reset: seq === 1,
    last_applied: 0, progress: figure,
    changes: [{ entity: 'site', id: `s${seq}`, seq, deleted: false, data: { name: 'V' } }] } });
  const tr = scripted([refused, format1('p1', true, 1), format1('p2', false, 2)]);
  await pull(db, tr, { pause: async () => {} });
  assert.deepEqual(tr.sent.map((b) => b.format), [2, undefined, undefined]);
  assert.equal(await db.count('site'), 2);
  // Any other 422 is the error it is.
  const other = scripted([{ status: 422,
    body: { error: { code: 'validation_error', message: 'Curseur invalide.', details: { cursor: ['x'] } } } }]);
  await assert.rejects(pull(db, other, { pause: async () => {} }), ProtocolError);
  assert.equal(other.sent.length, 1);
});

test('the fake server answers format 2 when asked, and the client pulls through it', async () => {
  const server = new FakeServer();
  server.put('site', 's1', { code: 's1', name: 'Vauban' });
  for (let i = 0; i < 5; i += 1) server.put('household', `h${i}`, { site_id: 's1', door: String(i) });
  server.put('household', 'h0', null, true);
  const db = await freshDb();
  const answers = [];
  const t = server.transport();
  await pull(db, { post: async (path, body) => { const r = await t.post(path, body); answers.push(r.body); return r; } },
    { limit: 2, pause: async () => {} });
  assert.ok(server.requests.every((r) => r.body.format === 2));
  assert.deepEqual(answers.map((a) => [a.format, a.progress === null, Array.isArray(a.changes[0])]),
    [[2, true, true], [2, true, true], [2, false, true]]);
  assert.deepEqual((await db.getAll('household')).map((h) => h.id), ['h1', 'h2', 'h3', 'h4']);
  assert.equal((await db.get('meta', 'progress')).goal, 1400);
});
