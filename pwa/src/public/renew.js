// When the push service replaces this browser's subscription ('pushsubscriptionchange' in the service worker, or
// an endpoint found changed when the agenda page opens), every consent moves to the new one on the server, proved
// by its unsubscribe token: kinds, consent time and a resident's link stay, and no consent is recorded anew.
import * as api from './api.js';
import { keyBytes, support } from './push.js';
import { forgetMirrored, mirroredTokens } from './mirror.js';

// `tokens` is [[site code, unsubscribe token], ...]; `forget(code)` drops one the server no longer knows.
export async function renewAll(subscription, tokens, forget = async () => {}) {
  const json = subscription.toJSON();
  const out = { renewed: [], gone: [], failed: [] };
  for (const [code, token] of tokens) {
    const res = await api.renew(token, json);
    if (res.status === 200) out.renewed.push(code);
    else if (res.status === 404) { out.gone.push(code); await forget(code); } // withdrawn, or erased with its resident
    else out.failed.push(code);
  }
  return out;
}

// The service worker's handler: re-subscribe with the same applicationServerKey (the old subscription's, else the
// server's) unless the browser already gives the new subscription, then tell the server.
export async function onSubscriptionChange(event, pushManager, store = { tokens: mirroredTokens, forget: forgetMirrored }) {
  const tokens = await store.tokens();
  if (!tokens.length) return { renewed: [], gone: [], failed: [] }; // no consent of ours: nothing to re-create
  let subscription = event.newSubscription || null;
  if (!subscription) {
    let key = event.oldSubscription?.options?.applicationServerKey || null;
    if (!key) {
      const res = await api.vapidKey();
      if (res.error) return { renewed: [], gone: [], failed: tokens.map(([code]) => code) };
      key = keyBytes(res.key);
    }
    subscription = await pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  }
  return renewAll(subscription, tokens, store.forget);
}

// The page's side, for a browser that fires no 'pushsubscriptionchange' (or a worker that missed it): consents
// recorded with another endpoint than the browser's current subscription are moved when the agenda page opens.
export async function renewIfChanged() {
  const recorded = Object.entries(api.subscriptions()).filter(([, r]) => r.endpoint);
  if (!recorded.length || support() === 'unsupported') return null;
  let subscription;
  try {
    const reg = await globalThis.navigator.serviceWorker.getRegistration('/');
    subscription = await reg?.pushManager.getSubscription();
  } catch {
    return null;
  }
  const changed = recorded.filter(([, r]) => subscription && r.endpoint !== subscription.endpoint);
  if (!changed.length) return null;
  const out = await renewAll(subscription, changed.map(([code, r]) => [code, r.token]),
    async (code) => api.forgetSubscription(code));
  for (const code of out.renewed) api.keepSubscription(code, { ...api.subscriptionOf(code), endpoint: subscription.endpoint });
  return out;
}
