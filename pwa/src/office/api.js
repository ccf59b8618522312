// The head office's road to the server: the field app's cookie transport, answers turned into data or a French error.
import { createTransport } from '../transport.js';

export const OFFICE_ROLES = ['head_office', 'admin'];

export class ApiFailure extends Error {
  constructor(status, body) {
    const fallback = status === 0 ? 'Pas de connexion au serveur : réessayez.'
      : status === 403 ? 'Accès refusé pour votre rôle.'
        : status === 404 ? 'Introuvable : la donnée a peut-être été supprimée.'
          : 'Le serveur n’a pas pu répondre.';
    super(body?.error?.message || fallback);
    this.status = status;
    this.details = body?.error?.details || null;
  }
}

// A query string from a filter object; empty values are left out so the server applies its defaults.
export function qs(params = {}) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

export function createApi({ transport = createTransport(), onExpired = () => {}, doc = globalThis.document } = {}) {
  async function call(method, path, body) {
    const r = await transport[method](path, body);
    if (r.status >= 200 && r.status < 300) return r.body;
    if (r.status === 401) onExpired();
    throw new ApiFailure(r.status, r.body);
  }
  return {
    get: (path) => call('get', path),
    post: (path, body = {}) => call('post', path, body),
    patch: (path, body) => call('patch', path, body),
    async login(email, password) {
      const r = await transport.login(email.trim(), password);
      if (r.status === 200) return r.body.user;
      throw new ApiFailure(r.status, r.body);
    },
    // Who is logged in, from the session cookies (refreshed once when the access token has expired).
    async me() {
      const r = await transport.get('/api/auth/me');
      return r.status === 200 ? r.body : null;
    },
    logout: () => transport.logout(),
    // A file export: the browser downloads it itself (streamed, never held in memory); the session is checked
    // first so that an expired access token is refreshed instead of downloading an error.
    async download(path) {
      const r = await transport.get('/api/auth/me');
      if (r.status !== 200) { onExpired(); throw new ApiFailure(r.status, r.body); }
      const a = doc.createElement('a');
      a.href = path;
      a.download = '';
      doc.body.append(a);
      a.click();
      a.remove();
    },
  };
}
