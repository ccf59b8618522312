"""The shared vectors on the in-memory store: the protocol itself, without a server."""
import json
import uuid
from datetime import datetime

import pytest

from sync import (InMemoryStore, Principal, ProtocolError, answer_replay, apply_push, compute_pull, parse_pull,
                  parse_push, request_digest)
from sync.store import WIRE_FIELDS
from sync.wire import wire_value
from tests.sync.vector_runner import load_vectors, run_vector

VECTORS = load_vectors()


class MemoryBackend:
    def __init__(self):
        self.store = InMemoryStore()
        self.principals = {}

    def setup(self, setup):
        s = self.store
        s.programme = dict(setup.get("programme", {"goal": 0, "baseline": 0}))
        for site in setup["sites"]:
            s.put("site", {"commune": "Outreau", "territory": "", **site})
        for hh in setup.get("households", []):
            s.put("household", {"building": "A", "staircase": "1", "floor": "1", "door": "1", "notes": "", **hh})
        for r in setup.get("residents", []):
            from sync.rules import name_key
            site_id = s.tables["household"][r["household_id"]]["site_id"]
            s.put("resident", {"phone": "", "email": "", "consent_contact": False, "consent_image": False,
                               "duplicate_of": None, "merged_into": None, "site_id": site_id,
                               "name_key": name_key(r["first_name"], r["last_name"]), **r})
        for a in setup.get("actions", []):
            s.put("action", {"description": "", **a})
        for e in setup.get("events", []):
            starts = datetime.fromisoformat(e["starts_at"])
            s.put("event", {"kind": "atelier", "description": "", "ends_at": starts, "place": "",
                            "status": "scheduled", **e, "starts_at": starts})
        for u in setup["users"]:
            sites = None if u["role"] in ("head_office", "admin") else frozenset(u["sites"])
            self.principals[u["key"]] = Principal(str(uuid.uuid4()), u["role"], sites)
        return {d["key"]: (d["client_id"], d["user"]) for d in setup["devices"]}

    def _call(self, fn):
        try:
            return 200, fn().to_wire()
        except ProtocolError as e:
            err = {"code": e.code, "message": e.message}
            if e.details is not None:
                err["details"] = e.details
            return e.status, {"error": err}

    def push(self, dev, body):
        """As the server does: the same bytes as a push applied before are answered from its receipt."""
        principal = self.principals[dev.user]
        digest = request_digest(json.dumps(body).encode())
        return self._call(lambda: answer_replay(self.store, principal, digest)
                          or apply_push(self.store, principal, parse_push(body, 500), digest))

    def pull(self, dev, body):
        def go():
            req = parse_pull(body, 2000, 500)
            return compute_pull(self.store, self.principals[dev.user], req.client_id, req.cursor, req.limit,
                                req.page_format)
        return self._call(go)

    def record(self, entity, rec_id):
        rec = self.store.tables[entity].get(rec_id)
        if rec is None:
            return None
        return {"id": rec_id, "deleted": rec["deleted"], **{f: wire_value(rec.get(f)) for f in WIRE_FIELDS[entity]}}

    def conflicts(self):
        return self.store.conflicts

    def rejections(self):
        return self.store.rejections

    def suspicions(self):
        return self.store.suspicions

    def engaged(self):
        return self.store.progress()["engaged"]


@pytest.mark.parametrize("page_format", [1, 2])
@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_on_memory_store(vector, page_format):
    run_vector(vector, MemoryBackend(), page_format)
