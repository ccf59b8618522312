// Replays one vector's recorded push/pull answers (written by tests/pwa/test_vectors_client.py) to the PWA's sync
// client and checks the phone's side. Usage: node vectors_replay.mjs <transcript.json>; exit code 1 on a failure.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { freshDb } from './setup.mjs';
import { ENTITIES } from '../../pwa/src/db.js';
import { expandPage, push, pull, PAGE_FORMAT, ProtocolError, RetryableError } from '../../pwa/src/sync/client.js';

const t = JSON.parse(await readFile(process.argv[2], 'utf8'));

// Answers the recorded exchanges in order; once they are used up the network is gone (status 0), which stops the
// client's loop with a RetryableError, as a phone losing signal would.
function scripted(exchanges, kind, where) {
  const sent = [];
  let i = 0;
  return {
    sent,
    async post(path, body) {
      sent.push(JSON.parse(JSON.stringify(body)));
      const ex = exchanges[i];
      i += 1;
      if (!ex) return { status: 0, body: null };
      assert.equal(path, `/api/sync/${kind}`, where);
      return { status: ex.status, body: structuredClone(ex.response) };
    },
  };
}

// "$seen:<id>" is the seq of that record in THIS phone's replica, which the client built from its pulls.
async function resolveSeen(db, value) {
  if (typeof value === 'string' && value.startsWith('$seen:')) {
    const id = value.slice('$seen:'.length);
    for (const e of ENTITIES) {
      const rec = await db.get(e, id);
      if (rec) return rec.seq;
    }
    return 0;
  }
  if (Array.isArray(value)) return Promise.all(value.map((v) => resolveSeen(db, v)));
  if (value && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = await resolveSeen(db, v);
    return out;
  }
  return value;
}

async function replica(db) {
  const out = [];
  for (const entity of ENTITIES) {
    for (const rec of await db.getAll(entity)) {
      assert.equal(rec._n, undefined, `${entity} ${rec.id} is still a local change`);
      const { id, ...rest } = rec;
      out.push({ entity, id, record: rest });
    }
  }
  const key = (r) => `${r.entity}/${r.id}`;
  return out.sort((a, b) => key(a).localeCompare(key(b)));
}

async function pushStep(db, step, where) {
  const mutations = await resolveSeen(db, step.push);
  const tx = db.transaction('outbox', 'readwrite');
  await tx.store.clear();
  for (const m of mutations) await tx.store.put(m);
  await tx.done;
  const [ex] = step.exchanges;
  const tr = scripted(step.exchanges, 'push', where);
  let error = null;
  try { await push(db, tr, { appVersion: 'vectors' }); } catch (err) { error = err; }
  assert.deepEqual(tr.sent[0], ex.request, `${where}: the client's request differs from the vector's`);
  const left = await db.getAllKeys('outbox');
  if (ex.status === 200) {
    const body = ex.response;
    // Decided mutations leave the outbox; the others stay in order (the client then retries, here offline).
    const expected = mutations.map((m) => m.n).filter((n) => n > body.last_applied);
    assert.deepEqual(left, expected, `${where}: outbox after last_applied ${body.last_applied}`);
    if (expected.length) assert.ok(error instanceof RetryableError, `${where}: ${error}`);
    else assert.equal(error, null, `${where}: ${error}`);
    assert.equal(await db.get('meta', 'last_applied'), body.last_applied, where);
    const conflicts = (await db.get('meta', 'conflicts')) || [];
    for (const r of body.results) {
      if (r.status === 'rejected') {
        const kept = await db.get('rejected', r.n);
        assert.ok(kept, `${where}: rejected n=${r.n} not kept for the user`);
        assert.equal(kept.reason.code, r.reason.code, where);
        assert.ok(kept.reason.message, `${where}: the French reason is kept`);
      }
      if (r.conflicts?.length) {
        const c = conflicts.filter((x) => x.n === r.n).at(-1);
        assert.ok(c, `${where}: conflict on n=${r.n} not listed`);
        assert.deepEqual(c.fields, r.conflicts, where);
      }
    }
  } else if (ex.response?.error?.code === 'mutation_gap') {
    // Renumbered from next_expected, same order and content, sent again.
    const next = ex.response.error.details.next_expected;
    const renumbered = mutations.map((m, i) => ({ ...m, n: next + i }));
    assert.deepEqual(tr.sent[1]?.mutations, renumbered, `${where}: the retry after mutation_gap`);
    assert.deepEqual(left, renumbered.map((m) => m.n), where);
    assert.ok(error instanceof RetryableError, `${where}: ${error}`);
  } else {
    // Any other refusal of the whole request: nothing is dropped, the error is raised for the status bar.
    assert.ok(error instanceof ProtocolError, `${where}: ${error}`);
    assert.equal(error.status, ex.status, where);
    assert.equal(tr.sent.length, 1, `${where}: a refused request is not resent in a loop`);
    assert.deepEqual(left, mutations.map((m) => m.n), where);
  }
  const clear = db.transaction('outbox', 'readwrite'); // the vector's next step brings its own outbox
  await clear.store.clear();
  await clear.done;
}

