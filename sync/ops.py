"""The operations a device may send and the check of their args: plain Python, cheap enough for 500 per push."""
import re
import unicodedata
import uuid
from datetime import date, datetime

ENGAGEMENT_ROLES = ("contributor", "volunteer", "beneficiary")
ENGAGEMENT_STATUSES = ("active", "paused", "ended")
VISIT_OUTCOMES = ("absent", "refused", "talked")
HEADCOUNT_CATEGORIES = ("adults", "children", "seniors")
VISIT_NEEDS = ("isolement", "mobilite", "courses", "numerique", "emploi", "budget", "logement", "lien_social",
               "autre")
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class Invalid(ValueError):
    """One field's value is refused; the message is shown to the user (French)."""


def parse_aware(value) -> datetime:
    if not isinstance(value, str):
        raise Invalid("Date et heure invalides (ISO 8601 attendu).")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid("Date et heure invalides (ISO 8601 attendu).") from None
    if dt.tzinfo is None:
        raise Invalid("Indiquez le fuseau horaire (ex. +01:00).")
    return dt


def _date(value):
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 10:
        raise Invalid("Date invalide (AAAA-MM-JJ attendu).")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid("Date invalide (AAAA-MM-JJ attendu).") from None


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _uuid(value):
    if not isinstance(value, str):
        raise Invalid("Identifiant (UUID) invalide.")
    if _CANONICAL_UUID.fullmatch(value):  # what devices send: no need to parse it
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise Invalid("Identifiant (UUID) invalide.") from None


def _opt_uuid(value):
    return None if value is None else _uuid(value)


def text(max_length: int, min_length: int = 0):
    def check(value):
        if not isinstance(value, str):
            raise Invalid("Texte attendu.")
        value = value.strip()
        if not min_length <= len(value) <= max_length:
            raise Invalid(f"Longueur invalide (entre {min_length} et {max_length} caractères).")
        if not value.isprintable():
            for ch in value:
                if ch not in "\t\n\r" and (unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI):
                    raise Invalid("Caractère non autorisé.")
        elif _BIDI.intersection(value):
            raise Invalid("Caractère non autorisé.")
        return value
    return check


def _bool(value):
    if not isinstance(value, bool):
        raise Invalid("Booléen attendu.")
    return value


def one_of(choices):
    def check(value):
        if value not in choices:
            raise Invalid("Valeur invalide : " + ", ".join(choices) + ".")
        return value
    return check


def int_range(lo: int, hi: int):
    def check(value):
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise Invalid(f"Nombre entier entre {lo} et {hi} attendu.")
        return value
    return check


def list_of(item, max_items: int = 50):
    def check(value):
        if not isinstance(value, list) or len(value) > max_items:
            raise Invalid(f"Liste de {max_items} éléments au plus attendue.")
        out = []
        for v in value:
            v = item(v)
            if v not in out:
                out.append(v)
        return out
    return check


def _aware(value):
    return parse_aware(value)


REQUIRED = object()

# Mutable fields per entity, each with its check: used by updates and by head office's conflict resolution.
MUTABLE = {
    "resident": {"first_name": text(100, 1), "last_name": text(100, 1), "phone": text(30),
                 "email": text(254), "consent_contact": _bool, "consent_image": _bool},
    "household": {"notes": text(2000)},
    "engagement": {"role": one_of(ENGAGEMENT_ROLES), "status": one_of(ENGAGEMENT_STATUSES),
                   "started_on": _date, "ended_on": _date},
}

