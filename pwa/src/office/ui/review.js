// Review queues: what sync could not decide alone. Conflicts (keep one or edit), suspected duplicates (merge or
// keep apart), rejected mutations (fix or dismiss). Each decision goes to the server, which passes it to devices.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { personName as person } from '../../ui/common.js';
import { qs } from '../api.js';
import { ErrorBox, Loading, Pager, fmtDateTime, useAction, useFetch, useOffice } from './common.js';

const ENTITIES = { resident: 'Habitant', household: 'Logement', engagement: 'Engagement' };
const FIELDS = {
  first_name: 'Prénom', last_name: 'Nom', phone: 'Téléphone', email: 'Courriel', consent_contact: 'Accord de contact',
  consent_image: 'Droit à l’image', notes: 'Notes du logement', role: 'Rôle', status: 'Statut',
  started_on: 'Début', ended_on: 'Fin',
};
const OPS = {
  'visit.create': 'Visite', 'visit.delete': 'Suppression de visite', 'resident.create': 'Nouvel habitant',
  'resident.update': 'Fiche d’habitant', 'resident.delete': 'Suppression d’habitant',
  'household.update': 'Notes du logement', 'engagement.create': 'Engagement', 'engagement.update': 'Engagement',
  'attendance.create': 'Pointage', 'attendance.delete': 'Pointage annulé', 'headcount.create': 'Comptage',
};

export const show = (v) => (v === null || v === undefined || v === '' ? '(vide)'
  : typeof v === 'boolean' ? (v ? 'oui' : 'non') : typeof v === 'object' ? JSON.stringify(v) : String(v));

const who = (name) => name || 'inconnu';

const PER_PAGE = 20;

// One queue's page: the work still open (oldest first) or the decisions taken (newest first).
function useQueue(kind, state) {
  const [page, setPage] = useState(1);
  useEffect(() => setPage(1), [state]);
  const q = useFetch(`/api/review/${kind}${qs({ state, page, per_page: PER_PAGE })}`);
  return { ...q, setPage };
}

export function Review() {
  const [state, setState] = useState('open');
  const conflicts = useQueue('conflicts', state);
  const duplicates = useQueue('duplicates', state);
  const rejections = useQueue('rejections', state);
  const count = (q) => (q.data ? q.data.total ?? q.data.items.length : '…');
  const open = state === 'open';
  return html`<section class="review">
    <div class="head"><h1>Revue</h1>
      <nav class="subtabs" aria-label="À traiter ou décidé">
        <button class="btn small" type="button" aria-pressed=${open} onClick=${() => setState('open')}>À traiter</button>
        <button class="btn small" type="button" aria-pressed=${!open} onClick=${() => setState('resolved')}>Décisions prises</button></nav></div>
    <nav class="jump" aria-label="Files de revue">
      <${Jump} to="conflicts" text=${`Conflits (${count(conflicts)})`} />
      <${Jump} to="duplicates" text=${`Doublons (${count(duplicates)})`} />
      <${Jump} to="rejections" text=${`Refus (${count(rejections)})`} /></nav>
    <h2 id="conflicts">Conflits</h2>
    ${open && html`<p class="muted">Deux saisies ont modifié le même champ : la première arrivée a été gardée, l’autre attend votre choix.</p>`}
    <${Queue} q=${conflicts} empty=${open ? 'Aucun conflit à examiner.' : 'Aucun conflit tranché.'}
      item=${(c) => html`<${ConflictCard} key=${c.id} c=${c} done=${conflicts.reload} />`} />
    <h2 id="duplicates">Doublons possibles</h2>
    ${open && html`<p class="muted">Deux fiches d’habitant semblent désigner la même personne.</p>`}
    <${Queue} q=${duplicates} empty=${open ? 'Aucun doublon à examiner.' : 'Aucun doublon tranché.'}
      item=${(d) => html`<${DuplicateCard} key=${d.id} d=${d} done=${duplicates.reload} />`} />
    <h2 id="rejections">Saisies refusées</h2>
    ${open && html`<p class="muted">Le serveur a refusé ces saisies d’un appareil ; les suivantes ont été appliquées.</p>`}
    <${Queue} q=${rejections} empty=${open ? 'Aucune saisie refusée.' : 'Aucune saisie refusée traitée.'}
      item=${(r) => html`<${RejectionCard} key=${r.id} r=${r} done=${rejections.reload} />`} />
  </section>`;
}

// The hash holds the route, so the queues are reached by scrolling rather than by #anchors.
function Jump({ to, text }) {
  return html`<button class="btn small" type="button" onClick=${() => document.getElementById(to)?.scrollIntoView()}>${text}</button>`;
}

