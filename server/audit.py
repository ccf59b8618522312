"""The audit trail of personal data: who read, exported, erased or changed what, written in the caller's transaction.

Details hold identifiers and counts, never a resident's name or contact details: the audit log outlives erasure.
"""
import uuid

import sqlalchemy as sa
from flask import has_request_context
from flask_jwt_extended import current_user

from .extensions import db
from .models import AuditLog


_REQUEST_USER = object()


def record(action: str, subject="", details: dict | None = None, *, user=_REQUEST_USER) -> AuditLog:
    """Add one AuditLog row to the current session; the caller's commit makes it (or its rollback drops it).

    action: a dotted verb, e.g. "resident.read", "residents.list", "export.csv", "privacy.erase".
    subject: what was touched (a UUID, a kind of export); details: ids and counts only (JSON).
    user: a User, a user id, or None (the system: CLI, jobs); by default the authenticated user of the request.
    """
    if user is _REQUEST_USER:
        user = _request_user() if has_request_context() else None
    row = AuditLog(user_id=getattr(user, "id", user) if user is not None else None, action=action,
                   subject=str(subject) if subject is not None else "", details=jsonable(details or {}))
    db.session.add(row)
    return row


def amend(row_id: int, details: dict) -> None:
    """Replace a row's details in the current session (the caller commits): an answer's counts, once it ended."""
    db.session.execute(sa.update(AuditLog).where(AuditLog.id == row_id).values(details=jsonable(details)))


def lock_for_write() -> None:
    """Call first in a GET view that records a row. SQLite: take the write lock before reading, as writing requests
    do (database.configure), or the commit of a read-then-write transaction can fail on a newer snapshot."""
    if db.session.get_bind().dialect.name != "sqlite":
        return
    if db.session().in_transaction():
        db.session.rollback()  # only the token's user was read; it reloads on its next use
    db.session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})


def _request_user():
    # current_user raises outside a verified JWT (e.g. a public route): then nobody is known.
    try:
        return current_user._get_current_object()
    except RuntimeError:
        return None


def jsonable(value):
    """Details as JSON values: UUIDs and times as text."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
