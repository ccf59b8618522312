"""The OpenAPI document is valid OpenAPI 3 and lists every /api route; its page renders without a CDN."""
import re

from openapi_spec_validator import validate


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def test_openapi_json_is_valid_and_lists_every_api_route(app, client):
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    spec = resp.get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.")
    documented = {(m.upper(), path) for path, ops in spec["paths"].items() for m in ops
                  if m in ("get", "post", "put", "patch", "delete")}
    routes = {(m, _openapi_path(r.rule)) for r in app.url_map.iter_rules() if r.rule.startswith("/api/")
              and r.rule != "/api/docs" for m in r.methods - {"HEAD", "OPTIONS"}}
    assert routes - documented == set()
    assert "Error" in spec["components"]["schemas"]


def test_api_docs_page_renders_from_our_own_origin(client):
    resp = client.get("/api/docs")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert "/api/auth/login" in html or "openapi.json" in html
    assert not re.search(r"""(src|href)=["']https?://""", html), "nothing loaded from a CDN"
