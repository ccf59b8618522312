"""Sync endpoints (push, pull): see docs/PROTOCOL.md."""
from flask import Blueprint

bp = Blueprint("sync", __name__, url_prefix="/api/sync")
