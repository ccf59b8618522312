// The residents' side of the server (no login) and what this browser keeps of it: the last agenda seen of each
// site (so it opens offline) and the unsubscribe token of each consent. Nothing of the staff app is read here.
import { sendJson } from '../transport.js';
import { mirror } from './mirror.js';

const SUBS_KEY = 'palier-agenda-subscriptions';
const cacheKey = (code) => `palier-agenda:${code}`;
const LAST_KEY = 'palier-agenda-last';

// No cookies: the staff session of a shared phone has nothing to do with a resident's page.
async function call(method, path, body) {
  const res = await sendJson((...a) => globalThis.fetch(...a), method, path, body, null, 'omit');
  const message = res.status === 0 ? 'Pas de connexion : réessayez avec du réseau.'
    : res.status >= 200 && res.status < 300 ? ''
      : res.body?.error?.message || 'Le serveur ne répond pas comme prévu : réessayez plus tard.';
  return { ...res, message };
}

const site = (code) => `/api/public/sites/${encodeURIComponent(code)}`;

function read(key) {
  try { return JSON.parse(globalThis.localStorage.getItem(key)); } catch { return null; }
}

function write(key, value) {
  try { globalThis.localStorage.setItem(key, JSON.stringify(value)); } catch { /* full or disabled: only offline reading is lost */ }
}

// The agenda from the network, else the copy kept at the last visit ({offline: true, saved_at}).
export async function agenda(code) {
  const res = await call('GET', `${site(code)}/agenda`);
  if (res.status === 200) {
    write(cacheKey(code), { saved_at: new Date().toISOString(), agenda: res.body });
    write(LAST_KEY, { code: res.body.site.code, name: res.body.site.name });
    return { agenda: res.body };
  }
  const kept = res.status === 0 ? read(cacheKey(code)) : null;
  if (kept) return { agenda: kept.agenda, offline: true, saved_at: kept.saved_at };
  return { error: res.status === 404 ? 'Cet agenda n’existe pas ou plus.' : res.message };
}

export async function event(code, id) {
  const res = await call('GET', `${site(code)}/events/${encodeURIComponent(id)}`);
  if (res.status === 200) return { event: res.body };
  const kept = res.status === 0 ? read(cacheKey(code)) : null;
  const found = kept?.agenda?.events?.find((e) => e.id === id);
  if (found) return { event: found, offline: true, site: kept.agenda.site };
  return { error: res.status === 404 ? 'Cet événement n’existe pas ou plus.' : res.message };
}

// The last agenda opened here: a resident's home-screen icon opens '/', whose login screen then links back to it.
export const lastAgenda = () => read(LAST_KEY);

export async function vapidKey() {
  const res = await call('GET', '/api/public/vapid-public-key');
  return res.status === 200 ? { key: res.body.public_key } : { error: res.message };
}

export const subscribe = (body) => call('POST', '/api/public/subscriptions', body);
export const unsubscribe = (token) => call('POST', '/api/public/subscriptions/unsubscribe', { token });
// Ties a consent to the resident of a staff's push link (both tokens in the body, never in a URL).
export const link = (unsubscribeToken, linkToken) => call('POST', '/api/public/subscriptions/link',
  { unsubscribe_token: unsubscribeToken, link_token: linkToken });
// Moves a consent to the browser's new push subscription (see renew.js).
export const renew = (token, subscription) => call('POST', '/api/public/subscriptions/renew', { token, subscription });

// This browser's consents, by site code: {token, kinds, consent_at, consent_text_version}.
export const subscriptions = () => read(SUBS_KEY) || {};
export const subscriptionOf = (code) => subscriptions()[code] || null;

export function keepSubscription(code, record) {
  write(SUBS_KEY, { ...subscriptions(), [code]: record });
  mirrorSubscriptions();
}

export function forgetSubscription(code, token) {
  const all = subscriptions();
  if (!all[code] || (token && all[code].token !== token)) return;
  delete all[code];
  write(SUBS_KEY, all);
  mirrorSubscriptions();
}

// The service worker's copy of the tokens (mirror.js); also run when a page opens, for consents kept before it.
export function mirrorSubscriptions() {
  if (!globalThis.indexedDB) return Promise.resolve();
  return mirror(subscriptions()).catch(() => { /* private mode or full: only a renewal by the worker is lost */ });
}