async function pullStep(db, step, where) {
  const tr = scripted(step.exchanges, 'pull', where);
  await pull(db, tr, { limit: step.limit ?? 500 });
  // The client always asks for PAGE_FORMAT; a transcript recorded with format 1 pages has no format in its requests.
  const asked = step.exchanges.map((e) => ({ format: PAGE_FORMAT, ...e.request }));
  assert.deepEqual(tr.sent, asked, `${where}: cursor/limit/format sent by the client`);
  const expect = step.expect || {};
  const first = step.exchanges[0].response;
  if (first.reset) {
    // A reset drops everything held before: the phone holds exactly what this pull delivered.
    const delivered = new Map();
    for (const e of step.exchanges) {
      for (const c of expandPage(e.response).changes) delivered.set(`${c.entity}/${c.id}`, !c.deleted);
    }
    const held = (await replica(db)).map((r) => `${r.entity}/${r.id}`).sort();
    assert.deepEqual(held, [...delivered].filter(([, alive]) => alive).map(([k]) => k).sort(), `${where}: reset`);
  }
  for (const item of expect.contains || []) {
    const rec = await db.get(item.entity, item.id);
    assert.ok(rec, `${where}: ${item.entity} ${item.id} not on the phone`);
    for (const [k, v] of Object.entries(item.data || {})) assert.deepEqual(rec[k], v, `${where}: ${item.entity}.${k}`);
    for (const f of item.absent_fields || []) assert.ok(!(f in rec), `${where}: ${f} reached the phone`);
  }
  for (const item of expect.absent || []) assert.equal(await db.get(item.entity, item.id), undefined, where);
  for (const [entity, n] of Object.entries(expect.count || {})) assert.equal(await db.count(entity), n, where);
  if ('last_applied' in expect) assert.equal(await db.get('meta', 'last_applied'), expect.last_applied, where);
  assert.equal(await db.get('meta', 'cursor'), step.exchanges.at(-1).response.cursor, where);
}

const dbs = {};
for (const [key, clientId] of Object.entries(t.devices)) dbs[key] = await freshDb(clientId);
for (const [i, step] of t.steps.entries()) {
  const where = `${t.name} step ${i} (${step.device})`;
  if ('push' in step) await pushStep(dbs[step.device], step, where);
  else await pullStep(dbs[step.device], step, where);
}
// Both sides agree: each phone's IndexedDB equals the Python runner's replica of the same device.
for (const [key, db] of Object.entries(dbs)) {
  const want = (t.replicas[key] || []).slice().sort((a, b) => `${a.entity}/${a.id}`.localeCompare(`${b.entity}/${b.id}`));
  assert.deepEqual(await replica(db), want, `${t.name}: ${key}'s replica`);
}
console.log(`replayed ${t.name}: ${t.steps.length} steps, ${Object.keys(dbs).length} devices`);
