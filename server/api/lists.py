"""Head office's lists: visits, residents (search), events and their attendance, engagements; paged, newest first."""
from flask import Blueprint
from marshmallow import ValidationError, fields, validate, validates_schema

from .. import audit, office
from ..auth import roles_required
from ..errors import ApiError
from ..extensions import db
from ..models import ENGAGEMENT_STATUSES, EVENT_KINDS, REVIEW_ROLES, VISIT_OUTCOMES, Event
from ..schemas import Page, Paged, StrictSchema, Text
from .common import load_args
from .residents import ResidentSchema

bp = Blueprint("lists", __name__, url_prefix="/api/lists")

MAX_PER_PAGE = 200


# --- filters: the same for a list and its export (exports.py), paging for lists only ----------------------------

class _Range(StrictSchema):
    date_from = fields.Date(data_key="from", metadata={"description": "first Paris calendar day, YYYY-MM-DD"})
    date_to = fields.Date(data_key="to", metadata={"description": "last Paris calendar day, YYYY-MM-DD"})

    @validates_schema
    def _ordered(self, data, **_):
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise ValidationError("La date de début suit la date de fin.", "from")


class VisitFiltersSchema(_Range):
    site_id = fields.UUID()
    outcome = fields.String(validate=validate.OneOf(VISIT_OUTCOMES))
    user_id = fields.UUID()


class ResidentFiltersSchema(StrictSchema):
    q = Text(max_length=100, metadata={"description": "words of a name, a building, a door or a landlord ref"})
    site_id = fields.UUID()
    action_id = fields.UUID()
    engaged = fields.Boolean(metadata={"description": "engaged (true) or not (false) today, as the dashboard counts"})


class EventFiltersSchema(_Range):
    site_id = fields.UUID()
    kind = fields.String(validate=validate.OneOf(EVENT_KINDS))


class EngagementFiltersSchema(_Range):
    """from and to bound the day the engagement started."""
    site_id = fields.UUID()
    action_id = fields.UUID()
    status = fields.String(validate=validate.OneOf(ENGAGEMENT_STATUSES))


FILTERS = {"visits": VisitFiltersSchema, "residents": ResidentFiltersSchema, "events": EventFiltersSchema,
           "engagements": EngagementFiltersSchema}


class Paging(Page):
    """schemas.Page with the head-office lists' own ceiling (MAX_PER_PAGE)."""
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class OfficeVisitListArgsSchema(VisitFiltersSchema, Paging):
    pass


class OfficeResidentListArgsSchema(ResidentFiltersSchema, Paging):
    pass


class OfficeEventListArgsSchema(EventFiltersSchema, Paging):
    pass


class OfficeEngagementListArgsSchema(EngagementFiltersSchema, Paging):
    pass


# --- answers ------------------------------------------------------------------------------------------------------

class _Place(StrictSchema):
    """Where a row lives: its site and household (the door knocked)."""
    site_id = fields.UUID()
    site_code = fields.String()
    site_name = fields.String()
    household_id = fields.UUID()
    building = fields.String()
    staircase = fields.String()
    floor = fields.String()
    door = fields.String()
    landlord_ref = fields.String()


class OfficeVisitItemSchema(_Place):
    id = fields.UUID()
    visited_at = fields.AwareDateTime(metadata={"description": "the device's capture time"})
    received_at = fields.AwareDateTime()
    clock_suspect = fields.Boolean()
    outcome = fields.String()
    resident_id = fields.UUID(allow_none=True)
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    user_id = fields.UUID(allow_none=True)
    user_name = fields.String(allow_none=True)
    interests = fields.List(fields.String())
    needs = fields.List(fields.String())
    follow_up = fields.Boolean()
    consent_recontact = fields.Boolean()
    note = fields.String()


class OfficeResidentItemSchema(ResidentSchema, _Place):
    """A resident as the field API gives it (duplicate_of: a suspected duplicate waiting for review), with the
    household's place and whether the person is engaged today."""
    engaged = fields.Boolean(metadata={"description": "engaged today, as the dashboard counts"})
    created_at = fields.AwareDateTime()


class OfficeEventItemSchema(StrictSchema):
    event_id = fields.UUID()
    title = fields.String()
    kind = fields.String()
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()
    place = fields.String()
    status = fields.String()
    sites = fields.List(fields.String(), metadata={"description": "site names"})
    named_attendance = fields.Integer(metadata={"description": "named check-ins (not deleted)"})
    head_count = fields.Integer(metadata={"description": "sum of the head counts taken (not deleted)"})


