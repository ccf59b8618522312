"""Residents' agenda and Web Push reminders in Chromium.

Headless Chromium reaches no push service, so PushManager.subscribe is stubbed by an init script: it hands the page
a subscription whose endpoint is the loopback push service (server/push/fake_service.py, real HTTP) with keys this
test made, so the server's sending job really encrypts and the fake service really decrypts. Notifications come in
through the DevTools protocol (ServiceWorker.deliverPushMessage). CDP cannot click a notification: the click is a
notificationclick event dispatched in the worker (untrusted, so openWindow and focus are refused there; navigating
an open agenda window is what the test sees)."""
import json
import re
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from server import push
from server.database import next_seq
from server.extensions import db
from server.models import Event, Site

from .helpers import start_phone, wait_controlled
from .push_support import (STUB, decode_qr, fake_push, live_config, opt_in, resident_phone,  # noqa: F401
                           subscriptions, vapid)

pytestmark = pytest.mark.e2e

PARIS = ZoneInfo("Europe/Paris")
WEEKDAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre"]
PERSONAL = ("Maryse", "Moreau", "Karim", "Benali", "Lucie", "Dubois", "Voisin", "@palier.test")

NOTIFICATIONS = """() => navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((list) => list.map((n) => (
  { title: n.title, body: n.body, lang: n.lang, tag: n.tag, data: n.data, actions: n.actions.map((a) => [a.action, a.title]) })))"""

CLICK = """async (action) => {
  const [n] = await self.registration.getNotifications();
  self.dispatchEvent(new NotificationEvent('notificationclick', { notification: n, action }));
}"""


def add_event(live, title, kind, starts_at, place="Salle polyvalente"):
    def make(s):
        ev = Event(title=title, kind=kind, place=place, starts_at=starts_at, ends_at=starts_at + timedelta(hours=2),
                   seq=next_seq(s))
        ev.sites = [s.execute(sa.select(Site).where(Site.code == "vauban")).scalar_one()]
        s.add(ev)
        s.commit()
        return str(ev.id)
    return live.query(make)


def send_due(live) -> dict:
    """The worker's sending job, in the live app (the tick would run it within a minute)."""
    with live.app.app_context():
        try:
            return dict(push.send_due())
        finally:
            db.session.remove()


def french_day(dt: datetime) -> str:
    local = dt.astimezone(PARIS)
    return f"{WEEKDAYS[local.weekday()]} {local.day} {MONTHS[local.month - 1]}"


