"""The reusable encoders give exactly the text of the JSONEncoder they stand for (stored pull texts and body
hashes depend on it)."""
import json
import math

import pytest

from sync.wire import _CANONICAL, WIRE_JSON, _reusable, body_hash

VALUES = [
    {"entity": "visit", "id": "3f2b", "seq": 12, "deleted": False,
     "data": {"note": "Mme Ébène, 3ᵉ étage ; « ok » \" \\ \n \t \u0001 \u2028 😀", "interests": ["b", "a"], "count": 0,
              "ratio": 0.1, "big": 10 ** 30, "neg": -1.5e-7, "none": None, "yes": True, "nested": {"z": 1, "a": [2]}}},
    [], {}, [1, "deux", None, False, 3.25], {"\u00e9": "clé", "b": {"a": {"c": []}}},
    "texte seul", 42, None, True, 1.0,
]


@pytest.mark.parametrize("encoder", [WIRE_JSON, _CANONICAL, json.JSONEncoder(), json.JSONEncoder(sort_keys=True)])
@pytest.mark.parametrize("value", VALUES)
def test_same_text_as_the_encoder(encoder, value):
    assert _reusable(encoder)(value) == encoder.encode(value)


def test_nan_follows_the_encoder():
    assert _reusable(WIRE_JSON)([math.nan]) == WIRE_JSON.encode([math.nan]) == "[NaN]"
    strict = json.JSONEncoder(allow_nan=False)
    with pytest.raises(ValueError):
        _reusable(strict)([math.inf])


def test_body_hash_is_the_canonical_texts_hash():
    import hashlib
    args = {"id": "a", "note": "é", "b": [1, 2]}
    canon = json.dumps({"op": "visit.create", "args": args, "at": "t"}, sort_keys=True, separators=(",", ":"),
                       ensure_ascii=False)
    assert body_hash("visit.create", args, "t") == hashlib.sha256(canon.encode()).hexdigest()


@pytest.mark.parametrize("page_format", [1, 2])
@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "utf8-bytes"])
@pytest.mark.parametrize("count", [0, 1, 2, 3])
def test_a_pull_body_is_its_head_and_its_changes_texts_joined(count, as_bytes, page_format):
    from datetime import datetime, timezone

    from sync.wire import PullResult
    fields = {"visit": ("note", "outcome")}
    rows = [["visit", str(i), i, [f"é{i}", "talked"]] for i in range(count)]
    texts = [WIRE_JSON.encode(r) for r in rows]
    result = PullResult("curseur", count == 3, True, 4, {"role": "gardien", "sites": ["s"]},
                        {"engaged": 1, "as_of": datetime(2026, 11, 21, tzinfo=timezone.utc)},
                        [t.encode() for t in texts] if as_bytes else texts, {}, fields if count else {}, page_format)
    body = result.to_json()
    # Format 2 splices the stored rows (bytes stay bytes); format 1 expands them into objects.
    assert type(body) is (bytes if as_bytes and count and page_format == 2 else str)
    assert (body.decode() if type(body) is bytes else body) == WIRE_JSON.encode(result.to_wire())
    # A streamed page: the same text with its newline, in the same type (the joined rows, never copied again).
    line = result.to_json("\n")
    assert type(line) is type(body) and line == body + (b"\n" if type(body) is bytes else "\n")
    answer = json.loads(body)
    objects = [{"entity": "visit", "id": str(i), "seq": i, "deleted": False, "data": {"note": f"é{i}", "outcome": "talked"}}
               for i in range(count)]
    assert result.changes == objects
    if page_format == 1:
        assert "format" not in answer and "fields" not in answer
        assert answer["changes"] == objects
    else:
        assert answer["format"] == 2 and answer["changes"] == rows
        assert answer["fields"] == ({"visit": ["note", "outcome"]} if count else {})


def test_a_tombstone_row_expands_to_the_format_1_tombstone():
    from sync.wire import expand_change
    assert expand_change(["household", "h", 7, None], {}) == {
        "entity": "household", "id": "h", "seq": 7, "deleted": True, "data": None}
    assert expand_change(["resident", "r", 8, None, "k"], {}) == {
        "entity": "resident", "id": "r", "seq": 8, "deleted": True, "data": None, "merged_into": "k"}
