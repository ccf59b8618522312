"""Compressed answers where they are large and carry no secret: the pull pages and the app shell's files.
The JSON decoded after decompression is exactly the uncompressed answer; answers with tokens stay as they are."""
import gzip
import json
import uuid

import brotli
import pytest
from flask_compress.compat import compression

from server.extensions import db
from server.models import Site

DECODE = {"gzip": gzip.decompress, "br": brotli.decompress, "zstd": compression.zstd.decompress}


def _pull(client, token, accept):
    headers = {"Authorization": f"Bearer {token}"}
    if accept is not None:
        headers["Accept-Encoding"] = accept
    return client.post("/api/sync/pull", json={"client_id": str(uuid.uuid4()), "limit": 500}, headers=headers)


@pytest.fixture
def token(world, make, login):
    site = db.session.get(Site, uuid.UUID(world["own_site"]))
    for i in range(40):  # a page well over the threshold (500 bytes)
        make.household(site, building=f"Bât {i % 3}", door=str(i))
    return login(world.users["gardien"]).token


@pytest.mark.parametrize(("accept", "chosen"), [
    ("gzip", "gzip"), ("br", "br"), ("zstd", "zstd"),
    ("gzip, deflate, br, zstd", "zstd"),  # what Chromium sends
])
def test_pull_page_is_compressed_with_what_the_phone_accepts(client, token, accept, chosen):
    plain = _pull(client, token, None)
    assert plain.status_code == 200
    assert "Content-Encoding" not in plain.headers
    packed = _pull(client, token, accept)
    assert packed.status_code == 200
    assert packed.headers["Content-Encoding"] == chosen
    assert "Accept-Encoding" in packed.headers["Vary"]
    body = packed.get_data()
    assert len(body) < len(plain.get_data()) / 3
    got, want = json.loads(DECODE[chosen](body)), plain.get_json()
    assert got["changes"] and got["changes"] == want["changes"]
    # The rest too, but the progress figure's time stamp (each answer says when it was counted).
    assert {k: v for k, v in got.items() if k != "progress"} == {k: v for k, v in want.items() if k != "progress"}


def test_an_unknown_encoding_gets_the_plain_answer(client, token):
    resp = _pull(client, token, "compress")
    assert resp.status_code == 200 and "Content-Encoding" not in resp.headers
    assert resp.get_json()["changes"]


def test_answers_carrying_tokens_are_never_compressed(client, world):
    # BREACH: a compressed body holding a secret next to attacker-influenced text leaks it through its length.
    resp = client.post("/api/auth/login", json={"email": world.users["gardien"].email,
                                                "password": "motdepasse-solide", "mode": "bearer"},
                       headers={"Accept-Encoding": "gzip, br, zstd"})
    assert resp.status_code == 200 and len(resp.get_data()) > 500
    assert "Content-Encoding" not in resp.headers
    assert "access_token" in resp.get_json()


def test_app_shell_script_is_compressed(client):
    with client.get("/") as index:
        if index.status_code == 503:
            pytest.fail("pwa/dist is not built: `npm run build` in pwa/ (./dev test does it)")
        page = index.get_data(as_text=True)
    script = next(s for s in page.split('"') if s.startswith("/assets/") and s.endswith(".js"))
    with client.get(script) as plain, client.get(script, headers={"Accept-Encoding": "br"}) as packed:
        assert packed.headers["Content-Encoding"] == "br"
        assert brotli.decompress(packed.get_data()) == plain.get_data()
        assert len(packed.get_data()) < len(plain.get_data()) / 2
        assert int(packed.headers["Content-Length"]) == len(packed.get_data())


def test_app_shell_file_answers_304_when_unchanged(client):
    with client.get("/sw.js", headers={"Accept-Encoding": "zstd"}) as first:
        assert first.status_code == 200 and first.headers["Content-Encoding"] == "zstd"
        etag = first.headers["ETag"]
    with client.get("/sw.js", headers={"Accept-Encoding": "zstd", "If-None-Match": etag}) as again:
        assert again.status_code == 304 and again.get_data() == b""
