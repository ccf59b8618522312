"""A hypothesis model of three offline devices against the protocol, with the network and server failing.

Faults: request dropped, response dropped after the server committed, the same push twice, a suffix pushed
before its head (reordered), an expired token, a server restart (a new store on the same durable state).
After healing (every device syncs without faults), every device holds exactly what the server holds for its
scope, and every acknowledged write is on the server or kept in a conflict record.
"""
import copy
import json
import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sync import (InMemoryStore, Principal, ProtocolError, answer_replay, apply_push, compute_pull, parse_pull,
                  parse_push, request_digest)
from tests.sync.vector_runner import page_changes

NOW = datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
SITE, OTHER = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))
HOUSEHOLDS = [str(uuid.UUID(int=10 + i)) for i in range(2)]
NAMES = [("Maryse", "Moreau"), ("MOREAU", "maryse"), ("Jean", "Caron")]
FAULTS = ["none", "none", "request_dropped", "response_dropped", "twice", "reordered", "expired_token"]


class Phone:
    def __init__(self, principal, page_format):
        self.principal, self.page_format = principal, page_format
        self.client_id = str(uuid.uuid4())
        self.outbox, self.next_n = [], 1
        self.replica, self.cursor = {}, None
        self.acked: list[tuple[dict, dict]] = []  # (mutation, result) the server answered to this phone


