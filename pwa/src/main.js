// Bootstrap: restore the session offline, start syncing, register the service worker and wait for consent to update.
import { html } from 'htm/preact';
import { render } from 'preact';
import { App } from './ui/app.js';
import { createTransport } from './transport.js';
import * as session from './session.js';
import { createSyncManager } from './sync/manager.js';
import { syncState } from './queries.js';
import { PublicApp, publicRoute } from './public/agenda.js';
import './styles.css';

const APP_VERSION = __APP_VERSION__; // set by build.mjs
const transport = createTransport();
let manager = null;
let waitingWorker = null;
const listeners = new Set();
const state = { session: null, authRequired: false, version: 0, syncing: false, toast: '', updateReady: false, scopeSites: [],
  syncStart: undefined }; // syncStart: the status bar's state read before the first render

function set(patch) {
  Object.assign(state, patch);
  for (const l of listeners) l({ ...state });
}

// `patch` goes out in the same update: the screens are drawn once per change, not once per field.
async function refreshScope(patch = {}) {
  if (!state.session) { set(patch); return; }
  const scope = await state.session.db.get('meta', 'scope');
  set({ ...patch, scopeSites: scope ? scope.sites : (state.session.user.sites || []).map((s) => s.id), version: state.version + 1 });
}

// After the first screen is drawn: once the main thread is idle, at most `timeout` ms later.
function whenIdle(fn, timeout = 1000) {
  if (typeof globalThis.requestIdleCallback === 'function') globalThis.requestIdleCallback(fn, { timeout });
  else setTimeout(fn, 0);
}

function startSync() {
  manager?.stop();
  manager = createSyncManager({
    db: state.session.db, transport, appVersion: APP_VERSION,
    onChange: () => refreshScope({ syncing: false }),
    onAuthRequired: () => set({ authRequired: true }),
  });
  set({ syncing: true });
  manager.start();
}

const controller = {
  state,
  appVersion: APP_VERSION,
  subscribe(fn) { listeners.add(fn); return () => listeners.delete(fn); },
  changed(toast = '') {
    set({ version: state.version + 1, toast });
    // Try to send right away; Background Sync takes over if the page is closed before it succeeds.
    manager?.run();
    registerBackgroundSync();
  },
  clearToast() { set({ toast: '' }); },
  async sync() { set({ syncing: true }); await manager?.run(); },
  async login(email, password) {
    const res = await session.login(transport, email, password);
    if (res.error) return res.error;
    // Same user again (session expired): keep the open database; another user: switch to theirs.
    const same = state.session && state.session.user.id === res.session.user.id;
    if (same) res.session.db.close(); else state.session?.db.close();
    const keep = same ? { ...state.session, user: res.session.user } : res.session;
    set({ session: keep, authRequired: false, syncStart: undefined });
    await refreshScope();
    startSync();
    navigator.storage?.persist?.().catch(() => {});
    return null;
  },
  async logout(force) {
    const res = await session.logout(transport, state.session, { force });
    if (res.refused) return res;
    manager?.stop();
    manager = null;
    set({ session: null, authRequired: false, syncStart: undefined, version: state.version + 1 });
    globalThis.location.hash = '#/';
    return res;
  },
  applyUpdate() {
    waitingWorker?.postMessage({ type: 'SKIP_WAITING' });
  },
};

function registerBackgroundSync() {
  navigator.serviceWorker?.ready.then((reg) => reg.sync?.register('palier-sync')).catch(() => {});
}

async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  const reg = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  const hadController = Boolean(navigator.serviceWorker.controller);
  const offer = (worker) => { waitingWorker = worker; set({ updateReady: true }); };
  if (reg.waiting && hadController) offer(reg.waiting);
  reg.addEventListener('updatefound', () => {
    const worker = reg.installing;
    worker?.addEventListener('statechange', () => {
      if (worker.state === 'installed' && navigator.serviceWorker.controller) offer(worker);
    });
  });
  let reloading = false;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (hadController && !reloading) { reloading = true; globalThis.location.reload(); }
  });
  // Background Sync: with this page open the worker asks it to sync (its status bar shows the run); with no page
  // open the worker pushes the outbox itself, through this same sync client (sync/background.js).
  navigator.serviceWorker.addEventListener('message', (e) => { if (e.data?.type === 'SYNC') manager?.run(); });
  globalThis.addEventListener('online', () => reg.update().catch(() => {}));
}

async function main() {
  const residents = publicRoute(globalThis.location.pathname);
  if (residents) {
    // The residents' agenda: no login, and the staff data kept on this phone is never opened.
    const root = document.getElementById('app');
    root.textContent = '';
    render(html`<${PublicApp} route=${residents} />`, root);
    registerServiceWorker().catch(() => {});
    document.documentElement.dataset.ready = '1';
    return;
  }
  const restored = await session.restore().catch(() => null);
  set({ session: restored });
  // The sites in scope and the status bar's state before the first render: screens drawn with none, then redrawn
  // with them, jump under the user's thumb (the event screen's residents list pushed its count form down: a layout
  // shift of 0.23; the status bar, empty then filled, pushed every screen down a little).
  if (restored) {
    const [start] = await Promise.all([syncState(restored.db), refreshScope()]);
    set({ syncStart: start });
  }
  const root = document.getElementById('app');
  root.textContent = ''; // the static "Chargement…" placeholder
  render(html`<${App} controller=${controller} />`, root);
  // The sync on start waits for the first screen to be drawn and read from the phone (its first pull page would
  // otherwise hold the stores that screen reads): idle callback, at most 1 s later. A login meanwhile starts its own.
  if (restored) whenIdle(() => { if (state.session === restored && !manager) startSync(); });
  registerServiceWorker().catch(() => {});
  document.documentElement.dataset.ready = '1';
}

main();
