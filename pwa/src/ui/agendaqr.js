// Staff show residents a QR code of their site's reminders page. Drawn on the phone (uqr), so it works offline in
// a stairwell; the address is this app's own origin, the one residents' phones will reach. A resident's own QR
// (a single-use link from the server) ties their reminders to them, so that erasing them also deletes those.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { encode } from 'uqr';
import { createTransport } from '../transport.js';
import { Header, Loading, useQuery, personName } from './common.js';

// One SVG path of the dark modules: crisp at any size, and no inline style (the CSP forbids it).
export function qrPath(data) {
  let d = '';
  data.forEach((row, y) => row.forEach((dark, x) => { if (dark) d += `M${x} ${y}h1v1h-1z`; }));
  return d;
}

export function QrCode({ url, label = `QR code : ${url}` }) {
  const qr = encode(url, { ecc: 'M', border: 4 });
  return html`<svg class="qr" data-url=${url} role="img" aria-label=${label} viewBox=${`0 0 ${qr.size} ${qr.size}`}
    width="100%" shape-rendering="crispEdges" xmlns="http://www.w3.org/2000/svg">
    <rect width=${qr.size} height=${qr.size} fill="#fff" /><path d=${qrPath(qr.data)} fill="#000" />
  </svg>`;
}

export function AgendaQr({ siteId }) {
  const site = useQuery((db) => db.get('site', siteId), [siteId]);
  if (site === undefined) return html`<${Loading} />`;
  if (!site) return html`<p>Site introuvable sur ce téléphone.</p>`;
  const url = `${globalThis.location.origin}/agenda/${encodeURIComponent(site.code)}`;
  return html`<section>
    <${Header} title="QR code des rappels" back=${`#/site/${siteId}`} />
    <p>Faites scanner ce code pour ouvrir l’agenda de <strong>${site.name}</strong> et s’abonner aux rappels.</p>
    <${QrCode} url=${url} />
    <p class="muted">Ou tapez l’adresse : <strong>${url}</strong></p>
  </section>`;
}

const transport = createTransport();
const hhmm = new Intl.DateTimeFormat('fr-FR', { hour: '2-digit', minute: '2-digit' });

// What the server's answer to a push-link request means for the staff member, in French.
export async function requestPushLink(residentId, post = (path) => transport.post(path)) {
  if (globalThis.navigator?.onLine === false) return { offline: true };
  const res = await post(`/api/privacy/residents/${encodeURIComponent(residentId)}/push-link`);
  if (res.status === 201) return { url: res.body.url, expires_at: res.body.expires_at };
  if (res.status === 0) return { offline: true };
  if (res.status === 404) return { error: 'Cet habitant n’est pas encore connu du serveur : synchronisez, puis réessayez.' };
  if (res.status === 401) return { error: 'Session expirée : reconnectez-vous, puis réessayez.' };
  return { error: res.body?.error?.message || `Le serveur ne répond pas comme prévu (${res.status}) : réessayez plus tard.` };
}

// Shown under the resident on the household screen; the token lives only in this component's state.
export function ResidentQr({ resident, siteId, onClose, request = requestPushLink }) {
  const [res, setRes] = useState(null);
  const ask = () => { setRes(null); request(resident.id).then(setRes); };
  useEffect(ask, [resident.id]);
  const siteQr = html`<a class="btn" href=${`#/qr/${siteId}`}>Montrer le QR code du site</a>`;
  const close = html`<button class="btn" type="button" onClick=${onClose}>Fermer</button>`;
  const name = personName(resident);
  let body;
  if (!res) body = html`<p class="muted">Demande du QR code au serveur…</p>`;
  else if (res.offline) {
    body = html`<p class="warn" role="status">Hors connexion : le QR des rappels propre à ${name} demande le réseau.
      Vous pouvez montrer le QR code du site : ses rappels ne seront alors pas rattachés à sa fiche.</p>
      <p class="actions">${siteQr}<button class="btn" type="button" onClick=${ask}>Réessayer</button>${close}</p>`;
  } else if (res.error) {
    body = html`<p class="error" role="alert">${res.error}</p>
      <p class="actions">${siteQr}<button class="btn" type="button" onClick=${ask}>Réessayer</button>${close}</p>`;
  } else {
    body = html`<p>Faites scanner ce code par <strong>${name}</strong> : ses rappels de l’agenda seront rattachés à
      sa fiche, pour être effacés avec ses données s’il ou elle le demande.</p>
      <${QrCode} url=${res.url} label=${`QR code des rappels de ${name}`} />
      <p class="muted">Valable une seule fois, jusqu’à ${hhmm.format(new Date(res.expires_at))}. Sans ce
        rattachement, l’habitant peut aussi s’abonner depuis le QR code du site.</p>
      <p class="actions">${siteQr}${close}</p>`;
  }
  return html`<section class="card" aria-label=${`QR des rappels de ${name}`}>${body}</section>`;
}
