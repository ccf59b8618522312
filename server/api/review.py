"""Head office's review of what sync could not decide alone: conflicts, suspected duplicates, rejections."""
from datetime import datetime, timezone

import sqlalchemy as sa
from flask import Blueprint
from flask_jwt_extended import current_user
from marshmallow import fields, validate

from sync.ops import Invalid, check_field

from ..auth import roles_required
from ..errors import ApiError
from ..extensions import db
from ..models import REVIEW_ROLES, Conflict, DuplicateSuspicion, Rejection, Resident
from ..schemas import StrictSchema
from ..sync_store import ReviewError, keep_apart, merge_duplicate, resolve_conflict
from .common import load_json

bp = Blueprint("review", __name__, url_prefix="/api/review")


class ConflictSchema(StrictSchema):
    id = fields.UUID()
    entity = fields.String()
    entity_id = fields.UUID()
    site_id = fields.UUID(allow_none=True)
    field = fields.String()
    kept_value = fields.Raw()
    kept_by = fields.UUID(allow_none=True)
    kept_seq = fields.Integer()
    lost_value = fields.Raw()
    lost_by = fields.UUID(allow_none=True)
    lost_client_id = fields.UUID(allow_none=True)
    lost_n = fields.Integer(allow_none=True)
    status = fields.String()
    resolution = fields.Raw(allow_none=True)
    created_at = fields.DateTime()


class RejectionSchema(StrictSchema):
    id = fields.UUID()
    client_id = fields.UUID()
    n = fields.Integer()
    user_id = fields.UUID(allow_none=True)
    site_id = fields.UUID(allow_none=True)
    op = fields.String()
    code = fields.String()
    reason = fields.Dict()
    args = fields.Dict(allow_none=True)
    status = fields.String()
    created_at = fields.DateTime()


class PersonSchema(StrictSchema):
    id = fields.UUID()
    household_id = fields.UUID()
    first_name = fields.String()
    last_name = fields.String()
    deleted = fields.Boolean()


class DuplicateSchema(StrictSchema):
    id = fields.UUID()
    site_id = fields.UUID()
    status = fields.String()
    created_at = fields.DateTime()
    resident = fields.Nested(PersonSchema)
    candidate = fields.Nested(PersonSchema)


class ListSchema(StrictSchema):
    items = fields.List(fields.Dict())


class MergeSchema(StrictSchema):
    keep = fields.UUID(load_default=None, allow_none=True)


class ResolveSchema(StrictSchema):
    keep = fields.String(validate=validate.OneOf(["kept", "lost"]))
    value = fields.Raw(allow_none=True)


def _list(model, schema, open_status):
    rows = db.session.execute(sa.select(model).where(model.status == open_status)
                              .order_by(model.created_at, model.id).limit(500)).scalars().all()
    return {"items": schema.dump(rows, many=True)}


def _get(model, obj_id):
    obj = db.session.get(model, obj_id)
    if obj is None:
        raise ApiError(404)
    return obj


def _commit(fn, *args):
    try:
        out = fn(db.session, *args)
    except ReviewError as e:
        db.session.rollback()
        raise ApiError(e.status, e.code, e.message) from None
    db.session.commit()
    return out


@bp.get("/conflicts")
@roles_required(*REVIEW_ROLES)
def list_conflicts():
    """Open conflicts: values that lost a field merge.
    ---
    get:
      tags: [review]
      responses: {200: {content: {application/json: {schema: ListSchema}}}}
    """
    return _list(Conflict, ConflictSchema(), "open")


@bp.get("/rejections")
@roles_required(*REVIEW_ROLES)
def list_rejections():
    """Open rejections: mutations refused by validation or authorization, with their args.
    ---
    get:
      tags: [review]
      responses: {200: {content: {application/json: {schema: ListSchema}}}}
    """
    return _list(Rejection, RejectionSchema(), "open")


