// A small in-memory server speaking docs/PROTOCOL.md, as the fake transport of the sync client's tests.
export class FakeServer {
  constructor() {
    this.seq = 0;
    this.rows = new Map(); // `${entity}:${id}` -> {entity, id, seq, deleted, data}
    this.devices = new Map(); // client_id -> {last, log: Map(n -> {hash, result})}
    this.failNext = []; // statuses to answer instead of handling the next requests
    this.requests = [];
    this.reject = () => null; // (mutation) -> reason | null
    // Streamed pulls (`pages`, answered by fetch() as NDJSON): false is a server older than them (422 details.pages);
    // chunk is the size in bytes of each piece of the body; the next answer is cut (a network failure) halfway
    // through the page after cutNext whole ones (or just after them, when it was the last), or ended by the server
    // after endNext pages.
    this.streams = true;
    this.chunk = 1 << 16;
    this.cutNext = null;
    this.endNext = null;
  }

  put(entity, id, data, deleted = false) {
    this.seq += 1;
    this.rows.set(`${entity}:${id}`, { entity, id, seq: this.seq, deleted, data: deleted ? null : data });
  }

  device(cid) {
    if (!this.devices.has(cid)) this.devices.set(cid, { last: 0, log: new Map() });
    return this.devices.get(cid);
  }

  applyMutation(m) {
    const entity = m.op.split('.')[0];
    const verb = m.op.split('.')[1];
    const key = `${entity}:${m.args.id}`;
    if (verb === 'create') {
      const { id, ...data } = m.args;
      this.put(entity, id, data);
    } else if (verb === 'update') {
      const cur = this.rows.get(key);
      this.put(entity, m.args.id, { ...cur.data, ...m.args.changes });
    } else if (verb === 'delete') this.put(entity, m.args.id, null, true);
  }

  push(body) {
    const dev = this.device(body.client_id);
    const results = [];
    for (const m of body.mutations) {
      const hash = JSON.stringify([m.op, m.args, m.at]);
      if (m.n <= dev.last) {
        const prev = dev.log.get(m.n);
        if (prev.hash !== hash) return { status: 409, body: { error: { code: 'mutation_conflict', message: 'x' } } };
        results.push({ ...prev.result, replayed: true });
        continue;
      }
      if (m.n !== dev.last + 1) {
        return { status: 409, body: { error: { code: 'mutation_gap', message: 'trou', details: { next_expected: dev.last + 1 } } } };
      }
      const reason = this.reject(m);
      const result = reason ? { n: m.n, status: 'rejected', reason } : { n: m.n, status: 'applied' };
      if (!reason) this.applyMutation(m);
      dev.last = m.n;
      dev.log.set(m.n, { hash, result });
      results.push(result);
    }
    return { status: 200, body: { last_applied: dev.last, results } };
  }

  // Format 1 unless the request asks for format 2 (docs/PROTOCOL.md, "Page format 2"): rows of values named once per
  // entity (here the union of the page's records' keys, a missing one sent as null), and progress on the last page.
  pull(body) {
    const after = body.cursor ? Number(JSON.parse(atob(body.cursor)).s) : 0;
    const rows = [...this.rows.values()].filter((r) => r.seq > after).sort((a, b) => a.seq - b.seq);
    const page = rows.slice(0, body.limit || 500);
    const last = page.length ? page[page.length - 1].seq : after;
    const hasMore = page.length < rows.length;
    const head = {
      cursor: btoa(JSON.stringify({ s: last })), has_more: hasMore, reset: body.cursor === null,
      last_applied: this.device(body.client_id).last, scope: { role: 'staff', sites: ['s1'] },
      progress: { engaged: 400, goal: 1400, baseline: 386, as_of: '2026-11-21T09:40:02+00:00' },
    };
    if (body.format !== 2) {
      const changes = page.map((r) => ({ entity: r.entity, id: r.id, seq: r.seq, deleted: r.deleted, data: r.data }));
      return { status: 200, body: { ...head, changes } };
    }
    const fields = {};
    for (const r of page) {
      if (r.deleted) continue;
      fields[r.entity] = [...new Set([...(fields[r.entity] || []), ...Object.keys(r.data)])];
    }
    const changes = page.map((r) => (r.deleted ? [r.entity, r.id, r.seq, null]
      : [r.entity, r.id, r.seq, fields[r.entity].map((f) => r.data[f] ?? null)]));
    return { status: 200, body: { format: 2, ...head, progress: hasMore ? null : head.progress, fields, changes } };
  }

  transport() {
    return {
      post: async (path, body) => {
        this.requests.push({ path, body: structuredClone(body) });
        if (this.failNext.length) {
          const status = this.failNext.shift();
          return { status, body: status ? { error: { code: 'x', message: 'panne' } } : null };
        }
        if (path === '/api/sync/push') return this.push(body);
        if (path === '/api/sync/pull' && 'pages' in body && !this.streams) {
          return { status: 422, body: { error: { code: 'validation_error', message: 'Données invalides.',
            details: { pages: ['Champ inconnu.'] } } } };
        }
        if (path === '/api/sync/pull') return this.pull(body);
        return { status: 404, body: null };
      },
    };
  }

  // The same server over HTTP, as the fetch of the real transport (transport.js): a pull asking for pages > 1 is
  // answered with up to that many pages, one per line, in a body read chunk by chunk; anything else as JSON.
  async fetch(path, init) {
    const body = init.body ? JSON.parse(init.body) : undefined;
    if (path !== '/api/sync/pull' || !(body.pages > 1) || !this.streams || this.failNext.length) {
      const r = await this.transport().post(path, body);
      if (r.status === 0) throw new TypeError('Failed to fetch');
      return Response.json(r.body, { status: r.status });
    }
    this.requests.push({ path, body: structuredClone(body) });
    const lines = [];
    let page = null;
    const last = Math.min(body.pages, this.endNext ?? Infinity);
    while (lines.length < last && (!page || page.has_more)) {
      page = this.pull({ ...body, cursor: page ? page.cursor : body.cursor }).body;
      lines.push(`${JSON.stringify(page)}\n`);
    }
    const encoded = lines.map((l) => new TextEncoder().encode(l));
    const bytes = new Uint8Array(encoded.reduce((n, l) => n + l.length, 0));
    let cut = null; // the byte where the network fails: halfway through the page after cutNext whole ones
    for (let i = 0, at = 0; i < encoded.length; at += encoded[i].length, i += 1) {
      bytes.set(encoded[i], at);
      if (i === this.cutNext) cut = at + Math.floor(encoded[i].length / 2);
    }
    if (this.cutNext !== null && cut === null) cut = bytes.length;
    this.cutNext = null;
    this.endNext = null;
    let at = 0;
    const stream = new ReadableStream({
      pull: (controller) => {
        const end = Math.min(at + this.chunk, bytes.length, cut ?? Infinity);
        if (end > at) { controller.enqueue(bytes.slice(at, end)); at = end; return; }
        if (cut !== null) controller.error(new TypeError('network error'));
        else controller.close();
      },
    });
    return new Response(stream, { headers: { 'Content-Type': 'application/x-ndjson' } });
  }
}
