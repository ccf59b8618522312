"""Residents' rights and retention: the access export, erasure everywhere, the purge of expired records, and
per-resident push links. Synced rows are never hard-deleted: they become scrubbed tombstones with a new seq, so
devices drop them at their next pull (docs/privacy.md, docs/PROTOCOL.md)."""
import hashlib
import json
import re
import secrets
import unicodedata
import uuid
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from flask import current_app

from . import audit
from .database import next_seq
from .extensions import db
from .models import (Action, Attendance, AuditLog, Conflict, DuplicateSuspicion, Engagement, Event, HeadCount,
                     Household, MutationRun, PushDelivery, PushLink, PushReceipt, PushSubscription, Rejection,
                     Resident, RevokedToken, Site, User, Visit, event_sites)
from .sync_store import _bump as bump_seq  # the review's tombstone helper: a fresh seq per row, one statement

ERASED_MARK = "[effacé]"
# Copies of a synced record that the sync store may keep (its pull texts): cleared whenever a row is scrubbed, so no
# copy outlives the scrub; the store serializes such a row from its columns (docs/PROTOCOL.md).
DERIVED_COLUMNS = ("wire", "wire_restricted", "wire_seq")


def _derived(model) -> dict:
    return {c: None for c in DERIVED_COLUMNS if c in model.__table__.c}


def scrub(model, where, values: dict) -> int:
    """Change synced rows with a fresh seq each (devices get the new state, or the tombstone, at their next pull)."""
    return bump_seq(db.session, model, where, {**values, **_derived(model)})


class PrivacyError(Exception):
    def __init__(self, status, code, message, details=None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


# --- names in free text ----------------------------------------------------------------------------------------

def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch)).lower()


# Particles of names that are also everyday words ("Le Gall", "De la Fontaine"): matching them would strike every line.
_PARTICLES = frozenset({"le", "la", "les", "de", "du", "des", "di", "da", "del", "della", "dos", "das", "el", "al",
                        "van", "von", "der", "den", "ben", "bin", "ibn", "san", "ait", "et", "en", "au", "mme",
                        "mlle"})


def _name_tokens(residents) -> set[str]:
    """The words of the residents' first and last names, accents and case folded; single letters and name
    particles are skipped."""
    words = set()
    for r in residents:
        for part in (r.first_name, r.last_name):
            words.update(w for w in re.split(r"[^\w]+", _fold(part or "")) if len(w) > 1 and w not in _PARTICLES)
    return words


def _mentions(text, words: set[str]) -> bool:
    if not text or not words:
        return False
    found = set(re.split(r"[^\w]+", _fold(text if isinstance(text, str) else json.dumps(text, ensure_ascii=False))))
    return not found.isdisjoint(words)


def _without_lines_naming(text: str, words: set[str]) -> str:
    """Drop every line that names the person: a note is about a household, only their lines go."""
    return "\n".join(line for line in text.split("\n") if not _mentions(line, words))


# Words that introduce a surname in a note ("Mme Benali", "M. Martin", "famille Nguyen"), folded.
_CIVILITIES = ("m", "mr", "mme", "mmes", "mlle", "mlles", "madame", "mesdames", "monsieur", "messieurs",
               "mademoiselle", "famille", "veuve", "vve")
_SEP = r"[^\w\n]{1,3}"  # between two words of a name: a space, a hyphen, ". ", ", "
_MARKS = "[\u0300-\u036f]*"  # combining accents of a decomposed text


def _letter_classes() -> dict[str, str]:
    """For each ASCII letter, a regex class of every Latin letter that folds to it ("e": eEéÉèÈ...)."""
    found = {c: {c, c.upper()} for c in "abcdefghijklmnopqrstuvwxyz"}
    for cp in [*range(0xC0, 0x250), *range(0x1E00, 0x1F00)]:
        folded = _fold(chr(cp))
        if folded in found:
            found[folded].add(chr(cp))
    return {c: "[" + "".join(sorted(chars)) + "]" for c, chars in found.items()}


_LETTERS = _letter_classes()


