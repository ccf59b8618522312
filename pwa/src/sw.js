// The service worker: precaches the app shell and shows push notifications. No business logic here.
import { precacheAndRoute, cleanupOutdatedCaches, createHandlerBoundToURL } from 'workbox-precaching';
import { registerRoute, NavigationRoute } from 'workbox-routing';

precacheAndRoute(self.__WB_MANIFEST);
cleanupOutdatedCaches();
// Every page of the app is the shell; the API is never served from the cache.
registerRoute(new NavigationRoute(createHandlerBoundToURL('/index.html'), { denylist: [/^\/api\//] }));

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

const fmt = new Intl.DateTimeFormat('fr-FR', { weekday: 'long', day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit' });

self.addEventListener('push', (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch { data = {}; }
  const when = data.starts_at ? fmt.format(new Date(data.starts_at)) : '';
  const body = [when, data.place].filter(Boolean).join(' · ') || 'Nouvel événement à l’agenda';
  event.waitUntil(self.registration.showNotification(data.title || 'Palier', {
    body, lang: 'fr', icon: '/icons/icon-192.png', badge: '/icons/icon-192.png', tag: data.event_id || undefined,
    data: { url: data.event_id ? `/#/event/${data.event_id}` : '/#/events' },
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || '/';
  event.waitUntil(self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((list) => {
    for (const c of list) if ('focus' in c) { c.navigate(url); return c.focus(); }
    return self.clients.openWindow(url);
  }));
});
