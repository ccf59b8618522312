// The sync status, always in sight, and its detail screen: pending, last sync, errors, rejected items.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { Header, Loading, useApp, useQuery, short } from './common.js';
import { OP_LABELS } from './labels.js';
import { syncState } from '../queries.js';

export function StatusBar() {
  const app = useApp();
  const st = useQuery((db) => syncState(db));
  if (!st) return html`<div class="status" />`;
  const cls = st.error || st.rejected.length ? 'status bad' : st.pending ? 'status wait' : 'status ok';
  return html`<div class=${cls} role="status" aria-live="polite">
    <a href="#/sync" class="status-text">
      <strong data-t="pending">${st.pending} en attente</strong>
      <span>Dernière synchro : ${short(st.lastSync)}</span>
      ${st.error && html`<span class="err">${st.error.message}</span>`}
      ${st.rejected.length > 0 && html`<span class="err">${st.rejected.length} refusé(s)</span>`}
    </a>
    <button class="btn small" type="button" onClick=${() => app.sync()} disabled=${app.syncing}>
      ${app.syncing ? 'Synchro…' : 'Synchroniser'}</button>
  </div>`;
}

export function SyncPage() {
  const app = useApp();
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
      <dt>Erreur</dt><dd>${st.error ? `${st.error.message} (${short(st.error.at)})` : 'aucune'}</dd>
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