class NameMatcher:
    """Finds one person named in free text outside their household: their full name in either order ("Zéphirine
    Quenouille", "QUENOUILLE Zéphirine") on every site, their surname after a civility ("Mme Quenouille") on their
    own sites; accents and case ignored, whole words only ("Martin" is not in "Martine"); a first name alone is
    not looked for. Where a namesake (a live resident of another household) answers to that form on the note's
    site, the mention may be theirs: it is left and counted as ambiguous (docs/privacy.md)."""

    def __init__(self, rows, others=None):
        """rows: the person's resident rows; others: (site_id, first_name, last_name) of the other residents who
        might share the name (read from the database when not given)."""
        self.sites = {r.site_id for r in rows}
        firsts = [_words(r.first_name) for r in rows]
        lasts = [_words(r.last_name) for r in rows]
        last_rx = _alternatives(_part_rx(w) for w in lasts)
        first_rx = _alternatives(_part_rx(w) for w in firsts)
        core = {w for ws in lasts for w in ws if len(w) > 1 and w not in _PARTICLES}
        self.last = self.first = self.full = self.civil = self.raw = None
        if not last_rx:
            return  # a surname made of particles or initials only: too weak to look for outside the household
        self.last = re.compile(rf"\b(?:{last_rx})\b")
        civil = "|".join(_CIVILITIES)
        # An initial may stand between the civility and the surname ("Mme Z. Quenouille").
        self.civil = re.compile(rf"\b(?:{civil}){_SEP}(?:\w{_SEP})?(?:{last_rx})\b")
        if first_rx:
            self.first = re.compile(rf"\b(?:{first_rx})\b")
            self.full = re.compile(rf"\b(?:(?:{first_rx}){_SEP}(?:{last_rx})|(?:{last_rx}){_SEP}(?:{first_rx}))\b")
        # Every form holds a word of the surname: notes without one are skipped before being folded.
        self.raw = re.compile("|".join(_raw_rx(w) for w in sorted(core)), re.IGNORECASE)
        if others is None:
            others = _others_named({r.household_id for r in rows}, core)
        self.namesakes = self._namesakes(others)

    def _namesakes(self, others) -> dict:
        """{site_id: {"full", "last"}}: which forms of the name other live residents of each site also answer to."""
        out = {}
        for site_id, first, last in others:
            name = f"{_fold(first)} {_fold(last)}"
            if self.last.search(name):
                kinds = out.setdefault(site_id, set())
                kinds.add("last")
                if self.full and self.first.search(name):
                    kinds.add("full")
        return out

    def _spans(self, folded: str, site_id) -> list[tuple[int, int, bool]]:
        """(start, end, sure) of each mention in a folded text; not sure where a namesake of the site may be meant."""
        forms = [("full", self.full)] + ([("last", self.civil)] if site_id in self.sites else [])
        namesakes = self.namesakes.get(site_id, set())
        return [(m.start(), m.end(), kind not in namesakes)
                for kind, rx in forms if rx is not None for m in rx.finditer(folded)]

    def naming(self, line: str, site_id) -> str | None:
        """"sure" when the line names the person, "ambiguous" when a namesake of the site may be meant, else None."""
        spans = self._spans(_fold(line), site_id)
        return ("sure" if any(sure for *_, sure in spans) else "ambiguous") if spans else None

    def lines(self, text: str, site_id) -> list[tuple[str, str | None]]:
        """Each line of the text with naming()'s verdict; notes without a word of the surname are not folded."""
        if self.raw is None or not text or not self.raw.search(text):
            return [(line, None) for line in (text or "").split("\n")]
        return [(line, self.naming(line, site_id)) for line in text.split("\n")]

    def strike(self, text: str, site_id) -> tuple[str, int]:
        """The text without the lines naming the person, and how many lines name them ambiguously (left)."""
        lines = self.lines(text, site_id)
        if all(verdict is None for _, verdict in lines):
            return text, 0
        return ("\n".join(line for line, verdict in lines if verdict != "sure"),
                sum(verdict == "ambiguous" for _, verdict in lines))

    def redact(self, text: str, site_id) -> tuple[str, int]:
        """A one-line text (a title, a place) with each sure mention replaced by [effacé], and how many mentions
        were left because a namesake may be meant."""
        if self.raw is None or not text or not self.raw.search(text):
            return text, 0
        folded, starts = _fold_indexed(text)
        spans = self._spans(folded, site_id)
        merged = []
        for a, b in sorted((a, b) for a, b, sure in spans if sure):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        pieces, pos = [], 0
        for a, b in merged:  # back to the text's own positions (a folded letter may come from a letter + accent)
            pieces += [text[pos:starts[a]], ERASED_MARK]
            pos = starts[b] if b < len(starts) else len(text)
        return "".join(pieces) + text[pos:], sum(not sure for *_, sure in spans)


def _fold_indexed(text: str) -> tuple[str, list[int]]:
    """_fold(text), with the position in text of each folded character."""
    chars, starts = [], []
    for i, ch in enumerate(text):
        for f in _fold(ch):
            chars.append(f)
            starts.append(i)
    return "".join(chars), starts


