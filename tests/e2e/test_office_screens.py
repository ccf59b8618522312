"""Every head-office screen in Chromium, as head office and as admin, on the seeded half-year demo: every filter,
every pager, every export and the attendance of an event. The UI and its API were written apart; any /api/ answer
>= 400, console error, page error or CSP violation on the way fails the test, with the step it happened in."""
from urllib.parse import parse_qs, urlparse

import pytest
import sqlalchemy as sa

from bench.pwa_screenshots import office_demo
from server.models import Site
from tests.conftest import Factory

from .helpers import PASSWORD
from .test_head_office import DESKTOP

pytestmark = pytest.mark.e2e


class Watch:
    """What went wrong in a page: API answers >= 400, failed API requests, console errors (CSP violations among
    them: Chromium reports each as one), uncaught page errors."""

    def __init__(self, page):
        self.problems = []
        page.on("response", self._response)
        page.on("requestfailed", self._failed)
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                if m.type == "error" or "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))

    def _response(self, r):
        if "/api/" in r.url and r.status >= 400:
            self.problems.append(f"{r.status} {r.request.method} {r.url}")

    def _failed(self, req):
        if "/api/" in req.url:
            self.problems.append(f"failed {req.method} {req.url}: {req.failure}")

    def check(self, step):
        assert self.problems == [], f"{step}: {self.problems}"


def _query(url) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def read(tab, path, act, **params):
    """Runs `act` (a filter set, a pager pressed) and waits for the read of `path` it causes, whose query must carry
    `params` (the control took effect); returns the answer's JSON."""
    def wanted(r):
        if urlparse(r.url).path != path or r.request.method != "GET":
            return False
        q = _query(r.url)
        return all(q.get(k) == v for k, v in params.items())

    with tab.expect_response(wanted) as info:
        act()
    resp = info.value
    assert resp.status == 200, f"{resp.status} {resp.url}: {resp.text()}"
    return resp.json()


def shown_total(page) -> int:
    """The "1–50 sur 183" of a list's pager, once rendered."""
    text = page.locator("[data-t=count]").first.inner_text()
    return int("".join(ch for ch in text.split("sur")[1] if ch.isdigit()))


@pytest.fixture
def demo(live):
    office_demo(live, live.data, weeks=20, queue=25)
    with live.app.app_context():
        Factory(live.app).user("admin", email="admin@palier.test", display_name="Admin Palier")
    return live


def open_office(browser, live, email):
    """A desktop page on /bureau/, logged in through the API first so that no 401 of a logged-out start is
    mistaken for a drift: from the first paint, every answer must be a success."""
    ctx = browser.new_context(base_url=live.url, accept_downloads=True, **DESKTOP)
    assert ctx.request.post("/api/auth/login", data={"email": email, "password": PASSWORD}).ok
    page = ctx.new_page()
    watch = Watch(page)
    with page.expect_response(lambda r: urlparse(r.url).path == "/api/dashboard"):
        page.goto("/bureau/")
    page.get_by_role("heading", name="Tableau de bord").wait_for()
    return ctx, page, watch


def menu(page, name):
    page.get_by_role("navigation", name="Menu").get_by_role("link", name=name).click()


def dashboard(page, watch):
    page.locator("[data-t=engaged]").wait_for()
    # One site and action, and a period within the dashboard's limit.
    d, sent = set_filters(page, "/api/dashboard", site_id="Quartier du Chemin Vert", from_="2026-06-01",
                          to="2026-09-30")
    assert set(sent) == {"site_id", "action_id", "from", "to"}
    assert not d["baseline_included"] and [s["site_name"] for s in d["per_site"]] == ["Quartier du Chemin Vert"]
    assert (d["from"], d["to"]) == ("2026-06-01", "2026-09-30")
    page.get_by_text("Du 1 juin 2026 au 30 sept. 2026").wait_for()
    read(page, "/api/dashboard", lambda: page.get_by_role("button", name="Actualiser").click(), **sent)
    page.get_by_text("Chiffres semaine par semaine").click()
    page.locator("details.weekly table tbody tr").first.wait_for()
    watch.check("dashboard")


LISTS = {"visits": "Visites", "residents": "Habitants", "events": "Événements", "engagements": "Engagements"}
# The value each filter is set to: chosen so that the demo still has rows once every filter of a list is set.
# A control not named here is set all the same (its first choice, or a word), so a new filter is never left out.
CHOICES = {"site_id": "Résidence Les Tilleuls", "action_id": "Jardin partagé", "outcome": "Absent",
           "engaged": "Engagés", "kind": "Sortie", "status": "Actif", "from": "2025-01-01", "to": "2027-12-31",
           "q": "a"}


