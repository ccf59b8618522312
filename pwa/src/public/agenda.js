// The residents' pages, without login: a site's agenda, one event (what a notification opens), the opt-in to its
// reminders and the one-tap unsubscribe page. Real paths under /agenda/, served by the shell (offline too).
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import * as api from './api.js';
import { CONSENT_TEXT, CONSENT_VERSION, linkSubscription, optIn, optOut, support, MESSAGES } from './push.js';
import { renewIfChanged } from './renew.js';
import { KINDS, dayText, kindLabel, whenText } from './notice.js';

// /agenda/<code>, /agenda/<code>/events/<id>, /agenda/<code>/unsubscribe (token in the fragment): null otherwise.
export function publicRoute(pathname) {
  const m = /^\/agenda\/([^/]+)(?:\/(events)\/([^/]+)|\/(unsubscribe))?\/?$/.exec(pathname);
  if (!m) return null;
  const code = decodeURIComponent(m[1]);
  if (m[2]) return { page: 'event', code, id: decodeURIComponent(m[3]) };
  return { page: m[4] ? 'unsubscribe' : 'agenda', code };
}

const agendaPath = (code) => `/agenda/${encodeURIComponent(code)}`;
const eventPath = (code, id) => `${agendaPath(code)}/events/${encodeURIComponent(id)}`;
const savedText = (iso) => `Hors connexion : agenda enregistré ${dayText(iso) ? `le ${dayText(iso)}` : 'lors de votre dernière visite'}.`;

function hours(e) {
  return e.end_time ? `${e.time}–${e.end_time}` : e.time;
}

function EventRow({ code, e }) {
  const cancelled = e.status === 'cancelled';
  return html`<li><a class="row" href=${eventPath(code, e.id)}>
    <strong>${e.title}${cancelled && html` <em class="tag">Annulé</em>`}</strong>
    <span>${kindLabel(e.kind)} · ${dayText(e.starts_at)} · ${hours(e)}</span>
    <span class="muted">${e.place}</span></a></li>`;
}

export function AgendaPage({ code }) {
  const [res, setRes] = useState(null);
  const [link, setLink] = useState(() => linkToken(globalThis.location.hash));
  useEffect(() => { api.agenda(code).then(setRes); }, [code]);
  useEffect(() => { api.mirrorSubscriptions(); }, []);
  useEffect(() => {
    // A second QR code scanned into the tab already open changes only the fragment: no new page load.
    const onHash = () => { const t = linkToken(globalThis.location.hash); if (t) setLink(t); };
    globalThis.addEventListener('hashchange', onHash);
    return () => globalThis.removeEventListener('hashchange', onHash);
  }, []);
  useTitle(res?.agenda ? `Agenda — ${res.agenda.site.name}` : 'Agenda');
  if (!res) return html`<p class="muted">Chargement de l’agenda…</p>`;
  if (res.error) return html`<h1>Agenda</h1><p class="error" role="alert">${res.error}</p>`;
  const { site, events, kinds } = res.agenda;
  return html`<h1>Agenda — ${site.name}</h1>
    <p>Ateliers, accompagnements, sorties et réunions près de chez vous.</p>
    ${res.offline && html`<p class="warn" role="status">${savedText(res.saved_at)}</p>`}
    <h2>Prochains événements</h2>
    ${events.length === 0 ? html`<p class="muted">Aucun événement prévu pour le moment.</p>`
      : html`<ul class="list">${events.map((e) => html`<${EventRow} code=${code} e=${e} />`)}</ul>`}
    <${Reminders} code=${code} kinds=${kinds} offline=${res.offline} link=${link} />`;
}

export function EventPage({ code, id }) {
  const [res, setRes] = useState(null);
  useEffect(() => { api.event(code, id).then(setRes); }, [code, id]);
  useTitle(res?.event ? res.event.title : 'Agenda');
  const back = html`<a class="back" href=${agendaPath(code)} aria-label="Retour à l’agenda">‹</a>`;
  if (!res) return html`<p class="muted">Chargement…</p>`;
  if (res.error) return html`<div class="screen-head">${back}<h1>Agenda</h1></div><p class="error" role="alert">${res.error}</p>`;
  const e = res.event;
  return html`<div class="screen-head">${back}<h1>${e.title}</h1></div>
    ${e.status === 'cancelled' && html`<p class="error" role="alert">Cet événement est annulé.</p>`}
    ${res.offline && html`<p class="warn" role="status">Hors connexion : informations de votre dernière visite.</p>`}
    <dl class="kv card">
      <dt>Type</dt><dd>${kindLabel(e.kind)}</dd>
      <dt>Date</dt><dd>${dayText(e.starts_at)}</dd>
      <dt>Heure</dt><dd>${hours(e)}</dd>
      <dt>Lieu</dt><dd>${e.place}</dd>
    </dl>
    ${e.description && html`<p>${e.description}</p>`}
    <p><a class="btn" href=${agendaPath(code)}>Voir tout l’agenda</a></p>
    <${Reminders} code=${code} kinds=${KINDS.map(([k]) => k)} offline=${res.offline} />`;
}

