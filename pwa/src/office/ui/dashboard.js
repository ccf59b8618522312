// The dashboard: engaged residents against the goal, weekly trends, per site and per action, events' attendance.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { qs } from '../api.js';
import { WeeklyChart } from './chart.js';
import { EVENT_KINDS, ErrorBox, Filters, Loading, fmtDate, fmtDateTime, fmtInt, label, useFetch } from './common.js';

export function Dashboard() {
  const [filters, setFilters] = useState({});
  const query = qs({ site_id: filters.site_id, action_id: filters.action_id, from: filters.from, to: filters.to });
  const { data: d, error, reload } = useFetch(`/api/dashboard${query}`);
  return html`<section class="dashboard">
    <div class="head"><h1>Tableau de bord</h1>
      <button class="btn small" type="button" onClick=${reload}>Actualiser</button></div>
    <${Filters} value=${filters} onChange=${setFilters} />
    <${ErrorBox} error=${error} />
    ${d === undefined ? html`<${Loading} />` : d && html`<${Figures} d=${d} />`}
  </section>`;
}

function Figures({ d }) {
  const e = d.engaged;
  const weeks = d.engaged_weekly.map((w) => w.week_start);
  const visitWeeks = d.visits_weekly.map((w) => w.week_start);
  const remaining = Math.max(0, d.goal - e.total);
  return html`
    <div class="kpis">
      <div class="kpi main"><span class="kpi-label">Habitants engagés</span>
        <span class="kpi-figure"><strong data-t="engaged">${fmtInt(e.total)}</strong> / ${fmtInt(d.goal)}</span>
        <progress max=${d.goal} value=${Math.min(e.total, d.goal)} aria-label="Progression vers l’objectif"></progress>
        <span class="muted">${d.baseline_included ? `Départ : ${fmtInt(d.baseline)} · ` : ''}enregistrés dans Palier : <span
          data-t="counted">${fmtInt(e.counted_residents)}</span> · reste ${fmtInt(remaining)}</span>
        ${!d.baseline_included && html`<span class="muted">Filtre actif : les ${fmtInt(d.baseline)} habitants du départ n’ont ni site
          ni action, ils ne sont pas comptés ici.</span>`}</div>
      <div class="kpi"><span class="kpi-label">Doublons à examiner</span>
        <span class="kpi-figure" data-t="pending-duplicates">${fmtInt(e.pending_duplicates)}</span>
        <a href="#/review">Voir la revue</a></div>
      <div class="kpi"><span class="kpi-label">Visites sur la période</span>
        <span class="kpi-figure" data-t="visits">${fmtInt(d.visits_weekly.reduce((n, w) => n + w.total, 0))}</span>
        <span class="muted">dont échanges : ${fmtInt(d.visits_weekly.reduce((n, w) => n + w.talked, 0))}</span></div>
    </div>
    <p class="muted">Du ${fmtDate(d.from)} au ${fmtDate(d.to)} · chiffres au ${fmtDateTime(d.as_of)}.</p>
    <div class="charts">
      <${WeeklyChart} title="Habitants engagés par semaine"
        weeks=${weeks} series=${[
          { label: 'Engagés', values: d.engaged_weekly.map((w) => w.total) },
          ...(d.baseline_included ? [
            { label: 'Objectif', values: weeks.map(() => d.goal), dash: [6, 4] },
            { label: 'Départ', values: weeks.map(() => d.baseline), dash: [2, 4] }] : []),
        ]} />
      <${WeeklyChart} title="Visites par semaine selon le résultat"
        weeks=${visitWeeks} series=${[
          { label: 'Échange', values: d.visits_weekly.map((w) => w.talked) },
          { label: 'Absent', values: d.visits_weekly.map((w) => w.absent) },
          { label: 'Refus', values: d.visits_weekly.map((w) => w.refused) },
          { label: 'Total', values: d.visits_weekly.map((w) => w.total), dash: [4, 3] },
        ]} />
    </div>
    <div class="two">
      <${Breakdown} title="Par site" rows=${d.per_site.map((s) => [s.site_id, s.site_name, s.engaged])} t="per-site" />
      <${Breakdown} title="Par action" rows=${d.per_action.map((a) => [a.action_id, a.action_name, a.engaged])} t="per-action" />
    </div>
    <${WeeklyTable} d=${d} />
    <h2>Événements et participation</h2>
    ${d.events.length === 0 ? html`<p class="muted">Aucun événement sur la période.</p>` : html`<table class="grid" data-t="events">
      <thead><tr><th>Date</th><th>Événement</th><th>Type</th><th>Sites</th><th class="num">Présents nommés</th><th class="num">Comptés</th></tr></thead>
      <tbody>${d.events.map((ev) => html`<tr key=${ev.event_id} class=${ev.status === 'cancelled' ? 'cancelled' : ''}>
        <td>${fmtDateTime(ev.starts_at)}</td><td>${ev.title}${ev.status === 'cancelled' ? html` <em class="tag">annulé</em>` : ''}</td>
        <td>${label(EVENT_KINDS, ev.kind)}</td><td>${(ev.sites || []).join(', ')}</td>
        <td class="num">${fmtInt(ev.named_attendance)}</td><td class="num">${fmtInt(ev.head_count)}</td></tr>`)}</tbody></table>`}`;
}

// Engaged residents per site or action: the figure and a bar scaled on the largest (a <meter>, no inline style).
function Breakdown({ title, rows, t }) {
  const max = Math.max(1, ...rows.map((r) => r[2]));
  return html`<div><h2>${title}</h2>
    ${rows.length === 0 ? html`<p class="muted">Aucun engagement.</p>` : html`<table class="grid" data-t=${t}>
      <thead><tr><th>Nom</th><th class="num">Engagés</th><th><span class="sr">Part</span></th></tr></thead>
      <tbody>${rows.map(([id, name, n]) => html`<tr key=${id}><td>${name}</td><td class="num">${fmtInt(n)}</td>
        <td class="bar"><meter min="0" max=${max} value=${n}></meter></td></tr>`)}</tbody></table>`}</div>`;
}

// The charts' figures as a table: readable without the canvas, and what a reader copies into a note.
function WeeklyTable({ d }) {
  const byWeek = new Map();
  for (const w of d.engaged_weekly) byWeek.set(w.week_start, { week: w.week, engaged: w.total });
  for (const v of d.visits_weekly) byWeek.set(v.week_start, { ...(byWeek.get(v.week_start) || { week: v.week }), ...v });
  const weeks = [...byWeek.keys()].sort().reverse();
  return html`<details class="weekly"><summary>Chiffres semaine par semaine</summary>
    <table class="grid"><thead><tr><th>Semaine</th><th class="num">Engagés</th><th class="num">Échanges</th>
      <th class="num">Absents</th><th class="num">Refus</th><th class="num">Visites</th></tr></thead>
    <tbody>${weeks.map((k) => { const w = byWeek.get(k); return html`<tr key=${k}><td>${w.week || k}</td>
      <td class="num">${fmtInt(w.engaged)}</td><td class="num">${fmtInt(w.talked ?? 0)}</td>
      <td class="num">${fmtInt(w.absent ?? 0)}</td><td class="num">${fmtInt(w.refused ?? 0)}</td>
      <td class="num">${fmtInt(w.total ?? 0)}</td></tr>`; })}</tbody></table></details>`;
}
