// The shell: login, hash routes, the status bar, the update banner, the bottom tabs.
import { html } from 'htm/preact';
import { useEffect, useState, useRef } from 'preact/hooks';
import { AppCtx } from './common.js';
import { Sites, Site, Household, ResidentEdit } from './places.js';
import { VisitForm } from './visit.js';
import { Events, EventPage } from './events.js';
import { Engage, Progress } from './engage.js';
import { StatusBar, SyncPage } from './status.js';
import { useHash } from './hash.js';
import { Login } from './login.js';
import { AgendaQr } from './agendaqr.js';
import { lastAgenda } from '../public/api.js';

function route(hash) {
  const [, name, id] = hash.replace(/^#/, '').split('/');
  switch (name) {
    case 'site': return html`<${Site} id=${id} />`;
    case 'hh': return html`<${Household} id=${id} />`;
    case 'resident': return html`<${ResidentEdit} id=${id} />`;
    case 'visit': return html`<${VisitForm} householdId=${id} />`;
    case 'events': return html`<${Events} />`;
    case 'event': return html`<${EventPage} id=${id} />`;
    case 'engage': return html`<${Engage} residentId=${id} />`;
    case 'progress': return html`<${Progress} />`;
    case 'sync': return html`<${SyncPage} />`;
    case 'qr': return html`<${AgendaQr} siteId=${id} />`;
    default: return html`<${Sites} />`;
  }
}

export function App({ controller }) {
  const hash = useHash();
  const [state, setState] = useState(controller.state);
  const toastTimer = useRef(null);
  useEffect(() => controller.subscribe(setState), []);
  useEffect(() => {
    if (!state.toast) return undefined;
    clearTimeout(toastTimer.current);
    toastTimer.current = setTimeout(() => controller.clearToast(), 2500);
    return () => clearTimeout(toastTimer.current);
  }, [state.toast]);
  if (!state.session || state.authRequired) {
    // A resident's home-screen icon opens '/': lead them back to the agenda they opened on this phone.
    const resident = lastAgenda();
    const intro = resident ? html`Porte-à-porte, agenda et engagements des habitants. Habitant·e ?
      <a href=${`/agenda/${encodeURIComponent(resident.code)}`}>Agenda de ${resident.name}</a>` : undefined;
    return html`<${Login} onLogin=${controller.login} expired=${state.authRequired}
      email=${state.session?.user.email} intro=${intro} />`;
  }
  const ctx = {
    db: state.session.db, user: state.session.user, version: state.version, syncing: state.syncing,
    scopeSites: state.scopeSites, syncStart: state.syncStart, version_label: controller.appVersion,
    changed: controller.changed, sync: controller.sync, logout: controller.logout,
  };
  const tab = (href, text, match) => html`<a href=${href} class=${match ? 'on' : ''}>${text}</a>`;
  const top = hash.split('/')[1] || '';
  return html`<${AppCtx.Provider} value=${ctx}>
    ${state.updateReady && html`<div class="update" role="alert"><span>Nouvelle version disponible</span>
      <button class="btn small" type="button" onClick=${controller.applyUpdate}>Mettre à jour</button></div>`}
    <${StatusBar} />
    <main class="page">${route(hash)}</main>
    ${state.toast && html`<div class="toast" role="status">${state.toast}</div>`}
    <nav class="tabs" aria-label="Navigation">
      ${tab('#/', 'Sites', ['', 'site', 'hh', 'visit', 'resident', 'engage', 'qr'].includes(top))}
      ${tab('#/events', 'Agenda', top.startsWith('event'))}
      ${tab('#/progress', 'Progrès', top === 'progress')}
      ${tab('#/sync', 'Synchro', top === 'sync')}
    </nav>
  </${AppCtx.Provider}>`;
}
