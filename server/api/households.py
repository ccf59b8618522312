"""Households (logements) of the user's sites, by building, staircase and door, with search."""
import sqlalchemy as sa
from flask import Blueprint
from flask_jwt_extended import current_user
from marshmallow import fields

from ..auth import ALL_ROLES, get_scoped_or_404, roles_required, scoped
from ..models import Household
from ..schemas import Page, StrictSchema, Text
from .common import load_args, paginate

bp = Blueprint("households", __name__, url_prefix="/api/households")


class HouseholdSchema(StrictSchema):
    id = fields.UUID()
    site_id = fields.UUID()
    building = fields.String()
    staircase = fields.String()
    floor = fields.String()
    door = fields.String()
    landlord_ref = fields.String()
    notes = fields.String()
    seq = fields.Integer()


class HouseholdQuerySchema(Page):
    site_id = fields.UUID()
    building = Text(max_length=40)
    staircase = Text(max_length=20)
    q = Text(max_length=100)


class HouseholdPageSchema(StrictSchema):
    items = fields.List(fields.Nested(HouseholdSchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


@bp.get("")
@roles_required(*ALL_ROLES)
def list_households():
    """Households of the user's sites, ordered by building, staircase, floor and door.
    ---
    get:
      tags: [households]
      parameters: [{in: query, schema: HouseholdQuerySchema}]
      responses:
        200: {content: {application/json: {schema: HouseholdPageSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    args = load_args(HouseholdQuerySchema())
    q = scoped(sa.select(Household).where(Household.deleted.is_(False)), Household.site_id, current_user)
    if "site_id" in args:
        q = q.where(Household.site_id == args["site_id"])
    if "building" in args:
        q = q.where(Household.building == args["building"])
    if "staircase" in args:
        q = q.where(Household.staircase == args["staircase"])
    if args.get("q"):
        like = f"%{args['q'].lower()}%"
        q = q.where(sa.or_(sa.func.lower(Household.landlord_ref).like(like),
                           sa.func.lower(Household.building + " " + Household.staircase + " " + Household.door)
                           .like(like)))
    q = q.order_by(Household.building, Household.staircase, Household.floor, Household.door, Household.id)
    return paginate(q, args["page"], args["per_page"], HouseholdSchema())


@bp.get("/<uuid:household_id>")
@roles_required(*ALL_ROLES)
def get_household(household_id):
    """One household of the user's sites (another site's is a 404, like a missing one).
    ---
    get:
      tags: [households]
      parameters: [{in: path, name: household_id, required: true, schema: {type: string, format: uuid}}]
      responses:
        200: {content: {application/json: {schema: HouseholdSchema}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
    """
    load_args()
    return HouseholdSchema().dump(get_scoped_or_404(Household, household_id, current_user))
