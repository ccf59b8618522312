"""Wire types of push and pull, the envelope check, body hashes and cursors (docs/PROTOCOL.md)."""
import base64
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from .ops import OPS, parse_aware


class ProtocolError(Exception):
    """A request-level refusal: nothing of the request is applied. Rendered as the API's one error shape."""

    def __init__(self, status: int, code: str, message: str, details=None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


@dataclass(frozen=True)
class Principal:
    """Who is syncing: site_ids None means every site (head office, admin)."""

    user_id: str
    role: str
    site_ids: frozenset | None

    def sees(self, site_id) -> bool:
        return self.site_ids is None or (site_id is not None and str(site_id) in self.site_ids)

    def sees_any(self, site_ids) -> bool:
        return self.site_ids is None or any(str(s) in self.site_ids for s in site_ids)


@dataclass
class Mutation:
    n: int
    op: str
    at: datetime
    args: dict
    body_hash: str


@dataclass
class PushRequest:
    client_id: str
    app_version: str
    pending: int
    mutations: list[Mutation]


@dataclass
class MutationResult:
    n: int
    status: str  # applied | rejected
    reason: dict | None = None
    conflicts: list[str] = field(default_factory=list)
    replayed: bool = False

    def to_wire(self) -> dict:
        out = {"n": self.n, "status": self.status}
        if self.reason is not None:
            out["reason"] = self.reason
        if self.conflicts:
            out["conflicts"] = self.conflicts
        if self.replayed:
            out["replayed"] = True
        return out


@dataclass
class PushResult:
    last_applied: int
    results: list[MutationResult]

    def to_wire(self) -> dict:
        return {"last_applied": self.last_applied, "results": [r.to_wire() for r in self.results]}

    def to_json(self) -> str:
        """The response body, compact and unsorted (up to 500 results: a sorted, generic encoding cost more)."""
        return WIRE_JSON.encode(self.to_wire())


@dataclass
class PullResult:
    cursor: str
    has_more: bool
    reset: bool
    last_applied: int
    scope: dict
    progress: dict | None  # None on a format 2 page that has more after it
    change_texts: list  # each change row as JSON text (str, or UTF-8 bytes), in seq order: spliced in unparsed
    delivered: dict = field(default_factory=dict)  # entity -> records sent whole (not tombstones) in this page
    fields: dict = field(default_factory=dict)  # entity -> the field names of its rows' values, for each in the page
    page_format: int = 1

    def _rows(self) -> list:
        """The stored rows parsed, in one parse of their join (a parse each cost ~2x more on a page of 2,000)."""
        texts = self.change_texts
        if not texts:
            return []
        if type(texts[0]) is bytes:
            return json.loads(b"[" + b",".join(texts) + b"]")
        return json.loads("[" + ",".join(texts) + "]")

    @property
    def changes(self) -> list[dict]:
        """The page's changes as format 1 objects, whatever format the page is answered in."""
        fields = self.fields
        return [expand_change(row, fields) for row in self._rows()]

    def _head(self) -> dict:
        head = {"cursor": self.cursor, "has_more": self.has_more, "reset": self.reset,
                "last_applied": self.last_applied, "scope": self.scope,
                "progress": None if self.progress is None else wire_value(self.progress)}
        if self.page_format == 2:
            return {"format": 2, **head, "fields": self.fields}
        return head

    def to_wire(self) -> dict:
        if self.page_format == 2:
            return {**self._head(), "changes": self._rows()}
        return {**self._head(), "changes": self.changes}

    def to_json(self, end: str = "") -> str | bytes:
        """The response body, followed by `end` (a streamed page's newline): the head encoded, then the changes
        joined. Format 2 joins the stored rows as they are (no parse, no encode): one join makes the whole text,
        since a page is ~0.5 MB and each `+` of it made another copy; rows a store gave as UTF-8 bytes (all of them,
        or none) make a body of bytes, never decoded. Format 1 (phones not yet updated) expands each row into its
        object."""
        if self.page_format == 1:
            return WIRE_JSON.encode(self.to_wire()) + end
        parts = list(self.change_texts) or [""]
        head = WIRE_JSON.encode(self._head())[:-1] + ',"changes":['
        if type(parts[0]) is bytes:
            parts[0] = head.encode() + parts[0]
            parts[-1] += b"]}" + end.encode()
            return b",".join(parts)
        parts[0] = head + parts[0]
        parts[-1] += "]}" + end
        return ",".join(parts)


def expand_change(row: list, fields: dict) -> dict:
    """A change row ([entity, id, seq, values] or a tombstone [entity, id, seq, null, merged_into?]) as the format
    1 object {"entity", "id", "seq", "deleted", "data", "merged_into"?} (docs/PROTOCOL.md, "Page format 2")."""
    entity, rec_id, seq, values = row[:4]
    if values is None:
        out = {"entity": entity, "id": rec_id, "seq": seq, "deleted": True, "data": None}
        if len(row) > 4:
            out["merged_into"] = row[4]
        return out
    return {"entity": entity, "id": rec_id, "seq": seq, "deleted": False, "data": dict(zip(fields[entity], values))}


def wire_value(v):
    """A stored value as JSON: UUIDs as strings, times and dates in ISO 8601."""
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: wire_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [wire_value(x) for x in v]
    return str(v)


def _reusable(encoder: json.JSONEncoder):
    """encoder.encode for acyclic values, with its C encoder made once rather than at every call: the same text
    (tests/sync/test_wire_encoding.py), ~1 µs less per call on the hot paths (each record a push writes, each
    mutation it hashes). Without the C accelerator, or with indentation, encoder.encode itself."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None or encoder.indent is not None:
        return encoder.encode
    text = json.encoder.encode_basestring_ascii if encoder.ensure_ascii else json.encoder.encode_basestring
    c_encode = make(None, encoder.default, text, None, encoder.key_separator, encoder.item_separator,
                    encoder.sort_keys, encoder.skipkeys, encoder.allow_nan)

    def encode(value) -> str:
        if isinstance(value, str):  # as JSONEncoder.encode: the C encoder wants a container or a scalar
            return encoder.encode(value)
        return "".join(c_encode(value, 0))
    return encode


# The encoder of pull changes (stored texts and the response around them): compact, UTF-8 kept as is.
WIRE_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
encode_wire = _reusable(WIRE_JSON)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_encode_canonical = _reusable(_CANONICAL)


def body_hash(op: str, args, at: str) -> str:
    """sha256 of the canonical JSON of op, args and at: what a replay must match."""
    canon = _encode_canonical({"op": op, "args": args, "at": at})
    # surrogatepass: a lone surrogate (refused later by the args check) must still hash, never raise.
    return hashlib.sha256(canon.encode("utf-8", "surrogatepass")).hexdigest()


def request_digest(raw: bytes) -> str:
    """sha256 of a push request's exact bytes: the key of its receipt (docs/PROTOCOL.md, Replays)."""
    return hashlib.sha256(raw).hexdigest()


_ENVELOPE_KEYS = {"client_id", "app_version", "pending", "mutations"}
_MUTATION_KEYS = {"n", "op", "at", "args"}


def _invalid(details) -> ProtocolError:
    return ProtocolError(422, "validation_error", "Données invalides.", details)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_client_id(value) -> str:
    try:
        if not isinstance(value, str):
            raise ValueError
        return str(uuid.UUID(value))
    except ValueError:
        raise _invalid({"client_id": ["Identifiant (UUID) invalide."]}) from None


def parse_push(body, max_mutations: int) -> PushRequest:
    """The push envelope: 413 beyond max_mutations, 422 when malformed. Args are checked per mutation later."""
    if not isinstance(body, dict):
        raise _invalid({"_schema": ["Objet JSON attendu."]})
    muts = body.get("mutations")
    if isinstance(muts, list) and len(muts) > max_mutations:
        raise ProtocolError(413, "too_many_mutations", f"Au plus {max_mutations} modifications par envoi.",
                            {"max": max_mutations})
    errors = {k: ["Champ inconnu."] for k in body if k not in _ENVELOPE_KEYS}
    if "client_id" not in body:
        errors["client_id"] = ["Champ obligatoire."]
    app_version = body.get("app_version", "")
    if not isinstance(app_version, str) or len(app_version) > 40:
        errors["app_version"] = ["Texte de 40 caractères au plus attendu."]
    pending = body.get("pending", 0)
    if not _is_int(pending) or not 0 <= pending <= 10_000_000:
        errors["pending"] = ["Nombre entier positif attendu."]
    if not isinstance(muts, list):
        errors["mutations"] = ["Liste attendue."]
        muts = []
    parsed, mut_errors = [], {}
    for i, m in enumerate(muts):
        at, err = _check_mutation(m)
        if err:
            mut_errors[i] = err
            continue
        parsed.append(Mutation(m["n"], m["op"], at, m["args"], body_hash(m["op"], m["args"], m["at"])))
    if not mut_errors:
        for prev, cur in zip(parsed, parsed[1:]):
            if cur.n != prev.n + 1:
                mut_errors["_schema"] = ["Les numéros n doivent se suivre."]
                break
    if mut_errors:
        errors["mutations"] = mut_errors
    if errors:
        raise _invalid(errors)
    return PushRequest(parse_client_id(body["client_id"]), app_version, pending, parsed)


def _check_mutation(m) -> tuple:
    if not isinstance(m, dict):
        return None, {"_schema": ["Objet JSON attendu."]}
    err = {k: ["Champ inconnu."] for k in m if k not in _MUTATION_KEYS}
    if not _is_int(m.get("n")) or m["n"] < 1:
        err["n"] = ["Nombre entier positif attendu."]
    if m.get("op") not in OPS:
        err["op"] = ["Opération inconnue."]
    if not isinstance(m.get("args"), dict):
        err["args"] = ["Objet JSON attendu."]
    at = None
    try:
        at = parse_aware(m.get("at"))
    except ValueError as e:
        err["at"] = [str(e)]
    return at, (err or None)


@dataclass(frozen=True)
class PullRequest:
    client_id: str
    cursor: str | None
    limit: int
    page_format: int = 1
    pages: int = 1  # more than 1: that many pages at most in one answer, one per line (docs/PROTOCOL.md, "Streamed pages")


def parse_pull(body, max_limit: int, default_limit: int, max_pages: int = 1) -> PullRequest:
    if not isinstance(body, dict):
        raise _invalid({"_schema": ["Objet JSON attendu."]})
    errors = {k: ["Champ inconnu."] for k in body if k not in {"client_id", "cursor", "limit", "format", "pages"}}
    cursor = body.get("cursor")
    if cursor is not None and (not isinstance(cursor, str) or len(cursor) > 500):
        errors["cursor"] = ["Curseur invalide."]
    limit = body.get("limit", default_limit)
    if not _is_int(limit) or not 1 <= limit <= max_limit:
        errors["limit"] = [f"Entre 1 et {max_limit}."]
    page_format = body.get("format", 1)
    if not _is_int(page_format) or page_format not in (1, 2):
        errors["format"] = ["1 ou 2."]
    pages = body.get("pages", 1)
    if not _is_int(pages) or not 1 <= pages <= max_pages:
        errors["pages"] = [f"Entre 1 et {max_pages}."]
    elif pages > 1 and page_format != 2:
        errors["pages"] = ["Plusieurs pages par réponse : seulement avec le format 2."]
    if "client_id" not in body:
        errors["client_id"] = ["Champ obligatoire."]
    if errors:
        raise _invalid(errors)
    return PullRequest(parse_client_id(body["client_id"]), cursor, limit, page_format, pages)


# Cursors: opaque base64url JSON of the last seq sent and a hash of the scope it was computed for.

def scope_hash(principal: Principal) -> str:
    sites = "*" if principal.site_ids is None else ",".join(sorted(principal.site_ids))
    return hashlib.sha256(f"{principal.role}|{sites}".encode()).hexdigest()[:16]


def encode_cursor(seq: int, scope: str) -> str:
    raw = json.dumps({"v": 1, "seq": seq, "scope": scope}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        seq, scope = data["seq"], data["scope"]
        if data.get("v") != 1 or not _is_int(seq) or seq < 0 or not isinstance(scope, str):
            raise ValueError
        return seq, scope
    except (ValueError, KeyError, TypeError):
        raise _invalid({"cursor": ["Curseur invalide."]}) from None