def set_filter(el, choices):
    """(what sets the control, the value the query must then carry)."""
    choice = choices.get(el.get_attribute("name"))
    if el.evaluate("e => e.tagName") == "SELECT":
        options = el.evaluate("s => [...s.options].map((o) => [o.text, o.value])")
        value = next((v for t, v in options if t == choice), None) or next(v for _t, v in options if v)
        return (lambda: el.select_option(value)), value
    value = choice or "a"
    return (lambda: el.fill(value)), value


def set_filters(page, path, **overrides):
    """Sets every control of the filter form, one after the other, each read carrying all those set so far;
    returns the last answer and the query sent. `from_` stands for `from`."""
    choices = {**CHOICES, **{k.rstrip("_"): v for k, v in overrides.items()}}
    controls = page.get_by_role("search", name="Filtres").locator("select, input")
    sent = {}
    for i in range(controls.count()):
        el = controls.nth(i)
        act, sent[el.get_attribute("name")] = set_filter(el, choices)
        body = read(page, path, act, **sent)
    return body, sent


def pages_through(page, path):
    """Suivant then Précédent on a list of more than one page."""
    pager = page.get_by_role("navigation", name="Pages")
    read(page, path, lambda: pager.get_by_role("button", name="Suivant").click(), page="2")
    pager.get_by_text("Page 2 /").wait_for()
    read(page, path, lambda: pager.get_by_role("button", name="Précédent").click(), page="1")
    pager.get_by_text("Page 1 /").wait_for()


def lists(page, watch):
    menu(page, "Listes")
    for kind, tab in LISTS.items():
        path = f"/api/lists/{kind}"
        if kind != "visits":
            subtabs = page.get_by_role("navigation", name="Listes")
            read(page, path, lambda: subtabs.get_by_role("link", name=tab).click())
        page.locator(f"[data-t=list-{kind}] tbody tr").first.wait_for()
        assert shown_total(page) > 50, f"{kind}: the demo should fill more than one page"
        pages_through(page, path)
        body, sent = set_filters(page, path)
        assert body["total"] > 0, f"{kind}: the filters {sent} leave no row in the demo"
        page.locator(f"[data-t=list-{kind}] tbody tr").first.wait_for()
        assert shown_total(page) == body["total"]
        for button, ext in (("Exporter CSV", "csv"), ("Exporter Excel", "xlsx")):
            with page.expect_download() as dl:
                page.get_by_role("button", name=button).click()
            assert dl.value.suggested_filename.endswith(f".{ext}")
            assert dl.value.failure() is None
        if kind == "events":
            attendance(page, watch)
        watch.check(f"list {kind}")


def attendance(page, watch):
    """The named check-ins of a past event of the filtered list: names as the API sends them under `items`."""
    # The demo's past events that were held have three named check-ins each.
    row = page.locator("[data-t=list-events] tbody tr").filter(has_not_text="Annulé").filter(
        has=page.locator("td.num", has_text="3")).first
    with page.expect_response(lambda r: r.url.endswith("/attendance")) as info:
        row.get_by_role("button", name="Présences").click()
    body = info.value.json()
    assert body["items"], "the demo checks three residents in at each past event"
    card = page.locator("[data-t=attendance]")
    try:
        card.locator("tbody tr").first.wait_for()
    finally:  # a panel that never shows: say why (a page error, a refused read) rather than only the timeout
        watch.check("attendance")
    assert card.locator("tbody tr").count() == len(body["items"])
    assert body["items"][0]["last_name"] in card.inner_text()


def review(page, watch):
    menu(page, "Revue")
    queues = ("conflicts", "duplicates", "rejections")
    cards = {"conflicts": "conflict", "duplicates": "duplicate", "rejections": "rejection"}
    for jump in ("Conflits (25)", "Doublons (25)", "Refus (25)"):  # the counts are the API's totals
        page.get_by_role("button", name=jump).click()
    # Each queue: 20 open items a page, the last 5 on page 2 (the other queues keep their page).
    for i, kind in enumerate(queues):
        page.locator(f"[data-t={cards[kind]}]").first.wait_for()
        assert page.locator(f"[data-t={cards[kind]}]").count() == 20
        pager = page.get_by_role("navigation", name="Pages").nth(i)
        read(page, f"/api/review/{kind}", lambda: pager.get_by_role("button", name="Suivant").click(),
             page="2", state="open")
        pager.get_by_text("Page 2 / 2").wait_for()
        assert page.locator(f"[data-t={cards[kind]}]").count() == 5
        read(page, f"/api/review/{kind}", lambda: pager.get_by_role("button", name="Précédent").click(),
             page="1", state="open")
        pager.get_by_text("Page 1 / 2").wait_for()
    # The decisions taken: three in each queue, who decided shown, no action button.
    with page.expect_response(lambda r: urlparse(r.url).path == "/api/review/rejections"
                              and _query(r.url).get("state") == "resolved"):
        page.get_by_role("button", name="Décisions prises").click()
    for kind in queues:
        page.locator(f"[data-t={cards[kind]}] [data-t=decided]").first.wait_for()
        assert page.locator(f"[data-t={cards[kind]}]").count() == 3
        assert "par Siège" in page.locator(f"[data-t={cards[kind]}] [data-t=decided]").first.inner_text()
        assert page.locator(f"[data-t={cards[kind]}]").get_by_role("button").count() == 0
    read(page, "/api/review/conflicts", lambda: page.get_by_role("button", name="À traiter").click(), state="open")
    watch.check("review")


