// The per-resident push link on both sides (the staff's request, the resident's page tying the consent with it) and
// the move of every consent when the push service replaces the browser's subscription ('pushsubscriptionchange').
import '../../pwa/node_modules/fake-indexeddb/auto/index.mjs';
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { linkSubscription, optIn } from '../../pwa/src/public/push.js';
import { keepSubscription, subscriptionOf, subscriptions } from '../../pwa/src/public/api.js';
import { mirror, mirroredTokens } from '../../pwa/src/public/mirror.js';
import { onSubscriptionChange, renewIfChanged } from '../../pwa/src/public/renew.js';
import { linkToken } from '../../pwa/src/public/agenda.js';
import { requestPushLink } from '../../pwa/src/ui/agendaqr.js';

let calls;
let answers; // path -> (body) => Response
let browserSub;

const json = (body, status = 200) => Response.json(body, { status });
const sub = (endpoint) => ({ endpoint, options: { applicationServerKey: null },
  toJSON: () => ({ endpoint, keys: { p256dh: 'p', auth: 'a' } }), unsubscribe: async () => true });

beforeEach(async () => {
  calls = [];
  const store = new Map();
  globalThis.localStorage = { getItem: (k) => (store.has(k) ? store.get(k) : null), setItem: (k, v) => store.set(k, String(v)) };
  await mirror({});
  browserSub = sub('https://fcm.googleapis.com/old');
  const reg = { pushManager: {
    getSubscription: async () => browserSub,
    subscribe: async (opts) => { calls.push(['subscribe', opts.applicationServerKey.byteLength]); return browserSub; },
  } };
  globalThis.PushManager = function PushManager() {};
  globalThis.Notification = { permission: 'granted', requestPermission: async () => 'granted' };
  Object.defineProperty(globalThis, 'navigator', {
    configurable: true,
    value: { onLine: true, serviceWorker: { ready: Promise.resolve(reg), getRegistration: async () => reg } },
  });
  answers = {
    '/api/public/subscriptions': (b) => json({ id: 's1', site_code: b.site_code, kinds: b.kinds, consent_at: '2026-06-01T08:00:00+00:00',
      consent_text_version: b.consent_text_version, token: `tok-${b.site_code}`, unsubscribe_url: '' }, 201),
    '/api/public/subscriptions/link': () => json({ linked: true }),
    '/api/public/subscriptions/renew': (b) => (b.token.startsWith('tok-') ? json({ site_code: 'x', kinds: ['atelier'] })
      : json({ error: { code: 'unknown_token', message: 'Abonnement inconnu ou retiré.' } }, 404)),
    '/api/public/vapid-public-key': () => json({ public_key: 'BAAA' }),
  };
  globalThis.fetch = async (path, init) => {
    const body = init.body ? JSON.parse(init.body) : null;
    calls.push(['fetch', path, body]);
    const answer = answers[path];
    if (!answer) return json({ error: { code: 'not_found', message: '?' } }, 404);
    return answer(body);
  };
});

test('the link token is read from the fragment #lien=…, nothing else', () => {
  assert.equal(linkToken('#lien=AbC_-09'), 'AbC_-09');
  assert.equal(linkToken('lien=AbC'), 'AbC');
  for (const hash of ['', '#', '#AbC', '#lien=', '#lien=a b', '#lien=a&x=1', `#lien=${'a'.repeat(201)}`]) {
    assert.equal(linkToken(hash), null, hash);
  }
});

test('after the opt-in, the link ties the consent with both tokens in the body; the page remembers it is tied', async () => {
  await optIn({ code: 'vauban', kinds: ['atelier'], consent: true, key: 'BAAA' });
  calls = [];
  const res = await linkSubscription('vauban', 'link-1');
  assert.ok(res.linked.linked_at);
  assert.deepEqual(calls, [['fetch', '/api/public/subscriptions/link', { unsubscribe_token: 'tok-vauban', link_token: 'link-1' }]]);
  assert.ok(subscriptionOf('vauban').linked_at);
  assert.equal(JSON.stringify(subscriptions()).includes('link-1'), false); // the link's token is never kept
});

test('an expired, used, foreign or unknown link says so in French and can never serve again', async () => {
  await optIn({ code: 'vauban', kinds: ['atelier'], consent: true, key: 'BAAA' });
  const cases = [
    [409, 'link_expired', /a déjà servi ou a expiré.*30 minutes.*Demandez-en un nouveau/],
    [409, 'link_mismatch', /ne correspond pas à cet agenda/],
    [404, 'unknown_token', /n’est pas reconnu/],
  ];
  for (const [status, code, text] of cases) {
    answers['/api/public/subscriptions/link'] = () => json({ error: { code, message: 'server words' } }, status);
    const res = await linkSubscription('vauban', 'link-1');
    assert.match(res.error, text);
    assert.equal(res.final, true);
  }
  assert.equal(subscriptionOf('vauban').linked_at, undefined);
});

test('without network or with a server outage the link stays usable for another try', async () => {
  await optIn({ code: 'vauban', kinds: ['atelier'], consent: true, key: 'BAAA' });
  answers['/api/public/subscriptions/link'] = () => { throw new TypeError('Failed to fetch'); };
  let res = await linkSubscription('vauban', 'link-1');
  assert.deepEqual([res.final, /Pas de connexion/.test(res.error)], [false, true]);
  answers['/api/public/subscriptions/link'] = () => json({ error: { code: 'unavailable', message: 'Service indisponible.' } }, 503);
  res = await linkSubscription('vauban', 'link-1');
  assert.deepEqual(res, { error: 'Service indisponible.', final: false });
});

