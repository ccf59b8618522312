// The service worker: precaches the app shell and shows push notifications; with no page open, Background Sync
// pushes the outbox through the page's own sync client. No business logic of its own here.
import { precacheAndRoute, cleanupOutdatedCaches, createHandlerBoundToURL } from 'workbox-precaching';
import { registerRoute, NavigationRoute } from 'workbox-routing';
import { notice, safePath } from './public/notice.js';
import { backgroundPush } from './sync/background.js';
import { onSubscriptionChange } from './public/renew.js';

precacheAndRoute(self.__WB_MANIFEST);
cleanupOutdatedCaches();
// Every page of the app is the shell; the API and the online-only head-office app (/bureau) never come from the cache.
registerRoute(new NavigationRoute(createHandlerBoundToURL('/index.html'), { denylist: [/^\/api\//, /^\/bureau/] }));

// A new version waits until the user consents (the page sends SKIP_WAITING).
self.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'SKIP_WAITING') self.skipWaiting();
});

// The first install takes the open page at once; later versions wait for consent above.
self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

// Background Sync: an open page of the field app owns the sync (and its screen); with none open, the worker
// pushes the outbox itself with the page's own sync client (sync/background.js), so a closed tab gains too.
// A rejected waitUntil (no network, server outage) makes the browser fire the event again later.
self.addEventListener('sync', (event) => {
  if (event.tag !== 'palier-sync') return;
  event.waitUntil(self.clients.matchAll({ type: 'window' }).then((list) => {
    const app = list.filter((c) => ['/', '/index.html'].includes(new URL(c.url).pathname));
    for (const c of app) c.postMessage({ type: 'SYNC' });
    return app.length ? undefined : backgroundPush({ appVersion: __APP_VERSION__ });
  }));
});

// Push: one notification per payload (see docs/push.md), in French with the time and place; the same event's
// newer notice replaces the older one (tag). The payload holds no personal data, only the event and two links.
self.addEventListener('push', (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch { data = {}; }
  const { title, body } = notice(data);
  const unsubscribe = data.unsubscribe_url ? safePath(data.unsubscribe_url) : '';
  event.waitUntil(self.registration.showNotification(title, {
    body, lang: 'fr', dir: 'ltr', icon: '/icons/icon-192.png', badge: '/icons/icon-192.png',
    tag: data.event_id ? `event-${data.event_id}` : undefined, renotify: Boolean(data.event_id),
    actions: unsubscribe ? [{ action: 'unsubscribe', title: 'Se désabonner' }] : [],
    data: { url: safePath(data.url), unsubscribe_url: unsubscribe },
  }));
});

// The push service replaced (or expired) this browser's subscription: subscribe again with the same key and move
// every consent to it on the server (public/renew.js), keeping its kinds and a resident's link.
self.addEventListener('pushsubscriptionchange', (event) => {
  event.waitUntil(onSubscriptionChange(event, self.registration.pushManager).catch(() => {}));
});

// A click opens the event's public page; "Se désabonner" opens the page that withdraws with the link's token.
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  const path = event.action === 'unsubscribe' && data.unsubscribe_url ? data.unsubscribe_url : data.url;
  const opening = openPage(new URL(safePath(path), self.location.origin).href);
  event.waitUntil(opening);
});

// Focus a window already on that page, else reuse a window of the public agenda; a window of the staff app is
// never navigated away (a form may be half filled); else open a new one.
async function openPage(href) {
  const list = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const same = list.find((c) => c.url === href);
  if (same) return same.focus();
  const agenda = list.find((c) => new URL(c.url).pathname.startsWith('/agenda/') && 'navigate' in c);
  if (agenda) {
    const moved = await agenda.navigate(href);
    return (moved || agenda).focus().catch(() => moved || agenda);
  }
  return self.clients.openWindow(href);
}
