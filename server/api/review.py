"""Head office's review of what sync could not decide alone: conflicts, suspected duplicates, rejections.

Every list carries both values, who and when, a label of the resident or household concerned, and pages;
?state=open (the work queue, oldest first) or ?state=resolved (the history, newest first).
"""
import uuid
from datetime import datetime, timezone

import sqlalchemy as sa
from flask import Blueprint
from flask_jwt_extended import current_user
from marshmallow import fields, validate

from sync.ops import OPS, Invalid, check_field
from sync.push import _Batch
from sync.store import DeviceState
from sync.wire import Mutation

from .. import audit
from ..auth import roles_required
from ..errors import ApiError
from ..extensions import db
from ..models import (REVIEW_ROLES, Action, Conflict, DuplicateSuspicion, Engagement, Event, Household, Rejection,
                      Resident, Site, User)
from ..schemas import Paged, StrictSchema
from ..sync_store import ReviewError, SqlStore, keep_apart, merge_duplicate, principal_for, resolve_conflict
from .common import load_args, load_json, page_window
from .lists import Paging

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
    label = fields.String(metadata={"description": "the resident or household concerned, for a person to read"})
    kept_by_name = fields.String(allow_none=True)
    lost_by_name = fields.String(allow_none=True)
    resolved_by = fields.UUID(allow_none=True)
    resolved_by_name = fields.String(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)


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
    label = fields.String()
    user_name = fields.String(allow_none=True)
    resolved_by = fields.UUID(allow_none=True)
    resolved_by_name = fields.String(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)


class PersonSchema(StrictSchema):
    id = fields.UUID()
    household_id = fields.UUID()
    first_name = fields.String()
    last_name = fields.String()
    deleted = fields.Boolean()
    label = fields.String(metadata={"description": "name and household"})
    created_at = fields.DateTime()
    created_by_name = fields.String(allow_none=True)


class DuplicateSchema(StrictSchema):
    id = fields.UUID()
    site_id = fields.UUID()
    status = fields.String()
    created_at = fields.DateTime()
    resident = fields.Nested(PersonSchema)
    candidate = fields.Nested(PersonSchema)
    resolved_by = fields.UUID(allow_none=True)
    resolved_by_name = fields.String(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)


class ListSchema(Paged):
    items = fields.List(fields.Dict())


class QueueArgsSchema(Paging):
    state = fields.String(load_default="open", validate=validate.OneOf(["open", "resolved"]))


class FixSchema(StrictSchema):
    args = fields.Dict(required=True, metadata={"description": "corrected fields, laid over the mutation's args"})


class MergeSchema(StrictSchema):
    keep = fields.UUID(load_default=None, allow_none=True)


class ResolveSchema(StrictSchema):
    keep = fields.String(validate=validate.OneOf(["kept", "lost"]))
    value = fields.Raw(allow_none=True)


OPEN = {Conflict: ("open",), Rejection: ("open",), DuplicateSuspicion: ("pending",)}
RESOLVED = {Conflict: ("resolved",), Rejection: ("fixed", "dismissed"), DuplicateSuspicion: ("merged", "distinct")}


def _queue(model):
    """One page of a review queue: the open items oldest first, or the resolved ones newest first."""
    args = load_args(QueueArgsSchema())
    statuses = (OPEN if args["state"] == "open" else RESOLVED)[model]
    order = (model.created_at, model.id) if args["state"] == "open" else (model.resolved_at.desc(), model.id.desc())
    total, window = page_window(sa.select(model).where(model.status.in_(statuses)).order_by(*order),
                                args["page"], args["per_page"])
    rows = db.session.execute(window).scalars().all()
    return rows, {"total": total, "page": args["page"], "per_page": args["per_page"]}


def _columns(row) -> dict:
    """A row's own columns as a dict, to which a list adds names and labels."""
    return {c.key: getattr(row, c.key) for c in sa.inspect(row).mapper.column_attrs}


def _user_names(ids) -> dict:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(User.id, User.display_name).where(User.id.in_(ids))).all())