test('the worker can read the tokens: every kept or forgotten consent is mirrored into IndexedDB', async () => {
  await optIn({ code: 'vauban', kinds: ['atelier'], consent: true, key: 'BAAA' });
  await optIn({ code: 'zac-3', kinds: ['sortie'], consent: true, key: 'BAAA' });
  await new Promise((ok) => { setTimeout(ok, 50); });
  assert.deepEqual((await mirroredTokens()).sort(), [['vauban', 'tok-vauban'], ['zac-3', 'tok-zac-3']]);
});

test('pushsubscriptionchange: subscribe again with the old key, then move each consent; an unknown one is forgotten', async () => {
  await mirror({ vauban: { token: 'tok-vauban' }, beurains: { token: 'stale' } });
  const forgotten = [];
  const store = { tokens: mirroredTokens, forget: async (code) => { forgotten.push(code); } };
  const old = { options: { applicationServerKey: new Uint8Array(65).buffer } };
  const out = await onSubscriptionChange({ oldSubscription: old, newSubscription: null }, (await navigator.serviceWorker.ready).pushManager, store);
  assert.deepEqual(out, { renewed: ['vauban'], gone: ['beurains'], failed: [] });
  assert.deepEqual(forgotten, ['beurains']);
  assert.deepEqual(calls[0], ['subscribe', 65]);
  const renewals = calls.filter((c) => c[1] === '/api/public/subscriptions/renew').map((c) => c[2]);
  assert.deepEqual(renewals.map((b) => b.token).sort(), ['stale', 'tok-vauban']);
  assert.deepEqual(renewals[0].subscription, browserSub.toJSON());
  assert.equal(calls.some((c) => c[1] === '/api/public/subscriptions'), false); // no consent recorded anew
});

test('pushsubscriptionchange: the browser’s new subscription is used as given; without an old key the server’s is fetched', async () => {
  await mirror({ vauban: { token: 'tok-vauban' } });
  const pm = (await navigator.serviceWorker.ready).pushManager;
  const given = sub('https://fcm.googleapis.com/given');
  await onSubscriptionChange({ oldSubscription: null, newSubscription: given }, pm);
  assert.deepEqual(calls.map((c) => c[1]), ['/api/public/subscriptions/renew']);
  assert.equal(calls[0][2].subscription.endpoint, 'https://fcm.googleapis.com/given');

  calls = [];
  await onSubscriptionChange({ oldSubscription: null, newSubscription: null }, pm);
  assert.deepEqual(calls.map((c) => c[0] === 'fetch' ? c[1] : c[0]),
    ['/api/public/vapid-public-key', 'subscribe', '/api/public/subscriptions/renew']);
  assert.deepEqual(calls[1], ['subscribe', 3]); // 'BAAA' decoded
});

test('pushsubscriptionchange with no consent on this browser subscribes nothing', async () => {
  const out = await onSubscriptionChange({ oldSubscription: null, newSubscription: null }, (await navigator.serviceWorker.ready).pushManager);
  assert.deepEqual(out, { renewed: [], gone: [], failed: [] });
  assert.deepEqual(calls, []);
});

test('the page moves consents recorded with another endpoint than the browser’s subscription, once', async () => {
  await optIn({ code: 'vauban', kinds: ['atelier'], consent: true, key: 'BAAA' });
  assert.equal(subscriptionOf('vauban').endpoint, 'https://fcm.googleapis.com/old');
  keepSubscription('beurains', { token: 'stale', kinds: ['atelier'], endpoint: 'https://fcm.googleapis.com/old' });
  calls = [];
  assert.equal(await renewIfChanged(), null); // same endpoint: nothing to do
  assert.deepEqual(calls, []);
  browserSub = sub('https://fcm.googleapis.com/new');
  assert.deepEqual(await renewIfChanged(), { renewed: ['vauban'], gone: ['beurains'], failed: [] });
  assert.equal(subscriptionOf('vauban').endpoint, 'https://fcm.googleapis.com/new');
  assert.equal(subscriptionOf('beurains'), null);
  calls = [];
  assert.equal(await renewIfChanged(), null);
  assert.deepEqual(calls, []);
});

test('staff: the push link is asked only online; each answer reads in French', async () => {
  const posts = [];
  const post = (answer) => async (path) => { posts.push(path); return answer; };
  const ok = await requestPushLink('r-1', post({ status: 201, body: { token: 't', url: 'http://x/agenda/vauban#lien=t', expires_at: '2026-06-01T08:30:00Z' } }));
  assert.deepEqual(ok, { url: 'http://x/agenda/vauban#lien=t', expires_at: '2026-06-01T08:30:00Z' });
  assert.deepEqual(posts, ['/api/privacy/residents/r-1/push-link']);
  assert.deepEqual(await requestPushLink('r-1', post({ status: 0, body: null })), { offline: true });
  assert.match((await requestPushLink('r-1', post({ status: 404, body: null }))).error, /pas encore connu du serveur : synchronisez/);
  assert.match((await requestPushLink('r-1', post({ status: 500, body: null }))).error, /\(500\)/);
  navigator.onLine = false;
  posts.length = 0;
  assert.deepEqual(await requestPushLink('r-1', post({ status: 201, body: {} })), { offline: true });
  assert.deepEqual(posts, []);
});
