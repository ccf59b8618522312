"""Progress of the programme toward its goal."""
from flask import Blueprint
from marshmallow import fields

from ..auth import ALL_ROLES, roles_required
from ..schemas import StrictSchema
from .. import services
from .common import load_args

bp = Blueprint("programme", __name__, url_prefix="/api/programme")


class ProgressSchema(StrictSchema):
    engaged = fields.Integer()
    recorded = fields.Integer()
    baseline = fields.Integer()
    goal = fields.Integer()
    as_of = fields.AwareDateTime()


@bp.get("/progress")
@roles_required(*ALL_ROLES)
def get_progress():
    """Engaged residents (distinct people engaged today, plus the baseline) against the goal.
    ---
    get:
      tags: [programme]
      responses:
        200: {content: {application/json: {schema: ProgressSchema}}}
    """
    load_args()
    return ProgressSchema().dump(services.progress())
