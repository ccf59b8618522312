"""apply_push: decide a device's mutations in order, exactly once, and hand the store one WriteSet."""
from datetime import timedelta

from .ops import DELETE_OPS, UPDATE_OPS, validate_args
from .rules import ended_on_default, merge_fields, name_key
from .store import DeviceState, LogEntry, Store, WriteSet
from .wire import MutationResult, Principal, ProtocolError, PushRequest, PushResult, wire_value

CLOCK_AHEAD = timedelta(hours=12)
CLOCK_BEHIND = timedelta(days=30)


class Reject(Exception):
    def __init__(self, code: str, message: str, details=None, site_id=None):
        super().__init__(message)
        self.reason = {"code": code, "message": message}
        if details is not None:
            self.reason["details"] = details
        self.site_id = site_id


def _forbidden():
    return Reject("unknown_or_forbidden", "Élément inconnu ou hors de vos sites.")


def _replayed(n: int, entry: LogEntry | None) -> MutationResult:
    if entry is None:  # decided before the log existed, or its log entry was purged: nothing to redo
        return MutationResult(n, "applied", replayed=True)
    return MutationResult(n, entry.status, entry.reason, list(entry.conflicts), True)


def answer_replay(store: Store, principal: Principal, digest: str) -> PushResult | None:
    """The answer to a request whose exact bytes were applied before (a phone sending again the push whose answer
    it lost), from its receipt and the log: the answer apply_push would give, without parsing or deciding the
    mutations again, and writing nothing. None when there is no receipt, or its device is not the principal's:
    apply_push then decides (and refuses another user's device)."""
    receipt = store.receipt(digest)
    if receipt is None or receipt.user_id != principal.user_id:
        return None
    ns = list(range(receipt.first_n, receipt.last_n + 1))
    entries = store.log_entries(receipt.client_id, ns)
    return PushResult(receipt.last_applied, [_replayed(n, entries.get(n)) for n in ns])


def apply_push(store: Store, principal: Principal, request: PushRequest, digest: str | None = None) -> PushResult:
    """Replays are answered from the log, a gap or a changed body refuses the whole request (nothing written),
    the next mutations are applied or rejected, and the device's counter advances with them. digest (of the
    request's bytes): when mutations are applied, a receipt is kept under it for answer_replay."""
    device = store.lock_device(request.client_id, principal.user_id)
    last = device.last_applied
    old = [m for m in request.mutations if m.n <= last]
    new = [m for m in request.mutations if m.n > last]
    if new and new[0].n != last + 1:
        raise ProtocolError(409, "mutation_gap", "Des modifications manquent avant celles-ci.",
                            {"next_expected": last + 1})
    results = []
    if old:
        entries = store.log_entries(request.client_id, [m.n for m in old])
        for m in old:
            entry = entries.get(m.n)
            if entry is not None and entry.body_hash != m.body_hash:
                raise ProtocolError(409, "mutation_conflict",
                                    "Une modification déjà reçue porte ce numéro avec un autre contenu.", {"n": m.n})
            results.append(_replayed(m.n, entry))
    now = store.now()
    if new:
        batch = _Batch(store, principal, device, now)
        results.extend(batch.run(new))
        if digest is not None:
            batch.ws.receipt = (digest, request.mutations[0].n, request.mutations[-1].n)
        store.write(batch.ws)
        device.last_applied = new[-1].n
    device.app_version = request.app_version or device.app_version
    device.pending_reported = request.pending
    device.last_push_at = now
    store.save_device(device)
    return PushResult(device.last_applied, results)