def _others_named(hh_ids, core) -> list:
    """Live residents of other households whose name holds a word of the surname (name_key is folded). Her
    housemates are no namesakes: a mention of the family is struck, as in their household's own notes."""
    keys = {k for w in core for k in re.split(r"[^0-9a-z]+", w) if len(k) > 1} or core
    return db.session.execute(sa.select(Resident.site_id, Resident.first_name, Resident.last_name).where(
        Resident.deleted.is_(False), Resident.household_id.not_in(hh_ids),
        sa.or_(*(Resident.name_key.contains(k, autoescape=True) for k in keys)))).all()


def _words(part: str) -> list[str]:
    return [w for w in re.split(r"[^\w]+", _fold(part or "")) if w]


def _part_rx(words) -> str | None:
    """A first or last name on folded text: its words in order; particles and initials may be left out
    ("Le Gall" is also written "Gall"). None when no other word is left to look for."""
    words = list(words)
    while words and (len(words[-1]) < 2 or words[-1] in _PARTICLES):
        words.pop()
    if not words:
        return None
    return "".join(re.escape(w) + (_SEP if i < len(words) - 1 else "") if len(w) > 1 and w not in _PARTICLES
                   else f"(?:{re.escape(w)}{_SEP})?" for i, w in enumerate(words))


def _alternatives(parts) -> str | None:
    parts = sorted({p for p in parts if p})
    return "|".join(parts) or None


def _raw_rx(word: str) -> str:
    """A folded word as a regex on unfolded text: each letter with its accented forms."""
    return "".join((_LETTERS[ch] + _MARKS) if ch in _LETTERS else re.escape(ch) for ch in word)


def _redact(text: str, words: set[str]) -> str:
    """A reason typed by an admin may name the person: their words are replaced before it is kept."""
    def sub(m):
        return ERASED_MARK if _fold(m.group(0)) in words else m.group(0)
    return re.sub(r"\w+", sub, text)


# --- who is one person -----------------------------------------------------------------------------------------

def person_rows(resident: Resident) -> list[Resident]:
    """The resident and every tombstone merged into them (a merged duplicate still holds the same name)."""
    rows, frontier = [resident], [resident.id]
    while frontier:
        merged = db.session.execute(sa.select(Resident).where(Resident.merged_into.in_(frontier))).scalars().all()
        merged = [m for m in merged if m.id not in {r.id for r in rows}]
        rows += merged
        frontier = [m.id for m in merged]
    return rows


def follow_merges(resident: Resident) -> Resident:
    seen = set()
    while resident.merged_into is not None and resident.id not in seen:
        seen.add(resident.id)
        resident = db.session.get(Resident, resident.merged_into)
    return resident


def _pending_duplicates(ids) -> list[str]:
    q = sa.select(DuplicateSuspicion.id).where(DuplicateSuspicion.status == "pending", sa.or_(
        DuplicateSuspicion.resident_id.in_(ids), DuplicateSuspicion.candidate_id.in_(ids)))
    pending = [str(i) for i in db.session.execute(q).scalars()]
    live_dups = sa.select(Resident.id).where(Resident.duplicate_of.in_(ids), Resident.deleted.is_(False))
    return pending + [f"resident:{i}" for i in db.session.execute(live_dups).scalars()]


# --- right of access -------------------------------------------------------------------------------------------

def _row(obj, *names) -> dict:
    return {n: audit.jsonable(getattr(obj, n)) for n in names}


