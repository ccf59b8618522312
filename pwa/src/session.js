// Who is logged in on this phone: login, restore offline, logout with its shared-phone rules.
import { openUserDb, dropUserDb, getDevice, setDevice } from './db.js';
import { uuid } from './outbox.js';

// Restores the last session from IndexedDB, without the network, so the app starts offline.
export async function restore() {
  const userId = await getDevice('current_user');
  if (!userId) return null;
  const db = await openUserDb(userId);
  const user = await db.get('meta', 'user');
  if (!user) { db.close(); return null; }
  return { user, db };
}

// Logs in; each user has their own database and device id, so user B never sees nor pushes A's records.
export async function login(transport, email, password) {
  const resp = await transport.login(email.trim(), password);
  if (resp.status !== 200) {
    const message = resp.status === 0 ? 'Pas de connexion : la première connexion demande du réseau.'
      : resp.body?.error?.message || 'Connexion impossible.';
    return { error: message };
  }
  const { user } = resp.body;
  const db = await openUserDb(user.id);
  const tx = db.transaction('meta', 'readwrite');
  // The device id is made at this user's first login on this phone and kept while their outbox lives.
  if (!(await tx.store.get('client_id'))) await tx.store.put(uuid(), 'client_id');
  await tx.store.put(user, 'user');
  await tx.store.delete('sync_error');
  await tx.done;
  await setDevice('current_user', user.id);
  return { session: { user, db } };
}

// Logs out: refuses while records are unsynced unless the user insists; wipes this user's data from the phone.
export async function logout(transport, session, { force = false } = {}) {
  const pending = await session.db.count('outbox');
  if (pending > 0 && !force) return { refused: true, pending };
  await transport.logout();
  await dropUserDb(session.db, session.user.id);
  await setDevice('current_user', undefined);
  return { done: true };
}
