// The head-office app's pure pieces: query strings, French errors, session-checked downloads, what a reviewer may
// correct in a refused entry and the fix's body.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiFailure, createApi, qs } from '../../pwa/src/office/api.js';
import { fixable, fixBody } from '../../pwa/src/office/ui/review.js';

test('a query string leaves out empty filters and encodes the rest', () => {
  assert.equal(qs({}), '');
  assert.equal(qs({ site_id: '', action_id: null, q: undefined }), '');
  assert.equal(qs({ q: 'Élise Benoît', page: 2, engaged: false }), '?q=%C3%89lise+Beno%C3%AEt&page=2&engaged=false');
});

test('an API failure speaks French: the server message first, else one by status', () => {
  assert.equal(new ApiFailure(422, { error: { message: 'Données invalides.', details: { x: ['y'] } } }).message, 'Données invalides.');
  assert.deepEqual(new ApiFailure(422, { error: { message: 'm', details: { x: ['y'] } } }).details, { x: ['y'] });
  assert.match(new ApiFailure(0, null).message, /Pas de connexion/);
  assert.match(new ApiFailure(403, null).message, /Accès refusé/);
  assert.match(new ApiFailure(500, null).message, /serveur/);
});

function fakeTransport(answers) {
  const calls = [];
  const reply = (method) => async (path, body) => { calls.push([method, path, body]); return answers.shift(); };
  return { calls, get: reply('get'), post: reply('post'), patch: reply('patch'), login: reply('login'), logout: reply('logout') };
}

test('a 401 that the transport could not refresh marks the session expired and fails', async () => {
  let expired = 0;
  const api = createApi({ transport: fakeTransport([{ status: 401, body: null }]), onExpired: () => { expired += 1; } });
  await assert.rejects(api.get('/api/dashboard'), (e) => e.status === 401);
  assert.equal(expired, 1);
});

test('a download checks the session first, then lets the browser fetch the file itself', async () => {
  const clicked = [];
  const doc = {
    body: { append() {} },
    createElement: () => ({ remove() {}, click() { clicked.push({ href: this.href, download: this.download }); } }),
  };
  const transport = fakeTransport([{ status: 200, body: { id: 'u' } }, { status: 401, body: null }]);
  const api = createApi({ transport, doc });
  await api.download('/api/exports/visits.csv?site_id=s');
  assert.deepEqual(clicked, [{ href: '/api/exports/visits.csv?site_id=s', download: '' }]);
  assert.deepEqual(transport.calls[0], ['get', '/api/auth/me', undefined]);
  // With the session gone, nothing is downloaded (an error page would be saved as the export).
  await assert.rejects(api.download('/api/exports/visits.csv'));
  assert.equal(clicked.length, 1);
});

test('a reviewer may correct plain values and an update\'s changes, never ids or the base version', () => {
  const create = { id: 'r1', household_id: 'h1', first_name: 'Rose', last_name: '', consent_contact: false, needs: ['x'] };
  assert.deepEqual(fixable(create).map(([path]) => path), ['first_name', 'last_name', 'consent_contact']);
  const update = { id: 'r1', base_seq: 4, changes: { phone: '06', email: 'a@b' } };
  assert.deepEqual(fixable(update), [['changes.phone', 'phone', '06'], ['changes.email', 'email', 'a@b']]);
});

test('the fix sends the edited values, and an update\'s whole changes when one of them moved', () => {
  assert.deepEqual(fixBody({ last_name: '' }, { last_name: 'Lambert' }), { args: { last_name: 'Lambert' } });
  const update = { id: 'r1', base_seq: 4, changes: { phone: '06', email: 'a@b' } };
  assert.deepEqual(fixBody(update, { 'changes.phone': '07' }), { args: { changes: { phone: '07', email: 'a@b' } } });
  assert.deepEqual(fixBody(update, {}), { args: {} });
});
