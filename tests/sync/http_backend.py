"""The vectors' backend on the real app: setup through the ORM, push and pull through the HTTP API."""
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa

from server.extensions import db
from server.models import Conflict, DuplicateSuspicion, Event, Rejection
from server.sync_store import SqlStore
from sync.store import WIRE_FIELDS
from sync.wire import wire_value


class HttpBackend:
    def __init__(self, make, login):
        self.make, self.login = make, login
        self.apis = {}

    def setup(self, setup):
        from server.database import next_seq
        make = self.make
        sites = {s["id"]: make.site(name=s["name"], code=s["code"], id=uuid.UUID(s["id"])) for s in setup["sites"]}
        hhs = {}
        for hh in setup.get("households", []):
            hhs[hh["id"]] = make.household(sites[hh["site_id"]], id=uuid.UUID(hh["id"]), landlord_ref=hh["landlord_ref"],
                                           notes=hh.get("notes", ""))
        for r in setup.get("residents", []):
            make.resident(hhs[r["household_id"]], r["first_name"], r["last_name"], id=uuid.UUID(r["id"]),
                          phone=r.get("phone", ""), email=r.get("email", ""))
        for a in setup.get("actions", []):
            make.action(a["name"], site=sites.get(a.get("site_id")), code=a["code"], id=uuid.UUID(a["id"]))
        for e in setup.get("events", []):
            starts = datetime.fromisoformat(e["starts_at"])
            ev = Event(id=uuid.UUID(e["id"]), title=e["title"], kind="atelier", starts_at=starts,
                       ends_at=starts + timedelta(hours=2), seq=next_seq(db.session))
            ev.sites = [sites[s] for s in e["site_ids"]]
            db.session.add(ev)
            db.session.commit()
        if "programme" in setup:
            make.programme(goal=setup["programme"]["goal"], baseline=setup["programme"]["baseline"])
        for u in setup["users"]:
            user = make.user(u["role"], sites=[sites[s] for s in u.get("sites", [])])
            self.apis[u["key"]] = self.login(user)
        return {d["key"]: (d["client_id"], d["user"]) for d in setup["devices"]}

    def push(self, dev, body):
        resp = self.apis[dev.user].post("/api/sync/push", json=body)
        return resp.status_code, resp.get_json()

    def pull(self, dev, body):
        resp = self.apis[dev.user].post("/api/sync/pull", json=body)
        return resp.status_code, resp.get_json()

    def record(self, entity, rec_id):
        db.session.rollback()
        rec = SqlStore(db.session).load(entity, [rec_id]).get(rec_id)
        if rec is None:
            return None
        return {"id": rec_id, "deleted": rec["deleted"], **{f: wire_value(rec.get(f)) for f in WIRE_FIELDS[entity]}}

    def conflicts(self):
        return [{"entity": c.entity, "entity_id": str(c.entity_id), "field": c.field, "kept_value": c.kept_value,
                 "lost_value": c.lost_value} for c in db.session.execute(sa.select(Conflict)).scalars()]

    def rejections(self):
        return [{"client_id": str(r.client_id), "n": r.n, "code": r.code}
                for r in db.session.execute(sa.select(Rejection)).scalars()]

    def suspicions(self):
        return [{"resident_id": str(s.resident_id), "candidate_id": str(s.candidate_id)}
                for s in db.session.execute(sa.select(DuplicateSuspicion)).scalars()]

    def engaged(self):
        from server.services import progress
        return progress()["engaged"]
