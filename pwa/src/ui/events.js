// Today's and upcoming events: check residents in by name, or head counts by category for a large event.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import * as q from '../queries.js';
import { record, isoLocal, uuid } from '../outbox.js';
import { Header, Loading, useApp, useQuery, when, personName } from './common.js';
import { CATEGORIES } from './labels.js';

export function Events() {
  const list = useQuery((db) => q.upcomingEvents(db));
  if (!list) return html`<${Loading} />`;
  const todayKey = new Date().toDateString();
  const isToday = (e) => new Date(e.starts_at).toDateString() === todayKey;
  const section = (title, items) => html`<h2>${title}</h2>
    ${items.length === 0 ? html`<p class="muted">Aucun événement.</p>` : html`<ul class="list">${items.map((e) => html`
      <li><a class="row" href=${`#/event/${e.id}`}><strong>${e.title}</strong>
      <span class="muted">${when(e.starts_at)} · ${e.place}</span></a></li>`)}</ul>`}`;
  return html`<section><${Header} title="Agenda" />
    ${section("Aujourd'hui", list.filter(isToday))}${section('À venir', list.filter((e) => !isToday(e)))}</section>`;
}

export function EventPage({ id }) {
  const app = useApp();
  const [search, setSearch] = useState('');
  const [counts, setCounts] = useState({});
  const ev = useQuery((db) => q.event(db, id), [id]);
  const atts = useQuery((db) => q.attendancesOf(db, id), [id]);
  const hcs = useQuery((db) => q.headcountsOf(db, id), [id]);
  const mySites = (app.scopeSites || []).filter((s) => !ev || (ev.site_ids || []).includes(s));
  // The residents list waits for the event (its sites narrow the list), and the page waits for every part:
  // a list arriving after the form would push it down under the user's thumb (a layout shift).
  const people = useQuery((db) => (ev ? q.residentsOfSites(db, mySites, search) : Promise.resolve(undefined)),
    [id, search, mySites.join(), Boolean(ev)]);
  if (ev === undefined) return html`<${Loading} />`;
  if (!ev) return html`<p>Événement introuvable sur ce téléphone.</p>`;
  if (people === undefined || atts === undefined || hcs === undefined) return html`<${Loading} />`;
  const checked = new Set((atts || []).map((a) => a.resident_id));

  async function checkIn(r) {
    await record(app.db, 'attendance.create', { id: uuid(), event_id: id, resident_id: r.id, checked_in_at: isoLocal(new Date()) });
    app.changed(`${personName(r)} pointé(e)`);
  }
  async function saveCounts(e) {
    e.preventDefault();
    const site = mySites[0];
    let saved = 0;
    for (const [category] of CATEGORIES) {
      const n = Number.parseInt(counts[category], 10);
      if (Number.isInteger(n) && n >= 0 && n <= 5000 && counts[category] !== '') {
        await record(app.db, 'headcount.create', { id: uuid(), event_id: id, site_id: site, category, count: n, counted_at: isoLocal(new Date()) });
        saved += 1;
      }
    }
    setCounts({});
    if (saved) app.changed('Comptage enregistré');
  }
  const total = (cat) => (hcs || []).filter((h) => h.category === cat).reduce((s, h) => s + h.count, 0);

  return html`<section>
    <${Header} title=${ev.title} back="#/events" />
    <p class="muted">${when(ev.starts_at)} · ${ev.place}</p>
    <h2>Pointage par nom <span class="badge">${checked.size}</span></h2>
    <label class="field"><span>Nom de l'habitant</span>
      <input type="search" value=${search} onInput=${(e) => setSearch(e.currentTarget.value)} placeholder="Tapez un nom" /></label>
    <ul class="list">${(people || []).slice(0, 30).map((r) => html`<li class="row split">
      <strong>${personName(r)}</strong>
      ${checked.has(r.id) ? html`<span class="ok">✓ Présent</span>`
        : html`<button class="btn" type="button" onClick=${() => checkIn(r)} aria-label=${`Pointer ${personName(r)}`}>Pointer</button>`}
    </li>`)}</ul>
    <form class="card" onSubmit=${saveCounts}>
      <h2>Comptage (grand événement)</h2>
      ${CATEGORIES.map(([c, l]) => html`<label class="field inline"><span>${l} <em class="muted">(déjà ${total(c)})</em></span>
        <input type="number" inputmode="numeric" min="0" max="5000" name=${c} value=${counts[c] ?? ''}
          onInput=${(e) => setCounts({ ...counts, [c]: e.currentTarget.value })} /></label>`)}
      <button class="btn primary" type="submit" disabled=${!mySites.length}>Enregistrer le comptage</button>
    </form>
  </section>`;
}
