// The login form of both apps; each gives its title, its line of intro and what an expired session means for it.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';

export function Login({
  onLogin, expired, email: initial, title = 'Palier', intro = 'Porte-à-porte, agenda et engagements des habitants.',
  expiredText = 'Session expirée : reconnectez-vous. Vos saisies non envoyées restent sur le téléphone.',
  formClass = '', buttonClass = 'btn primary big',
}) {
  const [email, setEmail] = useState(initial || '');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    const err = await onLogin(email, password);
    setBusy(false);
    if (err) setError(err);
  }
  return html`<main class="login"><form class=${formClass} onSubmit=${submit}>
    <h1>${title}</h1>
    <p>${intro}</p>
    ${expired && html`<p class="warn" role="alert">${expiredText}</p>`}
    <label class="field"><span>Courriel</span><input type="email" name="email" autocomplete="username" required
      value=${email} onInput=${(e) => setEmail(e.currentTarget.value)} /></label>
    <label class="field"><span>Mot de passe</span><input type="password" name="password" autocomplete="current-password" required
      value=${password} onInput=${(e) => setPassword(e.currentTarget.value)} /></label>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <button class=${buttonClass} type="submit" disabled=${busy}>Se connecter</button>
  </form></main>`;
}