def access_export(resident: Resident) -> dict:
    """Everything Palier holds about one person, as JSON: identity and consents, household, engagements, check-ins,
    visits of their household with their notes, the lines of other households' notes naming them, review items
    and rejected mutations naming them, push consents, and who read or exported their data."""
    rows = person_rows(resident)
    ids = [r.id for r in rows]
    words = _name_tokens(rows)
    hh_ids = {r.household_id for r in rows}
    identity = ("id", "first_name", "last_name", "phone", "email", "household_id", "site_id", "created_at",
                "updated_at", "deleted", "merged_into", "duplicate_of")
    consents = ("consent_contact", "consent_image", "consent_recorded_at")
    engagements = db.session.execute(
        sa.select(Engagement, Action.name).join(Action, Action.id == Engagement.action_id)
        .where(Engagement.resident_id.in_(ids)).order_by(Engagement.started_on)).all()
    attendances = db.session.execute(
        sa.select(Attendance, Event.title, Event.starts_at).join(Event, Event.id == Attendance.event_id)
        .where(Attendance.resident_id.in_(ids)).order_by(Attendance.checked_in_at)).all()
    visits = db.session.execute(sa.select(Visit).where(sa.or_(Visit.household_id.in_(hh_ids),
                                                              Visit.resident_id.in_(ids)))
                                .order_by(Visit.visited_at)).scalars().all()
    record_ids = ids + [e.id for e, _ in engagements] + [a.id for a, *_ in attendances] + [v.id for v in visits]
    conflicts = db.session.execute(sa.select(Conflict).where(sa.or_(
        Conflict.entity_id.in_(record_ids), Conflict.entity_id.in_(hh_ids)))).scalars().all()
    conflicts = [c for c in conflicts if c.entity_id in set(ids) or c.entity_id not in hh_ids
                 or _mentions(c.kept_value, words) or _mentions(c.lost_value, words)]
    rejections = _rejections_naming({str(i) for i in record_ids}, words)
    elsewhere = NameMatcher(rows)
    mentions = [{"entity": entity, "id": str(row_id), "field": column, "line": line,
                 "ambiguous": verdict == "ambiguous"}
                for entity, _model, row_id, site_id, texts in _texts_beyond(hh_ids, elsewhere)
                for column, text in texts.items()
                for line, verdict in elsewhere.lines(text or "", site_id) if verdict]
    subs = db.session.execute(sa.select(PushSubscription).where(PushSubscription.resident_id.in_(ids))).scalars()
    subjects = [f"resident:{i}" for i in ids]
    reads = db.session.execute(sa.select(AuditLog, User.role).outerjoin(User, User.id == AuditLog.user_id)
                               .where(AuditLog.subject.in_(subjects)).order_by(AuditLog.at)).all()
    households = db.session.execute(sa.select(Household, Site.name).join(Site, Site.id == Household.site_id)
                                    .where(Household.id.in_(hh_ids))).all()
    return {
        "generated_at": audit.jsonable(datetime.now(timezone.utc)),
        "resident": {**_row(resident, *identity), "consents": _row(resident, *consents)},
        "merged_records": [{**_row(r, *identity), "consents": _row(r, *consents)} for r in rows[1:]],
        "households": [{**_row(h, "id", "building", "staircase", "floor", "door", "landlord_ref", "notes"),
                        "site": site} for h, site in households],
        "engagements": [{**_row(e, "id", "role", "status", "started_on", "ended_on", "deleted"), "action": name}
                        for e, name in engagements],
        "attendances": [{**_row(a, "id", "checked_in_at", "deleted"), "event": title,
                         "event_starts_at": audit.jsonable(starts)} for a, title, starts in attendances],
        "visits": [{**_row(v, "id", "visited_at", "outcome", "interests", "needs", "follow_up",
                           "consent_recontact", "note", "deleted"), "about_them": v.resident_id in set(ids)}
                   for v in visits],
        "conflicts": [_row(c, "id", "entity", "entity_id", "field", "kept_value", "lost_value", "status",
                           "created_at", "resolved_at") for c in conflicts],
        "rejected_mutations": [_row(r, "id", "op", "code", "args", "status", "created_at") for r in rejections],
        "mentions_elsewhere": mentions,
        "push_subscriptions": [_row(s, "id", "site_id", "kinds", "consent_at", "consent_text_version",
                                    "withdrawn_at", "created_at") for s in subs],
        "accesses": [{**_row(a, "at", "action"), "by_role": role} for a, role in reads],
        "not_kept": "Le journal des modifications ne garde que l'empreinte (sha256) de chaque envoi, jamais son "
                    "contenu.",
    }


def _rejections_naming(record_ids: set[str], words: set[str]) -> list[Rejection]:
    """Rejected mutations whose kept args hold one of these records' ids or the person's name. Few rows (head
    office reviews them), so they are read and matched here rather than with per-database JSON operators."""
    out = []
    for rej in db.session.execute(sa.select(Rejection).where(Rejection.args.is_not(None))).scalars():
        text = json.dumps(rej.args, ensure_ascii=False)
        if any(i in text for i in record_ids) or _mentions(text, words):
            out.append(rej)
    return out


# --- right to erasure ------------------------------------------------------------------------------------------

