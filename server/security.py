"""App-wide hardening: security headers on every response, hostile-body guards, login rate limits, quiet logs."""
import hashlib
import logging
import re

from flask import Flask, current_app, request
from flask.json.provider import DefaultJSONProvider
from flask_limiter import Limiter
from werkzeug.middleware.proxy_fix import ProxyFix

from .errors import ApiError

# No inline script or style, no eval, nothing from another origin: the app ships every byte it runs.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "manifest-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")
# Powerful features the field app never asks for: a script injected into the page cannot ask for them either.
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=()"
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": PERMISSIONS_POLICY,
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate CSP 2
}
HSTS = "max-age=31536000; includeSubDomains"


def register(app: Flask) -> None:
    proxies = int(app.config["TRUSTED_PROXIES"])
    if proxies > 0:
        # The client's address and scheme as the proxies saw them: the rate limits key on the phone, not on the
        # proxy (every request would share one count), and HSTS and secure cookies follow the real scheme.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    app.json = SafeJSONProvider(app)
    app.before_request(_refuse_oversized_stream)
    app.before_request(_refuse_unstorable_text)
    app.after_request(_security_headers)
    _register_limits(app)
    _quiet_werkzeug_log()


# --- headers ------------------------------------------------------------------------------------------------

def _security_headers(resp):
    # After-request hooks also run on the responses of error handlers (404, 405, 500): every answer has them.
    for name, value in HEADERS.items():
        resp.headers.setdefault(name, value)
    if current_app.config.get("ENV_NAME") == "production" or request.is_secure:
        resp.headers.setdefault("Strict-Transport-Security", HSTS)
    return resp


# --- hostile bodies -----------------------------------------------------------------------------------------

_CONTAINERS = (dict, list)


class SafeJSONProvider(DefaultJSONProvider):
    """Loads request bodies; too deep a nesting is malformed JSON (a 400), never a RecursionError (a 500)."""

    max_depth = 64

    def loads(self, s, **kwargs):
        try:
            data = super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
        # Level by level, containers only: a sync push holds ~2,000 of them, and a (node, depth) tuple each
        # plus a generator per node cost more than the parse itself.
        # (Exact types: the parser makes plain dicts and lists, and a type test is cheaper than isinstance.)
        level, depth = [data] if type(data) in _CONTAINERS else [], 1
        while level:
            if depth > self.max_depth:
                raise ValueError("JSON nested too deeply")
            below = []
            extend = below.extend
            for node in level:
                extend([c for c in (node.values() if type(node) is dict else node) if type(c) in _CONTAINERS])
            level, depth = below, depth + 1
        return data


# NUL (which PostgreSQL cannot store in text) and lone UTF-16 surrogates (JSON "\ud800": not Unicode, no
# database can store them) are refused wherever they appear, with the message schemas.Text gives other
# control characters: one clear 422 on every route and both databases, never a 500 from the driver.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_REFUSED = "Caractère non autorisé."
_ESCAPES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|\x00")
_MUTATION_ARGS = re.compile(r"mutations\.\d+\.args(\.|$)")


def _unstorable_paths(data) -> dict:
    found, stack = {}, [((), data)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if _UNSTORABLE.search(node):
                found[".".join(path) or "_schema"] = [_REFUSED]
        elif isinstance(node, dict):
            for key, value in node.items():
                if _UNSTORABLE.search(key):
                    found[".".join(path) or "_schema"] = [_REFUSED]
                else:
                    stack.append(((*path, key), value))
        elif isinstance(node, list):
            stack.extend(((*path, str(i)), value) for i, value in enumerate(node))
    return found


def _refuse_unstorable_text():
    bad = {k: [_REFUSED] for k, values in request.args.lists() if any(_UNSTORABLE.search(v) for v in values)}
    # Both can only come as \u escapes in UTF-8 JSON (a raw NUL byte means UTF-16 or UTF-32): the hot path of a
    # clean sync push skips the walk.
    if request.is_json and _ESCAPES.search(request.get_data(cache=True)):
        bad |= _unstorable_paths(request.get_json(silent=True))
        if request.endpoint == "sync.push":
            # Inside a mutation's args a bad character rejects that mutation only (sync.ops.text refuses it and
            # the queue behind it goes on): a 422 for the batch would leave the phone's outbox stuck for good.
            bad = {k: v for k, v in bad.items() if not _MUTATION_ARGS.match(k)}
    if bad:
        raise ApiError(422, "validation_error", "Données invalides.", bad)


def _refuse_oversized_stream():
    """A chunked body (no Content-Length) is cut by werkzeug at MAX_CONTENT_LENGTH without a word: a cut body
    must be a 413 on every route, not a 400 about truncated JSON. A declared length werkzeug refuses itself."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit and request.content_length is None and request.environ.get("wsgi.input_terminated"):
        if len(request.get_data(cache=True)) >= limit:
            raise ApiError(413, "payload_too_large", "Requête trop volumineuse.")


# --- rate limits --------------------------------------------------------------------------------------------

def _client_ip() -> str:
    return request.remote_addr or "-"


def _login_account() -> str:
    """The account a login tries, hashed: the limiter's keys (and its log lines) carry no email address."""
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    if not isinstance(email, str):
        return "-"
    return hashlib.sha256(email.strip().lower().encode("utf-8", "replace")).hexdigest()[:32]


def _failed(resp) -> bool:
    return resp.status_code == 401


def _register_limits(app: Flask) -> None:
    """Login and refresh are limited per client address, and failed logins per account (guessing one password
    from many addresses). Counts live in RATELIMIT_STORAGE_URI: memory in one process, Redis across workers.
    One limiter per app, so that two apps in one process (tests, a restart) keep their own memory counts."""
    limiter = Limiter(key_func=_client_ip, app=app, headers_enabled=True,
                      key_prefix=app.config.get("RATELIMIT_KEY_PREFIX") or "palier")
    cfg = app.config
    views = app.view_functions
    views["auth.login"] = limiter.limit(cfg["RATELIMIT_LOGIN"], key_func=_client_ip)(
        limiter.limit(cfg["RATELIMIT_LOGIN_ACCOUNT"], key_func=_login_account, deduct_when=_failed,
                      scope="login-account")(views["auth.login"]))
    views["auth.refresh"] = limiter.limit(cfg["RATELIMIT_REFRESH"], key_func=_client_ip)(views["auth.refresh"])


# --- logs ---------------------------------------------------------------------------------------------------

_QUERY = re.compile(r"\?[^ \"]*")


class _NoQueryString(logging.Filter):
    """werkzeug's request line keeps the query string, where resident searches put names: drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(_QUERY.sub("", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = _QUERY.sub("", record.msg)
        return True


def _quiet_werkzeug_log() -> None:
    log = logging.getLogger("werkzeug")
    if not any(isinstance(f, _NoQueryString) for f in log.filters):
        log.addFilter(_NoQueryString())
