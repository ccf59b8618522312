"""Sites, actions and the agenda as the user may read them."""
import sqlalchemy as sa
from flask import Blueprint
from flask_jwt_extended import current_user
from marshmallow import fields

from ..auth import ALL_ROLES, get_scoped_or_404, roles_required, site_scope
from ..errors import ApiError
from ..extensions import db
from ..models import Action, Event, Site, event_sites
from ..schemas import StrictSchema
from .common import load_args

bp = Blueprint("catalogue", __name__, url_prefix="/api")


class SiteSchema(StrictSchema):
    id = fields.UUID()
    code = fields.String()
    name = fields.String()
    commune = fields.String()
    territory = fields.String()


class ActionSchema(StrictSchema):
    id = fields.UUID()
    code = fields.String()
    name = fields.String()
    description = fields.String()
    site_id = fields.UUID(allow_none=True)


class EventSchema(StrictSchema):
    id = fields.UUID()
    title = fields.String()
    kind = fields.String()
    description = fields.String()
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()
    place = fields.String()
    status = fields.String()
    site_ids = fields.List(fields.UUID())


class EventQuerySchema(StrictSchema):
    site_id = fields.UUID()
    start = fields.AwareDateTime(data_key="from")
    end = fields.AwareDateTime(data_key="to")


class ListOf(StrictSchema):
    items = fields.List(fields.Dict())


@bp.get("/sites")
@roles_required(*ALL_ROLES)
def list_sites():
    """The sites the user works on (every site for head office).
    ---
    get:
      tags: [catalogue]
      responses:
        200: {content: {application/json: {schema: {type: array, items: SiteSchema}}}}
        401: {content: {application/json: {schema: ErrorSchema}}}
    """
    load_args()
    q = sa.select(Site).where(Site.deleted.is_(False)).order_by(Site.name)
    scope = site_scope(current_user)
    if scope is not None:
        q = q.where(Site.id.in_(scope))
    return SiteSchema(many=True).dump(db.session.execute(q).scalars())


@bp.get("/sites/<uuid:site_id>")
@roles_required(*ALL_ROLES)
def get_site(site_id):
    """One site.
    ---
    get:
      tags: [catalogue]
      parameters: [{in: path, name: site_id, required: true, schema: {type: string, format: uuid}}]
      responses:
        200: {content: {application/json: {schema: SiteSchema}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
    """
    load_args()
    return SiteSchema().dump(get_scoped_or_404(Site, site_id, current_user, site_attr="id"))


@bp.get("/actions")
@roles_required(*ALL_ROLES)
def list_actions():
    """The actions open on the user's sites.
    ---
    get:
      tags: [catalogue]
      responses:
        200: {content: {application/json: {schema: {type: array, items: ActionSchema}}}}
    """
    load_args()
    q = sa.select(Action).where(Action.deleted.is_(False)).order_by(Action.name)
    scope = site_scope(current_user)
    if scope is not None:
        q = q.where(sa.or_(Action.site_id.is_(None), Action.site_id.in_(scope)))
    return ActionSchema(many=True).dump(db.session.execute(q).scalars())


def _events_query(user):
    q = sa.select(Event).where(Event.deleted.is_(False))
    scope = site_scope(user)
    if scope is not None:
        q = q.where(Event.id.in_(sa.select(event_sites.c.event_id).where(event_sites.c.site_id.in_(scope))))
    return q


@bp.get("/events")
@roles_required(*ALL_ROLES)
def list_events():
    """Agenda entries of the user's sites, optionally for one site and a period.
    ---
    get:
      tags: [catalogue]
      parameters: [{in: query, schema: EventQuerySchema}]
      responses:
        200: {content: {application/json: {schema: {type: array, items: EventSchema}}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    args = load_args(EventQuerySchema())
    q = _events_query(current_user).order_by(Event.starts_at)
    if "site_id" in args:
        q = q.where(Event.id.in_(sa.select(event_sites.c.event_id).where(event_sites.c.site_id == args["site_id"])))
    if "start" in args:
        q = q.where(Event.ends_at >= args["start"])
    if "end" in args:
        q = q.where(Event.starts_at <= args["end"])
    return EventSchema(many=True).dump(db.session.execute(q).scalars())


@bp.get("/events/<uuid:event_id>")
@roles_required(*ALL_ROLES)
def get_event(event_id):
    """One agenda entry.
    ---
    get:
      tags: [catalogue]
      parameters: [{in: path, name: event_id, required: true, schema: {type: string, format: uuid}}]
      responses:
        200: {content: {application/json: {schema: EventSchema}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
    """
    load_args()
    event = db.session.execute(_events_query(current_user).where(Event.id == event_id)).scalar_one_or_none()
    if event is None:
        raise ApiError(404)
    return EventSchema().dump(event)
