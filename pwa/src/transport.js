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

// One request, never a throw: the Response, or null offline (or any network failure).
async function send(fetchImpl, method, path, body, csrf, credentials, accept = 'application/json') {
  const headers = { Accept: accept };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (csrf) headers['X-CSRF-TOKEN'] = csrf;
  try {
    return await fetchImpl(path, {
      method, headers, credentials, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return null;
  }
}

async function jsonOf(resp) {
  try { return await resp.json(); } catch { return null; }
}

// One JSON request, never a throw: {status, body}, status 0 offline. The residents' pages send no cookies
// (credentials 'omit', public/api.js).
export async function sendJson(fetchImpl, method, path, body, csrf, credentials = 'same-origin') {
  const resp = await send(fetchImpl, method, path, body, csrf, credentials);
  return resp ? { status: resp.status, body: await jsonOf(resp) } : { status: 0, body: null };
}

// An answer of several JSON documents, one per line (application/x-ndjson: a streamed pull, docs/PROTOCOL.md).
const NDJSON = 'application/x-ndjson';

// Hands each complete line of the stream to onItem, in order, the next only once the previous one resolved. A read
// that fails (the network lost mid-answer) ends with cut: true; what onItem throws goes up as it is. A last
// fragment without its newline is a page cut short, never a page.
export async function readLines(stream, onItem) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let items = 0;
  let parts = []; // the start of the current line, kept in pieces: only new text is ever scanned for a newline
  try {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch {
        return { status: 200, items, cut: true };
      }
      if (chunk.done) return { status: 200, items };
      const text = chunk.value;
      let from = 0;
      for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', from)) {
        parts.push(text.slice(from, nl));
        const line = parts.join('');
        parts = [];
        from = nl + 1;
        if (!line) continue;
        await onItem(JSON.parse(line));
        items += 1;
      }
      if (from < text.length) parts.push(text.slice(from));
    }
  } finally {
    reader.cancel().catch(() => {}); // an answer left early (onItem threw) frees its connection; else a no-op
  }
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

  // A POST whose answer may come as NDJSON: each line to onItem (readLines), then {status: 200, items, cut?}. Any
  // other answer (an error, an older server's single JSON page) is {status, body} as post() gives it.
  async function postLines(path, body, onItem) {
    const once = async () => send(fetchImpl, 'POST', path, body, await cookie('csrf_access_token'), 'same-origin',
      `${NDJSON}, application/json`);
    let resp = await once();
    if (resp?.status === 401 && (await refresh())) resp = await once();
    if (!resp) return { status: 0, body: null };
    if (resp.status === 200 && resp.headers?.get('Content-Type')?.startsWith(NDJSON) && resp.body) {
      return readLines(resp.body, onItem);
    }
    return { status: resp.status, body: await jsonOf(resp) };
  }

  return {
    post: (path, body) => request('POST', path, body),
    postLines,
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