const LINKED_TEXT = 'Vos rappels sont rattachés à votre fiche d’habitant : ils seront effacés avec vos données si vous le demandez.';
const LINK_TEXT = 'Ce QR code vous a été montré pour vous : vos rappels seront rattachés à votre fiche d’habitant, '
  + 'pour être effacés avec vos données si vous le demandez. Il sert une seule fois, dans les 30 minutes.';
const LINK_OFFLINE = 'Hors connexion : rattacher vos rappels à votre fiche demande le réseau. Rouvrez ce QR code avec du réseau.';

function useTitle(title) {
  useEffect(() => { document.title = `${title} · Palier`; }, [title]);
}

// The opt-in form, or, when this browser already agreed, what it receives and how to stop. `link` is a staff's
// per-resident token from the URL fragment: used once after the opt-in (or with one tap when already subscribed),
// then dropped from the page and the address bar; never written anywhere.
function Reminders({ code, kinds, offline, link: linkFromUrl = null }) {
  const [link, setLink] = useState(linkFromUrl);
  const [linkError, setLinkError] = useState('');
  const [mine, setMine] = useState(() => api.subscriptionOf(code));
  const [chosen, setChosen] = useState(() => new Set(kinds));
  const [consent, setConsent] = useState(false);
  const [key, setKey] = useState(null);
  const [error, setError] = useState('');
  const [done, setDone] = useState('');
  const [busy, setBusy] = useState(false);
  const supported = support();
  useEffect(() => { if (linkFromUrl) { setLink(linkFromUrl); setLinkError(''); setDone(''); } }, [linkFromUrl]);
  useEffect(() => {
    if (!mine && !offline && supported === 'ok') api.vapidKey().then((r) => setKey(r.key || null));
  }, [mine, offline]);
  useEffect(() => {
    if (mine && !offline) renewIfChanged().then((r) => { if (r?.gone.includes(code)) setMine(null); }).catch(() => {});
  }, []);

  // True once tied; a token that can never serve again is forgotten (an outage leaves it for another try).
  async function tie() {
    setLinkError('');
    const res = await linkSubscription(code, link);
    if (res.final || res.linked) {
      setLink(null);
      globalThis.history.replaceState(null, '', globalThis.location.pathname);
    }
    if (res.linked) { setMine(res.linked); return true; }
    setLinkError(res.error);
    return false;
  }
  async function tieNow() {
    setError(''); setDone(''); setBusy(true);
    const ok = await tie();
    setBusy(false);
    if (ok) setDone('Rappels rattachés à votre fiche.');
  }

  async function submit(ev) {
    ev.preventDefault();
    setError(''); setDone(''); setBusy(true);
    const res = await optIn({ code, kinds: kinds.filter((k) => chosen.has(k)), consent, key });
    if (res.error) { setBusy(false); setError(res.error); return; }
    setMine(res.subscribed); setConsent(false);
    const linked = link ? await tie() : false;
    setBusy(false);
    setDone(`${linked ? 'Rappels activés et rattachés à votre fiche d’habitant : ils seront effacés avec vos données si '
      + 'vous le demandez.' : 'Rappels activés.'} Vous pouvez vous désabonner ici ou depuis chaque notification.`);
  }
  async function stop() {
    setError(''); setDone(''); setBusy(true);
    const res = await optOut(code, mine.token);
    setBusy(false);
    if (res.error) { setError(res.error); return; }
    setMine(null);
    setDone('Vous êtes désabonné(e) : vous ne recevrez plus de rappels de cet agenda.');
  }
  const toggle = (k) => { const s = new Set(chosen); if (s.has(k)) s.delete(k); else s.add(k); setChosen(s); };
  const alerts = html`${error && html`<p class="error" role="alert">${error}</p>`}
    ${linkError && html`<p class="error" role="alert">${mine ? 'Vos rappels ne sont pas rattachés à votre fiche. ' : ''}${linkError}</p>`}
    ${done && html`<p class="ok" role="status">${done}</p>`}`;
  const linkNote = link && html`<p class="warn">${offline ? LINK_OFFLINE : LINK_TEXT}</p>`;

  if (mine) {
    return html`<section class="card" aria-labelledby="rappels"><h2 id="rappels">Rappels</h2>
      <p>Ce téléphone reçoit les rappels de cet agenda depuis le ${dayText(mine.consent_at)} pour :
        ${mine.kinds.map(kindLabel).join(', ')}.</p>
      ${mine.linked_at && html`<p class="muted">${LINKED_TEXT}</p>`}
      ${linkNote}
      ${link && !offline && html`<button class="btn primary big" type="button" onClick=${tieNow} disabled=${busy}>Rattacher mes rappels à ma fiche</button>`}
      ${alerts}
      <button class="btn danger big" type="button" onClick=${stop} disabled=${busy}>Se désabonner</button></section>`;
  }
  return html`<section class="card" aria-labelledby="rappels"><h2 id="rappels">Recevoir les rappels</h2>
    <form onSubmit=${submit}>
      ${supported === 'unsupported' && html`<p class="warn">${MESSAGES.unsupported}</p>`}
      <fieldset><legend>Types d’événements</legend>
        ${kinds.map((k) => html`<label class="check"><input type="checkbox" name="kinds" value=${k}
          checked=${chosen.has(k)} onChange=${() => toggle(k)} />${kindLabel(k)}</label>`)}
      </fieldset>
      <label class="check consent"><input type="checkbox" name="consent" checked=${consent}
        onChange=${(e) => setConsent(e.currentTarget.checked)} /><span>${CONSENT_TEXT}
        <em class="muted"> (texte version ${CONSENT_VERSION})</em></span></label>
      <p class="muted">Votre navigateur vous demandera ensuite l’autorisation d’afficher des notifications.</p>
      ${linkNote}
      ${alerts}
      <button class="btn primary big" type="submit" disabled=${busy}>Recevoir les rappels</button>
    </form></section>`;
}

