"""Domain rules the protocol applies: name normalisation for duplicate detection."""
import re
import unicodedata

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def name_key(first_name: str, last_name: str) -> str:
    """A resident's name with accents, case, punctuation and word order ignored.

    'Marie-Thérèse Tramecourt' and 'TRAMECOURT marie therese' give the same key.
    """
    text = unicodedata.normalize("NFKD", f"{first_name} {last_name}")
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return " ".join(sorted(t for t in _NON_ALNUM.split(text) if t))
