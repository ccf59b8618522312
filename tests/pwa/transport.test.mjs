// The transport: CSRF header from the cookie, one refresh on 401, "session expirée" when refresh fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTransport, readCookie } from '../../pwa/src/transport.js';

function fakeFetch(answers) {
  const calls = [];
  const fn = async (path, init) => {
    calls.push({ path, init });
    const [status, body] = answers.shift();
    return { status, json: async () => body };
  };
  fn.calls = calls;
  return fn;
}

const cookies = { csrf_access_token: 'A1', csrf_refresh_token: 'R1' };
const cookie = (name) => cookies[name] ?? null;

test('reads a cookie by name', () => {
  assert.equal(readCookie('b', { cookie: 'a=1; b=x%20y; c=3' }), 'x y');
  assert.equal(readCookie('z', { cookie: 'a=1' }), null);
});

test('sends the CSRF header and same-origin credentials', async () => {
  const f = fakeFetch([[200, { ok: 1 }]]);
  const t = createTransport({ fetchImpl: f, cookie });
  const r = await t.post('/api/sync/pull', { cursor: null });
  assert.equal(r.status, 200);
  assert.equal(f.calls[0].init.headers['X-CSRF-TOKEN'], 'A1');
  assert.equal(f.calls[0].init.credentials, 'same-origin');
});

test('a 401 refreshes with the refresh CSRF token and retries once', async () => {
  const f = fakeFetch([[401, {}], [200, {}], [200, { ok: 1 }]]);
  const t = createTransport({ fetchImpl: f, cookie });
  const r = await t.post('/api/sync/push', {});
  assert.equal(r.status, 200);
  assert.equal(f.calls[1].path, '/api/auth/refresh');
  assert.equal(f.calls[1].init.headers['X-CSRF-TOKEN'], 'R1');
  assert.equal(f.calls.length, 3);
});

test('a failed refresh answers the 401 (the app asks to log in again)', async () => {
  const f = fakeFetch([[401, {}], [401, {}]]);
  const t = createTransport({ fetchImpl: f, cookie });
  const r = await t.post('/api/sync/push', {});
  assert.equal(r.status, 401);
  assert.equal(f.calls.length, 2);
});

test('a network failure is status 0', async () => {
  const t = createTransport({ fetchImpl: async () => { throw new TypeError('offline'); }, cookie });
  assert.equal((await t.post('/api/sync/push', {})).status, 0);
});

test('a cookie reader returning promises (the worker\'s Cookie Store) gives the same headers, refresh included', async () => {
  const f = fakeFetch([[401, null], [200, {}], [200, { ok: 1 }]]);
  const t = createTransport({ fetchImpl: f, cookie: async (name) => cookie(name) });
  assert.equal((await t.post('/api/sync/push', {})).status, 200);
  assert.deepEqual(f.calls.map((c) => [c.path, c.init.headers['X-CSRF-TOKEN']]),
    [['/api/sync/push', 'A1'], ['/api/auth/refresh', 'R1'], ['/api/sync/push', 'A1']]);
});

// postLines (a streamed pull): a body given in pieces, each a string, bytes, or an Error where the network fails.
function streamed(pieces, { type = 'application/x-ndjson', status = 200 } = {}) {
  const source = { cancelled: false };
  const stream = new ReadableStream({
    pull(controller) {
      const p = pieces.shift();
      if (p === undefined) controller.close();
      else if (p instanceof Error) controller.error(p);
      else controller.enqueue(typeof p === 'string' ? new TextEncoder().encode(p) : p);
    },
    cancel() { source.cancelled = true; },
  });
  return { resp: new Response(stream, { status, headers: { 'Content-Type': type } }), source };
}

// Answers the given Responses in order (a function answer is called: it may throw, as fetch offline does).
function responses(...answers) {
  const calls = [];
  const fn = async (path, init) => {
    calls.push({ path, init });
    const a = answers.shift();
    return typeof a === 'function' ? a() : a;
  };
  fn.calls = calls;
  return fn;
}

async function lines(pieces, onItem) {
  const got = [];
  const t = createTransport({ fetchImpl: responses(streamed(pieces).resp), cookie });
  const r = await t.postLines('/api/sync/pull', { pages: 3 }, onItem || ((item) => { got.push(item); }));
  return { r, got };
}