class OfficeEngagementItemSchema(StrictSchema):
    id = fields.UUID()
    resident_id = fields.UUID()
    first_name = fields.String()
    last_name = fields.String()
    action_id = fields.UUID()
    action_name = fields.String()
    site_id = fields.UUID()
    site_code = fields.String()
    site_name = fields.String()
    role = fields.String()
    status = fields.String()
    started_on = fields.Date()
    ended_on = fields.Date(allow_none=True)
    created_at = fields.AwareDateTime()


class OfficeVisitPageSchema(Paged):
    items = fields.List(fields.Nested(OfficeVisitItemSchema))


class OfficeResidentPageSchema(Paged):
    items = fields.List(fields.Nested(OfficeResidentItemSchema))


class OfficeEventPageSchema(Paged):
    items = fields.List(fields.Nested(OfficeEventItemSchema))


class OfficeEngagementPageSchema(Paged):
    items = fields.List(fields.Nested(OfficeEngagementItemSchema))


class AttendeeSchema(StrictSchema):
    id = fields.UUID()
    resident_id = fields.UUID()
    first_name = fields.String()
    last_name = fields.String()
    site_id = fields.UUID()
    site_name = fields.String()
    checked_in_at = fields.AwareDateTime()
    clock_suspect = fields.Boolean()


class HeadCountItemSchema(StrictSchema):
    id = fields.UUID()
    category = fields.String()
    count = fields.Integer()
    counted_at = fields.AwareDateTime()
    site_id = fields.UUID()
    site_name = fields.String()
    user_name = fields.String(allow_none=True)


class AttendanceSchema(StrictSchema):
    event_id = fields.UUID()
    title = fields.String()
    kind = fields.String()
    starts_at = fields.AwareDateTime()
    status = fields.String()
    sites = fields.List(fields.String())
    named_attendance = fields.Integer()
    head_count = fields.Integer()
    head_count_by_category = fields.Dict(keys=fields.String(), values=fields.Integer())
    items = fields.List(fields.Nested(AttendeeSchema), metadata={"description": "named check-ins"})
    head_counts = fields.List(fields.Nested(HeadCountItemSchema))


AUDITED = ("visits", "residents", "engagements")  # lists naming residents: reads of personal data


def _page(kind, args_schema, page_schema):
    args = load_args(args_schema())
    if kind in AUDITED:
        audit.lock_for_write()
    result = office.page(kind, office.Filters.from_args(args), args["page"], args["per_page"])
    if kind in AUDITED:
        # Traced like the exports, with ids and counts only.
        audit.record(f"{kind}.list", kind, {"filters": _filters_for_audit(args), "rows": len(result["items"])})
        db.session.commit()
    return page_schema().dump(result)


def _filters_for_audit(args: dict) -> dict:
    # The search words may be a resident's name: the audit log keeps that there was one, never the words.
    return {k: ("<recherche>" if k == "q" else v) for k, v in args.items()}


def _list_route(kind: str, args_schema, page_schema, summary: str) -> None:
    """One paged list view (same shape for every kind), documented in OpenAPI by its generated docstring."""

    def view():
        return _page(kind, args_schema, page_schema)

    view.__name__ = kind
    view.__doc__ = f"""{summary}
    ---
    get:
      tags: [lists]
      parameters: [{{in: query, schema: {args_schema.__name__}}}]
      responses:
        200: {{content: {{application/json: {{schema: {page_schema.__name__}}}}}}}
        422: {{content: {{application/json: {{schema: ErrorSchema}}}}}}
    """
    bp.get(f"/{kind}")(roles_required(*REVIEW_ROLES)(view))


_list_route("visits", OfficeVisitListArgsSchema, OfficeVisitPageSchema,
            "Door-to-door visits, newest first (visited_at), filtered by site, days, outcome and staff member.")
_list_route("residents", OfficeResidentListArgsSchema, OfficeResidentPageSchema,
            "Residents (merged ones excluded), newest first; search on name (accents ignored), building, door.")
_list_route("events", OfficeEventListArgsSchema, OfficeEventPageSchema,
            "Agenda events, newest first, with their named attendance and head count.")
_list_route("engagements", OfficeEngagementListArgsSchema, OfficeEngagementPageSchema,
            "Engagements of residents in actions, newest first (started_on), by site, action, status and days.")


@bp.get("/events/<uuid:event_id>/attendance")
@roles_required(*REVIEW_ROLES)
def event_attendance(event_id):
    """The named check-ins and the head counts of one event.
    ---
    get:
      tags: [lists]
      responses:
        200: {content: {application/json: {schema: AttendanceSchema}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
    """
    load_args()
    audit.lock_for_write()
    event = db.session.get(Event, event_id)
    if event is None or event.deleted:
        raise ApiError(404)
    result = office.attendance(event)
    audit.record("attendance.list", event.id, {"rows": len(result["items"])})
    db.session.commit()
    return AttendanceSchema().dump(result)
