"""A reopened app draws each screen once with its records: nothing moves under the user's thumb while the phone's
data arrives and the sync on start runs (Lighthouse's cumulative layout shift: the household screen's residents,
read after the household, pushed its form down, 0.21; the event screen's list did the same, 0.23)."""
import pytest

from .helpers import start_phone, wait_synced

pytestmark = pytest.mark.e2e

# Every layout shift of the document, from its start (a buffered observer), with what moved. Those marked
# hadRecentInput are kept, as Lighthouse keeps them at load: the emulated touch phone marks its first shifts so,
# though nothing touched the screen after the reload.
RECORD_SHIFTS = """
window.__shifts = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    window.__shifts.push({ value: e.value, moved: e.sources.map((s) => s.node
      ? (s.node.outerHTML || s.node.textContent || s.node.nodeName).slice(0, 80) : '?') });
  }
}).observe({ type: 'layout-shift', buffered: true });
"""

# A slow phone: the screens' reads (readonly transactions) answer in the order they were asked, but 40 ms apart when
# asked in the same task, so that reads a screen issues together arrive in different frames, as they may on a loaded
# phone. A screen drawn before all its records are read then moves when the rest arrives. The writes (the sync, a
# save) are not touched.
STAGGER_READS = """
let burst = 0;
const late = new WeakSet();
for (const proto of [IDBObjectStore.prototype, IDBIndex.prototype]) {
  for (const name of ['get', 'getAll', 'getAllKeys', 'count']) {
    const read = proto[name];
    proto[name] = function staggered(...args) {
      const req = read.apply(this, args);
      const tx = this.transaction || this.objectStore.transaction;
      if (tx.mode !== 'readonly') return req;
      if (burst === 0) setTimeout(() => { burst = 0; });
      const delay = 40 * burst++;
      req.addEventListener('success', (e) => {
        if (late.has(e) || !delay) return;
        e.stopImmediatePropagation();
        setTimeout(() => { const again = new Event('success'); late.add(again); req.dispatchEvent(again); }, delay);
      });
      return req;
    };
  }
}
"""


@pytest.mark.parametrize("screen", ["household", "event", "engagement", "sites"])
def test_a_reopened_screen_does_not_move(live, phone, screen):
    ctx, page = start_phone(phone)
    ctx.add_init_script(RECORD_SHIFTS)
    ctx.add_init_script(STAGGER_READS)
    route, ready = {
        "household": (f"/#/hh/{live.data.households[0]}", page.get_by_role("heading", name="Visites")),
        "event": (f"/#/event/{live.data.event_id}", page.get_by_role("heading", name="Troc de vêtements")),
        "engagement": (f"/#/engage/{live.data.residents[0]}", page.get_by_role("heading", name="Engager Maryse Moreau")),
        "sites": ("/#/", page.get_by_role("link", name="Résidence Vauban")),
    }[screen]
    page.goto(route)
    page.reload()  # as a phone reopens the app on that screen
    ready.wait_for()
    wait_synced(page)  # the sync on start has run and the screen was drawn again after it
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    shifts = page.evaluate("window.__shifts")
    assert shifts == [], f"the {screen} screen moved while its data arrived: {shifts}"
    # Wider than the phone, a screen is pushed sideways and the layout viewport grows: the tab bar moves as well.
    width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], f"the {screen} screen is wider than the phone: {width}"