def erase(resident: Resident, user, reason: str, action: str = "privacy.erase") -> dict:
    """Remove a person everywhere, in the caller's transaction; returns counts per kind. See docs/privacy.md."""
    next_seq(db.session, 0)  # the sequence lock first: pushes, merges and erasures serialize
    resident = follow_merges(resident)
    rows = person_rows(resident)
    ids = [r.id for r in rows]
    pending = _pending_duplicates(ids)
    if pending:
        raise PrivacyError(409, "pending_duplicate", "Un doublon suspecté de cette personne attend une revue : "
                           "fusionnez-le ou séparez-le d'abord.", {"pending": pending})
    words = _name_tokens(rows)
    elsewhere = NameMatcher(rows)  # before her rows are blanked: it reads her names and her namesakes'
    hh_ids = {r.household_id for r in rows}
    s = db.session
    counts = {}
    engagement_ids = s.execute(sa.select(Engagement.id).where(Engagement.resident_id.in_(ids))).scalars().all()
    attendance_ids = s.execute(sa.select(Attendance.id).where(Attendance.resident_id.in_(ids))).scalars().all()
    visit_ids = s.execute(sa.select(Visit.id).where(Visit.resident_id.in_(ids))).scalars().all()

    # A check-in becomes an anonymous head count: the event's attendance figures stay right.
    live = s.execute(sa.select(Attendance).where(Attendance.resident_id.in_(ids), Attendance.deleted.is_(False))
                     .order_by(Attendance.id)).scalars().all()
    if live:
        first = next_seq(s, len(live))
        s.execute(sa.insert(HeadCount), [
            {"id": uuid.uuid4(), "seq": first + k, "deleted": False, "event_id": a.event_id, "site_id": a.site_id,
             "category": "adults", "count": 1, "counted_at": a.checked_in_at, "clock_suspect": a.clock_suspect,
             "created_at": _now(), "updated_at": _now()} for k, a in enumerate(live)])
    counts["attendances_to_head_counts"] = len(live)
    counts["attendances"] = scrub(Attendance, sa.and_(Attendance.resident_id.in_(ids),
                                                     Attendance.deleted.is_(False)), {"deleted": True})
    counts["engagements"] = scrub(Engagement, sa.and_(Engagement.resident_id.in_(ids),
                                                     Engagement.deleted.is_(False)), {"deleted": True})
    counts["visits_unlinked"] = scrub(Visit, Visit.resident_id.in_(ids), {"resident_id": None, "note": ""})
    counts["notes_scrubbed"] = _scrub_notes(Visit, "note", Visit.household_id.in_(hh_ids), words)
    counts["notes_scrubbed"] += _scrub_notes(Household, "notes", Household.id.in_(hh_ids), words)
    counts.update(_scrub_mentions(hh_ids, elsewhere))
    counts["residents"] = scrub(Resident, Resident.id.in_(ids), {
        "deleted": True, "first_name": "", "last_name": "", "name_key": "", "phone": "", "email": "",
        "consent_contact": False, "consent_image": False, "consent_recorded_at": None, "duplicate_of": None,
        "created_by": None, "field_versions": {}})
    record_ids = [*ids, *engagement_ids, *attendance_ids, *visit_ids]
    counts["duplicate_suspicions"] = s.execute(sa.delete(DuplicateSuspicion).where(sa.or_(
        DuplicateSuspicion.resident_id.in_(ids), DuplicateSuspicion.candidate_id.in_(ids)))).rowcount
    counts["conflicts"] = _delete_conflicts(record_ids, hh_ids, words)
    counts["conflicts_scrubbed"] = _scrub_conflicts_elsewhere(hh_ids, elsewhere)
    counts["rejections_scrubbed"] = _scrub_rejections({str(i) for i in record_ids}, words)
    counts["push_subscriptions"] = _delete_subscriptions(PushSubscription.resident_id.in_(ids))
    counts["push_links"] = s.execute(sa.delete(PushLink).where(PushLink.resident_id.in_(ids))).rowcount
    audit.record(action, f"resident:{resident.id}", {"reason": _redact(reason, words), **counts}, user=user)
    return counts


def _now():
    return datetime.now(timezone.utc)


def _scrub_notes(model, column: str, where, words) -> int:
    """Per row (each note loses its own lines), with a new seq so devices get the scrubbed text."""
    col = getattr(model, column)
    n = 0
    for row_id, text in db.session.execute(sa.select(model.id, col).where(where, col != "")).all():
        if _mentions(text, words):
            _set_texts(model, row_id, {column: _without_lines_naming(text, words)})
            n += 1
    return n


# Free text beyond the person's household that may name them, per entity: its text columns. Notes and descriptions
# lose the lines naming them; a one-line field (a title, a place, an action's name) has the name replaced.
_TEXTS_BEYOND = {"household": (Household, ("notes",)), "visit": (Visit, ("note",)),
                 "action": (Action, ("name", "description")), "event": (Event, ("title", "description", "place"))}
_LINE_FIELDS = frozenset({"notes", "note", "description"})


