// Opting in and out of reminders with the browser and the server faked: the order of the steps, and that the
// browser's one push subscription is released only when no site on this browser still uses it.
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { optIn, optOut, CONSENT_VERSION } from '../../pwa/src/public/push.js';
import { subscriptionOf, subscriptions } from '../../pwa/src/public/api.js';

let calls;
let browserSub;

beforeEach(() => {
  calls = [];
  const store = new Map();
  globalThis.localStorage = {
    getItem: (k) => (store.has(k) ? store.get(k) : null), setItem: (k, v) => store.set(k, String(v)),
  };
  browserSub = {
    options: { applicationServerKey: null },
    toJSON: () => ({ endpoint: 'https://fcm.googleapis.com/x', keys: { p256dh: 'p', auth: 'a' } }),
    unsubscribe: async () => { calls.push('browser-unsubscribe'); return true; },
  };
  const pushManager = {
    getSubscription: async () => null,
    subscribe: async (opts) => { calls.push(['subscribe', opts.userVisibleOnly, opts.applicationServerKey.length]); return browserSub; },
  };
  const reg = { pushManager };
  globalThis.PushManager = function PushManager() {};
  globalThis.Notification = { permission: 'default', requestPermission: async () => { calls.push('permission'); return 'granted'; } };
  Object.defineProperty(globalThis, 'navigator', {
    configurable: true,
    value: { serviceWorker: { ready: Promise.resolve(reg), getRegistration: async () => ({ pushManager: { getSubscription: async () => browserSub } }) } },
  });
  let n = 0;
  globalThis.fetch = async (path, init) => {
    const body = init.body ? JSON.parse(init.body) : null;
    calls.push(['fetch', init.method, path, body]);
    if (path === '/api/public/subscriptions') {
      n += 1;
      return Response.json({ id: `s${n}`, site_code: body.site_code, kinds: body.kinds, consent_at: '2026-06-01T08:00:00+00:00',
        consent_text_version: body.consent_text_version, token: `tok-${body.site_code}`, unsubscribe_url: '' }, { status: 201 });
    }
    if (path === '/api/public/subscriptions/unsubscribe') {
      return body.token.startsWith('tok-') ? Response.json({ withdrawn_at: '2026-06-02T08:00:00+00:00' })
        : Response.json({ error: { code: 'unknown_token', message: 'Lien de désabonnement inconnu.' } }, { status: 404 });
    }
    return Response.json({ error: { code: 'not_found', message: '?' } }, { status: 404 });
  };
});

const KEY = 'BAAA'; // 3 bytes once decoded: enough to see it is passed as bytes

test('without consent or kinds nothing is asked of the browser nor sent', async () => {
  assert.match((await optIn({ code: 'vauban', kinds: ['atelier'], consent: false, key: KEY })).error, /Cochez la case/);
  assert.match((await optIn({ code: 'vauban', kinds: [], consent: true, key: KEY })).error, /au moins un type/);
  assert.deepEqual(calls, []);
});

test('consent, then the permission prompt, then subscribe, then the server records the consent', async () => {
  const res = await optIn({ code: 'vauban', kinds: ['atelier', 'sortie'], consent: true, key: KEY });
  assert.equal(res.subscribed.token, 'tok-vauban');
  assert.deepEqual(calls.slice(0, 2), ['permission', ['subscribe', true, 3]]);
  const [, method, path, body] = calls[2];
  assert.equal(method, 'POST');
  assert.equal(path, '/api/public/subscriptions');
  assert.deepEqual({ ...body, subscription: undefined }, { subscription: undefined, site_code: 'vauban', kinds: ['atelier', 'sortie'], consent: true, consent_text_version: CONSENT_VERSION });
  assert.deepEqual(subscriptionOf('vauban').kinds, ['atelier', 'sortie']);
});

test('a refused permission stops before any subscription', async () => {
  globalThis.Notification.requestPermission = async () => 'denied';
  const res = await optIn({ code: 'vauban', kinds: ['atelier'], consent: true, key: KEY });
  assert.match(res.error, /bloquées/);
  assert.deepEqual(calls, []);
  assert.equal(subscriptionOf('vauban'), null);
});

test('the browser subscription is released only when the last site is left', async () => {
  await optIn({ code: 'vauban', kinds: ['atelier'], consent: true, key: KEY });
  await optIn({ code: 'zac-3', kinds: ['sortie'], consent: true, key: KEY });
  calls = [];
  assert.deepEqual(await optOut('vauban', 'tok-vauban'), { withdrawn_at: '2026-06-02T08:00:00+00:00' });
  assert.ok(!calls.includes('browser-unsubscribe'));
  assert.deepEqual(Object.keys(subscriptions()), ['zac-3']);
  await optOut('zac-3', 'tok-zac-3');
  assert.ok(calls.includes('browser-unsubscribe'));
  assert.deepEqual(subscriptions(), {});
});

test('an unknown token is said so and forgets nothing else', async () => {
  await optIn({ code: 'vauban', kinds: ['atelier'], consent: true, key: KEY });
  assert.deepEqual(await optOut('vauban', 'stale'), { unknown: true });
  assert.equal(subscriptionOf('vauban').token, 'tok-vauban'); // a link of an older consent leaves the current one
});