# op -> {arg: (check, default or REQUIRED)}
_CREATE_ARGS = {
    "visit.create": {
        "id": (_uuid, REQUIRED), "household_id": (_uuid, REQUIRED), "visited_at": (_aware, REQUIRED),
        "outcome": (one_of(VISIT_OUTCOMES), REQUIRED), "interests": (list_of(_uuid), []),
        "needs": (list_of(one_of(VISIT_NEEDS)), []), "follow_up": (_bool, False),
        "consent_recontact": (_bool, False), "resident_id": (_opt_uuid, None), "note": (text(500), ""),
    },
    "resident.create": {
        "id": (_uuid, REQUIRED), "household_id": (_uuid, REQUIRED), "first_name": (text(100, 1), REQUIRED),
        "last_name": (text(100, 1), REQUIRED), "phone": (text(30), ""), "email": (text(254), ""),
        "consent_contact": (_bool, False), "consent_image": (_bool, False),
    },
    "engagement.create": {
        "id": (_uuid, REQUIRED), "resident_id": (_uuid, REQUIRED), "action_id": (_uuid, REQUIRED),
        "role": (one_of(ENGAGEMENT_ROLES), REQUIRED), "started_on": (_date, REQUIRED),
        "status": (one_of(ENGAGEMENT_STATUSES), "active"),
    },
    "attendance.create": {
        "id": (_uuid, REQUIRED), "event_id": (_uuid, REQUIRED), "resident_id": (_uuid, REQUIRED),
        "checked_in_at": (_aware, REQUIRED),
    },
    "headcount.create": {
        "id": (_uuid, REQUIRED), "event_id": (_uuid, REQUIRED), "site_id": (_uuid, REQUIRED),
        "category": (one_of(HEADCOUNT_CATEGORIES), REQUIRED), "count": (int_range(0, 5000), REQUIRED),
        "counted_at": (_aware, REQUIRED),
    },
}
_DELETE_ARGS = {"id": (_uuid, REQUIRED)}
UPDATE_OPS = {"resident.update": "resident", "household.update": "household", "engagement.update": "engagement"}
DELETE_OPS = {"visit.delete": "visit", "resident.delete": "resident", "attendance.delete": "attendance"}
OPS = frozenset(_CREATE_ARGS) | frozenset(UPDATE_OPS) | frozenset(DELETE_OPS)


def _check_fields(spec: dict, args: dict, errors: dict) -> dict:
    out = {}
    for key in args:
        if key not in spec:
            errors[key] = ["Champ inconnu."]
    for key, (check, default) in spec.items():
        if key not in args:
            if default is REQUIRED:
                errors[key] = ["Champ obligatoire."]
            else:
                out[key] = list(default) if isinstance(default, list) else default
            continue
        try:
            out[key] = check(args[key])
        except Invalid as e:
            errors[key] = [str(e)]
    return out


def validate_args(op: str, args: dict) -> tuple[dict | None, dict | None]:
    """(clean args, None) or (None, {field: [messages]})."""
    errors: dict = {}
    if op in _CREATE_ARGS:
        out = _check_fields(_CREATE_ARGS[op], args, errors)
    elif op in DELETE_OPS:
        out = _check_fields(_DELETE_ARGS, args, errors)
    else:
        entity = UPDATE_OPS[op]
        spec = {"id": (_uuid, REQUIRED), "base_seq": (int_range(0, 2**62), REQUIRED), "changes": (dict, REQUIRED)}
        out = {}
        for key in args:
            if key not in spec:
                errors[key] = ["Champ inconnu."]
        for key in ("id", "base_seq"):
            if key not in args:
                errors[key] = ["Champ obligatoire."]
                continue
            try:
                out[key] = spec[key][0](args[key])
            except Invalid as e:
                errors[key] = [str(e)]
        changes = args.get("changes")
        if not isinstance(changes, dict) or not changes:
            errors["changes"] = ["Objet non vide attendu."]
        else:
            change_errors: dict = {}
            clean = {}
            for key, value in changes.items():
                check = MUTABLE[entity].get(key)
                if check is None:
                    change_errors[key] = ["Champ inconnu."]
                    continue
                try:
                    clean[key] = check(value)
                except Invalid as e:
                    change_errors[key] = [str(e)]
            if change_errors:
                errors["changes"] = change_errors
            out["changes"] = clean
    if out.get("started_on") is not None and out.get("ended_on") is not None and out["ended_on"] < out["started_on"]:
        errors["ended_on"] = ["La date de fin précède la date de début."]
    return (None, errors) if errors else (out, None)


def check_field(entity: str, field: str, value):
    """One mutable field's value (head office's edited resolution of a conflict)."""
    return MUTABLE[entity][field](value)
