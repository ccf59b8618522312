// My sites, households by building / staircase / door with search, one household and its residents.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import * as q from '../queries.js';
import { record } from '../outbox.js';
import { uuid } from '../outbox.js';
import { Header, Loading, useApp, useQuery, hhLabel, personName, short } from './common.js';
import { OUTCOMES, label } from './labels.js';
import { ResidentQr } from './agendaqr.js';

// Who may ask the server for a resident's push link (server/api/privacy.py, push_link: FIELD_ROLES).
const PUSH_LINK_ROLES = ['gardien', 'staff'];

export function Sites() {
  const list = useQuery((db) => q.sites(db));
  if (!list) return html`<${Loading} />`;
  return html`<section>
    <${Header} title="Mes sites" />
    ${list.length === 0 && html`<p class="muted">Aucun site sur ce téléphone. Synchronisez une première fois avec du réseau.</p>`}
    <ul class="list">${list.map((s) => html`<li><a class="row" href=${`#/site/${s.id}`}>
      <strong>${s.name}</strong><span class="muted">${s.commune}</span></a></li>`)}</ul>
  </section>`;
}

export function Site({ id }) {
  const [search, setSearch] = useState('');
  const site = useQuery((db) => db.get('site', id), [id]);
  const list = useQuery((db) => q.households(db, id, search), [id, search]);
  let lastGroup = '';
  return html`<section>
    <${Header} title=${site ? site.name : 'Site'} back="#/" />
    <a class="btn" href=${`#/qr/${id}`}>Montrer le QR code des rappels</a>
    <label class="field"><span>Rechercher (bâtiment, porte, nom)</span>
      <input type="search" value=${search} onInput=${(e) => setSearch(e.currentTarget.value)} placeholder="ex. Bât. A porte 12" /></label>
    ${!list ? html`<${Loading} />` : html`<ul class="list">${list.map((h) => {
      const group = `${h.building} · escalier ${h.staircase}`;
      const head = group !== lastGroup ? html`<li class="group">${group}</li>` : null;
      lastGroup = group;
      return html`${head}<li><a class="row" href=${`#/hh/${h.id}`}><strong>Porte ${h.door}</strong>
        <span class="muted">étage ${h.floor} · ${h.landlord_ref}</span></a></li>`;
    })}</ul>`}
    ${list && list.length === 0 && html`<p class="muted">Aucun logement trouvé.</p>`}
  </section>`;
}

export function Household({ id }) {
  const app = useApp();
  // One query for the household, its residents and its visits: the screen is drawn once with all three. Three
  // queries answered one after the other drew the household with no residents, then pushed the form and the
  // visits down under the user's thumb when the residents arrived (Lighthouse CLS 0.21).
  const page = useQuery((db) => q.householdPage(db, id), [id]);
  const [first, setFirst] = useState('');
  const [last, setLast] = useState('');
  const [qrFor, setQrFor] = useState(null);
  const canLink = PUSH_LINK_ROLES.includes(app.user.role);
  if (page === undefined) return html`<${Loading} />`;
  if (!page?.hh) return html`<p>Logement introuvable sur ce téléphone.</p>`;
  const { hh, residents, visits } = page;
  async function addResident(e) {
    e.preventDefault();
    if (!first.trim() || !last.trim()) return;
    await record(app.db, 'resident.create', { id: uuid(), household_id: id, first_name: first.trim(), last_name: last.trim() });
    setFirst(''); setLast('');
    app.changed('Habitant ajouté');
  }
  return html`<section>
    <${Header} title=${hhLabel(hh)} back=${`#/site/${hh.site_id}`} />
    <a class="btn primary big" href=${`#/visit/${id}`}>Nouvelle visite</a>
    <h2>Habitants</h2>
    <ul class="list">${residents.map((r) => html`<li class="row split">
      <span><strong>${personName(r)}</strong>${r._n ? html` <em class="tag">en attente</em>` : ''}
      ${canLink && html`<br /><button class="btn small" type="button" aria-expanded=${qrFor === r.id}
        onClick=${() => setQrFor(qrFor === r.id ? null : r.id)}>QR des rappels</button>`}</span>
      <span class="actions"><a class="btn" href=${`#/resident/${r.id}`}>Modifier</a>
      <a class="btn" href=${`#/engage/${r.id}`}>Engager</a></span></li>
      ${qrFor === r.id && html`<li><${ResidentQr} resident=${r} siteId=${hh.site_id} onClose=${() => setQrFor(null)} /></li>`}`)}</ul>
    <form class="card" onSubmit=${addResident}>
      <h3>Ajouter un habitant</h3>
      <label class="field"><span>Prénom</span><input name="first_name" value=${first} onInput=${(e) => setFirst(e.currentTarget.value)} autocomplete="off" /></label>
      <label class="field"><span>Nom</span><input name="last_name" value=${last} onInput=${(e) => setLast(e.currentTarget.value)} autocomplete="off" /></label>
      <button class="btn" type="submit">Ajouter l'habitant</button>
    </form>
    <h2>Visites</h2>
    ${visits.length === 0 && html`<p class="muted">Aucune visite.</p>`}
    <ul class="list">${visits.map((v) => html`<li class="row"><strong>${label(OUTCOMES, v.outcome)}</strong>
      <span class="muted">${short(v.visited_at)}${v._n ? ' · en attente' : ''}</span></li>`)}</ul>
  </section>`;
}

const FIELDS = [['first_name', 'Prénom'], ['last_name', 'Nom'], ['phone', 'Téléphone'], ['email', 'Courriel']];

export function ResidentEdit({ id }) {
  const app = useApp();
  const r = useQuery((db) => q.resident(db, id), [id]);
  const [draft, setDraft] = useState({});
  if (r === undefined) return html`<${Loading} />`;
  if (!r) return html`<p>Habitant introuvable sur ce téléphone.</p>`;
  const canContact = app.user.role !== 'gardien';
  const value = (k) => (k in draft ? draft[k] : r[k] ?? '');
  async function save(e) {
    e.preventDefault();
    const changes = {};
    for (const [k, v] of Object.entries(draft)) if (v !== (r[k] ?? '')) changes[k] = v;
    if (Object.keys(changes).length) {
      await record(app.db, 'resident.update', { id, base_seq: r.seq ?? 0, changes });
      app.changed('Fiche enregistrée');
    }
    history.back();
  }
  return html`<form onSubmit=${save}>
    <${Header} title=${personName(r)} back=${`#/hh/${r.household_id}`} />
    ${FIELDS.filter(([k]) => canContact || (k !== 'phone' && k !== 'email')).map(([k, l]) => html`
      <label class="field"><span>${l}</span><input name=${k} value=${value(k)}
        onInput=${(e) => setDraft({ ...draft, [k]: e.currentTarget.value })} /></label>`)}
    ${[['consent_contact', 'Accepte d’être recontacté'], ['consent_image', 'Accepte l’usage de son image']].map(([k, l]) => html`
      <label class="check"><input type="checkbox" name=${k} checked=${value(k) === true}
        onChange=${(e) => setDraft({ ...draft, [k]: e.currentTarget.checked })} /><span>${l}</span></label>`)}
    <button class="btn primary big" type="submit">Enregistrer</button>
  </form>`;
}
