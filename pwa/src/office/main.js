// Bootstrap of the head-office app (/bureau/): online only, no IndexedDB, no service worker; the session lives in
// the same httpOnly cookies as the field app's.
import { html } from 'htm/preact';
import { render } from 'preact';
import 'uplot/dist/uPlot.min.css';
import { createApi } from './api.js';
import { OfficeApp } from './ui/app.js';
import './office.css';

const listeners = new Set();
// user: undefined while the session is being checked, null when logged out.
const state = { user: undefined, expired: false };
function set(patch) {
  Object.assign(state, patch);
  for (const l of listeners) l({ ...state });
}

const api = createApi({ onExpired: () => { if (state.user) set({ expired: true }); } });

const controller = {
  state,
  api,
  subscribe(fn) { listeners.add(fn); return () => listeners.delete(fn); },
  async login(email, password) {
    try {
      set({ user: await api.login(email, password), expired: false });
      return null;
    } catch (e) {
      return e.status === 0 ? 'Pas de connexion au serveur.' : e.message;
    }
  },
  async logout() {
    await api.logout();
    set({ user: null, expired: false });
  },
};

async function main() {
  const root = document.getElementById('app');
  root.textContent = ''; // the static "Chargement…" placeholder
  render(html`<${OfficeApp} controller=${controller} />`, root);
  set({ user: await api.me() });
  document.documentElement.dataset.ready = '1';
}

main();
