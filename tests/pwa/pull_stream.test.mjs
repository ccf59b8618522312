// Streamed pull pages (docs/PROTOCOL.md, "Streamed pages") through the real transport over the fake server's
// NDJSON answers: the same replica as a pull page by page in fewer requests, an answer cut or ended early taken up
// from the last page applied (nothing twice, nothing missed), and an older server's 422 details.pages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDb } from './setup.mjs';
import { FakeServer } from './fake_server.mjs';
import { ENTITIES } from '../../pwa/src/db.js';
import { createTransport } from '../../pwa/src/transport.js';
import { pull, syncOnce, OfflineError, RetryableError, AuthError, PULL_PAGES } from '../../pwa/src/sync/client.js';

const quiet = async () => {};

// A site with `households` households (accents in their notes: bytes of one letter fall into two pieces) and a
// resident each, one household deleted (a tombstone).
function seeded(households) {
  const server = new FakeServer();
  server.put('site', 's1', { code: 's1', name: 'Résidence Vauban' });
  for (let i = 0; i < households; i += 1) {
    server.put('household', `h${i}`, { site_id: 's1', door: String(i), notes: `Mme Ébène, 3ᵉ étage n°${i}` });
    server.put('resident', `r${i}`, { household_id: `h${i}`, site_id: 's1', first_name: 'Zoé', last_name: `N${i}` });
  }
  server.put('household', 'h3', null, true);
  server.chunk = 97; // pieces that split lines, and sometimes letters
  return server;
}

// The real transport on the fake server, keeping the ids of every page's changes as the client is handed them.
function streaming(server) {
  const t = createTransport({ fetchImpl: (path, init) => server.fetch(path, init), cookie: () => null });
  const pages = [];
  return { pages, post: t.post, async postLines(path, body, onItem) {
    return t.postLines(path, body, (page) => { pages.push(page); return onItem(page); });
  } };
}

async function replica(db) {
  const out = {};
  for (const e of ENTITIES) out[e] = await db.getAll(e);
  for (const k of ['cursor', 'progress', 'scope', 'last_applied']) out[k] = await db.get('meta', k);
  return out;
}

// What a pull page by page (the fake transport without postLines) leaves on a phone.
async function pagedReplica(server, limit) {
  const db = await freshDb();
  await pull(db, server.transport(), { limit, pause: quiet });
  return replica(db);
}

const pulls = (server) => server.requests.filter((r) => r.path === '/api/sync/pull').map((r) => r.body);
const everyId = (server) => [...server.rows.values()].sort((a, b) => a.seq - b.seq).map((r) => r.id);
const idsOf = (pages) => pages.flatMap((p) => p.changes.map((c) => c[1]));

test('a first pull of 47 pages comes in 3 requests and leaves the replica a pull page by page leaves', async () => {
  const server = seeded(115); // 231 changes: 47 pages of 5
  const db = await freshDb();
  const t = streaming(server);
  await pull(db, t, { limit: 5, pause: quiet });
  assert.equal(PULL_PAGES, 20);
  assert.deepEqual(pulls(server).map((b) => [b.pages, b.format, b.limit]), [[20, 2, 5], [20, 2, 5], [20, 2, 5]]);
  assert.deepEqual(t.pages.map((p) => p.changes.length), [...Array(46).fill(5), 1]);
  assert.deepEqual(idsOf(t.pages), everyId(server), 'every change once, in order');
  const mine = await replica(db);
  assert.equal(mine.household.length, 114);
  assert.equal(mine.household.find((h) => h.id === 'h7').notes, 'Mme Ébène, 3ᵉ étage n°7');
  assert.deepEqual(mine, await pagedReplica(server, 5));
});

test('an answer cut mid-page keeps the pages applied, fails as offline, and the next sync goes on from there', async () => {
  const server = seeded(20); // 41 changes: 9 pages of 5
  const db = await freshDb();
  const t = streaming(server);
  server.cutNext = 3; // three pages whole, then the network fails halfway through the fourth
  await assert.rejects(pull(db, t, { limit: 5, pause: quiet }), OfflineError);
  assert.deepEqual(idsOf(t.pages), everyId(server).slice(0, 15));
  assert.equal(await db.count('household') + await db.count('resident') + await db.count('site'), 15);
  const cursor = await db.get('meta', 'cursor');
  assert.equal(cursor, t.pages[2].cursor, 'the cursor of the third page');

  await syncOnce(db, t, { limit: 5, pause: quiet });
  assert.deepEqual(pulls(server).map((b) => b.cursor), [null, cursor], 'asked again from the stored cursor');
  assert.deepEqual(idsOf(t.pages), everyId(server), 'nothing applied twice, nothing missed');
  assert.deepEqual(await replica(db), await pagedReplica(server, 5));
});

