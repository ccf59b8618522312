"""Web Push in Chromium, shared by the agenda and push-link tests: the server's VAPID keys, the loopback push
service, a resident's phone whose PushManager.subscribe answers that service's subscription (see
test_agenda_push.py), the opt-in form, and the QR code read back as a camera would."""
import json
import re

import pytest
import sqlalchemy as sa
import zxingcpp

from server.models import PushSubscription
from server.push import keys
from server.push.fake_service import FakePushService

CONSENT = re.compile("J’accepte de recevoir")

# The browser's subscribe, answered with the subscription the test made (its keys stay with the fake service).
STUB = """(sub) => {
  const st = { subscribeCalls: 0, permissionCalls: 0, unsubscribeCalls: 0, options: null };
  window.__push = st;
  const fake = { endpoint: sub.endpoint, expirationTime: null, options: { userVisibleOnly: true, applicationServerKey: null },
    toJSON: () => sub,
    unsubscribe: async () => { st.unsubscribeCalls += 1; localStorage.removeItem('__stub_sub'); return true; } };
  PushManager.prototype.subscribe = async function (opts) {
    st.subscribeCalls += 1;
    const key = btoa(String.fromCharCode(...new Uint8Array(opts.applicationServerKey)));
    st.options = { userVisibleOnly: opts.userVisibleOnly, key: key.replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '') };
    localStorage.setItem('__stub_sub', '1');
    return fake;
  };
  PushManager.prototype.getSubscription = async function () { return localStorage.getItem('__stub_sub') ? fake : null; };
  const ask = Notification.requestPermission.bind(Notification);
  Notification.requestPermission = (...args) => { st.permissionCalls += 1; return ask(...args); };
}"""


@pytest.fixture
def vapid():
    return {**keys.new_key_pair(), "subject": "mailto:agenda@palier.test"}


@pytest.fixture
def live_config(vapid):
    # Quiet hours off: the browser side is under test here, whatever the hour the suite runs at.
    return {"VAPID_PRIVATE_KEY": vapid["private_key"], "VAPID_PUBLIC_KEY": vapid["public_key"],
            "VAPID_SUBJECT": vapid["subject"], "PUSH_ALLOW_HTTP": True, "PUSH_ENDPOINT_HOSTS": ["127.0.0.1"],
            "PUSH_QUIET_HOURS": ["00:00", "00:00"], "PUSH_CONCURRENCY": 2}


@pytest.fixture
def fake_push(vapid):
    with FakePushService(vapid_public_key=vapid["public_key"]) as service:
        yield service
    assert service.errors == [], "the push service refused requests"


def subscriptions(live) -> list[PushSubscription]:
    def read(s):
        rows = s.scalars(sa.select(PushSubscription).order_by(PushSubscription.consent_at)).all()
        s.expunge_all()
        return rows
    return live.query(read)


def resident_phone(phone, live, fake_push, name="phone", script=None):
    """A resident's phone allowing notifications, its push subscription stubbed to the loopback service."""
    sub = fake_push.new_subscription(name)
    ctx = phone()
    ctx.grant_permissions(["notifications"], origin=live.url)
    ctx.add_init_script(script or f"({STUB})({json.dumps(sub)})")
    return ctx, ctx.new_page(), sub


def opt_in(page, uncheck=()):
    page.get_by_role("heading", name="Recevoir les rappels").wait_for()
    for kind in uncheck:
        page.get_by_label(kind, exact=True).uncheck()
    page.get_by_label(CONSENT).check()
    page.get_by_role("button", name="Recevoir les rappels").click()


def decode_qr(page, n=400) -> list[str]:
    """The page's QR code drawn as a phone camera would see it (n x n grey pixels), then decoded."""
    size, gray = page.evaluate("""async (n) => {
      const xml = new XMLSerializer().serializeToString(document.querySelector('svg.qr'));
      const img = new Image();
      img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(xml);
      await img.decode();
      const c = document.createElement('canvas'); c.width = n; c.height = n;
      const g = c.getContext('2d'); g.drawImage(img, 0, 0, n, n);
      const px = g.getImageData(0, 0, n, n).data;
      return [n, Array.from({ length: n * n }, (_, i) => px[4 * i])];
    }""", n)
    return [b.text for b in zxingcpp.read_barcodes(memoryview(bytes(gray)).cast("B", (size, size)))]
