// When to sync: at start, on `online`, periodically while online, on demand, with backoff after failures.
import { syncOnce, AuthError, RetryableError } from './client.js';

export const PERIOD_MS = 60_000;
const MAX_BACKOFF_MS = 5 * 60_000;

export function backoffDelay(failures, random = Math.random) {
  const base = Math.min(MAX_BACKOFF_MS, 2000 * 2 ** Math.max(0, failures - 1));
  return Math.round(base / 2 + (random() * base) / 2);
}

export function createSyncManager({ db, transport, appVersion, onChange, onAuthRequired, win = globalThis }) {
  let running = null; // the current run and the follow-up asked for during it, as one promise
  let again = false; // asked for while a run was going: it may have read the outbox before the new record
  let failures = 0;
  let retryTimer = null;
  let periodTimer = null;
  let stopped = false;

  async function once() {
    const locks = win.navigator?.locks;
    // One sync at a time across tabs of the same phone.
    if (locks) return locks.request(`palier-sync-${db.name}`, () => syncOnce(db, transport, { appVersion }));
    return syncOnce(db, transport, { appVersion });
  }

  // One sync; true when it went through. A failure schedules the retry with backoff (or asks to log in again).
  async function attempt() {
    clearTimeout(retryTimer);
    try {
      await once();
      failures = 0;
      return true;
    } catch (err) {
      if (err instanceof AuthError) onAuthRequired?.(err);
      else if (err instanceof RetryableError || err.name === 'TypeError') {
        failures += 1;
        retryTimer = setTimeout(run, backoffDelay(failures));
      }
      return false;
    } finally {
      onChange?.();
    }
  }

  // Requests during a run are coalesced into one follow-up run right after it, never an overlapping one. After a
  // failure none runs at once (it would meet the same outage): the backoff's retry, a login or the next request does.
  async function loop() {
    try {
      do {
        again = false;
        if (!(await attempt())) break;
      } while (again && !stopped);
    } finally {
      again = false;
      running = null;
    }
  }

  function run() {
    if (stopped) return Promise.resolve();
    if (running) { again = true; return running; }
    running = loop();
    return running;
  }

  const onOnline = () => run();
  const onVisible = () => { if (win.document?.visibilityState === 'visible') run(); };

  return {
    run,
    start() {
      win.addEventListener?.('online', onOnline);
      win.document?.addEventListener?.('visibilitychange', onVisible);
      periodTimer = setInterval(() => { if (win.navigator?.onLine !== false) run(); }, PERIOD_MS);
      return run();
    },
    stop() {
      stopped = true;
      clearTimeout(retryTimer);
      clearInterval(periodTimer);
      win.removeEventListener?.('online', onOnline);
      win.document?.removeEventListener?.('visibilitychange', onVisible);
    },
    get failures() { return failures; },
  };
}