def _household_label(building, staircase, floor, door, site_name) -> str:
    parts = [f"bât. {building}" if building else "", f"esc. {staircase}" if staircase else "",
             f"ét. {floor}" if floor else "", f"porte {door}" if door else ""]
    place = ", ".join(p for p in parts if p)
    return f"{site_name} — {place}" if place else site_name


def _labels(refs) -> dict:
    """{(entity, id): label} for residents, households and engagements: a few queries for a whole page."""
    by_entity: dict = {}
    for entity, rec_id in refs:
        if rec_id is not None:
            by_entity.setdefault(entity, set()).add(rec_id)
    out = {}
    place = (Household.building, Household.staircase, Household.floor, Household.door, Site.name)
    if by_entity.get("household"):
        for row in db.session.execute(sa.select(Household.id, *place).join(Site, Site.id == Household.site_id)
                                      .where(Household.id.in_(by_entity["household"]))):
            out[("household", row[0])] = _household_label(*row[1:])
    if by_entity.get("resident"):
        for row in db.session.execute(
                sa.select(Resident.id, Resident.first_name, Resident.last_name, *place)
                .join(Household, Household.id == Resident.household_id).join(Site, Site.id == Household.site_id)
                .where(Resident.id.in_(by_entity["resident"]))):
            out[("resident", row[0])] = f"{row[1]} {row[2]} ({_household_label(*row[3:])})"
    if by_entity.get("engagement"):
        for row in db.session.execute(
                sa.select(Engagement.id, Resident.first_name, Resident.last_name, Action.name)
                .join(Resident, Resident.id == Engagement.resident_id).join(Action, Action.id == Engagement.action_id)
                .where(Engagement.id.in_(by_entity["engagement"]))):
            out[("engagement", row[0])] = f"{row[1]} {row[2]} — {row[3]}"
    if by_entity.get("event"):
        for row in db.session.execute(sa.select(Event.id, Event.title).where(Event.id.in_(by_entity["event"]))):
            out[("event", row[0])] = row[1]
    return out


