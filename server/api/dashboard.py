"""Head office's dashboard: engaged residents against the goal, per week, site and action; visits; events."""
from datetime import timedelta

from flask import Blueprint
from marshmallow import ValidationError, fields, validates_schema

from .. import office
from ..auth import roles_required
from ..models import REVIEW_ROLES
from ..schemas import StrictSchema
from .common import load_args
from .lists import OfficeEventItemSchema, _Range

bp = Blueprint("dashboard", __name__, url_prefix="/api/dashboard")


class DashboardArgsSchema(_Range):
    site_id = fields.UUID()
    action_id = fields.UUID(metadata={"description": "narrows the engaged figures (visits and events have no action)"})

    @validates_schema
    def _bounded(self, data, **_):
        to = data.get("date_to") or office.paris_today()
        frm = data.get("date_from") or to - timedelta(weeks=office.DEFAULT_WEEKS - 1)
        if frm > to:  # `from` alone, after today (the default `to`): _Range only compares two given dates
            raise ValidationError("La date de début suit la date de fin.", "from")
        if (to - frm).days > office.MAX_DAYS:
            raise ValidationError(f"Période de {office.MAX_DAYS} jours au plus.", "from")


class EngagedSchema(StrictSchema):
    total = fields.Integer(metadata={"description": "counted_residents plus the baseline when baseline_included"})
    counted_residents = fields.Integer(metadata={"description": "distinct people engaged on `to`"})
    pending_duplicates = fields.Integer(
        metadata={"description": "engaged resident records counted as another one until their review"})


class EngagedWeekSchema(StrictSchema):
    week = fields.String(metadata={"description": "ISO week, e.g. 2026-W45"})
    week_start = fields.Date()
    week_end = fields.Date(metadata={"description": "the day counted: the week's Sunday, or `to` for the last one"})
    engaged = fields.Integer(metadata={"description": "distinct people engaged on week_end"})
    total = fields.Integer(metadata={"description": "engaged plus the baseline when baseline_included"})


class SiteFigureSchema(StrictSchema):
    site_id = fields.UUID()
    site_code = fields.String()
    site_name = fields.String()
    engaged = fields.Integer()


class ActionFigureSchema(StrictSchema):
    action_id = fields.UUID()
    action_name = fields.String()
    engaged = fields.Integer()


class VisitWeekSchema(StrictSchema):
    week = fields.String()
    week_start = fields.Date()
    absent = fields.Integer()
    refused = fields.Integer()
    talked = fields.Integer()
    total = fields.Integer()


class DashboardSchema(StrictSchema):
    goal = fields.Integer()
    baseline = fields.Integer()
    baseline_included = fields.Boolean(
        metadata={"description": "false when filtered by site or action: the baseline has neither"})
    date_from = fields.Date(data_key="from")
    date_to = fields.Date(data_key="to")
    engaged = fields.Nested(EngagedSchema)
    engaged_weekly = fields.List(fields.Nested(EngagedWeekSchema))
    per_site = fields.List(fields.Nested(SiteFigureSchema))
    per_action = fields.List(fields.Nested(ActionFigureSchema))
    visits_weekly = fields.List(fields.Nested(VisitWeekSchema))
    events = fields.List(fields.Nested(OfficeEventItemSchema))
    as_of = fields.AwareDateTime()


@bp.get("")
@roles_required(*REVIEW_ROLES)
def get_dashboard():
    """Progress toward the goal and the field's activity (default: the last 26 weeks up to today, Paris days).
    ---
    get:
      tags: [dashboard]
      parameters: [{in: query, schema: DashboardArgsSchema}]
      responses:
        200: {content: {application/json: {schema: DashboardSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    args = load_args(DashboardArgsSchema())
    return DashboardSchema().dump(office.dashboard(office.Filters.from_args(args)))