export function UnsubscribePage({ code, token }) {
  const [res, setRes] = useState(null);
  const run = () => {
    setRes(null);
    optOut(code, token).then((r) => {
      // The token has done its work: keep it out of the history and of a shared screen.
      if (!r.error) globalThis.history.replaceState(null, '', globalThis.location.pathname);
      setRes(r);
    });
  };
  useTitle('Désabonnement');
  useEffect(() => { if (token) run(); }, [code, token]);
  const back = html`<p><a class="btn" href=${agendaPath(code)}>Voir l’agenda</a></p>`;
  if (!token) return html`<h1>Désabonnement</h1><p class="error" role="alert">Ce lien de désabonnement est incomplet.</p>${back}`;
  if (!res) return html`<h1>Désabonnement</h1><p class="muted">Désabonnement en cours…</p>`;
  if (res.error) {
    return html`<h1>Désabonnement</h1><p class="error" role="alert">${res.error}</p>
      <button class="btn primary big" type="button" onClick=${run}>Réessayer</button>${back}`;
  }
  return html`<h1>Désabonnement</h1>
    <p class="ok" role="status">${res.unknown ? 'Ce lien de désabonnement n’est plus valable : aucun rappel n’est lié à ce lien.'
      : 'Vous êtes désabonné(e) : vous ne recevrez plus de rappels de cet agenda.'}</p>${back}`;
}

// The staff's per-resident link: /agenda/<code>#lien=<token> (server/api/privacy.py).
export function linkToken(hash) {
  const m = /^#?lien=([A-Za-z0-9_-]{1,200})$/.exec(hash || '');
  return m ? m[1] : null;
}

export function PublicApp({ route }) {
  const token = (globalThis.location.hash || '').replace(/^#/, '');
  let page;
  if (route.page === 'event') page = html`<${EventPage} code=${route.code} id=${route.id} />`;
  else if (route.page === 'unsubscribe') page = html`<${UnsubscribePage} code=${route.code} token=${token} />`;
  else page = html`<${AgendaPage} code=${route.code} />`;
  return html`<main class="page public">${page}</main>`;
}
