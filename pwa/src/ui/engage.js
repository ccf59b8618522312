// Engagement: add a resident to an action with a role; progress "X / 1 400", local and server figures.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import * as q from '../queries.js';
import { record, uuid } from '../outbox.js';
import { Header, Loading, useApp, useQuery, personName, fmtInt, short, today } from './common.js';
import { ROLES, label } from './labels.js';

export function Engage({ residentId }) {
  const app = useApp();
  const r = useQuery((db) => q.resident(db, residentId), [residentId]);
  const actions = useQuery(async (db) => {
    const res = await q.resident(db, residentId);
    return res ? q.actionsFor(db, res.site_id) : [];
  }, [residentId]);
  const engs = useQuery((db) => q.engagementsOf(db, residentId), [residentId]);
  const [actionId, setActionId] = useState('');
  const [role, setRole] = useState('contributor');
  const [error, setError] = useState('');
  // Drawn once the resident, the actions and the engagements are all read: a list arriving after the form would
  // push it down (a layout shift).
  if (r === undefined || actions === undefined || engs === undefined) return html`<${Loading} />`;
  if (!r) return html`<p>Habitant introuvable sur ce téléphone.</p>`;
  const names = new Map((actions || []).map((a) => [a.id, a.name]));
  async function save(e) {
    e.preventDefault();
    if (!actionId) { setError('Choisissez une action.'); return; }
    await record(app.db, 'engagement.create', { id: uuid(), resident_id: residentId, action_id: actionId, role, started_on: today() });
    app.changed('Engagement enregistré');
    history.back();
  }
  return html`<form onSubmit=${save}>
    <${Header} title=${`Engager ${personName(r)}`} back=${`#/hh/${r.household_id}`} />
    ${engs && engs.length > 0 && html`<ul class="list">${engs.map((g) => html`<li class="row">
      <strong>${names.get(g.action_id) || 'Action'}</strong><span class="muted">${label(ROLES, g.role)} · ${g.status}</span></li>`)}</ul>`}
    <label class="field"><span>Action</span><select name="action_id" value=${actionId} onChange=${(e) => { setActionId(e.currentTarget.value); setError(''); }}>
      <option value="">Choisir…</option>${(actions || []).map((a) => html`<option value=${a.id}>${a.name}</option>`)}</select></label>
    <fieldset><legend>Rôle</legend><div class="seg">${ROLES.map(([c, l]) => html`<label class=${`seg-item ${role === c ? 'on' : ''}`}>
      <input type="radio" name="role" value=${c} checked=${role === c} onChange=${() => setRole(c)} /><span>${l}</span></label>`)}</div></fieldset>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <button class="btn primary big" type="submit">Enregistrer l'engagement</button>
  </form>`;
}

export function Progress() {
  const local = useQuery((db) => q.localEngaged(db));
  const st = useQuery((db) => q.syncState(db));
  if (local === undefined || !st) return html`<${Loading} />`;
  const p = st.progress;
  const goal = p ? p.goal : 1400;
  return html`<section><${Header} title="Progression" />
    <div class="card big-figure"><p class="figure">${fmtInt(local)} / ${fmtInt(goal)}</p>
      <p>Habitants engagés <strong>sur ce téléphone</strong> (mes sites, saisies en attente comprises)</p></div>
    <div class="card big-figure"><p class="figure">${p ? `${fmtInt(p.engaged)} / ${fmtInt(p.goal)}` : '—'}</p>
      <p>Programme entier : <strong>dernier chiffre du serveur</strong>${p ? `, au ${short(p.as_of)}` : ' (pas encore reçu)'}</p>
      ${p && html`<p class="muted">Point de départ : ${fmtInt(p.baseline)} habitants engagés.</p>`}</div>
  </section>`;
}
