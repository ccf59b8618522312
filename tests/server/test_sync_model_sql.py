"""The hypothesis model of tests/sync/test_model.py on the SQL store, through the HTTP API (SQLite, and PostgreSQL
with DATABASE_URL): the same three phones, offline work and healing checks, with the faults made real.

- request dropped: nothing sent;
- response dropped after the server committed: the push is sent and its answer thrown away;
- the same push twice: the same bytes (answered from the push's receipt), then the same mutations in other bytes
  (the full path), both all `replayed` and equal;
- reordered: the batch's suffix first (409 mutation_gap unless it follows what is applied), then the batch;
- an expired token: a 401, the outbox kept;
- a server restart: every connection closed and the pool emptied (only what was committed survives).

After healing, each phone holds exactly what a fresh pull of its scope gives, and every acknowledged write is in
the database or kept in a conflict record (SyncModel.teardown)."""
import copy
import json
import uuid
from datetime import timedelta

import sqlalchemy as sa
from flask_jwt_extended import create_access_token
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule, run_state_machine_as_test

from server.database import next_seq
from server.extensions import db
from server.models import Conflict, Device, Household, Resident, Site, User, Visit
from sync import Principal
from tests.conftest import Api, _wipe
from tests.sync.test_model import FAULTS, HOUSEHOLDS, OTHER, SITE, Phone, SyncModel
from tests.sync.vector_runner import page_changes


class SqlSyncModel(SyncModel):
    client = None  # the app's test client, set by the test

    @initialize()
    def setup(self):
        _wipe()
        site = Site(id=uuid.UUID(SITE), code="A", name="A", commune="Outreau", seq=next_seq(db.session))
        other = Site(id=uuid.UUID(OTHER), code="B", name="B", commune="Outreau", seq=next_seq(db.session))
        db.session.add_all([site, other])
        for i, hh in enumerate(HOUSEHOLDS):
            db.session.add(Household(id=uuid.UUID(hh), site_id=site.id, building="A", staircase="1", floor="1",
                                     door=str(i), landlord_ref=f"R{i}", notes="", seq=next_seq(db.session)))
        db.session.add(Household(id=uuid.UUID(int=99), site_id=other.id, building="B", staircase="1", floor="1",
                                 door="1", landlord_ref="RB", notes="autre site", seq=next_seq(db.session)))
        users = [User(email=f"{role}{i}@palier.test", display_name=role, role=role, password_hash="-", sites=[site])
                 for i, role in enumerate(("staff", "staff", "gardien"))]
        db.session.add_all(users)
        db.session.commit()
        # One phone not yet updated (format 1 pages), two asking for compact rows (format 2), as the memory model.
        self.phones = [Phone(Principal(str(u.id), u.role, frozenset([SITE])), page_format)
                       for u, page_format in zip(users, (1, 2, 2))]
        self.apis = [Api(self.client, create_access_token(identity=u)) for u in users]
        self.expired = [Api(self.client, create_access_token(identity=u, expires_delta=timedelta(seconds=-60)))
                        for u in users]

    # -- the network and the server, over HTTP --

    def _pull(self, phone):
        # The API of the phone's user: teardown pulls with a fresh phone of the same user as well.
        api = next(api for p, api in zip(self.phones, self.apis) if p.principal == phone.principal)
        while True:
            body = {"client_id": phone.client_id, "cursor": phone.cursor, "limit": 7}
            if phone.page_format != 1:
                body["format"] = phone.page_format
            resp = api.post("/api/sync/pull", json=body)
            assert resp.status_code == 200, resp.get_json()
            page = resp.get_json()
            if page["reset"]:
                phone.replica.clear()
            for ch in page_changes(page):
                if ch["deleted"]:
                    phone.replica.pop((ch["entity"], ch["id"]), None)
                else:
                    phone.replica[(ch["entity"], ch["id"])] = {"seq": ch["seq"], **ch["data"]}
            phone.cursor = page["cursor"]
            if not page["has_more"]:
                phone.outbox = [m for m in phone.outbox if m["n"] > page["last_applied"]]
                return

    @rule(p=st.integers(0, 2), fault=st.sampled_from(FAULTS))
    def sync(self, p, fault):
        phone, api = self.phones[p], self.apis[p]
        batch = copy.deepcopy(phone.outbox)
        body = {"client_id": phone.client_id, "mutations": batch}
        if fault == "request_dropped":
            return
        if fault == "expired_token":
            resp = self.expired[p].post("/api/sync/push", json=body)
            assert resp.status_code == 401, resp.get_json()
            return  # the phone keeps its outbox and signs in again (a fresh token: self.apis)
        if fault == "reordered" and len(batch) > 1:
            resp = api.post("/api/sync/push", json={**body, "mutations": batch[1:]})
            assert resp.status_code == 200 or resp.get_json()["error"]["code"] == "mutation_gap", resp.get_json()
        resp = api.post("/api/sync/push", json=body)
        assert resp.status_code == 200, resp.get_json()
        result = resp.get_json()
        if fault == "twice":
            again = api.post("/api/sync/push", json=body).get_json()  # the same bytes: the receipt answers
            assert [r["status"] for r in again["results"]] == [r["status"] for r in result["results"]]
            assert all(r.get("replayed") for r in again["results"])
            # The same mutations in other bytes take the full path, and get the same answer.
            full = api.post("/api/sync/push", data=json.dumps(body, indent=1),
                            headers={"Content-Type": "application/json"})
            assert full.status_code == 200 and full.get_json() == again
            result = again
        if fault == "response_dropped":
            return
        by_n = {m["n"]: m for m in batch}
        phone.acked.extend((by_n[r["n"]], r) for r in result["results"])
        self._pull(phone)

    @rule()
    def restart(self):
        """A new server process on the same database: sessions and pooled connections gone, committed rows kept."""
        db.session.remove()
        db.engine.dispose()

    # -- what the server holds, from the database --

    def _last_applied(self, phone):
        db.session.rollback()
        return db.session.execute(sa.select(Device.last_applied).where(
            Device.client_id == uuid.UUID(phone.client_id))).scalar_one_or_none()

    def _server_records(self, entity):
        db.session.rollback()
        if entity == "visit":
            return {str(i): {"deleted": d} for i, d in db.session.execute(sa.select(Visit.id, Visit.deleted))}
        rows = db.session.execute(sa.select(Resident.id, Resident.deleted, Resident.household_id, Resident.name_key,
                                            Resident.duplicate_of))
        return {str(r.id): {"deleted": r.deleted, "household_id": str(r.household_id), "name_key": r.name_key,
                            "duplicate_of": r.duplicate_of and str(r.duplicate_of)} for r in rows}

    def _conflicts(self):
        db.session.rollback()
        return [{"lost_client_id": str(c.lost_client_id), "lost_n": c.lost_n, "field": c.field,
                 "lost_value": c.lost_value} for c in db.session.execute(sa.select(Conflict)).scalars()]


def test_three_phones_with_faults_converge_on_the_sql_store(app, client):
    SqlSyncModel.client = client
    # No shrinking: each step is HTTP round trips on a database, and a failure found is reported as it was found
    # (shrinking one took over five minutes) rather than after CI's timeout.
    with app.app_context():
        run_state_machine_as_test(SqlSyncModel, settings=settings(
            max_examples=25, stateful_step_count=30, deadline=None, database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
