// The lists: visits, residents (search), events with their attendance, engagements; filtered, paged, exportable.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { qs } from '../api.js';
import {
  ENGAGEMENT_ROLES, ENGAGEMENT_STATUSES, EVENT_KINDS, EVENT_STATUSES, ErrorBox, ExportButtons, Filters, Loading,
  OUTCOMES, Pager, fmtDate, fmtDateTime, fmtInt, label, useFetch,
} from './common.js';

const yes = (v) => (v ? 'oui' : 'non');
const person = (r) => [r.first_name, r.last_name].filter(Boolean).join(' ');
const home = (r) => [r.building, r.staircase && `esc. ${r.staircase}`, r.door && `porte ${r.door}`].filter(Boolean).join(' · ');

// Per list: its filters (those of the API, which the export takes too), extra selects, and columns [heading, cell].
export const KINDS = {
  visits: {
    title: 'Visites', filters: ['site_id', 'from', 'to'], selects: [['outcome', 'Résultat', OUTCOMES]],
    columns: [['Date', (r) => fmtDateTime(r.visited_at)], ['Site', (r) => r.site_name], ['Logement', home],
      ['Résultat', (r) => label(OUTCOMES, r.outcome)], ['Habitant', person], ['Par', (r) => r.user_name || ''],
      ['Suivi', (r) => yes(r.follow_up)]],
  },
  residents: {
    title: 'Habitants', filters: ['site_id', 'action_id'], search: true,
    selects: [['engaged', 'Engagement', [['true', 'Engagés'], ['false', 'Non engagés']]]],
    columns: [['Nom', (r) => r.last_name], ['Prénom', (r) => r.first_name], ['Site', (r) => r.site_name],
      ['Logement', home], ['Engagé', (r) => yes(r.engaged)],
      ['Doublon', (r) => (r.duplicate_of ? 'à examiner' : '')]],
  },
  events: {
    title: 'Événements', filters: ['site_id', 'from', 'to'], selects: [['kind', 'Type', EVENT_KINDS]],
    columns: [['Date', (r) => fmtDateTime(r.starts_at)], ['Titre', (r) => r.title], ['Type', (r) => label(EVENT_KINDS, r.kind)],
      ['Sites', (r) => (r.sites || []).join(', ')], ['Statut', (r) => label(EVENT_STATUSES, r.status)],
      ['Présents nommés', (r) => fmtInt(r.named_attendance), 'num'], ['Comptés', (r) => fmtInt(r.head_count), 'num']],
  },
  engagements: {
    title: 'Engagements', filters: ['site_id', 'action_id', 'from', 'to'], selects: [['status', 'Statut', ENGAGEMENT_STATUSES]],
    columns: [['Début', (r) => fmtDate(r.started_on)], ['Habitant', person], ['Action', (r) => r.action_name],
      ['Site', (r) => r.site_name], ['Rôle', (r) => label(ENGAGEMENT_ROLES, r.role)],
      ['Statut', (r) => label(ENGAGEMENT_STATUSES, r.status)], ['Fin', (r) => (r.ended_on ? fmtDate(r.ended_on) : '')]],
  },
};

const PER_PAGE = 50;

export function Lists({ kind }) {
  const spec = KINDS[kind] || KINDS.visits;
  const [filters, setFilters] = useState({ page: 1 });
  const names = [...spec.filters, ...spec.selects.map(([n]) => n), ...(spec.search ? ['q'] : [])];
  const query = Object.fromEntries(names.map((n) => [n, filters[n]]));
  const { data, error } = useFetch(`/api/lists/${kind}${qs({ ...query, page: filters.page, per_page: PER_PAGE })}`);
  const [open, setOpen] = useState(null);
  const rowId = (row) => row.id || row.event_id;
  return html`<section class="lists">
    <nav class="subtabs" aria-label="Listes">${Object.entries(KINDS).map(([k, s]) => html`
      <a href=${`#/lists/${k}`} aria-current=${k === kind ? 'page' : undefined}>${s.title}</a>`)}</nav>
    <div class="head"><h1>${spec.title}</h1><${ExportButtons} kind=${kind} filters=${query} /></div>
    <${Filters} value=${filters} onChange=${setFilters} fields=${spec.filters}>
      ${spec.search && html`<label><span>Recherche</span><input type="search" name="q" placeholder="Nom, bâtiment, porte"
        value=${filters.q || ''} onInput=${(e) => setFilters({ ...filters, q: e.currentTarget.value, page: 1 })} /></label>`}
      ${spec.selects.map(([name, text, options]) => html`<label key=${name}><span>${text}</span><select name=${name} value=${filters[name] || ''}
        onChange=${(e) => setFilters({ ...filters, [name]: e.currentTarget.value, page: 1 })}>
        <option value="">Tous</option>${options.map(([c, l]) => html`<option value=${c}>${l}</option>`)}</select></label>`)}
    </${Filters}>
    <${ErrorBox} error=${error} />
    ${data === undefined ? html`<${Loading} />` : data && html`
      <table class="grid" data-t=${`list-${kind}`}><thead><tr>${spec.columns.map(([h, , c]) => html`<th class=${c}>${h}</th>`)}
        ${kind === 'events' && html`<th><span class="sr">Détail</span></th>`}</tr></thead>
      <tbody>${data.items.length === 0 ? html`<tr><td colspan=${spec.columns.length + 1} class="muted">Aucun résultat.</td></tr>`
        : data.items.map((row) => html`<tr key=${rowId(row)}>${spec.columns.map(([, cell, c]) => html`<td class=${c}>${cell(row)}</td>`)}
        ${kind === 'events' && html`<td><button class="btn small" type="button" aria-expanded=${open === row.event_id}
          onClick=${() => setOpen(open === row.event_id ? null : row.event_id)}>Présences</button></td>`}</tr>`)}</tbody></table>
      <${Pager} total=${data.total} page=${data.page} perPage=${data.per_page} onPage=${(p) => setFilters({ ...filters, page: p })} />`}
    ${open && html`<${Attendance} key=${open} id=${open} />`}
  </section>`;
}

const CATEGORIES = { adults: 'adultes', children: 'enfants', seniors: 'seniors' };

function Attendance({ id }) {
  const { data, error } = useFetch(`/api/lists/events/${id}/attendance`);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return html`<${Loading} />`;
  const byCat = Object.entries(data.head_count_by_category || {});
  return html`<div class="card" data-t="attendance"><h2>Présences : ${data.title}</h2>
    <p>${fmtInt(data.named_attendance)} présents nommés · ${fmtInt(data.head_count)} comptés
      ${byCat.length > 0 && `(${byCat.map(([c, n]) => `${fmtInt(n)} ${CATEGORIES[c] || c}`).join(', ')})`}</p>
    ${data.items.length === 0 ? html`<p class="muted">Aucune présence nommée.</p>` : html`<table class="grid">
      <thead><tr><th>Habitant</th><th>Site</th><th>Pointé le</th></tr></thead>
      <tbody>${data.items.map((a) => html`<tr key=${a.id}><td>${person(a)}</td><td>${a.site_name}</td>
        <td>${fmtDateTime(a.checked_in_at)}</td></tr>`)}</tbody></table>`}
  </div>`;
}
