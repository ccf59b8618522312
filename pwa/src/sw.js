// The service worker: precaches the app shell and shows push notifications. No business logic here.
import { precacheAndRoute, cleanupOutdatedCaches, createHandlerBoundToURL } from 'workbox-precaching';
import { registerRoute, NavigationRoute } from 'workbox-routing';
import { notice, safePath } from './public/notice.js';

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

// Background Sync: wake an open page, which owns the sync (the worker holds no data logic).
self.addEventListener('sync', (event) => {
  if (event.tag !== 'palier-sync') return;
  event.waitUntil(self.clients.matchAll({ type: 'window' }).then((list) => {
    for (const c of list) c.postMessage({ type: 'SYNC' });
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
