// HTTP for the sync client and the session: same-origin fetch with the cookies, the double-submit CSRF header,
// and one refresh on 401. A failed refresh means "session expirée": the caller keeps the outbox. `cookie(name)` may
// return a promise (the service worker reads the CSRF cookies with the Cookie Store API).
export function readCookie(name, doc = globalThis.document) {
  const raw = doc?.cookie || '';
  for (const part of raw.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return null;
}

// One JSON request, never a throw: {status, body}, status 0 offline. The residents' pages send no cookies
// (credentials 'omit', public/api.js).
export async function sendJson(fetchImpl, method, path, body, csrf, credentials = 'same-origin') {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (csrf) headers['X-CSRF-TOKEN'] = csrf;
  let resp;
  try {
    resp = await fetchImpl(path, {
      method, headers, credentials, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return { status: 0, body: null }; // offline or network failure
  }
  let data = null;
  try { data = await resp.json(); } catch { data = null; }
  return { status: resp.status, body: data };
}

export function createTransport({ fetchImpl = (...a) => globalThis.fetch(...a), cookie = readCookie } = {}) {
  async function refresh() {
    const r = await sendJson(fetchImpl, 'POST', '/api/auth/refresh', undefined, await cookie('csrf_refresh_token'));
    return r.status === 200;
  }

  async function request(method, path, body) {
    const first = await sendJson(fetchImpl, method, path, body, await cookie('csrf_access_token'));
    if (first.status !== 401) return first;
    if (!(await refresh())) return first;
    return sendJson(fetchImpl, method, path, body, await cookie('csrf_access_token'));
  }

  return {
    post: (path, body) => request('POST', path, body),
    get: (path) => request('GET', path),
    patch: (path, body) => request('PATCH', path, body), // head office edits users and events
    async login(email, password) {
      return sendJson(fetchImpl, 'POST', '/api/auth/login', { email, password });
    },
    async logout() {
      return sendJson(fetchImpl, 'POST', '/api/auth/logout', undefined, await cookie('csrf_refresh_token'));
    },
    refresh,
  };
}
