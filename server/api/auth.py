"""Login, refresh, logout, and who am I.

The PWA holds its tokens in httpOnly cookies (no script can read them, so an XSS cannot steal a session) with
flask-jwt-extended's double-submit CSRF token; API clients may ask for bearer tokens instead (mode=bearer).
"""
from datetime import datetime, timezone

from flask import Blueprint, jsonify
from flask_jwt_extended import (create_access_token, create_refresh_token, current_user, decode_token,
                                get_jwt, jwt_required, set_access_cookies, set_refresh_cookies,
                                unset_jwt_cookies)
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError
from flask import request
from marshmallow import fields, validate
from werkzeug.security import check_password_hash, generate_password_hash

from ..auth import ALL_ROLES, find_user_by_email, revoke, roles_required
from ..errors import ApiError
from ..extensions import db
from ..schemas import StrictSchema, Text
from .common import load_args, load_json

bp = Blueprint("auth", __name__, url_prefix="/api/auth")

# Checked against when the email is unknown, so both failures take the same time and give the same answer.
_DUMMY_HASH = generate_password_hash("palier-dummy-password")


class LoginSchema(StrictSchema):
    email = Text(max_length=254, min_length=3, required=True)
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))
    mode = fields.String(load_default="cookie", validate=validate.OneOf(["cookie", "bearer"]))


class SiteRefSchema(StrictSchema):
    id = fields.UUID()
    code = fields.String()
    name = fields.String()
    commune = fields.String()


class MeSchema(StrictSchema):
    id = fields.UUID()
    email = fields.String()
    display_name = fields.String()
    role = fields.String()
    sites = fields.List(fields.Nested(SiteRefSchema))


class LoginResultSchema(StrictSchema):
    user = fields.Nested(MeSchema)
    access_token = fields.String()
    refresh_token = fields.String()


@bp.post("/login")
def login():
    """Log in with email and password.
    ---
    post:
      tags: [auth]
      security: []
      requestBody: {content: {application/json: {schema: LoginSchema}}}
      responses:
        200: {content: {application/json: {schema: LoginResultSchema}}}
        401: {content: {application/json: {schema: ErrorSchema}}}
    """
    data = load_json(LoginSchema())
    user = find_user_by_email(data["email"])
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, data["password"])
    if not (user and ok and user.active):
        raise ApiError(401, "bad_credentials", "Identifiant ou mot de passe incorrect.")
    access = create_access_token(identity=user)
    refresh = create_refresh_token(identity=user)
    body = {"user": MeSchema().dump(user)}
    if data["mode"] == "bearer":
        body.update(access_token=access, refresh_token=refresh)
    resp = jsonify(LoginResultSchema().dump(body))
    if data["mode"] == "cookie":
        set_access_cookies(resp, access)
        set_refresh_cookies(resp, refresh)
    return resp


@bp.post("/refresh")
@jwt_required(refresh=True)
def refresh():
    """A new access token from the refresh token.
    ---
    post:
      tags: [auth]
      responses:
        200: {content: {application/json: {schema: LoginResultSchema}}}
        401: {content: {application/json: {schema: ErrorSchema}}}
    """
    access = create_access_token(identity=current_user)
    body = {"user": MeSchema().dump(current_user)}
    from_cookie = request.cookies.get("refresh_token_cookie") is not None and \
        "Authorization" not in request.headers
    if not from_cookie:
        body["access_token"] = access
    resp = jsonify(LoginResultSchema().dump(body))
    if from_cookie:
        set_access_cookies(resp, access)
    return resp


@bp.post("/logout")
@jwt_required(refresh=True)
def logout():
    """Revoke the refresh token (and the access token sent with it); survives a restart.
    ---
    post:
      tags: [auth]
      responses:
        200: {content: {application/json: {schema: LoginResultSchema}}}
        401: {content: {application/json: {schema: ErrorSchema}}}
    """
    payload = get_jwt()
    revoke(payload["jti"], current_user.id, datetime.fromtimestamp(payload["exp"], timezone.utc))
    access = request.cookies.get("access_token_cookie")
    if access:
        try:
            ap = decode_token(access, allow_expired=True)
            revoke(ap["jti"], current_user.id, datetime.fromtimestamp(ap["exp"], timezone.utc))
        except (JWTExtendedException, PyJWTError):
            pass  # an unreadable access cookie has nothing to revoke
    db.session.commit()
    resp = jsonify(LoginResultSchema().dump({"user": MeSchema().dump(current_user)}))
    unset_jwt_cookies(resp)
    return resp


@bp.get("/me")
@roles_required(*ALL_ROLES)
def me():
    """The logged-in user, their role and sites.
    ---
    get:
      tags: [auth]
      responses:
        200: {content: {application/json: {schema: MeSchema}}}
        401: {content: {application/json: {schema: ErrorSchema}}}
    """
    load_args()
    return MeSchema().dump(current_user)
