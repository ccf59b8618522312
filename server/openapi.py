"""The OpenAPI document, generated from the marshmallow schemas and the views' docstrings."""
import re
from http import HTTPStatus
from pathlib import Path

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec_webframeworks.flask import FlaskPlugin
from flask import Blueprint, Flask, current_app, jsonify, render_template, send_from_directory

from . import __version__

bp = Blueprint("openapi", __name__)


def _schema_name_resolver(schema) -> str:
    if isinstance(schema, str):
        name = schema
    else:
        name = (schema if isinstance(schema, type) else type(schema)).__name__
    return name[:-6] if name.endswith("Schema") else name


def build_spec(app: Flask) -> dict:
    spec = APISpec(
        title="Palier API", version=__version__, openapi_version="3.0.3",
        info={"description": "Sync, agenda and review API of Palier. Errors always have the shape of Error."},
        plugins=[FlaskPlugin(), MarshmallowPlugin(schema_name_resolver=_schema_name_resolver)],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    spec.components.security_scheme("cookie", {"type": "apiKey", "in": "cookie", "name": "access_token_cookie"})
    from .schemas import ErrorSchema
    spec.components.schema("Error", schema=ErrorSchema)
    with app.test_request_context():
        for name, view in sorted(app.view_functions.items()):
            if not name.startswith(("auth.", "sync.", "catalogue.", "households.", "residents.", "programme.",
                                    "users.", "review.", "dashboard.", "exports.", "agenda.", "push.",
                                    "privacy.", "devices.", "lists.", "events_admin.")):
                continue
            if view.__doc__ and "---" in view.__doc__:
                spec.path(view=view, app=app)
    out = spec.to_dict()
    # OpenAPI 3 requires a description on every response and every path parameter declared; the docstrings
    # give the schemas only: fill in the rest from the status and the URL rule.
    for path, operations in out.get("paths", {}).items():
        for operation in operations.values():
            declared = {p.get("name") for p in operation.get("parameters", []) if p.get("in") == "path"}
            for name in re.findall(r"{(\w+)}", path):
                if name not in declared:
                    schema = {"type": "string", "format": "uuid"} if name.endswith("id") else {"type": "string"}
                    operation.setdefault("parameters", []).append(
                        {"in": "path", "name": name, "required": True, "schema": schema})
            for status, response in (operation.get("responses") or {}).items():
                if isinstance(response, dict) and "$ref" not in response:
                    response.setdefault("description", HTTPStatus(int(status)).phrase)
    _declare_errors(app, out)
    return out


def _declare_errors(app: Flask, out: dict) -> None:
    """Every error an operation can answer, declared from what the view is (client generators and fuzzers hold
    us to it): 401 without a token, 403 for a role it refuses, 404 for an id, 422 for any bad query or body,
    400/413/415 for a body, 429 for a rate-limited view. Public operations declare `security: []`."""
    out["security"] = [{"bearer": []}, {"cookie": []}]
    views = {}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            views[(path, method.lower())] = app.view_functions[rule.endpoint]
    from .auth import ALL_ROLES
    for path, operations in out.get("paths", {}).items():
        for method, operation in operations.items():
            view = views.get((path, method))
            if "requestBody" in operation:  # load_json: a missing body is a 415, never an empty object
                operation["requestBody"].setdefault("required", True)
            statuses = {422}
            if operation.get("security") != []:
                statuses.add(401)
            if set(getattr(view, "palier_roles", ALL_ROLES)) != set(ALL_ROLES):
                statuses.add(403)
            if "{" in path:
                statuses.add(404)
            if method in ("post", "put", "patch"):
                statuses |= {400, 413, 415}
            if getattr(view, "__wrapper-limiter-instance", None) is not None:
                statuses.add(429)
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses):
                responses.setdefault(str(status), {
                    "description": HTTPStatus(status).phrase,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})


@bp.get("/openapi.json")
def openapi_json():
    if "_palier_spec" not in current_app.extensions:
        current_app.extensions["_palier_spec"] = build_spec(current_app)
    return jsonify(current_app.extensions["_palier_spec"])


@bp.get("/api/docs")
def openapi_page():
    if "_palier_spec" not in current_app.extensions:
        current_app.extensions["_palier_spec"] = build_spec(current_app)
    return render_template("openapi.html", spec=current_app.extensions["_palier_spec"])


@bp.get("/openapi.css")
def openapi_css():
    # The page's style as a file of our own origin: the CSP needs no 'unsafe-inline' for it.
    return send_from_directory(Path(__file__).resolve().parent / "templates", "openapi.css", max_age=3600)


def register(app: Flask) -> None:
    app.register_blueprint(bp)
