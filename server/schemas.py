"""Schema base and shared fields: strict (unknown fields are a 422), declared once for validation and OpenAPI."""
import unicodedata

from marshmallow import RAISE, Schema, ValidationError, fields, validate


# The API's messages are shown to French-speaking users: translate marshmallow's defaults once.
_FR = {
    "required": "Champ obligatoire.",
    "null": "Ce champ ne peut pas être nul.",
    "validator_failed": "Valeur invalide.",
}
_FR_BY_FIELD = {
    fields.String: {"invalid": "Texte attendu."},
    fields.Integer: {"invalid": "Nombre entier attendu.", "too_large": "Nombre trop grand."},
    fields.Boolean: {"invalid": "Booléen attendu."},
    fields.UUID: {"invalid_uuid": "Identifiant (UUID) invalide."},
    fields.DateTime: {"invalid": "Date et heure invalides (ISO 8601 attendu).", "format": "Format invalide."},
    fields.AwareDateTime: {"invalid_awareness": "Indiquez le fuseau horaire (ex. +01:00)."},
    fields.Date: {"invalid": "Date invalide (AAAA-MM-JJ attendu).", "format": "Format invalide."},
    fields.List: {"invalid": "Liste attendue."},
    fields.Nested: {"type": "Objet attendu."},
    fields.Dict: {"invalid": "Objet attendu."},
    fields.Email: {"invalid": "Adresse électronique invalide."},
}
fields.Field.default_error_messages.update(_FR)
for _cls, _msgs in _FR_BY_FIELD.items():
    _cls.default_error_messages = {**_cls.default_error_messages, **_msgs}


class StrictSchema(Schema):
    error_messages = {"unknown": "Champ inconnu.", "type": "Objet JSON attendu."}

    class Meta:
        unknown = RAISE


def _clean_text(value: str) -> str:
    """Refuse what no person types: NUL and other control characters, lone surrogates, bidi overrides."""
    for ch in value:
        cat = unicodedata.category(ch)
        if ch in "\t\n\r":
            continue
        if cat in ("Cc", "Cs") or ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069":
            raise ValidationError("Caractère non autorisé.")
    return value


# What _clean_text refuses, as a regex class in a syntax both JSON Schema (ECMA 262) and Python read. Lone
# surrogates are left out: they are no Unicode text at all (server/security.py refuses them in any body).
_REFUSED_CLASS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"


class Text(fields.String):
    """A string free of control characters, trimmed, with a maximum length."""

    def __init__(self, max_length: int = 200, min_length: int = 0, **kwargs):
        validators = list(kwargs.pop("validate", []) or [])
        validators.append(validate.Length(min=min_length, max=max_length,
                                          error="Longueur invalide (entre {min} et {max} caractères)."))
        # The document says what is accepted (clients and the fuzzer generate from it): no refused character,
        # and, when a value is required to be non-empty, one that is not only spaces (it is trimmed first).
        pattern = (f"^[^{_REFUSED_CLASS}]*[^\\s{_REFUSED_CLASS}][^{_REFUSED_CLASS}]*$" if min_length
                   else f"^[^{_REFUSED_CLASS}]*$")
        kwargs["metadata"] = {"pattern": pattern, **(kwargs.get("metadata") or {})}
        super().__init__(validate=validators, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        return _clean_text(value.strip())


class Page(StrictSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class Paged(StrictSchema):
    """The answer of a paged list (api/common.py paginate); a subclass adds its `items`."""
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class ErrorBody(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    details = fields.Raw()


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBody, required=True)
