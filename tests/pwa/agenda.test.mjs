// The residents' agenda: notification texts per payload type, the public routes, the links a payload may open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { notice, safePath, kindLabel } from '../../pwa/src/public/notice.js';
import { publicRoute } from '../../pwa/src/public/agenda.js';
import { qrPath } from '../../pwa/src/ui/agendaqr.js';

const base = { event_id: 'e1', title: 'Atelier couture', kind: 'atelier', starts_at: '2026-06-02T14:30:00+02:00',
  place: 'Local commun', url: '/agenda/vauban/events/e1', unsubscribe_url: '/agenda/vauban/unsubscribe#t' };

test('a reminder says the kind, the day and time on the site clock, and the place', () => {
  const n = notice({ ...base, type: 'reminder' });
  assert.equal(n.title, 'Rappel : Atelier couture');
  assert.match(n.body, /^Atelier · mardi 2 juin (à )?14:30 · Local commun$/);
});

test('the time is the site’s (Europe/Paris), not the phone’s', () => {
  const n = notice({ ...base, type: 'reminder', starts_at: '2026-06-02T12:30:00Z' });
  assert.match(n.body, /14:30/);
});

test('cancelled and moved notices, and an unknown type, each read sensibly in French', () => {
  const cancelled = notice({ ...base, type: 'cancelled' });
  assert.equal(cancelled.title, 'Annulé : Atelier couture');
  assert.match(cancelled.body, /^mardi 2 juin (à )?14:30 · Local commun : l’événement n’aura pas lieu\.$/);
  const moved = notice({ ...base, type: 'moved' });
  assert.equal(moved.title, 'Changement d’horaire : Atelier couture');
  assert.match(moved.body, /^Nouvel horaire : mardi 2 juin (à )?14:30 · Local commun$/);
  assert.equal(notice({ ...base, type: 'new-kind' }).title, 'Agenda : Atelier couture');
  assert.deepEqual(notice(null), { title: 'Agenda : Agenda', body: 'Nouvelle information à l’agenda.' });
  assert.equal(kindLabel('reunion'), 'Réunion');
});

test('a notification opens only the public agenda pages of this origin', () => {
  assert.equal(safePath('/agenda/vauban/events/e1'), '/agenda/vauban/events/e1');
  assert.equal(safePath('/agenda/vauban/unsubscribe#tok'), '/agenda/vauban/unsubscribe#tok');
  for (const bad of ['https://evil.example/agenda/x', '//evil.example/agenda/x', '/#/site/1', '/agenda/', 42, undefined]) {
    assert.equal(safePath(bad), '/');
  }
});

test('public routes: the agenda, one event, the unsubscribe page; anything else is the staff app', () => {
  assert.deepEqual(publicRoute('/agenda/vauban'), { page: 'agenda', code: 'vauban' });
  assert.deepEqual(publicRoute('/agenda/vauban/'), { page: 'agenda', code: 'vauban' });
  assert.deepEqual(publicRoute('/agenda/zac%203/events/e1'), { page: 'event', code: 'zac 3', id: 'e1' });
  assert.deepEqual(publicRoute('/agenda/vauban/unsubscribe'), { page: 'unsubscribe', code: 'vauban' });
  for (const other of ['/', '/agenda', '/agenda/vauban/other', '/bureau/', '/agenda/vauban/events/']) {
    assert.equal(publicRoute(other), null);
  }
});

test('the QR code path draws one unit square per dark module', () => {
  assert.equal(qrPath([[true, false], [false, true]]), 'M0 0h1v1h-1zM1 1h1v1h-1z');
});
