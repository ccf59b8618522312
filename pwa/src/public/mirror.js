// The unsubscribe tokens of this browser's consents, copied into IndexedDB: the service worker has no
// localStorage, and it needs them to move the consents when the push service replaces the subscription.
// Named outside 'palier-*': nothing of the staff app's databases is opened on a resident's phone.
import { openDB } from 'idb';

const NAME = 'agenda-rappels';
const open = () => openDB(NAME, 1, { upgrade(db) { db.createObjectStore('tokens'); } });

// Replaces the copy with `all` ({code: {token, ...}}, what api.js keeps in localStorage).
export async function mirror(all) {
  const db = await open();
  try {
    const tx = db.transaction('tokens', 'readwrite');
    await tx.store.clear();
    for (const [code, record] of Object.entries(all)) if (record?.token) tx.store.put(record.token, code);
    await tx.done;
  } finally {
    db.close();
  }
}

// [[code, token], ...]
export async function mirroredTokens() {
  const db = await open();
  try {
    const tx = db.transaction('tokens');
    const [codes, tokens] = await Promise.all([tx.store.getAllKeys(), tx.store.getAll()]);
    return codes.map((code, i) => [code, tokens[i]]);
  } finally {
    db.close();
  }
}

export async function forgetMirrored(code) {
  const db = await open();
  try { await db.delete('tokens', code); } finally { db.close(); }
}
