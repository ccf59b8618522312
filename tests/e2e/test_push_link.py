"""The per-resident push link in Chromium: staff show a resident's own QR code from the household screen, the
resident's phone opens it, subscribes and the server ties the subscription to them; a used link says so in French;
a phone already subscribed ties with one tap; erasing the resident deletes their subscription only; offline, staff
are offered the site's QR code; 'pushsubscriptionchange' in the worker moves the consent and keeps the link.

Push is stubbed as in test_agenda_push.py (tests/e2e/push_support.py) (PushManager.subscribe answers a loopback push service's subscription)."""
import json
import re
import urllib.request

import pytest

from tests.conftest import Factory

from .helpers import PASSWORD, open_household, start_phone, wait_controlled
from .push_support import (decode_qr, fake_push, live_config, opt_in, resident_phone,  # noqa: F401
                           subscriptions, vapid)

pytestmark = pytest.mark.e2e

# What this browser keeps: localStorage and the worker's copy of the tokens (IndexedDB 'agenda-rappels').
KEPT = """async () => {
  const open = () => new Promise((ok, ko) => { const r = indexedDB.open('agenda-rappels'); r.onsuccess = () => ok(r.result); r.onerror = ko; });
  const db = await open();
  const tokens = await new Promise((ok) => { const r = db.transaction('tokens').objectStore('tokens').getAll(); r.onsuccess = () => ok(r.result); });
  db.close();
  return JSON.stringify({ local: { ...localStorage }, tokens });
}"""

# 'pushsubscriptionchange' as a push service would fire it: the worker's PushManager answers the loopback service's
# new subscription; the handler's promise is kept to be awaited (a synthetic event has no real waitUntil).
CHANGE = """async (sub) => {
  PushManager.prototype.subscribe = async () => ({ endpoint: sub.endpoint, toJSON: () => sub });
  let renewal;
  const ev = Object.assign(new Event('pushsubscriptionchange'), { oldSubscription: null, newSubscription: null,
    waitUntil: (p) => { renewal = p; } });
  self.dispatchEvent(ev);
  return renewal;
}"""


def show_resident_qr(page, name: str) -> str:
    """Taps "QR des rappels" on the resident's row and decodes the QR code as a phone camera would."""
    page.get_by_role("listitem").filter(has_text=name).get_by_role("button", name="QR des rappels").click()
    page.get_by_role("img", name=f"QR code des rappels de {name}").wait_for()
    (found,) = decode_qr(page, n=600)  # a longer address: more modules
    assert page.locator("svg.qr").get_attribute("data-url") == found
    page.get_by_role("button", name="Fermer").click()  # the token leaves the staff's screen
    return found


def linked(live) -> dict:
    return {s.endpoint: (str(s.resident_id) if s.resident_id else None) for s in subscriptions(live)
            if s.withdrawn_at is None}