def _texts_beyond(hh_ids, matcher: NameMatcher):
    """(entity, model, id, site id, {column: text}) of the records outside these households whose free text holds
    a word of the person's surname: the only ones that can name them. An event's site is one of the person's
    sites when it is shown there; an action open to every site has none (their full name only is looked for)."""
    if matcher.raw is None:
        return
    outside = {"household": Household.id.not_in(hh_ids), "visit": Visit.household_id.not_in(hh_ids)}
    for entity, (model, columns) in _TEXTS_BEYOND.items():
        cols = [getattr(model, c) for c in columns]
        site = model.site_id if entity != "event" else sa.null()
        # The database picks the candidates (PostgreSQL's regex; SQLite calls Python's re): reading every note of
        # every site into Python was most of an erasure's time.
        candidates = sa.select(model.id, site, *cols).where(
            outside.get(entity, sa.true()), sa.or_(*(c.regexp_match(matcher.raw.pattern, flags="i") for c in cols)))
        rows = db.session.execute(candidates).all()
        if entity == "event" and rows:
            shown = {}
            for event_id, site_id in db.session.execute(sa.select(event_sites.c.event_id, event_sites.c.site_id)
                                                        .where(event_sites.c.event_id.in_([r[0] for r in rows]))):
                shown.setdefault(event_id, set()).add(site_id)
            rows = [(r[0], min(shown.get(r[0], set()) & matcher.sites, default=None), *r[2:]) for r in rows]
        for row_id, site_id, *texts in rows:
            yield entity, model, row_id, site_id, dict(zip(columns, texts))


def _cleaned(matcher: NameMatcher, column: str, text: str, site_id) -> tuple[str, int]:
    if column in _LINE_FIELDS:
        return matcher.strike(text, site_id)
    return matcher.redact(text, site_id)


def _scrub_mentions(hh_ids, matcher: NameMatcher) -> dict:
    """Other households' notes, events and actions: the lines naming the person go, or their name in a one-line
    field (same new seq, same cleared pull texts as their own household's). Returns counts: records scrubbed
    per kind, and mentions left because a namesake may be meant."""
    counts = {"notes_elsewhere_scrubbed": 0, "agenda_scrubbed": 0, "mentions_left_ambiguous": 0}
    for entity, model, row_id, site_id, texts in _texts_beyond(hh_ids, matcher):
        changed = {}
        for column, text in texts.items():
            new, left = _cleaned(matcher, column, text or "", site_id)
            counts["mentions_left_ambiguous"] += left
            if new != (text or ""):
                changed[column] = new
        if changed:
            _set_texts(model, row_id, changed)
            counts["notes_elsewhere_scrubbed" if entity in ("household", "visit") else "agenda_scrubbed"] += 1
    return counts


def _set_texts(model, row_id, texts: dict) -> None:
    """A scrub is a server change like head office's: where devices edit the field, its version moves too, so a
    phone that was offline and sends its older text of the note makes a conflict, not a silent comeback."""
    seq = next_seq(db.session)
    values = {**texts, "seq": seq, "updated_at": _now(), **_derived(model)}
    if "field_versions" in model.__table__.c:
        versions = db.session.execute(sa.select(model.field_versions).where(model.id == row_id)).scalar_one()
        values["field_versions"] = {**(versions or {}),
                                    **{c: {"seq": seq, "by": None, "user": None} for c in texts}}
    db.session.execute(sa.update(model.__table__).where(model.__table__.c.id == row_id).values(values))


def _delete_conflicts(record_ids, hh_ids, words) -> int:
    own = db.session.execute(sa.delete(Conflict).where(Conflict.entity_id.in_(record_ids))).rowcount
    hh = [c.id for c in db.session.execute(sa.select(Conflict).where(Conflict.entity_id.in_(hh_ids))).scalars()
          if _mentions(c.kept_value, words) or _mentions(c.lost_value, words) or _mentions(c.resolution, words)]
    if hh:
        db.session.execute(sa.delete(Conflict).where(Conflict.id.in_(hh)))
    return own + len(hh)


def _scrub_conflicts_elsewhere(hh_ids, matcher: NameMatcher) -> int:
    """Conflicts on another household's notes keep their values for head office's review, without the lines
    naming the person (the household's own conflict record is about that household, not about them)."""
    if matcher.raw is None:
        return 0
    n = 0
    for c in db.session.execute(sa.select(Conflict).where(
            Conflict.entity == "household", Conflict.field == "notes", Conflict.entity_id.not_in(hh_ids))).scalars():
        values = {"kept_value": c.kept_value, "lost_value": c.lost_value}
        if isinstance(c.resolution, dict):
            values["resolution"] = c.resolution.get("value")
        changed = {k: matcher.strike(v, c.site_id)[0] for k, v in values.items() if isinstance(v, str)}
        changed = {k: v for k, v in changed.items() if v != values[k]}
        for k, v in changed.items():
            if k == "resolution":
                c.resolution = {**c.resolution, "value": v}
            else:
                setattr(c, k, v)
        n += bool(changed)
    return n


