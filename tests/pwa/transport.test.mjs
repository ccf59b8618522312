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
