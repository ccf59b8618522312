// The team: accounts, roles and sites (admins), deactivation with confirmation, and the state of each device so
// that a phone which has not synced for days stands out.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import {
  ErrorBox, FormEnd, Loading, USER_ROLES, fmtDateTime, fmtInt, label, useAction, useFetch, useOffice,
} from './common.js';

export function Team() {
  const { user } = useOffice();
  return html`<section class="team">
    <h1>Équipe</h1>
    <${Devices} />
    ${user.role === 'admin' ? html`<${Users} />`
      : html`<h2>Comptes</h2><p class="muted">La création et la modification des comptes sont réservées aux administrateurs.</p>`}
  </section>`;
}

function Devices() {
  // The API answers a plain array, stalest first; its user carries `name` (the account's display name).
  const { data: items, error, reload } = useFetch('/api/devices');
  const stale = (items || []).filter((d) => d.stale).length;
  return html`<div class="head"><h2>Appareils</h2><button class="btn small" type="button" onClick=${reload}>Actualiser</button></div>
    ${stale > 0 && html`<p class="warn" role="status" data-t="stale-count">${stale === 1 ? '1 appareil n’a pas' : `${stale} appareils n’ont pas`} synchronisé depuis plusieurs jours.</p>`}
    <${ErrorBox} error=${error} />
    ${items === undefined ? html`<${Loading} />` : items && html`<table class="grid" data-t="devices">
      <thead><tr><th>Personne</th><th>Rôle</th><th>Sites</th><th>Dernière synchro</th><th class="num">En attente</th><th>Version</th></tr></thead>
      <tbody>${items.length === 0 ? html`<tr><td colspan="6" class="muted">Aucun appareil n’a encore synchronisé.</td></tr>`
        : items.map((d) => html`<tr key=${d.client_id} class=${d.stale ? 'stale' : ''}>
          <td>${d.user.name}</td><td>${label(USER_ROLES, d.user.role)}</td>
          <td>${(d.sites || []).map((s) => s.name).join(', ')}</td>
          <td>${fmtDateTime(d.last_sync_at)}${d.stale && html` <strong class="tag bad">${d.days_since_sync === null || d.days_since_sync === undefined
            ? 'jamais synchronisé' : `il y a ${fmtInt(d.days_since_sync)} j`}</strong>`}</td>
          <td class="num">${fmtInt(d.pending_reported)}</td><td>${d.app_version || '—'}</td></tr>`)}</tbody></table>`}`;
}

function Users() {
  const { data, error, reload } = useFetch('/api/users');
  const sites = useFetch('/api/sites').data || [];
  const [editing, setEditing] = useState(null);
  return html`<div class="head"><h2>Comptes</h2>
      <button class="btn small primary" type="button" onClick=${() => setEditing('new')}>Nouveau compte</button></div>
    ${editing && html`<${UserForm} key=${editing === 'new' ? 'new' : editing.id} user=${editing === 'new' ? null : editing}
      sites=${sites} onDone=${() => { setEditing(null); reload(); }} onCancel=${() => setEditing(null)} />`}
    <${ErrorBox} error=${error} />
    ${data === undefined ? html`<${Loading} />` : data && html`<table class="grid" data-t="users">
      <thead><tr><th>Nom</th><th>Courriel</th><th>Rôle</th><th>Sites</th><th>Dernière synchro</th><th>État</th><th><span class="sr">Actions</span></th></tr></thead>
      <tbody>${data.map((u) => html`<tr key=${u.id} class=${u.active ? '' : 'inactive'}>
        <td>${u.display_name}</td><td>${u.email}</td><td>${label(USER_ROLES, u.role)}</td>
        <td>${u.sites.map((s) => s.name).join(', ') || '—'}</td><td>${fmtDateTime(u.last_sync_at)}</td><td>${u.active ? 'Actif' : 'Désactivé'}</td>
        <td class="actions"><button class="btn small" type="button" onClick=${() => setEditing(u)}>Modifier</button>
          <${ActiveToggle} u=${u} done=${reload} /></td></tr>`)}</tbody></table>`}`;
}

function ActiveToggle({ u, done }) {
  const { api, user } = useOffice();
  const act = useAction();
  const [asking, setAsking] = useState(false);
  const set = (active) => act.run(() => api.patch(`/api/users/${u.id}`, { active }), () => { setAsking(false); done(); });
  if (u.id === user.id) return null; // one cannot lock oneself out
  if (!u.active) return html`<button class="btn small" type="button" disabled=${act.busy} onClick=${() => set(true)}>Réactiver</button>`;
  if (!asking) return html`<button class="btn small danger" type="button" onClick=${() => setAsking(true)}>Désactiver</button>`;
  return html`<span class="confirm" role="group" aria-label="Confirmer la désactivation">
    Désactiver ${u.display_name} ? Ses sessions sont coupées tout de suite.
    <button class="btn small danger" type="button" disabled=${act.busy} onClick=${() => set(false)}>Confirmer la désactivation</button>
    <button class="btn small" type="button" onClick=${() => setAsking(false)}>Annuler</button>
    <${ErrorBox} error=${act.error} /></span>`;
}

function UserForm({ user, sites, onDone, onCancel }) {
  const { api, user: me } = useOffice();
  const act = useAction();
  // The API refuses one's own role change (409 self_lockout): the field is shown, not offered.
  const self = user?.id === me.id;
  const [v, setV] = useState(user ? { display_name: user.display_name, role: user.role, site_ids: user.sites.map((s) => s.id), password: '' }
    : { email: '', display_name: '', role: 'staff', site_ids: [], password: '' });
  const set = (k) => (e) => setV({ ...v, [k]: e.currentTarget.value });
  function submit(e) {
    e.preventDefault();
    const body = { ...v };
    if (user && !body.password) delete body.password; // unchanged
    if (self) delete body.role;
    act.run(() => (user ? api.patch(`/api/users/${user.id}`, body) : api.post('/api/users', body)), onDone);
  }
  return html`<form class="card" onSubmit=${submit} aria-label=${user ? 'Modifier le compte' : 'Nouveau compte'}>
    <h3>${user ? `Modifier ${user.display_name}` : 'Nouveau compte'}</h3>
    <div class="form-grid">
      ${!user && html`<label><span>Courriel</span><input type="email" required value=${v.email} onInput=${set('email')} /></label>`}
      <label><span>Nom affiché</span><input required maxlength="120" value=${v.display_name} onInput=${set('display_name')} /></label>
      <label><span>Rôle</span><select value=${v.role} disabled=${self} onChange=${set('role')}>
        ${USER_ROLES.map(([c, l]) => html`<option value=${c}>${l}</option>`)}</select>
        ${self && html`<small class="muted">Un autre administrateur peut changer votre rôle.</small>`}</label>
      <label><span>${user ? 'Nouveau mot de passe (facultatif)' : 'Mot de passe'}</span><input type="password" autocomplete="new-password"
        minlength="12" required=${!user} value=${v.password} onInput=${set('password')} /></label>
    </div>
    <${FormEnd} sites=${sites} value=${v.site_ids} onSites=${(ids) => setV({ ...v, site_ids: ids })} act=${act} onCancel=${onCancel} />
  </form>`;
}