@bp.get("/duplicates")
@roles_required(*REVIEW_ROLES)
def list_duplicates():
    """Suspected duplicates waiting for review, with both people.
    ---
    get:
      tags: [review]
      responses: {200: {content: {application/json: {schema: ListSchema}}}}
    """
    rows = db.session.execute(sa.select(DuplicateSuspicion).where(DuplicateSuspicion.status == "pending")
                              .order_by(DuplicateSuspicion.created_at, DuplicateSuspicion.id).limit(500)).scalars().all()
    ids = {r.resident_id for r in rows} | {r.candidate_id for r in rows}
    people = {p.id: p for p in db.session.execute(sa.select(Resident).where(Resident.id.in_(ids))).scalars()}
    items = [{"id": r.id, "site_id": r.site_id, "status": r.status, "created_at": r.created_at,
              "resident": people[r.resident_id], "candidate": people[r.candidate_id]} for r in rows]
    return {"items": DuplicateSchema().dump(items, many=True)}


@bp.post("/duplicates/<uuid:suspicion_id>/merge")
@roles_required(*REVIEW_ROLES)
def merge(suspicion_id):
    """Merge a suspected duplicate into the resident kept (default: the earlier one).
    ---
    post:
      tags: [review]
      requestBody: {content: {application/json: {schema: MergeSchema}}}
      responses:
        200: {description: merged}
        409: {content: {application/json: {schema: ErrorSchema}}}
    """
    args = load_json(MergeSchema())
    return _commit(merge_duplicate, _get(DuplicateSuspicion, suspicion_id), args["keep"], current_user)


@bp.post("/duplicates/<uuid:suspicion_id>/distinct")
@roles_required(*REVIEW_ROLES)
def distinct(suspicion_id):
    """Two different people: keep them apart.
    ---
    post:
      tags: [review]
      responses: {200: {description: kept apart}, 409: {content: {application/json: {schema: ErrorSchema}}}}
    """
    _commit(keep_apart, _get(DuplicateSuspicion, suspicion_id), current_user)
    return {"status": "distinct"}


@bp.post("/conflicts/<uuid:conflict_id>/resolve")
@roles_required(*REVIEW_ROLES)
def resolve(conflict_id):
    """Resolve a conflict: keep the current value, take the lost one, or set an edited value.
    ---
    post:
      tags: [review]
      requestBody: {content: {application/json: {schema: ResolveSchema}}}
      responses:
        200: {description: resolved}
        409: {content: {application/json: {schema: ErrorSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    args = load_json(ResolveSchema())
    conflict = _get(Conflict, conflict_id)
    if ("keep" in args) == ("value" in args):
        raise ApiError(422, "validation_error", "Indiquez keep ou value.", {"_schema": ["keep ou value."]})
    raw = args["value"] if "value" in args else (
        conflict.kept_value if args["keep"] == "kept" else conflict.lost_value)
    try:
        value = check_field(conflict.entity, conflict.field, raw)
    except (Invalid, KeyError) as e:
        raise ApiError(422, "validation_error", "Données invalides.", {"value": [str(e)]}) from None
    _commit(resolve_conflict, conflict, value, current_user)
    return {"status": "resolved"}


@bp.post("/rejections/<uuid:rejection_id>/dismiss")
@roles_required(*REVIEW_ROLES)
def dismiss(rejection_id):
    """Dismiss a rejection; its args (which may hold personal data) are dropped.
    ---
    post:
      tags: [review]
      responses: {200: {description: dismissed}, 409: {content: {application/json: {schema: ErrorSchema}}}}
    """
    rejection = _get(Rejection, rejection_id)
    if rejection.status != "open":
        raise ApiError(409, "already_reviewed", "Ce refus a déjà été traité.")
    rejection.status, rejection.args = "dismissed", None
    rejection.resolved_by, rejection.resolved_at = current_user.id, datetime.now(timezone.utc)
    db.session.commit()
    return {"status": "dismissed"}
