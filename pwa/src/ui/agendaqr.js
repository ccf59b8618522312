// Staff show residents a QR code of their site's reminders page. Drawn on the phone (uqr), so it works offline in
// a stairwell; the address is this app's own origin, the one residents' phones will reach.
import { html } from 'htm/preact';
import { encode } from 'uqr';
import { Header, Loading, useQuery } from './common.js';

// One SVG path of the dark modules: crisp at any size, and no inline style (the CSP forbids it).
export function qrPath(data) {
  let d = '';
  data.forEach((row, y) => row.forEach((dark, x) => { if (dark) d += `M${x} ${y}h1v1h-1z`; }));
  return d;
}

export function AgendaQr({ siteId }) {
  const site = useQuery((db) => db.get('site', siteId), [siteId]);
  if (site === undefined) return html`<${Loading} />`;
  if (!site) return html`<p>Site introuvable sur ce téléphone.</p>`;
  const url = `${globalThis.location.origin}/agenda/${encodeURIComponent(site.code)}`;
  const qr = encode(url, { ecc: 'M', border: 4 });
  return html`<section>
    <${Header} title="QR code des rappels" back=${`#/site/${siteId}`} />
    <p>Faites scanner ce code pour ouvrir l’agenda de <strong>${site.name}</strong> et s’abonner aux rappels.</p>
    <svg class="qr" data-url=${url} role="img" aria-label=${`QR code : ${url}`} viewBox=${`0 0 ${qr.size} ${qr.size}`}
      width="100%" shape-rendering="crispEdges" xmlns="http://www.w3.org/2000/svg">
      <rect width=${qr.size} height=${qr.size} fill="#fff" /><path d=${qrPath(qr.data)} fill="#000" />
    </svg>
    <p class="muted">Ou tapez l’adresse : <strong>${url}</strong></p>
  </section>`;
}