def _scrub_rejections(record_ids: set[str], words) -> int:
    """Their args go (the review item stays, dismissed, as after a head-office dismissal)."""
    return _drop_args(_rejections_naming(record_ids, words))


def _drop_args(rejections) -> int:
    for rej in rejections:
        rej.args = None
        if rej.status == "open":
            rej.status, rej.resolved_at = "dismissed", _now()
    return len(rejections)


def _delete_subscriptions(where) -> int:
    sub_ids = db.session.execute(sa.select(PushSubscription.id).where(where)).scalars().all()
    if not sub_ids:
        return 0
    db.session.execute(sa.delete(PushDelivery).where(PushDelivery.subscription_id.in_(sub_ids)))
    db.session.execute(sa.delete(PushSubscription).where(PushSubscription.id.in_(sub_ids)))
    return len(sub_ids)


# --- retention -------------------------------------------------------------------------------------------------

PURGE_KINDS = ("visit_notes", "visits", "inactive_residents", "deleted_residents", "rejections_of_erased",
               "conflicts", "rejections", "duplicate_suspicions", "mutation_log", "push_receipts", "audit_log",
               "push_subscriptions", "push_deliveries", "push_links", "revoked_tokens")


def purge(now: datetime | None = None, dry_run: bool = False, config=None) -> dict:
    """Apply every retention setting once; returns how many records of each kind were purged. The caller
    commits (dry_run rolls everything back: the same queries, nothing kept)."""
    cfg = config or current_app.config
    now = now or _now()
    s = db.session
    next_seq(s, 0)

    def cutoff(key):
        return now - timedelta(days=cfg[key])

    counts = dict.fromkeys(PURGE_KINDS, 0)
    counts["visit_notes"] = scrub(Visit, sa.and_(Visit.note != "",
                                                       Visit.received_at < cutoff("RETENTION_VISIT_NOTES_DAYS")),
                                     {"note": ""})
    visits_cut = cutoff("RETENTION_VISITS_DAYS")
    engaged_households = (sa.select(Resident.household_id).join(Engagement, Engagement.resident_id == Resident.id)
                          .where(Resident.deleted.is_(False), Engagement.deleted.is_(False), sa.or_(
                              Engagement.status != "ended", Engagement.ended_on.is_(None),
                              Engagement.ended_on >= visits_cut.date())))
    counts["visits"] = scrub(Visit, sa.and_(Visit.deleted.is_(False), Visit.received_at < visits_cut,
                                                  Visit.household_id.not_in(engaged_households)),
                                {"deleted": True, "note": "", "resident_id": None, "needs": [], "interests": [],
                                 "follow_up": False, "consent_recontact": False})
    for kind, reason in (("inactive_residents", "inactivité"), ("deleted_residents", "suppression")):
        for resident in _residents_to_erase(kind, cutoff("RETENTION_INACTIVE_RESIDENTS_DAYS"), now):
            try:
                with s.begin_nested():
                    erase(resident, None, f"durée de conservation ({reason})", action="privacy.retention_erase")
                counts[kind] += 1
            except PrivacyError:  # a suspected duplicate awaits review: next run
                pass
    counts["rejections_of_erased"] = _scrub_late_rejections()
    review_cut = cutoff("RETENTION_REVIEW_DAYS")
    counts["conflicts"] = _delete(Conflict, Conflict.status != "open", Conflict.resolved_at < review_cut)
    counts["rejections"] = _delete(Rejection, Rejection.status != "open",
                                   sa.func.coalesce(Rejection.resolved_at, Rejection.created_at) < review_cut)
    counts["duplicate_suspicions"] = _delete(DuplicateSuspicion, DuplicateSuspicion.status != "pending",
                                             sa.func.coalesce(DuplicateSuspicion.resolved_at,
                                                              DuplicateSuspicion.created_at) < review_cut)
    counts["mutation_log"] = _delete(MutationRun, MutationRun.received_at < cutoff("RETENTION_MUTATION_LOG_DAYS"))
    counts["push_receipts"] = _delete(PushReceipt, PushReceipt.received_at < cutoff("RETENTION_MUTATION_LOG_DAYS"))
    counts["audit_log"] = _delete(AuditLog, AuditLog.at < cutoff("RETENTION_AUDIT_LOG_DAYS"))
    counts["push_subscriptions"] = _delete_subscriptions(sa.and_(
        PushSubscription.withdrawn_at.is_not(None),
        PushSubscription.withdrawn_at < cutoff("RETENTION_PUSH_WITHDRAWN_DAYS")))
    counts["push_deliveries"] = _delete(PushDelivery, PushDelivery.state.in_(("sent", "failed", "dropped")),
                                        PushDelivery.created_at < cutoff("RETENTION_PUSH_DELIVERIES_DAYS"))
    tokens_cut = cutoff("RETENTION_REVOKED_TOKENS_DAYS")
    counts["push_links"] = _delete(PushLink, PushLink.expires_at < tokens_cut)
    counts["revoked_tokens"] = _delete(RevokedToken, RevokedToken.expires_at < tokens_cut)
    if dry_run:
        s.rollback()
    else:
        audit.record("privacy.purge", "retention", counts, user=None)
    return counts


