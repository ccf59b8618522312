// French words of the public agenda, shared by its pages and the service worker's notifications.

export const KINDS = [
  ['atelier', 'Atelier'], ['accompagnement', 'Accompagnement'], ['sortie', 'Sortie'], ['reunion', 'Réunion'],
  ['permanence', 'Permanence'],
];
export const kindLabel = (code) => (KINDS.find(([c]) => c === code) || [code, code || 'Événement'])[1];

// The site's clock, not the phone's: a resident travelling still reads the time printed on the poster.
const TZ = 'Europe/Paris';
const dayTime = new Intl.DateTimeFormat('fr-FR', { weekday: 'long', day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit', timeZone: TZ });
const day = new Intl.DateTimeFormat('fr-FR', { weekday: 'long', day: 'numeric', month: 'long', timeZone: TZ });

export function whenText(iso) {
  const d = iso ? new Date(iso) : null;
  return d && !Number.isNaN(d.getTime()) ? dayTime.format(d) : '';
}

export function dayText(iso) {
  const d = iso ? new Date(iso) : null;
  return d && !Number.isNaN(d.getTime()) ? day.format(d) : '';
}

// Only our own public pages open from a notification, whatever a payload says.
export const safePath = (p) => (typeof p === 'string' && /^\/agenda\/[^/]+(\/|$)/.test(p) ? p : '/');

// Title and body of a notification for each payload type the server sends (see docs/push.md).
export function notice(data) {
  const d = data && typeof data === 'object' ? data : {};
  const title = d.title || 'Agenda';
  const at = [whenText(d.starts_at), d.place].filter(Boolean).join(' · ');
  switch (d.type) {
    case 'reminder':
      return { title: `Rappel : ${title}`, body: [kindLabel(d.kind), at].filter(Boolean).join(' · ') };
    case 'cancelled':
      return { title: `Annulé : ${title}`, body: `${at ? `${at} : ` : ''}l’événement n’aura pas lieu.` };
    case 'moved':
      return { title: `Changement d’horaire : ${title}`, body: at ? `Nouvel horaire : ${at}` : 'Nouvel horaire : voir l’agenda.' };
    default:
      return { title: `Agenda : ${title}`, body: at || 'Nouvelle information à l’agenda.' };
  }
}