function Queue({ q, empty, item }) {
  if (q.error) return html`<${ErrorBox} error=${q.error} />`;
  if (!q.data) return html`<${Loading} />`;
  if (q.data.items.length === 0) return html`<p class="ok">${empty}</p>`;
  return html`<ul class="cards">${q.data.items.map(item)}</ul>
    ${q.data.total > q.data.per_page && html`<${Pager} total=${q.data.total} page=${q.data.page} perPage=${q.data.per_page} onPage=${q.setPage} />`}`;
}

const DECISIONS = { resolved: 'tranché', merged: 'fusionnés', distinct: 'gardés séparés', fixed: 'corrigée et appliquée',
  dismissed: 'écartée' };

// Who decided what and when, on a card of the "Décisions prises" view (which has no action buttons).
function Decided({ x, extra = '' }) {
  return html`<p class="ok" data-t="decided">${DECISIONS[x.status] || x.status}${extra} — par ${who(x.resolved_by_name)},
    le ${fmtDateTime(x.resolved_at)}</p>`;
}

function ConflictCard({ c, done }) {
  const { api } = useOffice();
  const act = useAction();
  const [editing, setEditing] = useState(false);
  const [value, setValue] = useState(typeof c.kept_value === 'string' ? c.kept_value : '');
  const resolve = (body) => act.run(() => api.post(`/api/review/conflicts/${c.id}/resolve`, body), done);
  const fieldName = FIELDS[c.field] || c.field;
  return html`<li class="card" data-t="conflict">
    <h3>${ENTITIES[c.entity] || c.entity} · ${fieldName}</h3>
    ${c.label && html`<p class="muted">${c.label}</p>`}
    <dl class="versus">
      <div><dt>Valeur gardée</dt><dd class="value">${show(c.kept_value)}</dd>
        <dd class="muted">par ${who(c.kept_by_name)}</dd></div>
      <div><dt>Valeur en attente</dt><dd class="value">${show(c.lost_value)}</dd>
        <dd class="muted">par ${who(c.lost_by_name)}, le ${fmtDateTime(c.created_at)}</dd></div>
    </dl>
    ${c.status !== 'open' ? html`<${Decided} x=${c} extra=${` : « ${show(c.resolution ? c.resolution.value : null)} »`} />` : html`<div class="actions">
      <button class="btn small" type="button" disabled=${act.busy} onClick=${() => resolve({ keep: 'kept' })}>Garder « ${show(c.kept_value)} »</button>
      <button class="btn small" type="button" disabled=${act.busy} onClick=${() => resolve({ keep: 'lost' })}>Prendre « ${show(c.lost_value)} »</button>
      <button class="btn small" type="button" aria-expanded=${editing} onClick=${() => setEditing(!editing)}>Corriger…</button>
    </div>`}
    ${editing && html`<form class="inline-form" onSubmit=${(e) => { e.preventDefault(); resolve({ value: typeof c.kept_value === 'boolean' ? value === 'true' : value }); }}>
      <label><span>${fieldName} (nouvelle valeur)</span>${typeof c.kept_value === 'boolean'
        ? html`<select value=${value} onChange=${(e) => setValue(e.currentTarget.value)}><option value="true">oui</option><option value="false">non</option></select>`
        : html`<input value=${value} onInput=${(e) => setValue(e.currentTarget.value)} />`}</label>
      <button class="btn small primary" type="submit" disabled=${act.busy}>Enregistrer cette valeur</button></form>`}
    <${ErrorBox} error=${act.error} />
  </li>`;
}

function DuplicateCard({ d, done }) {
  const { api } = useOffice();
  const act = useAction();
  const [confirm, setConfirm] = useState(null);
  const post = (path, body) => act.run(() => api.post(`/api/review/duplicates/${d.id}/${path}`, body), done);
  return html`<li class="card" data-t="duplicate">
    <h3>${person(d.resident)} / ${person(d.candidate)}</h3>
    <dl class="versus">
      ${[['A', d.resident], ['B', d.candidate]].map(([k, p]) => html`<div key=${k}><dt>Fiche ${k}</dt>
        <dd class="value">${person(p)}</dd><dd class="muted">${p.label}</dd>
        <dd class="muted">saisie par ${who(p.created_by_name)}, le ${fmtDateTime(p.created_at)}</dd></div>`)}
    </dl>
    ${d.status !== 'pending' ? html`<${Decided} x=${d} />` : confirm ? html`<p class="warn">Fusionner garde la fiche ${confirm === d.resident.id ? 'A' : 'B'} ; les visites,
        engagements et présences de l’autre fiche lui sont rattachés.</p>
      <div class="actions"><button class="btn small primary" type="button" disabled=${act.busy}
        onClick=${() => post('merge', { keep: confirm })}>Confirmer la fusion</button>
        <button class="btn small" type="button" onClick=${() => setConfirm(null)}>Annuler</button></div>`
    : html`<div class="actions">
      <button class="btn small" type="button" onClick=${() => setConfirm(d.resident.id)}>Fusionner (garder A)</button>
      <button class="btn small" type="button" onClick=${() => setConfirm(d.candidate.id)}>Fusionner (garder B)</button>
      <button class="btn small" type="button" disabled=${act.busy} onClick=${() => post('distinct', {})}>Deux personnes différentes</button></div>`}
    <${ErrorBox} error=${act.error} />
  </li>`;
}