def _scrub_late_rejections() -> int:
    """A phone offline during an erasure pushes its changes about the person afterwards: refused (the resident is
    deleted), they land in the rejections with their args. Those naming an erased resident lose their args."""
    by_ref = {}
    for rej in db.session.execute(sa.select(Rejection).where(Rejection.args.is_not(None))).scalars():
        for key in ("id", "resident_id"):
            try:
                by_ref.setdefault(uuid.UUID(str(rej.args.get(key))), []).append(rej)
            except (ValueError, AttributeError):
                pass
    if not by_ref:
        return 0
    erased = db.session.execute(sa.select(Resident.id).where(
        Resident.id.in_(list(by_ref)), Resident.deleted.is_(True), Resident.first_name == "",
        Resident.last_name == "")).scalars().all()
    return _drop_args(list({rej.id: rej for rid in erased for rej in by_ref[rid]}.values()))


def _delete(model, *where) -> int:
    return db.session.execute(sa.delete(model).where(*where).execution_options(synchronize_session=False)).rowcount


def _residents_to_erase(kind: str, cut: datetime, now: datetime):
    if kind == "deleted_residents":
        # Deleted by a device: the tombstone still holds the name (merged ones belong to the kept person).
        q = sa.select(Resident).where(Resident.deleted.is_(True), Resident.merged_into.is_(None),
                                      sa.or_(Resident.first_name != "", Resident.last_name != "",
                                             Resident.phone != "", Resident.email != ""))
        return db.session.execute(q).scalars().all()
    cut_day = cut.date()
    engaged = sa.select(Engagement.resident_id).where(Engagement.deleted.is_(False), sa.or_(
        Engagement.status != "ended", Engagement.ended_on.is_(None), Engagement.ended_on >= cut_day,
        Engagement.updated_at >= cut))
    visited = sa.select(Visit.resident_id).where(Visit.resident_id.is_not(None), Visit.received_at >= cut)
    attended = sa.select(Attendance.resident_id).where(Attendance.deleted.is_(False), Attendance.checked_in_at >= cut)
    q = sa.select(Resident).where(Resident.deleted.is_(False), Resident.created_at < cut, Resident.updated_at < cut,
                                  Resident.id.not_in(engaged), Resident.id.not_in(visited),
                                  Resident.id.not_in(attended))
    return db.session.execute(q).scalars().all()


# --- per-resident push links -----------------------------------------------------------------------------------

def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_push_link(resident: Resident, user) -> tuple[PushLink, str]:
    """A single-use token that ties the next subscription made with it to this resident. The caller commits."""
    token = secrets.token_urlsafe(24)
    link = PushLink(resident_id=resident.id, site_id=resident.site_id, token_hash=_hash(token),
                    created_by=getattr(user, "id", None),
                    expires_at=_now() + current_app.config["PRIVACY_PUSH_LINK_TTL"])
    db.session.add(link)
    return link, token


def link_subscription(unsubscribe_token: str, link_token: str) -> PushSubscription:
    """The browser proves it holds the subscription (its unsubscribe token) and the staff's link: tie them."""
    from .push.subscriptions import token_hash
    sub = db.session.execute(sa.select(PushSubscription).where(
        PushSubscription.token_hash == token_hash(unsubscribe_token))).scalar_one_or_none()
    link = db.session.execute(sa.select(PushLink).where(PushLink.token_hash == _hash(link_token))
                              .with_for_update()).scalar_one_or_none()
    if sub is None or link is None or sub.withdrawn_at is not None:
        raise PrivacyError(404, "unknown_token", "Lien inconnu.")
    if link.used_at is not None or link.expires_at <= _now():
        raise PrivacyError(409, "link_expired", "Ce lien a déjà servi ou a expiré : demandez-en un nouveau.")
    resident = db.session.get(Resident, link.resident_id)
    if resident is None or resident.deleted or sub.site_id != link.site_id:
        raise PrivacyError(409, "link_mismatch", "Ce lien ne correspond pas à cet abonnement.")
    link.used_at = _now()
    sub.resident_id = resident.id
    return sub