def agenda(page, live, watch):
    menu(page, "Agenda")
    path = "/api/agenda/events"
    page.locator("[data-t=agenda] tbody tr").first.wait_for()
    filters = page.locator("section.agenda form.filters")
    body = read(page, path, lambda: filters.get_by_label("Afficher les événements passés").check())
    assert body["total"] > 50
    pages_through(page, path)
    tilleuls = live.query(lambda s: s.scalar(sa.select(Site.id).where(Site.name == "Résidence Les Tilleuls")))
    body = read(page, path, lambda: filters.get_by_label("Site").select_option(label="Résidence Les Tilleuls"),
                site_id=str(tilleuls))
    assert 0 < body["total"] < 50
    page.get_by_role("button", name="Nouvel événement").click()
    page.get_by_role("form", name="Nouvel événement").get_by_role("button", name="Fermer").click()
    row = page.locator("[data-t=agenda] tbody tr", has_text="Prévu").first
    row.get_by_role("button", name="Modifier").click()
    page.get_by_role("form", name="Modifier l’événement").get_by_role("button", name="Fermer").click()
    watch.check("agenda")


def team(page, role, watch):
    menu(page, "Équipe")
    devices = page.locator("[data-t=devices]")
    devices.locator("tbody tr").first.wait_for()
    text = devices.inner_text()
    # People by the name the API sends, never their address.
    assert "Staff2" in text and "Staff" in text and "@" not in text
    assert page.locator("[data-t=stale-count]").inner_text().startswith("1 appareil")
    read(page, "/api/devices", lambda: page.get_by_role("button", name="Actualiser").click())
    if role == "admin":
        users = page.locator("[data-t=users]")
        users.locator("tbody tr").first.wait_for()
        assert "staff2@palier.test" in users.inner_text()
        page.get_by_role("button", name="Nouveau compte").click()
        page.get_by_role("form", name="Nouveau compte").get_by_role("button", name="Fermer").click()
        users.locator("tr", has_text="staff2@palier.test").get_by_role("button", name="Modifier").click()
        form = page.get_by_role("form", name="Modifier le compte")
        assert form.get_by_label("Rôle").is_enabled()
        form.get_by_role("button", name="Fermer").click()
        # One's own account: the role is not offered (the API would answer 409 self_lockout), the name is.
        users.locator("tr", has_text="admin@palier.test").get_by_role("button", name="Modifier").click()
        assert form.get_by_label("Rôle").is_disabled()
        form.get_by_label("Nom affiché").fill("Admin du siège")
        with page.expect_response(lambda r: r.request.method == "PATCH" and "/api/users/" in r.url) as saved:
            form.get_by_role("button", name="Enregistrer").click()
        assert saved.value.status == 200 and "role" not in saved.value.request.post_data_json
        users.locator("tr", has_text="Admin du siège").wait_for()
    else:
        page.get_by_text("réservées aux administrateurs").wait_for()
    watch.check("team")


@pytest.mark.parametrize("role,email", [("head_office", "siege@palier.test"), ("admin", "admin@palier.test")])
def test_every_office_screen_filter_and_pager_agrees_with_the_api(browser, demo, role, email):
    ctx, page, watch = open_office(browser, demo, email)
    try:
        dashboard(page, watch)
        lists(page, watch)
        review(page, watch)
        agenda(page, demo, watch)
        team(page, role, watch)
        # Back on the dashboard through the review link of its duplicates figure.
        menu(page, "Tableau de bord")
        page.get_by_role("link", name="Voir la revue").click()
        page.get_by_role("heading", name="Revue").wait_for()
        watch.check("the whole tour")
    finally:
        ctx.close()