test('an answer cut just after its last page (has_more false) is a whole pull', async () => {
  const server = seeded(4); // 9 changes: 2 pages of 5
  const db = await freshDb();
  server.cutNext = 2;
  await pull(db, streaming(server), { limit: 5, pause: quiet });
  assert.equal(pulls(server).length, 1);
  assert.deepEqual(await replica(db), await pagedReplica(server, 5));
});

test('an answer the server ends early (last page has_more true) is followed by a request from its cursor', async () => {
  const server = seeded(10); // 21 changes: 5 pages of 5
  const db = await freshDb();
  const t = streaming(server);
  server.endNext = 2;
  await pull(db, t, { limit: 5, pause: quiet });
  const sent = pulls(server);
  assert.equal(sent.length, 2);
  assert.equal(sent[1].cursor, t.pages[1].cursor, 'from the second page\'s cursor');
  assert.deepEqual(t.pages.map((p) => p.changes.length), [5, 5, 5, 5, 1]);
  assert.deepEqual(await replica(db), await pagedReplica(server, 5));
});

test('an answer without a page fails as a retryable error; cut before its first page, as offline', async () => {
  const server = seeded(2);
  const db = await freshDb();
  server.endNext = 0;
  const empty = pull(db, streaming(server), { limit: 5, pause: quiet });
  await assert.rejects(empty, (err) => err instanceof RetryableError && !(err instanceof OfflineError));
  server.cutNext = 0;
  await assert.rejects(pull(db, streaming(server), { limit: 5, pause: quiet }), OfflineError);
  assert.equal(await db.get('meta', 'cursor'), undefined);
  await pull(db, streaming(server), { limit: 5, pause: quiet });
  assert.deepEqual(await replica(db), await pagedReplica(server, 5));
});

test('errors before the first page are the usual ones: 401 asks to log in again, 503 is retried', async () => {
  const server = seeded(2);
  const db = await freshDb();
  server.failNext.push(401, 401); // the pull, then the refresh
  await assert.rejects(pull(db, streaming(server), { pause: quiet }), AuthError);
  server.failNext.push(503);
  await assert.rejects(pull(db, streaming(server), { pause: quiet }), { name: 'RetryableError', message: /503/ });
});

test('an older server refusing the field (422 details.pages) is pulled page by page without it', async () => {
  const server = seeded(10);
  server.streams = false;
  const db = await freshDb();
  await pull(db, streaming(server), { limit: 5, pause: quiet });
  assert.deepEqual(pulls(server).map((b) => [b.pages, b.format]),
    [[20, 2], [undefined, 2], [undefined, 2], [undefined, 2], [undefined, 2], [undefined, 2]]);
  assert.deepEqual(await replica(db), await pagedReplica(server, 5));
});

// Answers in order; postLines hands the lines of an answer that has some to the client, as the transport does.
function scripted(answers) {
  const sent = [];
  const next = (body) => { sent.push(body); return answers.shift() ?? { status: 0, body: null }; };
  return { sent, post: async (path, body) => next(body), async postLines(path, body, onItem) {
    const a = next(body);
    if (!a.lines) return a;
    for (const page of a.lines) await onItem(page);
    return { status: 200, items: a.lines.length };
  } };
}

test('a server older than format 2 (422 details.format and pages) is asked without either; one JSON page is applied', async () => {
  const db = await freshDb();
  const refused = { status: 422, body: { error: { code: 'validation_error', message: 'Données invalides.',
    details: { format: ['Champ inconnu.'], pages: ['Champ inconnu.'] } } } };
  const page = (cursor, hasMore, seq) => ({ status: 200, body: { cursor, has_more: hasMore, reset: seq === 1,
    last_applied: 0, progress: null, changes: [{ entity: 'site', id: `s${seq}`, seq, deleted: false, data: {} }] } });
  const tr = scripted([refused, page('p1', true, 1), page('p2', false, 2)]);
  await pull(db, tr, { pause: quiet });
  assert.deepEqual(tr.sent.map((b) => [b.format, b.pages]), [[2, 20], [undefined, undefined], [undefined, undefined]]);
  assert.equal(await db.count('site'), 2);
  // A server that answers one JSON page to a request for pages: applied, and the pull goes on as asked.
  const one = scripted([page('p1', true, 1), { lines: [page('p2', false, 2).body] }]);
  await pull(await freshDb(), one, { pause: quiet });
  assert.deepEqual(one.sent.map((b) => [b.cursor, b.pages]), [[null, 20], ['p1', 20]]);
});
