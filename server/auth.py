"""Authentication callbacks, role checks and site scoping: who may touch what."""
import uuid
from datetime import datetime, timedelta, timezone
from functools import cache, wraps

import sqlalchemy as sa
from flask import request
from flask_jwt_extended import current_user, get_jwt, verify_jwt_in_request
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from .errors import ApiError, error_response
from .extensions import db
from .models import REVIEW_ROLES, RevokedToken, User


def register_jwt_callbacks(jwt) -> None:
    @jwt.user_identity_loader
    def _identity(user):
        return str(user.id) if isinstance(user, User) else str(user)

    @jwt.user_lookup_loader
    def _lookup(_header, payload):
        return _token_user(payload)[0]

    @jwt.token_in_blocklist_loader
    def _revoked(_header, payload) -> bool:
        return _refused(payload, *_token_user(payload))

    @jwt.additional_claims_loader
    def _claims(user):
        claims = {"iat_us": _microseconds(datetime.now(timezone.utc))}
        return claims | ({"role": user.role} if isinstance(user, User) else {})

    # These run inside Flask error handlers, where a raised exception would become a 500: answer, never raise.
    def _err(status, code, message):
        return error_response(status, code, message)

    @jwt.unauthorized_loader
    def _missing(reason):
        return _err(401, "unauthorized", "Authentification requise.")

    @jwt.invalid_token_loader
    def _invalid(reason):
        return _err(401, "invalid_token", "Jeton invalide.")

    @jwt.expired_token_loader
    def _expired(_h, _p):
        return _err(401, "token_expired", "Session expirée, reconnectez-vous.")

    @jwt.revoked_token_loader
    def _revoked_cb(_h, _p):
        return _err(401, "token_revoked", "Session révoquée, reconnectez-vous.")

    @jwt.user_lookup_error_loader
    def _lookup_err(_h, _p):
        return _err(401, "token_revoked", "Session révoquée, reconnectez-vous.")

    @jwt.needs_fresh_token_loader
    def _fresh(_h, _p):
        return _err(401, "fresh_token_required", "Reconnectez-vous.")


@cache
def _token_user_statement():
    """The token's user with their sites, and whether the token was revoked (logout): what every authenticated
    request checks, in one statement (it took three, one per query: user, sites, revoked token)."""
    revoked = sa.exists().where(RevokedToken.jti == sa.bindparam("jti")).label("revoked")
    return select(User, revoked).options(joinedload(User.sites)).where(User.id == sa.bindparam("id"))


def _token_user(payload, fresh: bool = False) -> tuple[User | None, bool]:
    """(the token's user or None, whether its jti was revoked), read once per request (both loaders ask).
    Kept on the request, not on g: an app context shared by several requests (tests, CLI) must see a logout."""
    cache = request.environ.setdefault("palier.token_users", {})
    key = (payload["sub"], payload["jti"])
    if key not in cache:
        try:
            user_id = uuid.UUID(payload["sub"])
        except ValueError:
            cache[key] = (None, True)
        else:
            row = db.session.execute(_token_user_statement(), {"id": user_id, "jti": payload["jti"]},
                                     execution_options={"populate_existing": fresh}).unique().one_or_none()
            cache[key] = (None, True) if row is None else (row[0], row[1])
    return cache[key]


def _refused(payload, user: User | None, revoked: bool) -> bool:
    """Whether the token no longer stands: its user gone or deactivated, logged out everywhere since, or logged out."""
    if user is None or not user.active:
        return True
    # iat has a one-second resolution: a token made just after a revocation would look older than it.
    if payload.get("iat_us", -1) < _microseconds(user.tokens_valid_after):
        return True
    return revoked


def token_user_again() -> User | None:
    """The request's token checked again, as at the request's start: its user read afresh (role and sites), or None
    if the token no longer stands. An answer that goes on after its first page (a streamed pull) asks as it goes."""
    payload = get_jwt()
    request.environ.get("palier.token_users", {}).pop((payload["sub"], payload["jti"]), None)
    user, revoked = _token_user(payload, fresh=True)
    return None if _refused(payload, user, revoked) else user


def roles_required(*roles: str):
    """The route needs a valid access token of one of these roles (403 otherwise)."""

    def decorator(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            verify_jwt_in_request()
            if current_user.role not in roles:
                raise ApiError(403, "forbidden", "Votre rôle ne permet pas cette action.")
            return fn(*args, **kwargs)

        wrapper.palier_roles = roles
        return wrapper

    return decorator


ALL_ROLES = ("gardien", "staff", "head_office", "admin")


def site_scope(user: User) -> set[uuid.UUID] | None:
    """The sites a user may read: None means every site (head office, admin)."""
    return None if user.role in REVIEW_ROLES else user.site_ids


def scoped(query, column, user: User):
    """Restrict a select() to the user's sites."""
    scope = site_scope(user)
    return query if scope is None else query.where(column.in_(scope or {uuid.UUID(int=0)}))


def get_scoped_or_404(model, obj_id, user: User, site_attr: str = "site_id", include_deleted: bool = False):
    """Load one row of the user's sites; another site's row is answered exactly like a missing one."""
    obj = db.session.get(model, obj_id)
    if obj is None or (not include_deleted and getattr(obj, "deleted", False)):
        raise ApiError(404)
    scope = site_scope(user)
    if scope is not None and getattr(obj, site_attr) not in scope:
        raise ApiError(404)
    return obj


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _microseconds(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


def revoke_all_tokens(user: User) -> None:
    """Refuse every token issued so far (their iat_us claim is older), and none issued from now on."""
    user.tokens_valid_after = datetime.now(timezone.utc)


def revoke(jti: str, user_id, expires_at: datetime) -> None:
    if db.session.get(RevokedToken, jti) is None:
        db.session.add(RevokedToken(jti=jti, user_id=user_id, expires_at=expires_at))


def find_user_by_email(email: str) -> User | None:
    return db.session.execute(select(User).where(User.email == email.strip().lower())).scalar_one_or_none()