test('postLines hands over each line once whole: split across pieces, several in one, bytes of a letter apart', async () => {
  const e = new TextEncoder().encode('{"n":2,"s":"é"}\n'); // "é" is two bytes: split between them
  const cutInE = e.indexOf(0xc3) + 1;
  const { r, got } = await lines(['{"n":', '1}\n', e.slice(0, cutInE), e.slice(cutInE), '{"n":3}\n{"n":4}\n{"n":5}\n']);
  assert.deepEqual(r, { status: 200, items: 5 });
  assert.deepEqual(got, [{ n: 1 }, { n: 2, s: 'é' }, { n: 3 }, { n: 4 }, { n: 5 }]);
});

test('postLines drops a last fragment without its newline: a page cut short is not a page', async () => {
  const { r, got } = await lines(['{"n":1}\n{"n":2}\n{"n":3,"cha', 'nges":[']);
  assert.deepEqual(r, { status: 200, items: 2 });
  assert.deepEqual(got.map((p) => p.n), [1, 2]);
});

test('postLines reports a network failure mid-answer as cut, after the lines that arrived whole', async () => {
  const { r, got } = await lines(['{"n":1}\n{"n":2}\n{"n":', new TypeError('network error')]);
  assert.deepEqual(r, { status: 200, items: 2, cut: true });
  assert.deepEqual(got.map((p) => p.n), [1, 2]);
  const before = await lines([new TypeError('network error')]);
  assert.deepEqual(before.r, { status: 200, items: 0, cut: true });
});

test('postLines waits for each line\'s handler before the next, and lets its error go up as it is, the answer cancelled', async () => {
  const order = [];
  const { resp, source } = streamed(['{"n":1}\n{"n":2}\n', '{"n":3}\n', '{"n":4}\n']);
  const t = createTransport({ fetchImpl: responses(resp), cookie });
  const failure = new Error('disque plein');
  const run = t.postLines('/api/sync/pull', {}, async ({ n }) => {
    order.push(`start ${n}`);
    await new Promise((ok) => { setTimeout(ok, 5); });
    order.push(`end ${n}`);
    if (n === 2) throw failure;
  });
  await assert.rejects(run, (err) => err === failure);
  assert.deepEqual(order, ['start 1', 'end 1', 'start 2', 'end 2']);
  assert.ok(source.cancelled, 'the answer is cancelled, its connection freed');
});

test('postLines refreshes once on 401 and reads the retried answer', async () => {
  const f = responses(Response.json({ error: { code: 'token_expired' } }, { status: 401 }),
    Response.json({}, { status: 200 }), streamed(['{"n":1}\n']).resp);
  const t = createTransport({ fetchImpl: f, cookie });
  const got = [];
  assert.deepEqual(await t.postLines('/api/sync/pull', { pages: 20 }, (p) => { got.push(p); }), { status: 200, items: 1 });
  assert.deepEqual(got, [{ n: 1 }]);
  assert.deepEqual(f.calls.map((c) => [c.path, c.init.headers['X-CSRF-TOKEN']]),
    [['/api/sync/pull', 'A1'], ['/api/auth/refresh', 'R1'], ['/api/sync/pull', 'A1']]);
  assert.equal(f.calls[2].init.body, JSON.stringify({ pages: 20 }), 'the same body again');
  assert.equal(f.calls[2].init.credentials, 'same-origin');
  const expired = responses(Response.json({}, { status: 401 }), Response.json({}, { status: 401 }));
  const r = await createTransport({ fetchImpl: expired, cookie }).postLines('/api/sync/pull', {}, () => {});
  assert.equal(r.status, 401, 'a failed refresh answers the 401');
  assert.equal(expired.calls.length, 2);
});

test('postLines answers a JSON answer (an error, or an older server\'s one page) as post() does, and offline as 0', async () => {
  const refused = { error: { code: 'validation_error', message: 'Données invalides.', details: { pages: ['x'] } } };
  const onItem = () => { throw new Error('not a line'); };
  const f = responses(Response.json(refused, { status: 422 }), Response.json({ cursor: 'c', has_more: false }),
    () => { throw new TypeError('Failed to fetch'); }, streamed(['{"n":1}\n{"n":2}\n'], { status: 503 }).resp);
  const t = createTransport({ fetchImpl: f, cookie });
  assert.deepEqual(await t.postLines('/api/sync/pull', {}, onItem), { status: 422, body: refused });
  assert.deepEqual(await t.postLines('/api/sync/pull', {}, onItem), { status: 200, body: { cursor: 'c', has_more: false } });
  assert.deepEqual(await t.postLines('/api/sync/pull', {}, onItem), { status: 0, body: null });
  assert.deepEqual(await t.postLines('/api/sync/pull', {}, onItem), { status: 503, body: null }, 'lines only with 200');
});
