"""Residents' rights (access export, erasure), the audit log of personal data, and per-resident push links."""
import sqlalchemy as sa
from flask import Blueprint, request
from flask_jwt_extended import current_user
from marshmallow import fields, validate

from .. import audit, privacy, push
from ..auth import get_scoped_or_404, roles_required
from ..errors import error_response
from ..extensions import db
from ..models import FIELD_ROLES, REVIEW_ROLES, AuditLog, Resident, Site, User
from ..schemas import Page, Paged, StrictSchema, Text
from .common import load_args, load_json, page_window

bp = Blueprint("privacy", __name__)

# Erasure cannot be undone and reaches every table and every phone: the admin (who answers the data protection
# officer's requests) does it; head office can read and export to prepare the answer.
ERASE_ROLES = ("admin",)


class EraseSchema(StrictSchema):
    reason = Text(max_length=500, min_length=3, required=True,
                  metadata={"description": "why (e.g. the request's date and channel); names are redacted"})


class ErasedSchema(StrictSchema):
    resident_id = fields.UUID()
    erased = fields.Dict(keys=fields.String(), values=fields.Integer())


class AuditQuerySchema(Page):
    user_id = fields.UUID()
    action = Text(max_length=60)
    from_ = fields.AwareDateTime(data_key="from")
    to = fields.AwareDateTime()


class AuditEntrySchema(StrictSchema):
    id = fields.Integer()
    at = fields.AwareDateTime()
    user_id = fields.UUID(allow_none=True)
    user_email = fields.String(allow_none=True)
    action = fields.String()
    subject = fields.String()
    details = fields.Dict()


class AuditPageSchema(Paged):
    items = fields.List(fields.Nested(AuditEntrySchema))


class PushLinkSchema(StrictSchema):
    token = fields.String(metadata={"description": "single use; shown once as a QR code"})
    url = fields.String()
    expires_at = fields.AwareDateTime()


class LinkSubscriptionSchema(StrictSchema):
    unsubscribe_token = fields.String(required=True, validate=validate.Length(min=1, max=200))
    link_token = fields.String(required=True, validate=validate.Length(min=1, max=200))


class LinkedSchema(StrictSchema):
    linked = fields.Boolean()


@bp.errorhandler(privacy.PrivacyError)
def _privacy_error(e: privacy.PrivacyError):
    db.session.rollback()
    return error_response(e.status, e.code, e.message, e.details)


def _resident(resident_id) -> Resident:
    """A resident of the caller's sites, erased or deleted ones included (a request may come after a deletion)."""
    return privacy.follow_merges(get_scoped_or_404(Resident, resident_id, current_user, include_deleted=True))


@bp.get("/api/privacy/residents/<uuid:resident_id>/export")
@roles_required(*REVIEW_ROLES)
def export_resident(resident_id):
    """Right of access: everything held about one resident (notes included), as JSON. Audited.
    ---
    get:
      tags: [privacy]
      responses:
        200: {content: {application/json: {schema: {type: object}}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
    """
    load_args()
    audit.lock_for_write()
    resident = _resident(resident_id)
    out = privacy.access_export(resident)
    audit.record("privacy.export", f"resident:{resident.id}", {"sections": {
        k: len(v) for k, v in out.items() if isinstance(v, list)}})
    db.session.commit()
    return out


@bp.post("/api/privacy/residents/<uuid:resident_id>/erase")
@roles_required(*ERASE_ROLES)
def erase_resident(resident_id):
    """Right to erasure: the resident leaves every table and, at their next pull, every phone. Audited without
    their personal data.
    ---
    post:
      tags: [privacy]
      requestBody: {content: {application/json: {schema: EraseSchema}}}
      responses:
        200: {content: {application/json: {schema: ErasedSchema}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
        409: {content: {application/json: {schema: ErrorSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    data = load_json(EraseSchema())
    resident = _resident(resident_id)
    counts = privacy.erase(resident, current_user, data["reason"])
    db.session.commit()
    return ErasedSchema().dump({"resident_id": resident.id, "erased": counts})


@bp.get("/api/privacy/audit")
@roles_required("admin")
def audit_log():
    """Who read, exported or erased personal data (and other audited actions), newest first.
    ---
    get:
      tags: [privacy]
      parameters: [{in: query, schema: AuditQuerySchema}]
      responses:
        200: {content: {application/json: {schema: AuditPageSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    args = load_args(AuditQuerySchema())
    q = sa.select(AuditLog, User.email).outerjoin(User, User.id == AuditLog.user_id)
    if "user_id" in args:
        q = q.where(AuditLog.user_id == args["user_id"])
    if args.get("action"):
        q = q.where(AuditLog.action == args["action"])
    if "from_" in args:
        q = q.where(AuditLog.at >= args["from_"])
    if "to" in args:
        q = q.where(AuditLog.at < args["to"])
    q = q.order_by(AuditLog.at.desc(), AuditLog.id.desc())
    page, per_page = args["page"], args["per_page"]
    total, window = page_window(q, page, per_page)
    rows = db.session.execute(window).all()
    items = [{**{c: getattr(a, c) for c in ("id", "at", "user_id", "action", "subject", "details")},
              "user_email": email} for a, email in rows]
    return AuditPageSchema().dump({"items": items, "page": page, "per_page": per_page, "total": total})


@bp.post("/api/privacy/residents/<uuid:resident_id>/push-link")
@roles_required(*FIELD_ROLES)
def push_link(resident_id):
    """A single-use link (shown as a QR code during a visit) that ties the resident's reminder subscription to
    them, so that erasing them also deletes it. Own sites only.
    ---
    post:
      tags: [privacy]
      responses:
        201: {content: {application/json: {schema: PushLinkSchema}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
    """
    resident = get_scoped_or_404(Resident, resident_id, current_user)
    link, token = privacy.create_push_link(resident, current_user)
    site = db.session.get(Site, resident.site_id)
    audit.record("privacy.push_link", f"resident:{resident.id}", {})
    db.session.commit()
    base = (push.setting("PUBLIC_BASE_URL") or request.host_url).rstrip("/")
    # The token rides in the fragment: never sent to a server, never in an access log.
    return PushLinkSchema().dump({"token": token, "url": f"{base}/agenda/{site.code}#lien={token}",
                                  "expires_at": link.expires_at}), 201


@bp.post("/api/public/subscriptions/link")
def link_subscription():
    """Tie this browser's subscription (proved by its unsubscribe token) to the resident of a push link.
    ---
    post:
      tags: [privacy]
      security: []
      requestBody: {content: {application/json: {schema: LinkSubscriptionSchema}}}
      responses:
        200: {content: {application/json: {schema: LinkedSchema}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
        409: {content: {application/json: {schema: ErrorSchema}}}
    """
    data = load_json(LinkSubscriptionSchema())
    privacy.link_subscription(data["unsubscribe_token"], data["link_token"])
    db.session.commit()
    return LinkedSchema().dump({"linked": True})
