"""The team: accounts, roles and sites (admin only). Deactivating a user revokes their tokens at once."""
import sqlalchemy as sa
from flask import Blueprint
from flask_jwt_extended import current_user
from marshmallow import fields, validate

from ..auth import revoke_all_tokens, roles_required
from ..errors import ApiError
from ..extensions import db
from ..models import ROLES, AuditLog, Device, Site, User
from ..schemas import StrictSchema, Text
from .common import load_args, load_json
from .catalogue import SiteSchema
from werkzeug.security import generate_password_hash

bp = Blueprint("users", __name__, url_prefix="/api/users")


class UserSchema(StrictSchema):
    id = fields.UUID()
    email = fields.String()
    display_name = fields.String()
    role = fields.String()
    active = fields.Boolean()
    sites = fields.List(fields.Nested(SiteSchema))
    created_at = fields.AwareDateTime()
    last_sync_at = fields.AwareDateTime(allow_none=True, metadata={
        "description": "the latest push or pull of any of the user's devices (logins are not recorded)"})


class UserCreateSchema(StrictSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    display_name = Text(max_length=120, min_length=1, required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    password = fields.String(required=True, validate=validate.Length(min=12, max=256))
    site_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=100))


class UserUpdateSchema(StrictSchema):
    display_name = Text(max_length=120, min_length=1)
    role = fields.String(validate=validate.OneOf(ROLES))
    password = fields.String(validate=validate.Length(min=12, max=256))
    site_ids = fields.List(fields.UUID(), validate=validate.Length(max=100))
    active = fields.Boolean()


def _sites(ids) -> list[Site]:
    sites = db.session.execute(sa.select(Site).where(Site.id.in_(ids), Site.deleted.is_(False))).scalars().all()
    if len(sites) != len(set(ids)):
        raise ApiError(422, "validation_error", "Données invalides.", {"site_ids": ["Site inconnu."]})
    return list(sites)


@bp.get("")
@roles_required("admin")
def list_users():
    """Every account.
    ---
    get:
      tags: [users]
      responses:
        200: {content: {application/json: {schema: {type: array, items: UserSchema}}}}
        403: {content: {application/json: {schema: ErrorSchema}}}
    """
    load_args()
    users = db.session.execute(sa.select(User).order_by(User.display_name)).scalars().all()
    last = {uid: max((t for t in (push, pull) if t is not None), default=None) for uid, push, pull in db.session.execute(
        sa.select(Device.user_id, sa.func.max(Device.last_push_at), sa.func.max(Device.last_pull_at))
        .group_by(Device.user_id))}
    return UserSchema(many=True).dump([_with_last_sync(u, last.get(u.id)) for u in users])


def _with_last_sync(user: User, at) -> dict:
    return {**{k: getattr(user, k) for k in UserSchema().fields if hasattr(user, k)}, "last_sync_at": at}


@bp.post("")
@roles_required("admin")
def create_user():
    """Create an account.
    ---
    post:
      tags: [users]
      requestBody: {content: {application/json: {schema: UserCreateSchema}}}
      responses:
        201: {content: {application/json: {schema: UserSchema}}}
        409: {content: {application/json: {schema: ErrorSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    data = load_json(UserCreateSchema())
    email = data["email"].strip().lower()
    if db.session.execute(sa.select(User.id).where(User.email == email)).first():
        raise ApiError(409, "email_taken", "Cette adresse est déjà utilisée.")
    user = User(email=email, display_name=data["display_name"], role=data["role"],
                password_hash=generate_password_hash(data["password"]))
    user.sites = _sites(data["site_ids"])
    db.session.add(user)
    db.session.add(AuditLog(user_id=current_user.id, action="user.create", subject=str(user.id),
                            details={"role": user.role}))
    db.session.commit()
    return UserSchema().dump(user), 201


@bp.patch("/<uuid:user_id>")
@roles_required("admin")
def update_user(user_id):
    """Change an account's name, role, sites, password or active flag.
    ---
    patch:
      tags: [users]
      parameters: [{in: path, name: user_id, required: true, schema: {type: string, format: uuid}}]
      requestBody: {content: {application/json: {schema: UserUpdateSchema}}}
      responses:
        200: {content: {application/json: {schema: UserSchema}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
        409: {content: {application/json: {schema: ErrorSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    user = db.session.get(User, user_id)
    if user is None:
        raise ApiError(404)
    data = load_json(UserUpdateSchema())
    if user.id == current_user.id and (data.get("active") is False or data.get("role", user.role) != user.role):
        # The last admin could lock everyone out of the team screen: another admin does it.
        raise ApiError(409, "self_lockout", "Vous ne pouvez pas désactiver votre compte ni changer votre rôle.")
    if "display_name" in data:
        user.display_name = data["display_name"]
    if "role" in data and data["role"] != user.role:
        user.role = data["role"]
        revoke_all_tokens(user)  # tokens carry the role: a new role starts from a fresh login
    if "site_ids" in data:
        user.sites = _sites(data["site_ids"])
    if "password" in data:
        user.password_hash = generate_password_hash(data["password"])
        revoke_all_tokens(user)
    if "active" in data and data["active"] != user.active:
        user.active = data["active"]
        if not user.active:
            revoke_all_tokens(user)
    db.session.add(AuditLog(user_id=current_user.id, action="user.update", subject=str(user.id),
                            details={k: v for k, v in data.items() if k != "password" and k != "site_ids"}
                            | ({"site_ids": [str(s) for s in data["site_ids"]]} if "site_ids" in data else {})
                            | ({"password": "changed"} if "password" in data else {})))
    db.session.commit()
    return UserSchema().dump(user)
