// Opting in and out of a site's reminders: the consent first, then the browser's permission, then the
// push subscription, and the server records the consent. Every failure becomes one French sentence.
import * as api from './api.js';

// Bump the version whenever CONSENT_TEXT changes: the server keeps the version each resident agreed to.
export const CONSENT_VERSION = '2026-05';
export const CONSENT_TEXT = 'J’accepte de recevoir sur cet appareil des rappels avant les événements choisis de l’agenda '
  + 'de ma résidence. Palier ne connaît ni mon nom ni mon adresse : il garde seulement l’adresse technique de '
  + 'notification de ce navigateur, les types d’événements choisis et la date de mon accord. Je peux me '
  + 'désabonner à tout moment, depuis cette page ou depuis chaque notification.';

export const MESSAGES = {
  unsupported: 'Ce navigateur ne peut pas recevoir de notifications. Sur iPhone, ajoutez d’abord Palier à '
    + 'l’écran d’accueil (Partager, puis « Sur l’écran d’accueil »), puis ouvrez-le depuis l’icône.',
  denied: 'Les notifications sont bloquées pour ce site. Autorisez-les dans les réglages du navigateur, puis réessayez.',
  dismissed: 'Vous n’avez pas autorisé les notifications : aucun rappel ne sera envoyé.',
  consent: 'Cochez la case d’accord pour recevoir les rappels.',
  kinds: 'Choisissez au moins un type d’événement.',
  service: 'Le service de notification du navigateur ne répond pas. Réessayez plus tard.',
};

export function support() {
  const g = globalThis;
  if (!('serviceWorker' in g.navigator) || !('PushManager' in g) || !('Notification' in g)) return 'unsupported';
  return g.Notification.permission === 'denied' ? 'denied' : 'ok';
}

export function keyBytes(b64url) {
  const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (b64url.length % 4)) % 4);
  return Uint8Array.from(globalThis.atob(b64), (c) => c.charCodeAt(0));
}

// `key` was fetched when the form was shown, so the permission prompt follows the tap at once (Safari asks it).
export async function optIn({ code, kinds, consent, key }) {
  if (!consent) return { error: MESSAGES.consent };
  if (!kinds.length) return { error: MESSAGES.kinds };
  const supported = support();
  if (supported !== 'ok') return { error: MESSAGES[supported] };
  let applicationServerKey = key;
  if (!applicationServerKey) {
    const res = await api.vapidKey();
    if (res.error) return { error: res.error };
    applicationServerKey = res.key;
  }
  const permission = await globalThis.Notification.requestPermission();
  if (permission !== 'granted') return { error: permission === 'denied' ? MESSAGES.denied : MESSAGES.dismissed };
  let subscription;
  try {
    const reg = await within(globalThis.navigator.serviceWorker.ready, 20000);
    subscription = await reg.pushManager.getSubscription();
    if (subscription && !sameKey(subscription, applicationServerKey)) {
      await subscription.unsubscribe(); // made for older server keys: the push service would refuse us
      subscription = null;
    }
    subscription = subscription || await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(applicationServerKey) });
  } catch {
    return { error: MESSAGES.service };
  }
  const res = await api.subscribe({ subscription: subscription.toJSON(), site_code: code, kinds, consent: true, consent_text_version: CONSENT_VERSION });
  if (res.status !== 201) return { error: res.message };
  const { token, consent_at: at, consent_text_version: version } = res.body;
  // The endpoint lets the page notice a subscription the push service replaced (renew.js).
  api.keepSubscription(code, { token, kinds: res.body.kinds, consent_at: at, consent_text_version: version, endpoint: subscription.endpoint });
  return { subscribed: api.subscriptionOf(code) };
}

// The worker may never become ready (registration refused): a clear error beats a button busy forever.
const within = (promise, ms) => Promise.race([promise, new Promise((_, ko) => { setTimeout(() => ko(new Error('timeout')), ms); })]);

function sameKey(subscription, b64url) {
  const raw = subscription.options?.applicationServerKey;
  if (!raw) return true; // unknown: keep it, the server will tell if the push service refuses it
  const a = new Uint8Array(raw); const b = keyBytes(b64url);
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// Withdraws the consent of `token`; the browser's subscription goes only when no other site still uses it.
export async function optOut(code, token) {
  const res = await api.unsubscribe(token);
  if (res.status !== 200 && res.status !== 404) return { error: res.message };
  api.forgetSubscription(code, token);
  if (Object.keys(api.subscriptions()).length === 0 && support() !== 'unsupported') {
    try {
      const reg = await globalThis.navigator.serviceWorker.getRegistration('/');
      await (await reg?.pushManager.getSubscription())?.unsubscribe();
    } catch { /* the server no longer sends anything to it anyway */ }
  }
  return res.status === 404 ? { unknown: true } : { withdrawn_at: res.body.withdrawn_at };
}

// A staff's per-resident link (the QR code's fragment): what each answer means for the resident, in French.
export const LINK_MESSAGES = {
  link_expired: 'Ce QR code a déjà servi ou a expiré (il est valable 30 minutes, une seule fois). Demandez-en un '
    + 'nouveau à votre gardien ou à l’équipe de proximité.',
  link_mismatch: 'Ce QR code ne correspond pas à cet agenda. Demandez-en un nouveau à votre gardien ou à l’équipe '
    + 'de proximité.',
  unknown_token: 'Ce QR code n’est pas reconnu. Demandez-en un nouveau à votre gardien ou à l’équipe de proximité.',
};

// Ties this browser's consent to the resident of `linkToken`. `final` says the token can never serve again (the
// page then forgets it); a network failure or a server error leaves it usable for another try.
export async function linkSubscription(code, linkToken) {
  const mine = api.subscriptionOf(code);
  if (!mine) return { error: MESSAGES.consent, final: false };
  const res = await api.link(mine.token, linkToken);
  if (res.status === 200) {
    api.keepSubscription(code, { ...mine, linked_at: new Date().toISOString() });
    return { linked: api.subscriptionOf(code) };
  }
  const reason = res.body?.error?.code;
  if ([404, 409, 422].includes(res.status)) return { error: LINK_MESSAGES[reason] || LINK_MESSAGES.unknown_token, final: true };
  return { error: res.message, final: false };
}
