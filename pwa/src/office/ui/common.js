// Shared pieces of the head-office screens: context, server reads, filters, paging, exports, French formats.
import { html } from 'htm/preact';
import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useState } from 'preact/hooks';
import { qs } from '../api.js';

export const OfficeCtx = createContext(null);
export const useOffice = () => useContext(OfficeCtx);

// Reads `path` from the API, again whenever it changes or `reload()` is called; null path: nothing to read.
export function useFetch(path) {
  const { api } = useOffice();
  const [state, setState] = useState({ data: undefined, error: '' });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!path) return undefined;
    let live = true;
    setState((s) => ({ data: s.data, error: '' }));
    api.get(path).then((data) => { if (live) setState({ data, error: '' }); })
      .catch((e) => { if (live) setState({ data: null, error: e.message }); });
    return () => { live = false; };
  }, [path, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

const nf = new Intl.NumberFormat('fr-FR');
const dtf = new Intl.DateTimeFormat('fr-FR', { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' });
const df = new Intl.DateTimeFormat('fr-FR', { day: 'numeric', month: 'short', year: 'numeric' });
export const fmtInt = (n) => (n === null || n === undefined ? '—' : nf.format(n));
export const fmtDateTime = (iso) => (iso ? dtf.format(new Date(iso)) : '—');
export const fmtDate = (iso) => (iso ? df.format(new Date(iso.length === 10 ? `${iso}T12:00:00` : iso)) : '—');

export const OUTCOMES = [['talked', 'Échange'], ['absent', 'Absent'], ['refused', 'Refus']];
export const ENGAGEMENT_ROLES = [['contributor', 'Contributeur'], ['volunteer', 'Bénévole'], ['beneficiary', 'Bénéficiaire']];
export const ENGAGEMENT_STATUSES = [['active', 'Actif'], ['paused', 'En pause'], ['ended', 'Terminé']];
export { KINDS as EVENT_KINDS } from '../../public/notice.js'; // the residents' agenda says the same words
export const EVENT_STATUSES = [['scheduled', 'Prévu'], ['cancelled', 'Annulé']];
export const USER_ROLES = [['gardien', 'Gardien'], ['staff', 'Personnel de proximité'], ['head_office', 'Siège'],
  ['admin', 'Administrateur']];
export const label = (pairs, code) => (pairs.find(([c]) => c === code) || [code, code])[1];

export function Loading() {
  return html`<p class="muted" role="status">Chargement…</p>`;
}

export function ErrorBox({ error }) {
  return error ? html`<p class="error" role="alert">${error}</p>` : null;
}

// The site / action / period filters shared by the dashboard, the lists and their exports.
export function Filters({ value, onChange, fields = ['site_id', 'action_id', 'from', 'to'], children }) {
  const sites = useFetch('/api/sites').data || [];
  const actions = useFetch('/api/actions').data || [];
  const set = (k) => (e) => onChange({ ...value, [k]: e.currentTarget.value, page: 1 });
  const has = (k) => fields.includes(k);
  return html`<form class="filters" role="search" aria-label="Filtres" onSubmit=${(e) => e.preventDefault()}>
    ${has('site_id') && html`<label><span>Site</span><select name="site_id" value=${value.site_id || ''} onChange=${set('site_id')}>
      <option value="">Tous les sites</option>${sites.map((s) => html`<option value=${s.id}>${s.name}</option>`)}</select></label>`}
    ${has('action_id') && html`<label><span>Action</span><select name="action_id" value=${value.action_id || ''} onChange=${set('action_id')}>
      <option value="">Toutes les actions</option>${actions.map((a) => html`<option value=${a.id}>${a.name}</option>`)}</select></label>`}
    ${has('from') && html`<label><span>Du</span><input type="date" name="from" value=${value.from || ''} onChange=${set('from')} /></label>`}
    ${has('to') && html`<label><span>Au</span><input type="date" name="to" value=${value.to || ''} onChange=${set('to')} /></label>`}
    ${children}
  </form>`;
}

export function Pager({ total, page, perPage, onPage }) {
  const pages = Math.max(1, Math.ceil(total / perPage));
  const first = total === 0 ? 0 : (page - 1) * perPage + 1;
  return html`<nav class="pager" aria-label="Pages">
    <span data-t="count">${fmtInt(first)}–${fmtInt(Math.min(total, page * perPage))} sur ${fmtInt(total)}</span>
    <button class="btn small" type="button" disabled=${page <= 1} onClick=${() => onPage(page - 1)}>Précédent</button>
    <span>Page ${page} / ${pages}</span>
    <button class="btn small" type="button" disabled=${page >= pages} onClick=${() => onPage(page + 1)}>Suivant</button>
  </nav>`;
}

// "Exporter CSV" and "Exporter Excel" with the list's filters (paging left out: an export takes every row).
export function ExportButtons({ kind, filters }) {
  const { api } = useOffice();
  const [error, setError] = useState('');
  const { page, per_page: perPage, ...rest } = filters;
  const go = (ext) => api.download(`/api/exports/${kind}.${ext}${qs(rest)}`).then(() => setError(''), (e) => setError(e.message));
  return html`<div class="exports">
    <button class="btn small" type="button" onClick=${() => go('csv')}>Exporter CSV</button>
    <button class="btn small" type="button" onClick=${() => go('xlsx')}>Exporter Excel</button>
    <${ErrorBox} error=${error} />
  </div>`;
}

// Runs an action with a busy flag and a French error; `done` gets the answer.
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  async function run(fn, done = () => {}) {
    setBusy(true);
    setError('');
    try {
      done(await fn());
    } catch (e) {
      const detail = e.details ? Object.values(e.details).flat().join(' ') : '';
      setError(detail ? `${e.message} ${detail}` : e.message);
    } finally {
      setBusy(false);
    }
  }
  return { busy, error, run, setError };
}

// The end of an agenda or account form: the sites to tick, the error, save and close.
export function FormEnd({ sites, value, onSites, act, onCancel }) {
  const toggle = (id) => onSites(value.includes(id) ? value.filter((x) => x !== id) : [...value, id]);
  return html`<fieldset><legend>Sites</legend><div class="checks">${sites.map((s) => html`<label class="check">
      <input type="checkbox" checked=${value.includes(s.id)} onChange=${() => toggle(s.id)} /> ${s.name}</label>`)}</div></fieldset>
    <${ErrorBox} error=${act.error} />
    <div class="actions"><button class="btn primary" type="submit" disabled=${act.busy}>Enregistrer</button>
      <button class="btn" type="button" onClick=${onCancel}>Fermer</button></div>`;
}
