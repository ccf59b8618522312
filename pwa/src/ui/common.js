// Shared UI pieces: the app context, live queries re-run after every write or sync, French formats.
import { html } from 'htm/preact';
import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';

export const AppCtx = createContext(null);
export const useApp = () => useContext(AppCtx);

// Re-runs `fn(db)` whenever the app's data version changes. `initial`: the answer already read, if any, drawn at once.
export function useQuery(fn, deps = [], initial = undefined) {
  const app = useApp();
  const [value, setValue] = useState(initial);
  useEffect(() => {
    let live = true;
    fn(app.db).then((v) => { if (live) setValue(v); }).catch(() => { if (live) setValue(null); });
    return () => { live = false; };
  }, [app.version, ...deps]);
  return value;
}

const dtf = new Intl.DateTimeFormat('fr-FR', { weekday: 'long', day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit' });
const tf = new Intl.DateTimeFormat('fr-FR', { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
export const when = (iso) => (iso ? dtf.format(new Date(iso)) : '');
export const short = (iso) => (iso ? tf.format(new Date(iso)) : 'jamais');
export const fmtInt = (n) => new Intl.NumberFormat('fr-FR').format(n);

export const today = () => {
  const d = new Date();
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
};

export const go = (hash) => { globalThis.location.hash = hash; };

export function Header({ title, back }) {
  return html`<div class="screen-head">
    ${back && html`<a class="back" href=${back} aria-label="Retour">‹</a>`}
    <h1>${title}</h1>
  </div>`;
}

export function Loading() {
  return html`<p class="muted">Chargement…</p>`;
}

export const hhLabel = (h) => (h ? `${h.building} · esc. ${h.staircase} · porte ${h.door}` : '');
export const personName = (r) => (r ? `${r.first_name} ${r.last_name}` : '');
