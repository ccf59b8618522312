"""Head office runs the agenda: create, edit and cancel events. Each change takes a seq (devices pull it), is
audited, and moves the residents' reminders (server/push: planned, re-planned, a moved or cancelled notice)."""
import logging
from datetime import datetime, timezone

import sqlalchemy as sa
from flask import Blueprint, request
from flask_jwt_extended import current_user
from marshmallow import ValidationError, fields, validate, validates_schema

from .. import audit, push, tasks
from ..auth import roles_required
from ..database import next_seq
from ..errors import ApiError
from ..extensions import db
from ..models import EVENT_KINDS, REVIEW_ROLES, Event, event_sites
from ..schemas import Page, Paged, StrictSchema, Text
from .common import load_args, load_json, paginate
from .users import _sites  # sites by id, a 422 on site_ids for one unknown

bp = Blueprint("events_admin", __name__, url_prefix="/api/agenda/events")
log = logging.getLogger("palier.agenda")

ENDS_AFTER_STARTS = "La fin doit être après le début."


class AdminEventSchema(StrictSchema):
    id = fields.UUID()
    title = fields.String()
    kind = fields.String()
    description = fields.String()
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()
    place = fields.String()
    status = fields.String(metadata={"description": "scheduled or cancelled"})
    site_ids = fields.List(fields.UUID())
    created_by = fields.UUID(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class AdminEventPageSchema(Paged):
    items = fields.List(fields.Nested(AdminEventSchema))


class AdminEventQuerySchema(Page):
    site_id = fields.UUID()
    start = fields.AwareDateTime(data_key="from", metadata={"description": "events not over at this time"})
    end = fields.AwareDateTime(data_key="to", metadata={"description": "events starting by this time"})
    include_cancelled = fields.Boolean(load_default=False)


class EventCreateSchema(StrictSchema):
    title = Text(max_length=200, min_length=1, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(EVENT_KINDS, error="Type d'événement inconnu."))
    site_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(
        min=1, max=200, error="Choisissez entre {min} et {max} sites."))
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)
    place = Text(max_length=200, load_default="")
    description = Text(max_length=5000, load_default="")

    @validates_schema
    def _ends_after_starts(self, data, partial=False, **_):
        if "starts_at" in data and "ends_at" in data and data["ends_at"] <= data["starts_at"]:
            raise ValidationError(ENDS_AFTER_STARTS, "ends_at")


class EventUpdateSchema(EventCreateSchema):
    """Any of the fields; the status changes only through the cancel route."""


def _event(event_id) -> Event:
    ev = db.session.get(Event, event_id)
    if ev is None or ev.deleted:
        raise ApiError(404)
    return ev


def _send_soon(planned: int) -> None:
    """Notices go out without waiting for the minute's tick. The change is committed already: a queue that is
    down must not fail the request (the tick sends them anyway)."""
    if not planned:
        return
    try:
        tasks.send_due_task()
    except Exception:  # noqa: BLE001 - any failure of the queue; logged, never the request's
        log.warning("agenda: the send job could not be queued; the periodic tick will send", exc_info=True)


@bp.get("")
@roles_required(*REVIEW_ROLES)
def list_events():
    """The agenda for head office: every site, paged, by start; cancelled events on request.
    ---
    get:
      tags: [agenda]
      parameters: [{in: query, schema: AdminEventQuerySchema}]
      responses:
        200: {content: {application/json: {schema: AdminEventPageSchema}}}
    """
    args = load_args(AdminEventQuerySchema())
    q = sa.select(Event).where(Event.deleted.is_(False)).order_by(Event.starts_at, Event.id)
    if "site_id" in args:
        q = q.where(Event.id.in_(sa.select(event_sites.c.event_id).where(event_sites.c.site_id == args["site_id"])))
    if "start" in args:
        q = q.where(Event.ends_at > args["start"])
    if "end" in args:
        q = q.where(Event.starts_at <= args["end"])
    if not args["include_cancelled"]:
        q = q.where(Event.status == "scheduled")
    return paginate(q, args["page"], args["per_page"], AdminEventSchema())


