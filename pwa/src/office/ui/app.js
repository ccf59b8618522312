// The head-office shell: login, the role gate (field roles are sent to the field app), the menu, hash routes.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { OFFICE_ROLES } from '../api.js';
import { Agenda } from './agenda.js';
import { OfficeCtx, USER_ROLES, label } from './common.js';
import { Dashboard } from './dashboard.js';
import { Lists } from './lists.js';
import { Review } from './review.js';
import { Team } from './team.js';
import { useHash } from '../../ui/hash.js';
import { Login } from '../../ui/login.js';

function route(hash) {
  const [, name, sub] = hash.replace(/^#/, '').split('/');
  switch (name) {
    case 'lists': return html`<${Lists} key=${sub} kind=${sub || 'visits'} />`;
    case 'review': return html`<${Review} />`;
    case 'agenda': return html`<${Agenda} />`;
    case 'team': return html`<${Team} />`;
    default: return html`<${Dashboard} />`;
  }
}

function OfficeLogin({ onLogin, expired }) {
  return html`<${Login} onLogin=${onLogin} expired=${expired} title="Palier — Siège" formClass="card" buttonClass="btn primary"
    intro="Progression du programme, revues, agenda, équipe et exports." expiredText="Session expirée : reconnectez-vous." />`;
}

// A gardien or a staff member who opens /bureau: their work is in the field app, which keeps their session.
function FieldRole({ user, onLogout }) {
  return html`<main class="login"><div class="card" role="alert">
    <h1>Espace réservé au siège</h1>
    <p>Bonjour ${user.display_name}. Votre rôle (${label(USER_ROLES, user.role)}) travaille dans l’application de terrain :
      visites, habitants, agenda et pointages, même sans réseau.</p>
    <p><a class="btn primary" href="/">Ouvrir l’application de terrain</a></p>
    <p><button class="btn" type="button" onClick=${onLogout}>Changer de compte</button></p>
  </div></main>`;
}

export function OfficeApp({ controller }) {
  const hash = useHash();
  const [state, setState] = useState(controller.state);
  useEffect(() => controller.subscribe(setState), []);
  if (state.user === undefined) return html`<p class="page">Chargement de l’espace siège…</p>`;
  if (!state.user || state.expired) return html`<${OfficeLogin} onLogin=${controller.login} expired=${state.expired} />`;
  if (!OFFICE_ROLES.includes(state.user.role)) return html`<${FieldRole} user=${state.user} onLogout=${controller.logout} />`;
  const top = hash.split('/')[1] || '';
  const link = (href, text, on) => html`<a href=${href} aria-current=${on ? 'page' : undefined}>${text}</a>`;
  return html`<${OfficeCtx.Provider} value=${{ api: controller.api, user: state.user }}>
    <header class="top">
      <strong class="brand">Palier · Siège</strong>
      <nav aria-label="Menu">
        ${link('#/', 'Tableau de bord', top === '')}
        ${link('#/lists/visits', 'Listes', top === 'lists')}
        ${link('#/review', 'Revue', top === 'review')}
        ${link('#/agenda', 'Agenda', top === 'agenda')}
        ${link('#/team', 'Équipe', top === 'team')}
      </nav>
      <span class="who">${state.user.display_name}
        <button class="btn small" type="button" onClick=${controller.logout}>Se déconnecter</button></span>
    </header>
    <main class="page">${route(hash)}</main>
  </${OfficeCtx.Provider}>`;
}