def admin_erase(live, resident_id: str):
    def make_admin(s):
        Factory(live.app).user("admin", email="admin@palier.test")
    live.query(make_admin)

    def call(path, body, token=None):
        req = urllib.request.Request(f"{live.url}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())

    _, session = call("/api/auth/login", {"email": "admin@palier.test", "password": PASSWORD, "mode": "bearer"})
    return call(f"/api/privacy/residents/{resident_id}/erase", {"reason": "Demande écrite du 3 mars"},
                session["access_token"])


def test_resident_qr_ties_reminders_to_the_resident_and_erasure_deletes_them(live, phone, fake_push):
    maryse, karim = live.data.residents[0], live.data.residents[1]
    staff_ctx, staff = start_phone(phone)
    open_household(staff, "10")
    url = show_resident_qr(staff, "Maryse Moreau")
    assert re.fullmatch(rf"{re.escape(live.url)}/agenda/vauban#lien=[A-Za-z0-9_-]{{20,}}", url)
    token = url.split("#lien=")[1]

    # The resident's phone opens the QR code, reads what the link does, then consents as always.
    ctx_a, page_a, sub_a = resident_phone(phone, live, fake_push, name="a")
    page_a.goto(url)
    page_a.get_by_text("vos rappels seront rattachés à votre fiche d’habitant").wait_for()
    opt_in(page_a)
    page_a.get_by_text("Rappels activés et rattachés à votre fiche d’habitant").wait_for()
    assert page_a.url == f"{live.url}/agenda/vauban"  # the token left the address bar
    assert linked(live) == {sub_a["endpoint"]: maryse}
    assert token not in page_a.evaluate(KEPT)  # nor anything this browser keeps
    page_a.reload()
    page_a.get_by_text("Vos rappels sont rattachés à votre fiche d’habitant").wait_for()

    # The same QR code on another phone: used already. The reminders still work, anonymously, and it says so.
    ctx_b, page_b, sub_b = resident_phone(phone, live, fake_push, name="b")
    page_b.goto(url)
    opt_in(page_b)
    page_b.get_by_text("Rappels activés.").wait_for()
    page_b.get_by_role("alert").filter(
        has_text="Vos rappels ne sont pas rattachés à votre fiche. Ce QR code a déjà servi ou a expiré").wait_for()
    assert page_b.url == f"{live.url}/agenda/vauban"
    assert linked(live) == {sub_a["endpoint"]: maryse, sub_b["endpoint"]: None}

    # Already subscribed on that phone: a fresh QR code of Karim ties it with one tap.
    open_household(staff, "11")
    url_k = show_resident_qr(staff, "Karim Benali")
    assert url_k != url
    page_b.goto(url_k)
    page_b.get_by_role("button", name="Rattacher mes rappels à ma fiche").click()
    page_b.get_by_text("Rappels rattachés à votre fiche.").wait_for()
    assert linked(live) == {sub_a["endpoint"]: maryse, sub_b["endpoint"]: karim}

    # The browser's push service replaces phone B's subscription: the worker moves the consent, the link stays.
    wait_controlled(page_b)
    (worker,) = [w for w in ctx_b.service_workers if w.url == f"{live.url}/sw.js"]
    renewed = fake_push.new_subscription("b2")
    assert worker.evaluate(CHANGE, renewed) == {"renewed": ["vauban"], "gone": [], "failed": []}
    assert linked(live) == {sub_a["endpoint"]: maryse, renewed["endpoint"]: karim}

    # The admin erases Maryse: her subscription goes with her, Karim's stays.
    assert admin_erase(live, maryse)[0] == 200
    assert linked(live) == {renewed["endpoint"]: karim}
    assert len(subscriptions(live)) == 1  # A's consent record is deleted, not just withdrawn


def test_offline_staff_are_offered_the_site_qr_and_other_roles_see_no_action(live, phone):
    ctx, page = start_phone(phone)
    open_household(page, "10")
    ctx.set_offline(True)  # a stairwell
    page.get_by_role("listitem").filter(has_text="Maryse Moreau").get_by_role("button", name="QR des rappels").click()
    page.get_by_role("status").filter(has_text="Hors connexion : le QR des rappels propre à Maryse Moreau demande le réseau").wait_for()
    assert page.locator("svg.qr").count() == 0
    page.get_by_role("link", name="Montrer le QR code du site").click()
    page.get_by_role("heading", name="QR code des rappels").wait_for()
    assert page.locator("svg.qr").get_attribute("data-url") == f"{live.url}/agenda/vauban"

    # A head-office account on the field app: the server would refuse it the link, so no action is shown.
    ctx2 = phone()
    page2 = ctx2.new_page()
    page2.goto("/")
    page2.get_by_label("Courriel").fill("siege@palier.test")
    page2.get_by_label("Mot de passe").fill(PASSWORD)
    page2.get_by_role("button", name="Se connecter").click()
    page2.get_by_role("link", name="Résidence Vauban").click()
    page2.get_by_role("link", name="Porte 10").click()
    page2.get_by_role("heading", name="Habitants").wait_for()
    page2.get_by_role("link", name="Engager").first.wait_for()
    assert page2.get_by_role("button", name="QR des rappels").count() == 0
