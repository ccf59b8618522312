// Background Sync with no page of the app open: the service worker pushes the outbox of the phone's current
// user with the page's own sync client (one implementation of the protocol, no business logic of its own).
import { getDevice, openUserDb } from '../db.js';
import { createTransport } from '../transport.js';
import { syncOnce, AuthError, RetryableError } from './client.js';

// The worker has no document.cookie: the double-submit CSRF tokens are read with the Cookie Store API.
export const cookieStoreReader = (store) => async (name) => (store ? (await store.get(name))?.value ?? null : null);

// Pushes what waits; resolves with what it did. Rejects only when trying again later may help (no network, a
// server outage): the browser then schedules the sync event again. A 401 is recorded for the page, which asks
// to log in again; the outbox is kept in every case.
export async function backgroundPush({ appVersion, transport, scope = globalThis } = {}) {
  const userId = await getDevice('current_user');
  if (!userId) return 'no session';
  const db = await openUserDb(userId);
  try {
    if (!(await db.get('meta', 'user')) || (await db.count('outbox')) === 0) return 'nothing to push';
    const t = transport || createTransport({ cookie: cookieStoreReader(scope.cookieStore) });
    const run = () => syncOnce(db, t, { appVersion, pull: false });
    // The same lock as the page's sync manager: one sync at a time for this user's database.
    const locks = scope.navigator?.locks;
    await (locks ? locks.request(`palier-sync-${db.name}`, run) : run());
    return 'pushed';
  } catch (err) {
    if (err instanceof RetryableError) throw err;
    if (err instanceof AuthError) return 'session expired';
    return `not pushed: ${err.message}`;
  } finally {
    db.close();
  }
}
