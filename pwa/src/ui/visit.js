// The visit form (porte-à-porte): outcome, interests, needs, follow-up, consent, a short note without health data.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import * as q from '../queries.js';
import { record, isoLocal, uuid } from '../outbox.js';
import { Header, Loading, useApp, useQuery, hhLabel, personName } from './common.js';
import { NEEDS, OUTCOMES } from './labels.js';

const toggle = (list, v) => (list.includes(v) ? list.filter((x) => x !== v) : [...list, v]);

export function VisitForm({ householdId }) {
  const app = useApp();
  const hh = useQuery((db) => q.household(db, householdId), [householdId]);
  const residents = useQuery((db) => q.residentsOf(db, householdId), [householdId]);
  const actions = useQuery(async (db) => {
    const h = await q.household(db, householdId);
    return h ? q.actionsFor(db, h.site_id) : [];
  }, [householdId]);
  const [v, setV] = useState({ outcome: '', interests: [], needs: [], follow_up: false, consent_recontact: false,
    resident_id: '', note: '' });
  const [error, setError] = useState('');
  const set = (patch) => setV({ ...v, ...patch });
  if (hh === undefined) return html`<${Loading} />`;
  if (!hh) return html`<p>Logement introuvable sur ce téléphone.</p>`;
  const talked = v.outcome === 'talked';

  async function save(e) {
    e.preventDefault();
    if (!v.outcome) { setError('Choisissez le résultat de la visite.'); return; }
    await record(app.db, 'visit.create', {
      id: uuid(), household_id: householdId, visited_at: isoLocal(new Date()), outcome: v.outcome,
      interests: talked ? v.interests : [], needs: talked ? v.needs : [], follow_up: v.follow_up,
      consent_recontact: talked && v.consent_recontact, resident_id: v.resident_id || null,
      note: v.note.trim(),
    }, { parent: hh }); // the household on screen gives the visit its site: the save reads nothing first
    app.changed('Visite enregistrée');
    history.back();
  }

  return html`<form class="visit" onSubmit=${save}>
    <${Header} title="Visite" back=${`#/hh/${householdId}`} />
    <p class="muted">${hhLabel(hh)}</p>
    <fieldset><legend>Résultat</legend><div class="seg">
      ${OUTCOMES.map(([code, l]) => html`<label class=${`seg-item ${v.outcome === code ? 'on' : ''}`}>
        <input type="radio" name="outcome" value=${code} checked=${v.outcome === code}
          onChange=${() => { set({ outcome: code }); setError(''); }} /><span>${l}</span></label>`)}
    </div></fieldset>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${talked && html`
      ${residents && residents.length > 0 && html`<label class="field"><span>Avec qui ?</span>
        <select name="resident_id" value=${v.resident_id} onChange=${(e) => set({ resident_id: e.currentTarget.value })}>
          <option value="">Non précisé</option>
          ${residents.map((r) => html`<option value=${r.id}>${personName(r)}</option>`)}</select></label>`}
      <fieldset><legend>Intérêt pour les actions</legend>
        ${(actions || []).map((a) => html`<label class="check"><input type="checkbox" name="interests" value=${a.id}
          checked=${v.interests.includes(a.id)} onChange=${() => set({ interests: toggle(v.interests, a.id) })} />
          <span>${a.name}</span></label>`)}
      </fieldset>
      <fieldset><legend>Besoins</legend><div class="chips">
        ${NEEDS.map(([code, l]) => html`<label class=${`chip ${v.needs.includes(code) ? 'on' : ''}`}>
          <input type="checkbox" name="needs" value=${code} checked=${v.needs.includes(code)}
            onChange=${() => set({ needs: toggle(v.needs, code) })} /><span>${l}</span></label>`)}
      </div></fieldset>
      <label class="check"><input type="checkbox" name="consent_recontact" checked=${v.consent_recontact}
        onChange=${(e) => set({ consent_recontact: e.currentTarget.checked })} /><span>Accepte d’être recontacté</span></label>`}
    <label class="check"><input type="checkbox" name="follow_up" checked=${v.follow_up}
      onChange=${(e) => set({ follow_up: e.currentTarget.checked })} /><span>Suivi souhaité</span></label>
    <label class="field"><span>Note courte</span>
      <textarea name="note" maxlength="500" rows="3" value=${v.note} onInput=${(e) => set({ note: e.currentTarget.value })}></textarea></label>
    <p class="warn">N’écrivez aucune information de santé dans la note. ${500 - v.note.length} caractères restants.</p>
    <button class="btn primary big" type="submit">Enregistrer la visite</button>
  </form>`;
}
