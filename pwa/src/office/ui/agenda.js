// The agenda: create, edit and cancel events (each change reaches the phones and feeds the push reminders).
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { qs } from '../api.js';
import {
  EVENT_KINDS, EVENT_STATUSES, ErrorBox, FormEnd, Loading, Pager, fmtDateTime, label, useAction, useFetch, useOffice,
} from './common.js';

const pad = (n) => String(n).padStart(2, '0');
// An aware ISO datetime as the value of a datetime-local input (local time), and back.
export const toLocalInput = (iso) => {
  if (!iso) return '';
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
};
const fromLocalInput = (v) => (v ? new Date(v).toISOString() : null);

export function Agenda() {
  const [filters, setFilters] = useState({ site_id: '', past: false, page: 1 });
  const [since] = useState(() => { const d = new Date(); d.setHours(0, 0, 0, 0); return d.toISOString(); });
  const [editing, setEditing] = useState(null); // null, 'new' or an event
  const sites = useFetch('/api/sites').data || [];
  const list = useFetch(`/api/agenda/events${qs({ site_id: filters.site_id, from: filters.past ? '' : since,
    include_cancelled: 'true', page: filters.page, per_page: 50 })}`);
  const items = list.data?.items;
  const siteName = new Map(sites.map((s) => [s.id, s.name]));
  const saved = () => { setEditing(null); list.reload(); };
  return html`<section class="agenda">
    <div class="head"><h1>Agenda</h1>
      <button class="btn small primary" type="button" onClick=${() => setEditing('new')}>Nouvel événement</button></div>
    <form class="filters" onSubmit=${(e) => e.preventDefault()}><label><span>Site</span>
      <select value=${filters.site_id} onChange=${(e) => setFilters({ ...filters, site_id: e.currentTarget.value, page: 1 })}>
        <option value="">Tous les sites</option>${sites.map((s) => html`<option value=${s.id}>${s.name}</option>`)}</select></label>
      <label class="check"><input type="checkbox" checked=${filters.past}
        onChange=${(e) => setFilters({ ...filters, past: e.currentTarget.checked, page: 1 })} /> Afficher les événements passés</label></form>
    ${editing && html`<${EventForm} key=${editing === 'new' ? 'new' : editing.id} event=${editing === 'new' ? null : editing}
      sites=${sites} onDone=${saved} onCancel=${() => setEditing(null)} />`}
    <${ErrorBox} error=${list.error} />
    ${list.data === undefined ? html`<${Loading} />` : items && html`<table class="grid" data-t="agenda">
      <thead><tr><th>Début</th><th>Titre</th><th>Type</th><th>Lieu</th><th>Sites</th><th>Statut</th><th><span class="sr">Actions</span></th></tr></thead>
      <tbody>${items.length === 0 ? html`<tr><td colspan="7" class="muted">Aucun événement.</td></tr>` : items.map((ev) => html`
        <tr key=${ev.id} class=${ev.status === 'cancelled' ? 'cancelled' : ''}>
          <td>${fmtDateTime(ev.starts_at)}</td><td>${ev.title}</td><td>${label(EVENT_KINDS, ev.kind)}</td><td>${ev.place}</td>
          <td>${(ev.site_ids || []).map((id) => siteName.get(id) || '—').join(', ')}</td>
          <td>${label(EVENT_STATUSES, ev.status)}</td>
          <td class="actions">${ev.status !== 'cancelled' && html`
            <button class="btn small" type="button" onClick=${() => setEditing(ev)}>Modifier</button>
            <${CancelButton} ev=${ev} done=${list.reload} />`}</td></tr>`)}</tbody></table>
      <${Pager} total=${list.data.total} page=${list.data.page} perPage=${list.data.per_page}
        onPage=${(p) => setFilters({ ...filters, page: p })} />`}
  </section>`;
}

function CancelButton({ ev, done }) {
  const { api } = useOffice();
  const act = useAction();
  const [asking, setAsking] = useState(false);
  if (!asking) return html`<button class="btn small danger" type="button" onClick=${() => setAsking(true)}>Annuler l’événement</button>`;
  return html`<span class="confirm" role="group" aria-label="Confirmer l’annulation">
    Annuler « ${ev.title} » ? Les habitants abonnés seront prévenus.
    <button class="btn small danger" type="button" disabled=${act.busy}
      onClick=${() => act.run(() => api.post(`/api/agenda/events/${ev.id}/cancel`, {}), done)}>Confirmer l’annulation</button>
    <button class="btn small" type="button" onClick=${() => setAsking(false)}>Garder</button>
    <${ErrorBox} error=${act.error} /></span>`;
}

function EventForm({ event, sites, onDone, onCancel }) {
  const { api } = useOffice();
  const act = useAction();
  const [v, setV] = useState(event ? {
    title: event.title, kind: event.kind, place: event.place || '', description: event.description || '',
    starts_at: toLocalInput(event.starts_at), ends_at: toLocalInput(event.ends_at), site_ids: event.site_ids || [],
  } : { title: '', kind: 'atelier', place: '', description: '', starts_at: '', ends_at: '', site_ids: [] });
  const set = (k) => (e) => setV({ ...v, [k]: e.currentTarget.value });
  function submit(e) {
    e.preventDefault();
    if (!v.site_ids.length) { act.setError('Choisissez au moins un site.'); return; }
    if (v.ends_at && v.starts_at && v.ends_at <= v.starts_at) { act.setError('La fin doit être après le début.'); return; }
    const body = { ...v, starts_at: fromLocalInput(v.starts_at), ends_at: fromLocalInput(v.ends_at) };
    act.run(() => (event ? api.patch(`/api/agenda/events/${event.id}`, body) : api.post('/api/agenda/events', body)), onDone);
  }
  return html`<form class="card event-form" onSubmit=${submit} aria-label=${event ? 'Modifier l’événement' : 'Nouvel événement'}>
    <h2>${event ? 'Modifier l’événement' : 'Nouvel événement'}</h2>
    <div class="form-grid">
      <label><span>Titre</span><input name="title" required maxlength="200" value=${v.title} onInput=${set('title')} /></label>
      <label><span>Type</span><select name="kind" value=${v.kind} onChange=${set('kind')}>
        ${EVENT_KINDS.map(([c, l]) => html`<option value=${c}>${l}</option>`)}</select></label>
      <label><span>Début</span><input type="datetime-local" name="starts_at" required value=${v.starts_at} onInput=${set('starts_at')} /></label>
      <label><span>Fin</span><input type="datetime-local" name="ends_at" required value=${v.ends_at} onInput=${set('ends_at')} /></label>
      <label><span>Lieu</span><input name="place" maxlength="200" value=${v.place} onInput=${set('place')} /></label>
      <label class="wide"><span>Description</span><textarea name="description" rows="3" value=${v.description} onInput=${set('description')}></textarea></label>
    </div>
    <${FormEnd} sites=${sites} value=${v.site_ids} onSites=${(ids) => setV({ ...v, site_ids: ids })} act=${act} onCancel=${onCancel} />
  </form>`;
}