def test_opt_in_reminder_arrives_once_without_personal_data_then_one_tap_unsubscribe(live, phone, fake_push, vapid):
    soon = datetime.now(timezone.utc) + timedelta(hours=1, minutes=55)  # its 2 h reminder is due now
    workshop = add_event(live, "Atelier couture", "atelier", soon)
    add_event(live, "Réunion de locataires", "reunion", soon)
    ctx, page, sub = resident_phone(phone, live, fake_push)
    api_paths = []
    page.on("request", lambda r: api_paths.append(urlsplit(r.url).path) if "/api/" in r.url else None)

    page.goto("/agenda/vauban")
    page.get_by_role("heading", name="Agenda — Résidence Vauban").wait_for()
    row = page.get_by_role("link", name=re.compile("Atelier couture")).inner_text()
    hhmm = soon.astimezone(PARIS).strftime("%H:%M")
    assert "Atelier" in row and french_day(soon) in row and hhmm in row and "Salle polyvalente" in row
    assert page.get_by_label("Mot de passe").count() == 0  # residents never meet the staff login

    # Without the consent ticked: a French error, and neither the permission prompt nor a subscription.
    page.get_by_label("Réunion", exact=True).uncheck()
    page.get_by_role("button", name="Recevoir les rappels").click()
    page.get_by_role("alert").filter(has_text="Cochez la case d’accord").wait_for()
    assert page.evaluate("[window.__push.permissionCalls, window.__push.subscribeCalls]") == [0, 0]
    assert subscriptions(live) == []

    opt_in(page)
    page.get_by_text("Rappels activés").wait_for()
    st = page.evaluate("window.__push")
    assert (st["permissionCalls"], st["subscribeCalls"]) == (1, 1)
    assert st["options"] == {"userVisibleOnly": True, "key": vapid["public_key"]}
    (rec,) = subscriptions(live)
    assert (rec.kinds, rec.consent_text_version, rec.withdrawn_at, rec.endpoint) == (
        ["accompagnement", "atelier", "permanence", "sortie"], "2026-05", None, sub["endpoint"])
    assert rec.consent_at is not None

    # The sending job: the workshop's reminder arrives once; the meeting (kind not chosen) never.
    assert send_due(live) == {"sent": 1}
    assert send_due(live) == {}
    assert fake_push.deliveries() == {("phone", workshop, "reminder"): 1}
    payload = fake_push.received[0]["payload"]
    assert set(payload) == {"type", "event_id", "title", "kind", "starts_at", "place", "url", "unsubscribe_url"}
    text = json.dumps(payload, ensure_ascii=False)
    for personal in (*PERSONAL, sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"]):
        assert personal not in text

    # Nothing of the staff side: public calls only, and no staff database opened on this phone.
    assert api_paths and all(p.startswith("/api/public/") for p in api_paths)
    names = page.evaluate("indexedDB.databases().then((list) => list.map((d) => d.name))")
    assert [n for n in names if n.startswith("palier")] == []

    # One tap on the page withdraws; the consent record stays with its withdrawal time.
    page.get_by_role("button", name="Se désabonner").click()
    page.get_by_text("Vous êtes désabonné(e)").wait_for()
    (rec,) = subscriptions(live)
    assert rec.withdrawn_at is not None and rec.consent_at is not None and rec.endpoint is None
    assert page.evaluate("window.__push.unsubscribeCalls") == 1  # no other site used this browser's subscription
    page.reload()
    page.get_by_role("button", name="Recevoir les rappels").wait_for()

    # The home-screen icon opens '/': its login screen leads a resident back to the agenda seen on this phone.
    page.goto("/")
    page.get_by_role("link", name="Agenda de Résidence Vauban").click()
    page.get_by_role("heading", name="Agenda — Résidence Vauban").wait_for()


def test_push_via_devtools_shows_french_notification_and_click_opens_event(live, phone, fake_push):
    soon = datetime.now(timezone.utc) + timedelta(hours=1, minutes=55)
    workshop = add_event(live, "Atelier couture", "atelier", soon, place="Local commun")
    ctx, page, _ = resident_phone(phone, live, fake_push)
    page.goto("/agenda/vauban")
    opt_in(page)
    page.get_by_text("Rappels activés").wait_for()
    wait_controlled(page)
    assert send_due(live) == {"sent": 1}
    reminder = fake_push.received[0]["payload"]

    cdp = ctx.new_cdp_session(page)
    registrations = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + 10
    while not any(r["scopeURL"] == f"{live.url}/" for r in registrations):
        assert time.monotonic() < deadline, "the service worker registration never showed in DevTools"
        page.wait_for_timeout(50)
    reg_id = next(r["registrationId"] for r in registrations if r["scopeURL"] == f"{live.url}/")

    def deliver(payload):
        cdp.send("ServiceWorker.deliverPushMessage",
                 {"origin": live.url, "registrationId": reg_id, "data": json.dumps(payload)})

    def shown(title):
        deadline = time.monotonic() + 10
        while True:
            notes = page.evaluate(NOTIFICATIONS)
            if any(n["title"] == title for n in notes):
                return notes
            assert time.monotonic() < deadline, f"no notification {title!r}, only {notes}"
            page.wait_for_timeout(50)

    deliver(reminder)
    (note,) = shown("Rappel : Atelier couture")
    assert note["lang"] == "fr" and note["tag"] == f"event-{workshop}"
    assert note["body"].startswith("Atelier · ") and note["body"].endswith(" · Local commun")
    assert french_day(soon) in note["body"] and soon.astimezone(PARIS).strftime("%H:%M") in note["body"]
    assert note["actions"] == [["unsubscribe", "Se désabonner"]]
    assert note["data"] == {"url": reminder["url"], "unsubscribe_url": reminder["unsubscribe_url"]}

    # The click opens the event's public page (here: in the agenda window already open).
    (worker,) = [w for w in ctx.service_workers if w.url == f"{live.url}/sw.js"]
    worker.evaluate(CLICK, "")
    page.wait_for_url(f"{live.url}/agenda/vauban/events/{workshop}")
    page.get_by_role("heading", name="Atelier couture").wait_for()
    assert "Local commun" in page.locator("dl").inner_text()
    assert page.evaluate(NOTIFICATIONS) == []  # the click closed it

    # The event moves an hour later: the server's 'moved' notice gives the new time.
    later = soon + timedelta(hours=1)

    def move(s):
        ev = s.get(Event, uuid.UUID(workshop))
        before, ev.starts_at, ev.ends_at = ev.starts_at, later, later + timedelta(hours=2)
        push.reschedule_event(ev, previous_starts_at=before)
        s.commit()
    live.query(move)
    assert send_due(live) == {"sent": 1}
    moved = fake_push.received[1]["payload"]
    assert moved["type"] == "moved"
    deliver(moved)
    (note,) = shown("Changement d’horaire : Atelier couture")
    hhmm = later.astimezone(PARIS).strftime("%H:%M")
    assert note["body"].startswith("Nouvel horaire : ") and note["body"].endswith(" · Local commun")
    assert french_day(later) in note["body"] and hhmm in note["body"]

    # The event is cancelled: the server's notice replaces the previous one, in French.
    def cancel(s):
        ev = s.get(Event, uuid.UUID(workshop))
        ev.status = "cancelled"
        push.cancel_event(ev)
        s.commit()
    live.query(cancel)
    assert send_due(live) == {"sent": 1}
    cancelled = fake_push.received[2]["payload"]
    assert cancelled["type"] == "cancelled"
    deliver(cancelled)
    (note,) = shown("Annulé : Atelier couture")
    assert "Local commun" in note["body"] and note["body"].endswith("l’événement n’aura pas lieu.")

    # "Se désabonner" on the notification: one tap, the page withdraws with the link's token.
    worker.evaluate(CLICK, "unsubscribe")
    page.get_by_text("Vous êtes désabonné(e)").wait_for()
    page.wait_for_url(f"{live.url}/agenda/vauban/unsubscribe")  # the token left the address bar
    (rec,) = subscriptions(live)
    assert rec.withdrawn_at is not None and rec.endpoint is None


def test_push_refused_or_unsupported_gives_french_errors_and_agenda_opens_offline(live, phone, fake_push):
    add_event(live, "Sortie au marché", "sortie", datetime.now(timezone.utc) + timedelta(days=2), place="Hall B")

    denied = f"({STUB})({json.dumps(fake_push.new_subscription())}); Notification.requestPermission = async () => 'denied';"
    ctx, page, _ = resident_phone(phone, live, fake_push, script=denied)
    page.goto("/agenda/vauban")
    opt_in(page)
    page.get_by_role("alert").filter(has_text="Les notifications sont bloquées pour ce site").wait_for()
    assert page.evaluate("window.__push.subscribeCalls") == 0

    ctx, page, _ = resident_phone(phone, live, fake_push, script="delete window.PushManager;")
    page.goto("/agenda/vauban")
    opt_in(page)
    page.get_by_role("alert").filter(has_text="Ce navigateur ne peut pas recevoir de notifications").wait_for()
    assert subscriptions(live) == []

    # Visited once, the agenda and its events open without network (the shell from the worker, events kept).
    wait_controlled(page)
    ctx.set_offline(True)
    page.reload()
    page.get_by_text("Hors connexion : agenda enregistré").wait_for()
    page.get_by_role("link", name=re.compile("Sortie au marché")).click()
    page.get_by_role("heading", name="Sortie au marché").wait_for()
    assert "Hall B" in page.locator("dl").inner_text()


def test_staff_shows_reminders_qr_code_offline(live, phone):
    ctx, page = start_phone(phone)
    ctx.set_offline(True)  # a stairwell
    page.get_by_role("link", name="Résidence Vauban").click()
    page.get_by_role("link", name="Montrer le QR code des rappels").click()
    qr = page.get_by_role("img", name=re.compile("QR code"))
    qr.wait_for()
    assert decode_qr(page) == [f"{live.url}/agenda/vauban"]
