// What the screens read: small queries over the user's database (the UI never calls fetch).
import { all, byIndex, get } from './db.js';

const collator = new Intl.Collator('fr', { numeric: true, sensitivity: 'base' });

export function norm(s) {
  return String(s || '').normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
}

export const sites = async (db) => (await all(db, 'site')).sort((a, b) => collator.compare(a.name, b.name));

export async function households(db, siteId, search = '') {
  const [hhs, residents] = [await byIndex(db, 'household', 'site_id', siteId), await all(db, 'resident')];
  const names = new Map();
  for (const r of residents) {
    if (r.site_id !== siteId) continue;
    names.set(r.household_id, `${names.get(r.household_id) || ''} ${r.first_name} ${r.last_name}`);
  }
  const q = norm(search).trim();
  return hhs
    .filter((h) => !q || norm(`${h.building} esc ${h.staircase} porte ${h.door} ${names.get(h.id) || ''}`).includes(q))
    .sort((a, b) => collator.compare(a.building, b.building) || collator.compare(a.staircase, b.staircase)
      || collator.compare(a.door, b.door));
}

export const household = (db, id) => get(db, 'household', id);
export const residentsOf = async (db, hhId) => (await byIndex(db, 'resident', 'household_id', hhId))
  .sort((a, b) => collator.compare(a.last_name, b.last_name) || collator.compare(a.first_name, b.first_name));
export const visitsOf = async (db, hhId) => (await byIndex(db, 'visit', 'household_id', hhId))
  .sort((a, b) => String(b.visited_at).localeCompare(String(a.visited_at)));
export const resident = (db, id) => get(db, 'resident', id);

// The household screen's data in one answer: the household, its residents and its visits arrive together, so the
// screen is drawn once with all of them (a list arriving after the first render pushed the form down).
export async function householdPage(db, id) {
  const [hh, residents, visits] = await Promise.all([household(db, id), residentsOf(db, id), visitsOf(db, id)]);
  return { hh: hh ?? null, residents, visits };
}

export async function actionsFor(db, siteId) {
  return (await all(db, 'action')).filter((a) => !a.site_id || a.site_id === siteId)
    .sort((a, b) => collator.compare(a.name, b.name));
}

export async function upcomingEvents(db, now = new Date()) {
  const start = new Date(now); start.setHours(0, 0, 0, 0);
  return (await all(db, 'event'))
    .filter((e) => e.status !== 'cancelled' && new Date(e.ends_at || e.starts_at) >= start)
    .sort((a, b) => String(a.starts_at).localeCompare(String(b.starts_at)));
}

export const event = (db, id) => get(db, 'event', id);
export const attendancesOf = (db, eventId) => byIndex(db, 'attendance', 'event_id', eventId);
export const headcountsOf = (db, eventId) => byIndex(db, 'headcount', 'event_id', eventId);

export async function residentsOfSites(db, siteIds, search = '') {
  const q = norm(search).trim();
  const set = new Set(siteIds || []);
  return (await all(db, 'resident'))
    .filter((r) => set.has(r.site_id) && (!q || norm(`${r.first_name} ${r.last_name}`).includes(q)
      || norm(`${r.last_name} ${r.first_name}`).includes(q)))
    .sort((a, b) => collator.compare(a.last_name, b.last_name) || collator.compare(a.first_name, b.first_name));
}

export const engagementsOf = (db, residentId) => byIndex(db, 'engagement', 'resident_id', residentId);

// Engaged residents on this phone: active engagements, a suspected duplicate counted once.
export async function localEngaged(db) {
  const [engs, residents] = [await all(db, 'engagement'), await all(db, 'resident')];
  const dupOf = new Map(residents.map((r) => [r.id, r.duplicate_of || r.id]));
  const ids = new Set(engs.filter((e) => e.status === 'active').map((e) => dupOf.get(e.resident_id) || e.resident_id));
  return ids.size;
}

export async function syncState(db) {
  const tx = db.transaction(['meta', 'outbox', 'rejected']);
  const meta = tx.objectStore('meta');
  const [pending, lastSync, error, progress, rejected, conflicts, scope] = await Promise.all([
    tx.objectStore('outbox').count(), meta.get('last_sync'), meta.get('sync_error'), meta.get('progress'),
    tx.objectStore('rejected').getAll(), meta.get('conflicts'), meta.get('scope'),
  ]);
  return { pending, lastSync, error, progress, rejected, conflicts: conflicts || [], scope };
}