class _Batch:
    def __init__(self, store: Store, principal: Principal, device: DeviceState, now):
        self.store, self.principal, self.device, self.now = store, principal, device, now
        self.ws = WriteSet(device.client_id, principal.user_id)
        self.records: dict[str, dict] = {}
        self.by_name: dict[tuple, dict] = {}
        self.attendance_pairs: dict[tuple, dict] = {}
        self.created: set[tuple] = set()

    # -- loading: one query per table for the whole batch --

    def _load(self, valid):
        refs: dict[str, set] = {}

        def ref(entity, rec_id):
            if rec_id is not None:
                refs.setdefault(entity, set()).add(rec_id)

        households_for_names, events = set(), set()
        for m, args in valid:
            op = m.op
            if op in UPDATE_OPS:
                ref(UPDATE_OPS[op], args["id"])
            elif op in DELETE_OPS:
                ref(DELETE_OPS[op], args["id"])
            else:
                ref(op.split(".")[0], args["id"])
                for key, entity in (("household_id", "household"), ("resident_id", "resident"),
                                    ("action_id", "action"), ("event_id", "event"), ("site_id", "site")):
                    ref(entity, args.get(key))
                if op == "resident.create":
                    households_for_names.add(args["household_id"])
                if op == "attendance.create":
                    events.add(args["event_id"])
        # Records this batch may change are loaded whole (their pull text is rewritten from them); the others are
        # only checked (exists, deleted, site, household, merged_into), so the store may load them brief.
        touched = {UPDATE_OPS.get(m.op) or DELETE_OPS.get(m.op) for m, _a in valid}
        if events:
            touched.add("attendance")  # a check-in after a deleted one revives that row
        self.records = {e: self.store.load(e, ids, brief=e not in touched) for e, ids in refs.items()}
        residents = self.records.setdefault("resident", {})
        # Residents merged away: their references follow merged_into.
        missing = {r["merged_into"] for r in residents.values() if r.get("merged_into")} - set(residents)
        if missing:
            residents.update(self.store.load("resident", missing, brief="resident" not in touched))
        for e in ("household", "action", "event", "site", "visit", "engagement", "attendance", "headcount"):
            self.records.setdefault(e, {})
        if households_for_names:
            for r in self.store.residents_of_households(households_for_names):
                residents.setdefault(r["id"], r)
                self._index_name(residents[r["id"]])
        if events:
            res_ids = {self._follow(rid)["id"] for rid in refs.get("resident", ()) if self._follow(rid)}
            for a in self.store.attendances_for(events, res_ids):
                rec = self.records["attendance"].setdefault(a["id"], a)
                self.attendance_pairs[(rec["event_id"], rec["resident_id"])] = rec

    def _index_name(self, r):
        if not r["deleted"] and r.get("duplicate_of") is None:
            self.by_name.setdefault((r["household_id"], r["name_key"]), r)

    def _follow(self, resident_id):
        r = self.records["resident"].get(resident_id)
        for _ in range(10):
            if r is None or not r.get("merged_into"):
                return r
            r = self.records["resident"].get(r["merged_into"])
        return r

    # -- deciding --

    def run(self, new) -> list[MutationResult]:
        checked = [(m, *validate_args(m.op, m.args)) for m in new]
        self._load([(m, a) for m, a, _ in checked if a is not None])
        first_seq = self.store.next_seq(len(new))
        results = []
        for i, (m, args, errors) in enumerate(checked):
            conflicts: list[str] = []
            try:
                if errors:
                    raise Reject("invalid", "Données invalides.", errors)
                conflicts = getattr(self, "_" + m.op.replace(".", "_"))(m, args, first_seq + i) or []
            except Reject as r:
                self.ws.rejections.append({"n": m.n, "op": m.op, "code": r.reason["code"], "reason": r.reason,
                                           "args": m.args, "site_id": r.site_id})
                self.ws.log.append(LogEntry(m.n, m.op, m.body_hash, "rejected", r.reason))
                results.append(MutationResult(m.n, "rejected", r.reason))
                continue
            self.ws.log.append(LogEntry(m.n, m.op, m.body_hash, "applied", None, conflicts))
            results.append(MutationResult(m.n, "applied", conflicts=conflicts))
        return results

    def _get(self, entity, rec_id, allow_deleted=False):
        rec = self.records[entity].get(rec_id)
        if rec is None or not self._visible(entity, rec):
            raise _forbidden()
        if rec["deleted"] and not allow_deleted:
            raise Reject("deleted", "Cet élément a été supprimé.", site_id=rec.get("site_id"))
        return rec

    def _visible(self, entity, rec):
        if entity == "event":
            return self.principal.sees_any(rec.get("site_ids", ()))
        if entity == "action":
            return rec.get("site_id") is None or self.principal.sees(rec["site_id"])
        if entity == "site":
            return self.principal.sees(rec["id"])
        return self.principal.sees(rec["site_id"])

    def _resident(self, resident_id):
        r = self._follow(resident_id)
        if r is None or not self._visible("resident", r):
            raise _forbidden()
        if r["deleted"]:
            raise Reject("deleted", "Cette personne a été supprimée.", site_id=r["site_id"])
        return r

    def _new_id(self, entity, rec_id):
        if rec_id in self.records[entity]:
            raise Reject("id_exists", "Cet identifiant est déjà utilisé.")

    def _clock(self, t) -> bool:
        return t > self.now + CLOCK_AHEAD or t < self.now - CLOCK_BEHIND

    def _insert(self, entity, rec):
        self.records[entity][rec["id"]] = rec
        self.created.add((entity, rec["id"]))
        self.ws.inserts.setdefault(entity, []).append(rec)

    def _touch(self, entity, rec, fields, seq):
        rec["seq"] = seq
        if (entity, rec["id"]) in self.created:
            return
        row = self.ws.updates.setdefault(entity, {}).setdefault(rec["id"], (rec, set()))
        row[1].update(fields)
        row[1].add("seq")

    def _fact(self, seq, **rec):
        return {"seq": seq, "deleted": False, "user_id": self.principal.user_id,
                "client_id": self.device.client_id, **rec}

    def _visit_create(self, m, a, seq):
        self._new_id("visit", a["id"])
        hh = self._get("household", a["household_id"])
        resident_id = None
        if a["resident_id"] is not None:
            r = self._resident(a["resident_id"])
            if r["household_id"] != hh["id"]:
                raise Reject("invalid", "Données invalides.", {"resident_id": ["Cette personne n'habite pas ce logement."]})
            resident_id = r["id"]
        self._insert("visit", self._fact(
            seq, id=a["id"], household_id=hh["id"], site_id=hh["site_id"], resident_id=resident_id,
            visited_at=a["visited_at"], received_at=self.now, clock_suspect=self._clock(a["visited_at"]),
            outcome=a["outcome"], interests=a["interests"], needs=a["needs"], follow_up=a["follow_up"],
            consent_recontact=a["consent_recontact"], note=a["note"]))

    def _visit_delete(self, m, a, seq):
        v = self._get("visit", a["id"], allow_deleted=True)
        if v.get("client_id") != self.device.client_id:
            raise Reject("not_author", "Seul l'appareil qui a saisi cette visite peut la supprimer.",
                         site_id=v["site_id"])
        if not v["deleted"]:
            v["deleted"] = True
            self._touch("visit", v, {"deleted"}, seq)

    def _resident_create(self, m, a, seq):
        self._new_id("resident", a["id"])
        hh = self._get("household", a["household_id"])
        key = name_key(a["first_name"], a["last_name"])
        canonical = self.by_name.get((hh["id"], key))
        rec = {"id": a["id"], "seq": seq, "deleted": False, "household_id": hh["id"], "site_id": hh["site_id"],
               "first_name": a["first_name"], "last_name": a["last_name"], "name_key": key, "phone": a["phone"],
               "email": a["email"], "consent_contact": a["consent_contact"], "consent_image": a["consent_image"],
               "consent_recorded_at": self.now if a["consent_contact"] or a["consent_image"] else None,
               "duplicate_of": canonical["id"] if canonical else None, "merged_into": None,
               "created_by": self.principal.user_id, "field_versions": {}}
        self._insert("resident", rec)
        if canonical:
            self.ws.suspicions.append({"resident_id": rec["id"], "candidate_id": canonical["id"],
                                       "site_id": hh["site_id"]})
        else:
            self._index_name(rec)

    def _update(self, entity, m, a, seq, rec):
        if rec["deleted"]:
            raise Reject("deleted", "Cet élément a été supprimé.", site_id=rec.get("site_id"))
        changed, lost = merge_fields(rec, a["changes"], a["base_seq"], self.device.client_id,
                                     self.principal.user_id, seq)
        for f, (kept, kept_version, proposed) in lost.items():
            self.ws.conflicts.append({
                "entity": entity, "entity_id": rec["id"], "site_id": rec.get("site_id"), "field": f,
                "kept_value": wire_value(kept), "kept_by": kept_version.get("user"), "kept_seq": kept_version["seq"],
                "lost_value": wire_value(proposed), "lost_by": self.principal.user_id,
                "lost_client_id": self.device.client_id, "lost_n": m.n, "lost_base_seq": a["base_seq"]})
        if changed:
            if entity == "resident":
                if {"first_name", "last_name"} & changed:
                    rec["name_key"] = name_key(rec["first_name"], rec["last_name"])
                    changed.add("name_key")
                if {"consent_contact", "consent_image"} & changed:
                    rec["consent_recorded_at"] = self.now
                    changed.add("consent_recorded_at")
            elif entity == "engagement" and "status" in changed:
                end = ended_on_default(rec["status"], rec.get("ended_on"), rec["started_on"], self.now)
                if end is not None:  # a default without a field version: a later ended_on replaces it, no conflict
                    rec["ended_on"] = end
                    changed.add("ended_on")
            self._touch(entity, rec, changed | {"field_versions"}, seq)
        return sorted(lost)

    def _resident_update(self, m, a, seq):
        return self._update("resident", m, a, seq, self._resident(a["id"]))

    def _household_update(self, m, a, seq):
        return self._update("household", m, a, seq, self._get("household", a["id"]))

    def _engagement_update(self, m, a, seq):
        rec = self._get("engagement", a["id"])
        start = a["changes"].get("started_on", rec["started_on"])
        end = a["changes"].get("ended_on", rec.get("ended_on"))
        if end is not None and end < start:
            raise Reject("invalid", "Données invalides.", {"ended_on": ["La date de fin précède la date de début."]},
                         site_id=rec["site_id"])
        return self._update("engagement", m, a, seq, rec)

    def _resident_delete(self, m, a, seq):
        r = self._get("resident", a["id"], allow_deleted=True)
        if not r["deleted"]:
            r["deleted"] = True
            self._touch("resident", r, {"deleted"}, seq)

    def _engagement_create(self, m, a, seq):
        self._new_id("engagement", a["id"])
        r = self._resident(a["resident_id"])
        action = self._get("action", a["action_id"])
        if action.get("site_id") is not None and action["site_id"] != r["site_id"]:
            raise Reject("invalid", "Données invalides.", {"action_id": ["Cette action n'est pas ouverte sur ce site."]})
        self._insert("engagement", {
            "id": a["id"], "seq": seq, "deleted": False, "resident_id": r["id"], "action_id": action["id"],
            "site_id": r["site_id"], "role": a["role"], "status": a["status"], "started_on": a["started_on"],
            "ended_on": None, "created_by": self.principal.user_id, "field_versions": {}})

    def _attendance_create(self, m, a, seq):
        event = self._get("event", a["event_id"])
        r = self._resident(a["resident_id"])
        if r["site_id"] not in {str(s) for s in event.get("site_ids", ())}:
            raise Reject("invalid", "Données invalides.", {"resident_id": ["Cette personne n'est pas d'un site de l'événement."]})
        existing = self.attendance_pairs.get((event["id"], r["id"]))
        if existing is not None and not existing["deleted"]:
            return None  # two phones checked the same person in: the first check-in stands
        if existing is not None:  # checked in again after a mistaken check-in was deleted
            existing.update(deleted=False, checked_in_at=a["checked_in_at"],
                            clock_suspect=self._clock(a["checked_in_at"]))
            self._touch("attendance", existing, {"deleted", "checked_in_at", "clock_suspect"}, seq)
            return None
        self._new_id("attendance", a["id"])
        rec = self._fact(seq, id=a["id"], event_id=event["id"], resident_id=r["id"], site_id=r["site_id"],
                         checked_in_at=a["checked_in_at"], clock_suspect=self._clock(a["checked_in_at"]))
        self._insert("attendance", rec)
        self.attendance_pairs[(event["id"], r["id"])] = rec

    def _attendance_delete(self, m, a, seq):
        rec = self._get("attendance", a["id"], allow_deleted=True)
        if not rec["deleted"]:
            rec["deleted"] = True
            self._touch("attendance", rec, {"deleted"}, seq)

    def _headcount_create(self, m, a, seq):
        self._new_id("headcount", a["id"])
        event = self._get("event", a["event_id"])
        if not self.principal.sees(a["site_id"]) or a["site_id"] not in {str(s) for s in event.get("site_ids", ())}:
            raise _forbidden()
        self._insert("headcount", self._fact(
            seq, id=a["id"], event_id=event["id"], site_id=a["site_id"], category=a["category"], count=a["count"],
            counted_at=a["counted_at"], clock_suspect=self._clock(a["counted_at"])))
