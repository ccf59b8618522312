"""Serves the built PWA (pwa/dist) on the same origin as the API (its CSP and other headers: server/security.py)."""
import mimetypes
from pathlib import Path

from flask import Blueprint, current_app, send_from_directory

from .errors import ApiError
from .extensions import compress

bp = Blueprint("web", __name__)

mimetypes.add_type("application/manifest+json", ".webmanifest")


def _dist() -> Path:
    return Path(current_app.config["PWA_DIST"])


def _send(folder: Path, name: str):
    """A built file, read whole (the largest is ~100 kB): compressed as a whole (@compress.compressed), with its
    length and a strong ETag, instead of chunk by chunk without either; its file closes with the response."""
    resp = send_from_directory(folder, name)
    resp.direct_passthrough = False
    resp.make_sequence()
    return resp


@bp.get("/")
@bp.get("/<path:path>")
@compress.compressed()
def app_shell(path: str = ""):
    if path.startswith("api/"):
        raise ApiError(404)
    dist = _dist()
    if not (dist / "index.html").exists():
        raise ApiError(503, "pwa_not_built", "L'application n'est pas construite : lancez `npm run build` dans pwa/.")
    target = dist / path
    if path and target.is_file() and dist.resolve() in target.resolve().parents:
        resp = _send(dist, path)
        if path in ("sw.js", "index.html", "manifest.webmanifest", "version.json", "bureau/index.html"):
            resp.cache_control.no_cache = True  # an update is always seen; the SW decides when it takes over
        elif path.startswith(("assets/", "bureau/assets/")):
            resp.cache_control.max_age = 31536000  # content-hashed names
            resp.cache_control.immutable = True
        return resp
    if path.startswith(("assets/", "icons/", "bureau/assets/")) or path in ("sw.js", "manifest.webmanifest"):
        raise ApiError(404)  # a missing file is a 404, never the shell under a script's name
    if path == "bureau" or path.startswith("bureau/"):
        # The head-office app has its own shell; its routes live after the hash, any deeper path gets the shell too.
        resp = _send(dist / "bureau", "index.html")
        resp.cache_control.no_cache = True
        return resp
    resp = _send(dist, "index.html")
    resp.cache_control.no_cache = True
    return resp
