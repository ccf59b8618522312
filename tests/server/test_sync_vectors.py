"""The shared vectors on the SQL store, through the HTTP API (SQLite, and PostgreSQL with DATABASE_URL)."""
import pytest

from tests.sync.http_backend import HttpBackend
from tests.sync.vector_runner import load_vectors, run_vector

VECTORS = load_vectors()


@pytest.mark.parametrize("page_format", [1, 2])
@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_through_http(vector, page_format, make, login):
    run_vector(vector, HttpBackend(make, login), page_format)
