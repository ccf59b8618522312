"""Residents of the user's sites; contact details only for the roles that need them."""
import sqlalchemy as sa
from flask import Blueprint
from flask_jwt_extended import current_user
from marshmallow import fields

from .. import audit
from ..auth import ALL_ROLES, get_scoped_or_404, roles_required, scoped
from ..extensions import db
from ..models import Resident
from ..schemas import Page, StrictSchema, Text
from .common import load_args, paginate
from sync.rules import name_key

bp = Blueprint("residents", __name__, url_prefix="/api/residents")

# Gardiens knock on doors; they do not need residents' phone numbers or emails.
CONTACT_FIELDS = ("phone", "email")
CONTACT_ROLES = ("staff", "head_office", "admin")


class ResidentSchema(StrictSchema):
    id = fields.UUID()
    household_id = fields.UUID()
    site_id = fields.UUID()
    first_name = fields.String()
    last_name = fields.String()
    phone = fields.String()
    email = fields.String()
    consent_contact = fields.Boolean()
    consent_image = fields.Boolean()
    duplicate_of = fields.UUID(allow_none=True)
    seq = fields.Integer()


class ResidentQuerySchema(Page):
    site_id = fields.UUID()
    household_id = fields.UUID()
    q = Text(max_length=100)


class ResidentPageSchema(StrictSchema):
    items = fields.List(fields.Nested(ResidentSchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


def resident_schema(user, many=False) -> ResidentSchema:
    exclude = () if user.role in CONTACT_ROLES else CONTACT_FIELDS
    return ResidentSchema(many=many, exclude=exclude)


@bp.get("")
@roles_required(*ALL_ROLES)
def list_residents():
    """Residents of the user's sites, searchable by name (accents and case ignored).
    ---
    get:
      tags: [residents]
      parameters: [{in: query, schema: ResidentQuerySchema}]
      responses:
        200: {content: {application/json: {schema: ResidentPageSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    args = load_args(ResidentQuerySchema())
    audit.lock_for_write()
    q = scoped(sa.select(Resident).where(Resident.deleted.is_(False)), Resident.site_id, current_user)
    if "site_id" in args:
        q = q.where(Resident.site_id == args["site_id"])
    if "household_id" in args:
        q = q.where(Resident.household_id == args["household_id"])
    if args.get("q"):
        for token in name_key(args["q"], "").split():
            q = q.where(Resident.name_key.like(f"%{token}%"))
    q = q.order_by(Resident.last_name, Resident.first_name, Resident.id)
    out = paginate(q, args["page"], args["per_page"], resident_schema(current_user))
    # The filters, never the search text (it is a name).
    audit.record("residents.list", "residents", {
        "count": len(out["items"]), "total": out["total"], "page": args["page"], "searched": bool(args.get("q")),
        **{k: args[k] for k in ("site_id", "household_id") if k in args}})
    db.session.commit()
    return out


@bp.get("/<uuid:resident_id>")
@roles_required(*ALL_ROLES)
def get_resident(resident_id):
    """One resident of the user's sites.
    ---
    get:
      tags: [residents]
      parameters: [{in: path, name: resident_id, required: true, schema: {type: string, format: uuid}}]
      responses:
        200: {content: {application/json: {schema: ResidentSchema}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
    """
    load_args()
    audit.lock_for_write()
    out = resident_schema(current_user).dump(get_scoped_or_404(Resident, resident_id, current_user))
    audit.record("resident.read", f"resident:{resident_id}", {})
    db.session.commit()
    return out