// The fields a person may correct: plain values at the top of the args and, for an update, its changes; ids and
// the base version are the record's identity, never edited.
export function fixable(args) {
  const out = [];
  for (const [k, v] of Object.entries(args || {})) {
    if (k === 'changes' && v && typeof v === 'object') {
      for (const [ck, cv] of Object.entries(v)) if (cv === null || typeof cv !== 'object') out.push([`changes.${ck}`, ck, cv]);
    } else if (k !== 'id' && k !== 'base_seq' && !k.endsWith('_id') && (v === null || typeof v !== 'object')) {
      out.push([k, k, v]);
    }
  }
  return out;
}

// The corrected fields as the fix's body: edited top-level values, and the update's whole changes when one moved.
export function fixBody(args, edits) {
  const body = {};
  for (const [path, v] of Object.entries(edits)) {
    if (path.startsWith('changes.')) body.changes = { ...(body.changes || args.changes), [path.slice(8)]: v };
    else body[path] = v;
  }
  return { args: body };
}

function RejectionCard({ r, done }) {
  const { api } = useOffice();
  const act = useAction();
  const [fixing, setFixing] = useState(false);
  const [edits, setEdits] = useState({});
  const reason = r.reason?.message || Object.values(r.reason || {}).flat().join(' ') || r.code;
  const details = Object.entries(r.reason || {}).filter(([k]) => k !== 'message');
  const editable = fixable(r.args);
  const value = (path, v) => (path in edits ? edits[path] : v);
  const edit = (path, v) => setEdits({ ...edits, [path]: v });
  return html`<li class="card" data-t="rejection">
    <h3>${OPS[r.op] || r.op}</h3>
    ${r.label && html`<p class="muted">${r.label}</p>`}
    <p><strong>Motif :</strong> ${reason}</p>
    ${details.length > 0 && html`<ul class="muted">${details.map(([k, v]) => html`<li key=${k}>${FIELDS[k] || k} : ${[].concat(v).join(' ')}</li>`)}</ul>`}
    <p class="muted">Envoyée par ${who(r.user_name)}, reçue le ${fmtDateTime(r.created_at)}.</p>
    ${r.args && html`<details><summary>Contenu de la saisie</summary><dl class="kv">${Object.entries(r.args).map(([k, v]) => html`
      <dt>${FIELDS[k] || k}</dt><dd>${show(v)}</dd>`)}</dl></details>`}
    ${r.status !== 'open' ? html`<${Decided} x=${r} />` : html`<div class="actions">
      ${editable.length > 0 && html`<button class="btn small" type="button" aria-expanded=${fixing} onClick=${() => setFixing(!fixing)}>Corriger…</button>`}
      <button class="btn small" type="button" disabled=${act.busy}
        onClick=${() => act.run(() => api.post(`/api/review/rejections/${r.id}/dismiss`, {}), done)}>Écarter</button>
    </div>`}
    ${fixing && html`<form class="inline-form" onSubmit=${(e) => { e.preventDefault(); act.run(() => api.post(`/api/review/rejections/${r.id}/fix`, fixBody(r.args, edits)), done); }}>
      ${editable.map(([path, k, v]) => html`<label key=${path}><span>${FIELDS[k] || k}</span>${typeof v === 'boolean'
        ? html`<select value=${String(value(path, v))} onChange=${(e) => edit(path, e.currentTarget.value === 'true')}><option value="true">oui</option><option value="false">non</option></select>`
        : html`<input value=${value(path, v) ?? ''} onInput=${(e) => edit(path, typeof v === 'number' ? Number(e.currentTarget.value) : e.currentTarget.value)} />`}</label>`)}
      <button class="btn small primary" type="submit" disabled=${act.busy}>Appliquer la saisie corrigée</button></form>`}
    <${ErrorBox} error=${act.error} />
  </li>`;
}