@bp.post("")
@roles_required(*REVIEW_ROLES)
def create_event():
    """Create an event; its reminders are planned for the sites' current subscribers.
    ---
    post:
      tags: [agenda]
      requestBody: {content: {application/json: {schema: EventCreateSchema}}}
      responses:
        201: {content: {application/json: {schema: AdminEventSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    data = load_json(EventCreateSchema())
    sites = _sites(data.pop("site_ids"))
    ev = Event(**data, status="scheduled", created_by=current_user.id, seq=next_seq(db.session))
    ev.sites = sites
    db.session.add(ev)
    db.session.flush()
    planned = push.schedule_for_event(ev)
    audit.record("event.create", ev.id, {"kind": ev.kind, "site_ids": ev.site_ids, "starts_at": ev.starts_at,
                                         "reminders_planned": planned})
    db.session.commit()
    _send_soon(planned)
    return AdminEventSchema().dump(ev), 201


@bp.patch("/<uuid:event_id>")
@roles_required(*REVIEW_ROLES)
def update_event(event_id):
    """Edit an event. A new time re-plans its pending reminders and tells those already reminded (one 'moved'
    notice); a site or kind it no longer has drops theirs.
    ---
    patch:
      tags: [agenda]
      parameters: [{in: path, name: event_id, required: true, schema: {type: string, format: uuid}}]
      requestBody: {content: {application/json: {schema: EventUpdateSchema}}}
      responses:
        200: {content: {application/json: {schema: AdminEventSchema}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
        409: {content: {application/json: {schema: ErrorSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    data = load_json(EventUpdateSchema(), partial=True)
    seq = next_seq(db.session)  # the sequence lock first, as every writer of synced rows
    ev = _event(event_id)
    if ev.status == "cancelled":
        raise ApiError(409, "event_cancelled", "Cet événement est annulé : il ne peut plus être modifié.")
    starts, ends = data.get("starts_at", ev.starts_at), data.get("ends_at", ev.ends_at)
    if ends <= starts:
        raise ApiError(422, "validation_error", "Données invalides.", {"ends_at": [ENDS_AFTER_STARTS]})
    before = {"starts_at": ev.starts_at, "ends_at": ev.ends_at, "kind": ev.kind, "site_ids": set(ev.site_ids),
              "title": ev.title, "place": ev.place, "description": ev.description}
    if "site_ids" in data:
        ev.sites = _sites(data.pop("site_ids"))
    for field, value in data.items():
        setattr(ev, field, value)
    after = {**{k: getattr(ev, k) for k in before}, "site_ids": set(ev.site_ids)}
    changed = sorted(k for k in before if before[k] != after[k])
    if not changed:
        db.session.rollback()  # nothing to tell devices: no seq spent
        return AdminEventSchema().dump(_event(event_id))
    ev.seq = seq
    planned = 0
    if {"starts_at", "ends_at", "kind", "site_ids"} & set(changed):
        planned = push.reschedule_event(ev, previous_starts_at=before["starts_at"])
    details = {"changed": changed, "reminders_planned": planned}
    if "starts_at" in changed:
        details.update(previous_starts_at=before["starts_at"], starts_at=ev.starts_at)
    audit.record("event.update", ev.id, details)
    db.session.commit()
    _send_soon(planned)
    return AdminEventSchema().dump(ev)


@bp.post("/<uuid:event_id>/cancel")
@roles_required(*REVIEW_ROLES)
def cancel_event(event_id):
    """Cancel an event: it stays on the agenda as cancelled; pending reminders are dropped and each subscriber
    reminded or waiting for a reminder gets one cancellation notice. Cancelling again changes nothing. No body.
    ---
    post:
      tags: [agenda]
      parameters: [{in: path, name: event_id, required: true, schema: {type: string, format: uuid}}]
      responses:
        200: {content: {application/json: {schema: AdminEventSchema}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
    """
    load_args()
    if request.get_data():
        load_json(StrictSchema())  # an empty object at most
    seq = next_seq(db.session)
    ev = _event(event_id)
    if ev.status == "cancelled":
        db.session.rollback()
        return AdminEventSchema().dump(_event(event_id))
    ev.status, ev.seq = "cancelled", seq
    notices = push.cancel_event(ev, datetime.now(timezone.utc))
    audit.record("event.cancel", ev.id, {"notices_planned": notices, "starts_at": ev.starts_at})
    db.session.commit()
    _send_soon(notices)
    return AdminEventSchema().dump(ev)
