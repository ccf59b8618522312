"""One JSON error shape for every error: {"error": {"code", "message", "details"?}}."""
import traceback

from flask import current_app, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

MESSAGES = {
    400: "Requête invalide.",
    401: "Authentification requise.",
    403: "Accès refusé.",
    404: "Introuvable.",
    405: "Méthode non autorisée.",
    409: "Conflit.",
    413: "Requête trop volumineuse.",
    415: "Type de contenu non pris en charge.",
    422: "Données invalides.",
    429: "Trop de requêtes, réessayez plus tard.",
    500: "Erreur interne du serveur.",
}
CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_error", 429: "too_many_requests",
    500: "internal_error",
}


class ApiError(Exception):
    """An error a view or service raises on purpose; rendered in the one shape."""

    def __init__(self, status: int, code: str | None = None, message: str | None = None,
                 details=None, headers: dict | None = None):
        super().__init__(message or MESSAGES.get(status, ""))
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message or MESSAGES.get(status, "Erreur.")
        self.details = details
        self.headers = headers or {}


def error_response(status: int, code: str | None = None, message: str | None = None,
                   details=None, headers: dict | None = None):
    body = {"error": {"code": code or CODES.get(status, "error"),
                      "message": message or MESSAGES.get(status, "Erreur.")}}
    if details is not None:
        body["error"]["details"] = details
    resp = jsonify(body)
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _only_the_app_shell_matches() -> bool:
    if not request.path.startswith("/api/"):
        return False
    try:
        endpoint, _ = current_app.url_map.bind_to_environ(request.environ).match(method="GET")
    except HTTPException:
        return False
    return endpoint == "web.app_shell"


def register_error_handlers(app):
    @app.errorhandler(ApiError)
    def _api_error(e: ApiError):
        return error_response(e.status, e.code, e.message, e.details, e.headers)

    @app.errorhandler(ValidationError)
    def _validation(e: ValidationError):
        return error_response(422, "validation_error", MESSAGES[422], e.messages)

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        status = e.code or 500
        headers = {}
        if status == 405 and _only_the_app_shell_matches():
            status = 404  # /api/<not a route> matched nothing but the PWA's GET catch-all: it does not exist
        if status == 405 and e.valid_methods:
            headers["Allow"] = ", ".join(e.valid_methods)
        if status == 429 and getattr(e, "retry_after", None):
            headers["Retry-After"] = str(e.retry_after)
        return error_response(status, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        # The trace goes to the server log, never to the client; the log keeps where it failed and the exception's
        # type, not its text, which may quote a resident's data (a database error repeats the values it refused).
        frames = "".join(traceback.TracebackException.from_exception(e).stack.format())
        app.logger.error("unhandled error %s.%s on %s %s\n%s", type(e).__module__, type(e).__qualname__,
                         request.method, request.path, frames)
        return error_response(500)
