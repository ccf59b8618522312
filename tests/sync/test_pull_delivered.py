"""A page's delivered counts (records sent whole, per entity), as pull_page's rows give them: tombstones are not
counted, an entity with only tombstones is still named (its fields go with the page), and SQLite's 0/1 flags count
as PostgreSQL's booleans do."""
import pytest

from sync.pull import _delivered


@pytest.mark.parametrize(("yes", "no"), [(True, False), (1, 0)])
def test_records_sent_whole_are_counted_per_entity_and_tombstones_are_not(yes, no):
    rows = [(1, "t", no, "household"), (2, "t", no, "visit"), (3, "t", yes, "visit"), (4, "t", no, "visit"),
            (5, "t", yes, "resident"), (6, "t", no, "household")]
    assert _delivered(rows) == {"household": 2, "visit": 2, "resident": 0}


def test_a_page_without_tombstones_counts_every_row():
    rows = [(seq, "t", False, "visit") for seq in range(1, 2001)]
    assert _delivered(rows) == {"visit": 2000}


def test_an_empty_page_delivers_nothing():
    assert _delivered([]) == {}
