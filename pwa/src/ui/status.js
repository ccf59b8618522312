// The sync status, always in sight, and its detail screen: pending, last sync, errors, rejected items.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { Header, Loading, useApp, useQuery, short } from './common.js';
import { OP_LABELS } from './labels.js';
import { syncState } from '../queries.js';
import { syncCondition } from '../sync/client.js';

// The browser's own view of the network, live: going offline shows at once, not at the next sync attempt.
function useOnline() {
  const [online, setOnline] = useState(globalThis.navigator?.onLine !== false);
  useEffect(() => {
    const on = () => setOnline(globalThis.navigator?.onLine !== false);
    globalThis.addEventListener('online', on);
    globalThis.addEventListener('offline', on);
    return () => { globalThis.removeEventListener('online', on); globalThis.removeEventListener('offline', on); };
  }, []);
  return online;
}

// Being offline is the field's normal state: a calm "Hors ligne — N en attente", never the red of an error.
// Red is kept for what needs someone: a server error, a refused item, a session to renew.
export function StatusBar() {
  const app = useApp();
  const online = useOnline();
  // The state read before the app's first render (main.js): the bar is drawn with its text at once, as the bar's
  // height follows its text (one line of date or two, an error), and an empty bar growing pushed every screen down.
  const st = useQuery((db) => syncState(db), [], app.syncStart);
  if (!st) return html`<div class="status" />`;
  const cond = syncCondition(st.error, online);
  const bad = cond === 'server' || cond === 'auth' || st.rejected.length > 0;
  const cls = bad ? 'status bad' : cond === 'offline' || st.pending ? 'status wait' : 'status ok';
  return html`<div class=${cls} role="status" aria-live="polite">
    <a href="#/sync" class="status-text">
      <strong>${cond === 'offline' && html`<span data-t="offline">Hors ligne — </span>`}<span data-t="pending">${st.pending} en attente</span></strong>
      <span>Dernière synchro : ${short(st.lastSync)}</span>
      ${cond === 'auth' && html`<span class="err">Session expirée : reconnectez-vous</span>`}
      ${cond === 'server' && html`<span class="err">${st.error.message}</span>`}
      ${st.rejected.length > 0 && html`<span class="err">${st.rejected.length} refusé(s)</span>`}
    </a>
    <button class="btn small sync" type="button" onClick=${() => app.sync()} disabled=${app.syncing}>
      <span class="labels"><span class=${app.syncing ? 'off' : ''}>Synchroniser</span>
      <span class=${app.syncing ? '' : 'off'}>Synchro…</span></span></button>
  </div>`;
}

const CONDITION = {
  offline: () => 'aucune (hors ligne : les saisies attendent sur le téléphone)',
  auth: () => 'session expirée : reconnectez-vous',
  server: (e) => `${e.message} (${short(e.at)})`,
};

export function SyncPage() {
  const app = useApp();
  const online = useOnline();
  const st = useQuery((db) => syncState(db));
  const [confirm, setConfirm] = useState(0);
  if (!st) return html`<${Loading} />`;
  async function logout() {
    const res = await app.logout(confirm > 0);
    if (res?.refused) setConfirm(res.pending);
  }
  return html`<section><${Header} title="Synchronisation" />
    <dl class="card kv">
      <dt>En attente d'envoi</dt><dd data-t="pending-count">${st.pending}</dd>
      <dt>Dernière synchro réussie</dt><dd>${short(st.lastSync)}</dd>
      <dt>Erreur</dt><dd>${CONDITION[syncCondition(st.error, online)]?.(st.error) || 'aucune'}</dd>
      <dt>Connecté(e)</dt><dd>${app.user.display_name} (${app.user.email})</dd>
      <dt>Version</dt><dd>${app.version_label}</dd>
    </dl>
    <button class="btn primary big" type="button" onClick=${() => app.sync()} disabled=${app.syncing}>Synchroniser maintenant</button>
    <h2>Éléments refusés</h2>
    ${st.rejected.length === 0 ? html`<p class="muted">Aucun.</p>` : html`<ul class="list">${st.rejected.map((r) => html`
      <li class="row"><strong>${OP_LABELS[r.op] || r.op}</strong><span class="err">${r.reason?.message || r.reason?.code}</span>
      <span class="muted">saisi le ${short(r.at)}</span></li>`)}</ul>`}
    ${st.conflicts.length > 0 && html`<h2>Modifications en conflit</h2><p class="muted">La valeur du serveur a été gardée ; le siège arbitrera.</p>
      <ul class="list">${st.conflicts.map((c) => html`<li class="row">${OP_LABELS[c.op] || c.op} : ${c.fields.join(', ')}</li>`)}</ul>`}
    <h2>Déconnexion</h2>
    ${confirm > 0 && html`<p class="error" role="alert">${confirm} saisie(s) ne sont pas encore envoyées. Les effacer quand même ?
      Elles seront perdues.</p>`}
    <button class="btn danger" type="button" onClick=${logout}>${confirm > 0 ? 'Effacer et me déconnecter' : 'Me déconnecter'}</button>
    <p class="muted">La déconnexion efface les données des habitants de ce téléphone.</p>
  </section>`;
}
