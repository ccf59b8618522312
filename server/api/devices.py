"""The state of each field device, so that head office spots a phone that has not synced for days."""
from flask import Blueprint, current_app
from marshmallow import fields, validate

from .. import office
from ..auth import roles_required
from ..models import REVIEW_ROLES
from ..schemas import StrictSchema
from .common import load_args

bp = Blueprint("devices", __name__, url_prefix="/api/devices")

DEFAULT_STALE_DAYS = 3


class DeviceArgsSchema(StrictSchema):
    stale_days = fields.Integer(validate=validate.Range(min=1, max=365),
                                metadata={"description": "days without a sync that make a device stale "
                                                         "(default: DEVICE_STALE_DAYS, 3)"})


class DeviceUserSchema(StrictSchema):
    id = fields.UUID()
    name = fields.String(metadata={"description": "display name"})
    email = fields.String()
    role = fields.String()
    active = fields.Boolean()


class DeviceSiteSchema(StrictSchema):
    id = fields.UUID()
    code = fields.String()
    name = fields.String()


class DeviceSchema(StrictSchema):
    client_id = fields.UUID()
    user = fields.Nested(DeviceUserSchema)
    sites = fields.List(fields.Nested(DeviceSiteSchema), metadata={"description": "the user's sites"})
    app_version = fields.String(metadata={"description": "as the device reported it at its last push"})
    pending_reported = fields.Integer(metadata={"description": "mutations waiting on the device at its last push"})
    last_applied = fields.Integer()
    last_push_at = fields.AwareDateTime(allow_none=True)
    last_pull_at = fields.AwareDateTime(allow_none=True)
    last_sync_at = fields.AwareDateTime(allow_none=True)
    days_since_sync = fields.Integer(allow_none=True)
    stale = fields.Boolean()
    registered_at = fields.AwareDateTime()


@bp.get("")
@roles_required(*REVIEW_ROLES)
def list_devices():
    """Every field device, stalest first (never synced, then the oldest last sync).
    ---
    get:
      tags: [devices]
      parameters: [{in: query, schema: DeviceArgsSchema}]
      responses:
        200: {content: {application/json: {schema: {type: array, items: DeviceSchema}}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    args = load_args(DeviceArgsSchema())
    stale_days = args.get("stale_days", current_app.config.get("DEVICE_STALE_DAYS", DEFAULT_STALE_DAYS))
    return DeviceSchema(many=True).dump(office.devices(stale_days))
