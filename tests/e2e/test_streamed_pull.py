"""A site's first pull in real Chromium against the real server: several pages of 2,000 records come in one
streamed answer (NDJSON, compressed), and the phone's IndexedDB holds every record; once the service worker
controls the page, a later pull streams past it the same way."""
import uuid
from datetime import datetime, timezone
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from server.database import next_seq
from server.extensions import db
from server.models import Household

from .helpers import idb_all, idb_meta, login, sync_now, wait_controlled, wait_synced

pytestmark = pytest.mark.e2e

HOUSEHOLDS = 5_000  # with the dataset's records, three pages of the PWA's 2,000 (PULL_LIMIT)


def seed_households(live, count: int, prefix: str = "REF-E2E") -> None:
    """`count` households on the dataset's site, inserted in one statement with their seqs (no stored pull texts:
    the first pull serializes them from their columns, as after an import)."""
    with live.app.app_context():
        first = next_seq(db.session, count)
        now = datetime.now(timezone.utc)
        db.session.execute(sa.insert(Household), [
            {"id": uuid.uuid4(), "seq": first + i, "site_id": uuid.UUID(live.data.site_id), "building": f"Bât. {i % 7}",
             "staircase": str(i % 4), "floor": str(i % 9), "door": f"9{i:04d}", "landlord_ref": f"{prefix}-{i:05d}",
             "notes": "Interphone en panne ; sonner chez Mme Lefèvre" if i % 10 == 0 else "",
             "created_at": now, "updated_at": now}
            for i in range(count)])
        db.session.commit()


def test_first_pull_streams_several_pages_in_one_answer(live, phone):
    seed_households(live, HOUSEHOLDS)
    held = live.query(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Household)))
    assert held == HOUSEHOLDS + 3

    page = phone().new_page()
    pulls = []
    page.on("response", lambda r: pulls.append(r) if urlsplit(r.url).path == "/api/sync/pull" else None)
    page.goto("/")
    login(page)
    page.get_by_role("link", name="Résidence Vauban").wait_for()
    wait_synced(page, timeout=60_000)

    assert len(pulls) == 1, "three pages, one request"
    answer = pulls[0]
    assert answer.request.post_data_json["pages"] == 20
    headers = answer.all_headers()
    assert headers["content-type"] == "application/x-ndjson"
    assert headers["content-encoding"] == "zstd"  # Chromium asks for it; decompressed as it streams
    assert len(answer.body().splitlines()) == 3

    households = idb_all(page, "household")
    assert len(households) == HOUSEHOLDS + 3
    assert sorted(h["landlord_ref"] for h in households if h["landlord_ref"].startswith("REF-E2E-")) == [
        f"REF-E2E-{i:05d}" for i in range(HOUSEHOLDS)]
    assert next(h for h in households if h["landlord_ref"] == "REF-E2E-00010")["notes"].endswith("Mme Lefèvre")
    assert len(idb_all(page, "resident")) == 6
    assert idb_meta(page, "progress")["goal"] == 1400, "the last page's figure"

    # The service worker (Workbox) in control lets the API's answers through as the network gives them.
    wait_controlled(page)
    seed_households(live, 4_100, prefix="REF-LATER")
    sync_now(page, timeout_s=60)
    assert len(pulls) == 2
    later = pulls[1]
    assert not later.from_service_worker
    assert later.all_headers()["content-type"] == "application/x-ndjson"
    assert len(later.body().splitlines()) == 3
    assert len(idb_all(page, "household")) == HOUSEHOLDS + 3 + 4_100
