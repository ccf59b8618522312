"""Domain rules the protocol applies: name normalisation for duplicate detection, an ended engagement's end."""
import re
import unicodedata
from datetime import date, datetime
from zoneinfo import ZoneInfo

_NON_ALNUM = re.compile(r"[^0-9a-z]+")

PARIS = ZoneInfo("Europe/Paris")  # the programme's calendar: an engagement starts and ends on a French day


def ended_on_default(status: str, ended_on: date | None, started_on: date, now: datetime) -> date | None:
    """The ended_on the server fills in when an engagement's status becomes ended without one (None: nothing to
    fill): the day the server learns of the end (Paris), not before started_on. The figures counted the engagement
    up to that day, so its past weeks stay as they were shown (server/services.py engaged_until)."""
    if status != "ended" or ended_on is not None:
        return None
    return max(now.astimezone(PARIS).date(), started_on)


def name_key(first_name: str, last_name: str) -> str:
    """A resident's name with accents, case, punctuation and word order ignored.

    'Marie-Thérèse Tramecourt' and 'TRAMECOURT marie therese' give the same key.
    """
    text = unicodedata.normalize("NFKD", f"{first_name} {last_name}")
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return " ".join(sorted(t for t in _NON_ALNUM.split(text) if t))


def merge_fields(record: dict, changes: dict, base_seq: int, client_id: str, user_id, seq: int):
    """Field-by-field merge in the order the server receives changes.

    A field last changed by another device (or by the server) after base_seq keeps its value when the proposal
    differs: the proposal is returned in `lost` for a conflict record. Otherwise the proposal applies and the
    field's version becomes {seq, by: client_id, user}. Returns (changed field names, {field: (kept value,
    kept version, proposed value)}). The record is modified in place.
    """
    versions = dict(record.get("field_versions") or {})
    changed, lost = set(), {}
    for field, proposed in changes.items():
        current = record.get(field)
        if proposed == current:
            continue
        version = versions.get(field)
        if version and version.get("by") != client_id and version.get("seq", 0) > base_seq:
            lost[field] = (current, version, proposed)
            continue
        record[field] = proposed
        versions[field] = {"seq": seq, "by": client_id, "user": user_id}
        changed.add(field)
    if changed:
        record["field_versions"] = versions
    return changed, lost