class SyncModel(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        s = self.store = InMemoryStore(now=NOW)
        s.put("site", {"id": SITE, "code": "A", "name": "A", "commune": "Outreau", "territory": ""})
        s.put("site", {"id": OTHER, "code": "B", "name": "B", "commune": "Outreau", "territory": ""})
        for i, hh in enumerate(HOUSEHOLDS):
            s.put("household", {"id": hh, "site_id": SITE, "building": "A", "staircase": "1", "floor": "1",
                                "door": str(i), "landlord_ref": f"R{i}", "notes": ""})
        s.put("household", {"id": str(uuid.UUID(int=99)), "site_id": OTHER, "building": "B", "staircase": "1",
                            "floor": "1", "door": "1", "landlord_ref": "RB", "notes": "autre site"})
        # One phone not yet updated (format 1 pages), two asking for compact rows (format 2).
        self.phones = [Phone(Principal(str(uuid.uuid4()), role, frozenset([SITE])), page_format)
                       for role, page_format in (("staff", 1), ("staff", 2), ("gardien", 2))]

    # -- offline work on a phone --

    def _queue(self, phone, op, args):
        at = (NOW + timedelta(minutes=len(phone.outbox))).isoformat()
        phone.outbox.append({"n": phone.next_n, "op": op, "at": at, "args": args})
        phone.next_n += 1

    @rule(p=st.integers(0, 2), hh=st.sampled_from(HOUSEHOLDS), outcome=st.sampled_from(["talked", "absent"]))
    def visit(self, p, hh, outcome):
        self._queue(self.phones[p], "visit.create", {"id": str(uuid.uuid4()), "household_id": hh,
                                                     "visited_at": NOW.isoformat(), "outcome": outcome})

    @rule(p=st.integers(0, 2), hh=st.sampled_from(HOUSEHOLDS), name=st.sampled_from(NAMES))
    def create_resident(self, p, hh, name):
        self._queue(self.phones[p], "resident.create", {"id": str(uuid.uuid4()), "household_id": hh,
                                                        "first_name": name[0], "last_name": name[1]})

    @rule(p=st.integers(0, 2), pick=st.integers(0, 50), field=st.sampled_from(["first_name", "consent_contact"]),
          value=st.sampled_from(["Léa", "Paul", True, False]))
    def edit_resident(self, p, pick, field, value):
        phone = self.phones[p]
        residents = sorted(i for (e, i) in phone.replica if e == "resident")
        if not residents or isinstance(value, bool) != (field == "consent_contact"):
            return
        rid = residents[pick % len(residents)]
        self._queue(phone, "resident.update", {"id": rid, "base_seq": phone.replica[("resident", rid)]["seq"],
                                               "changes": {field: value}})

    @rule(p=st.integers(0, 2), hh=st.sampled_from(HOUSEHOLDS), notes=st.sampled_from(["digicode 12", "chien", ""]))
    def edit_household(self, p, hh, notes):
        phone = self.phones[p]
        seen = phone.replica.get(("household", hh))
        self._queue(phone, "household.update", {"id": hh, "base_seq": seen["seq"] if seen else 0,
                                                "changes": {"notes": notes}})

    @rule(p=st.integers(0, 2), pick=st.integers(0, 50), what=st.sampled_from(["visit", "resident"]))
    def delete(self, p, pick, what):
        phone = self.phones[p]
        ids = sorted(i for (e, i) in phone.replica if e == what)
        if ids:
            self._queue(phone, f"{what}.delete", {"id": ids[pick % len(ids)]})

    # -- the network and the server --

    def _push(self, phone, mutations, receipts=True):
        """As the server: the same bytes as a push applied before are answered from its receipt (receipts=False:
        the full path, as for the same mutations in other bytes)."""
        body = {"client_id": phone.client_id, "mutations": mutations}
        digest = request_digest(json.dumps(body).encode())
        answer = answer_replay(self.store, phone.principal, digest) if receipts else None
        return answer or apply_push(self.store, phone.principal, parse_push(body, 500), digest)

    def _pull(self, phone):
        while True:
            body = {"client_id": phone.client_id, "cursor": phone.cursor, "limit": 7}
            if phone.page_format != 1:
                body["format"] = phone.page_format
            req = parse_pull(body, 2000, 500)
            page = compute_pull(self.store, phone.principal, req.client_id, req.cursor, req.limit, req.page_format)
            if page.reset:
                phone.replica.clear()
            for ch in page_changes(json.loads(page.to_json())):
                if ch["deleted"]:
                    phone.replica.pop((ch["entity"], ch["id"]), None)
                else:
                    phone.replica[(ch["entity"], ch["id"])] = {"seq": ch["seq"], **ch["data"]}
            phone.cursor = page.cursor
            if not page.has_more:
                phone.outbox = [m for m in phone.outbox if m["n"] > page.last_applied]
                return

    def _ack(self, phone, mutations, result):
        by_n = {m["n"]: m for m in mutations}
        phone.acked.extend((by_n[r.n], r.to_wire()) for r in result.results)

    @rule(p=st.integers(0, 2), fault=st.sampled_from(FAULTS))
    def sync(self, p, fault):
        phone = self.phones[p]
        batch = copy.deepcopy(phone.outbox)
        if fault in ("request_dropped", "expired_token"):
            return  # nothing reached the server (a 401 keeps the outbox)
        if fault == "reordered" and len(batch) > 1:
            try:
                self._push(phone, batch[1:])
            except ProtocolError as e:
                assert e.code == "mutation_gap"
        result = self._push(phone, batch)
        if fault == "twice":
            again = self._push(phone, batch)
            assert [r.status for r in again.results] == [r.status for r in result.results]
            assert all(r.replayed for r in again.results)
            # A receipt's answer is the full path's answer to the same mutations.
            assert again.to_wire() == self._push(phone, batch, receipts=False).to_wire()
            result = again
        if fault == "response_dropped":
            return
        self._ack(phone, batch, result)
        self._pull(phone)

    @rule()
    def restart(self):
        """A new server process on the same database: only durable state survives."""
        old, new = self.store, InMemoryStore(now=NOW)
        for attr in ("tables", "devices", "log", "rejections", "conflicts", "suspicions", "receipts", "seq"):
            setattr(new, attr, copy.deepcopy(getattr(old, attr)))
        self.store = new

    # -- what the server holds (tests/server/test_sync_model_sql.py reads it from the database) --

    def _last_applied(self, phone):
        dev = self.store.devices.get(phone.client_id)
        return None if dev is None else dev.last_applied

    def _server_records(self, entity) -> dict:
        """id -> record (at least deleted; residents also household_id, name_key, duplicate_of)."""
        return self.store.tables[entity]

    def _conflicts(self) -> list[dict]:
        return self.store.conflicts

    @invariant()
    def counters_never_pass_the_outbox(self):
        for phone in getattr(self, "phones", []):
            last = self._last_applied(phone)
            assert last is None or last < phone.next_n

    def teardown(self):
        if not hasattr(self, "phones"):
            return
        for _ in range(2):  # heal: everybody syncs without faults, twice so all see each other's changes
            for p in range(3):
                self.sync(p, "none")
        for phone in self.phones:
            assert phone.outbox == []
            # the device equals the server's view of its scope, record by record
            fresh = Phone(phone.principal, phone.page_format)
            fresh.client_id = phone.client_id
            self._pull(fresh)
            assert phone.replica == fresh.replica
            assert all(e != "household" or r["site_id"] == SITE for (e, _), r in phone.replica.items())
            if phone.principal.role == "gardien":
                assert all("phone" not in r for (e, _), r in phone.replica.items() if e == "resident")
        tables = {e: self._server_records(e) for e in ("visit", "resident")}
        conflicts = self._conflicts()
        for phone in self.phones:
            for m, r in phone.acked:
                if r["status"] != "applied":
                    continue
                op, args = m["op"], m["args"]
                if op in ("visit.create", "resident.create"):
                    assert args["id"] in tables[op.split(".")[0]]
                for field in r.get("conflicts", []):
                    assert any(c["lost_client_id"] == phone.client_id and c["lost_n"] == m["n"]
                               and c["field"] == field and c["lost_value"] == args["changes"][field]
                               for c in conflicts)
        # a suspected duplicate counts once: each (household, name key) has one resident not marked duplicate
        living = [r for r in tables["resident"].values() if not r["deleted"] and r["duplicate_of"] is None]
        keys = [(r["household_id"], r["name_key"]) for r in living]
        assert len(keys) == len(set(keys))


SyncModel.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow])
test_sync_model = SyncModel.TestCase
