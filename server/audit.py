"""The audit trail of personal data: who read, exported, erased or changed what, written in the caller's transaction.

Details hold identifiers and counts, never a resident's name or contact details: the audit log outlives erasure.
"""
import uuid

from flask import has_request_context
from flask_jwt_extended import current_user

from .extensions import db
from .models import AuditLog


def record(action: str, subject="", details: dict | None = None, *, user=None) -> AuditLog:
    """Add one AuditLog row to the current session; the caller's commit makes it (or its rollback drops it).

    action: a dotted verb, e.g. "resident.read", "residents.list", "export.csv", "privacy.erase".
    subject: what was touched (a UUID, a kind of export); details: ids and counts only (JSON).
    user: defaults to the authenticated user of the request; None outside a request (CLI, jobs).
    """
    if user is None and has_request_context():
        user = _request_user()
    row = AuditLog(user_id=getattr(user, "id", user) if user is not None else None, action=action,
                   subject=str(subject) if subject is not None else "", details=_jsonable(details or {}))
    db.session.add(row)
    return row


def _request_user():
    # current_user raises outside a verified JWT (e.g. a public route): then nobody is known.
    try:
        return current_user._get_current_object()
    except RuntimeError:
        return None


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