def _as_uuid(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _rejection_ref(r: Rejection):
    """What a rejected mutation was about, from its args (which may be invalid: that is why it was refused)."""
    args = r.args or {}
    entity = r.op.split(".")[0]
    if entity in ("resident", "household", "engagement") and r.op.endswith((".update", ".delete")):
        return entity, _as_uuid(args.get("id"))
    for key, ref in (("resident_id", "resident"), ("household_id", "household"), ("event_id", "event")):
        if args.get(key) is not None:
            return ref, _as_uuid(args[key])
    return None, None


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
    """Conflicts: values that lost a field merge, with the kept one, who, when and what it is about.
    ---
    get:
      tags: [review]
      parameters: [{in: query, schema: QueueArgsSchema}]
      responses: {200: {content: {application/json: {schema: ListSchema}}}}
    """
    rows, meta = _queue(Conflict)
    names = _user_names([u for c in rows for u in (c.kept_by, c.lost_by, c.resolved_by)])
    labels = _labels((c.entity, c.entity_id) for c in rows)
    items = [{**_columns(c), "label": labels.get((c.entity, c.entity_id), ""),
              "kept_by_name": names.get(c.kept_by), "lost_by_name": names.get(c.lost_by),
              "resolved_by_name": names.get(c.resolved_by)} for c in rows]
    return {"items": ConflictSchema().dump(items, many=True), **meta}


@bp.get("/rejections")
@roles_required(*REVIEW_ROLES)
def list_rejections():
    """Rejections: mutations refused by validation or authorization, with their args while open.
    ---
    get:
      tags: [review]
      parameters: [{in: query, schema: QueueArgsSchema}]
      responses: {200: {content: {application/json: {schema: ListSchema}}}}
    """
    rows, meta = _queue(Rejection)
    names = _user_names([u for r in rows for u in (r.user_id, r.resolved_by)])
    refs = {r.id: _rejection_ref(r) for r in rows}
    labels = _labels(refs.values())
    items = [{**_columns(r),
              "label": labels.get(refs[r.id], ""), "user_name": names.get(r.user_id),
              "resolved_by_name": names.get(r.resolved_by)} for r in rows]
    return {"items": RejectionSchema().dump(items, many=True), **meta}


@bp.get("/duplicates")
@roles_required(*REVIEW_ROLES)
def list_duplicates():
    """Suspected duplicates (pending, or merged / kept apart), with both people.
    ---
    get:
      tags: [review]
      parameters: [{in: query, schema: QueueArgsSchema}]
      responses: {200: {content: {application/json: {schema: ListSchema}}}}
    """
    rows, meta = _queue(DuplicateSuspicion)
    ids = {r.resident_id for r in rows} | {r.candidate_id for r in rows}
    people = {p.id: p for p in db.session.execute(sa.select(Resident).where(Resident.id.in_(ids))).scalars()}
    labels = _labels(("resident", i) for i in ids)
    names = _user_names([p.created_by for p in people.values()] + [r.resolved_by for r in rows])

    def person(pid):
        p = people[pid]
        return {"id": p.id, "household_id": p.household_id, "first_name": p.first_name, "last_name": p.last_name,
                "deleted": p.deleted, "label": labels.get(("resident", pid), ""), "created_at": p.created_at,
                "created_by_name": names.get(p.created_by)}

    items = [{"id": r.id, "site_id": r.site_id, "status": r.status, "created_at": r.created_at,
              "resident": person(r.resident_id), "candidate": person(r.candidate_id), "resolved_by": r.resolved_by,
              "resolved_by_name": names.get(r.resolved_by), "resolved_at": r.resolved_at} for r in rows]
    return {"items": DuplicateSchema().dump(items, many=True), **meta}


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


@bp.post("/rejections/<uuid:rejection_id>/fix")
@roles_required(*REVIEW_ROLES)
def fix(rejection_id):
    """Apply a rejected mutation with corrected fields, as the reviewer, through the push's own checks.

    The corrected fields are laid over the stored args; the mutation is decided exactly as a device's would be
    (validation, the records it names, merges), and what it writes takes new seqs: devices get it at their next
    pull. Still refused: 422 with the reason, nothing written, the rejection stays open.
    ---
    post:
      tags: [review]
      requestBody: {content: {application/json: {schema: FixSchema}}}
      responses:
        200: {description: fixed}
        409: {content: {application/json: {schema: ErrorSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    body = load_json(FixSchema())
    rejection = _get(Rejection, rejection_id)
    if rejection.status != "open":
        raise ApiError(409, "already_reviewed", "Ce refus a déjà été traité.")
    if rejection.op not in OPS or rejection.args is None:
        raise ApiError(409, "not_fixable", "Cette saisie ne peut pas être corrigée ; écartez-la.")
    args = {**rejection.args, **body["args"]}
    store = SqlStore(db.session)
    now = store.now()
    # The device's id stays on what it creates (a visit can then be deleted from that phone); the reviewer is
    # the author of the decision.
    device = DeviceState(str(rejection.client_id), str(current_user.id))
    batch = _Batch(store, principal_for(current_user), device, now)
    (result,) = batch.run([Mutation(rejection.n, rejection.op, now, args, "")])
    if result.status != "applied":
        db.session.rollback()
        raise ApiError(422, "still_rejected", result.reason.get("message", "Données invalides."),
                       {k: v for k, v in result.reason.items() if k != "message"})
    batch.ws.log.clear()  # the device's log keeps the answer it was given; the fix is recorded here instead
    store.write(batch.ws)
    rejection.status, rejection.args = "fixed", None
    rejection.resolved_by, rejection.resolved_at = current_user.id, datetime.now(timezone.utc)
    audit.record("rejection.fix", rejection.id, {"op": rejection.op, "n": rejection.n,
                                                 "conflicts": result.conflicts})
    db.session.commit()
    return {"status": "fixed", "conflicts": result.conflicts}
