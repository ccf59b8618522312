"""The public agenda of a site and its Web Push subscriptions (no login), and the staff's subscription QR code."""
import io
from datetime import datetime, timezone
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import click
import segno
import sqlalchemy as sa
from flask import Blueprint, Response, request
from flask_jwt_extended import current_user
from marshmallow import ValidationError, fields, validate, validates, validates_schema

from .. import push, tasks
from ..auth import ALL_ROLES, REVIEW_ROLES, get_scoped_or_404, roles_required
from ..errors import ApiError
from ..extensions import db
from ..models import EVENT_KINDS, Event, PushAlert, PushSubscription, Site
from ..push import keys, planning
from ..push.subscriptions import token_hash
from ..schemas import StrictSchema, Text
from .common import load_json

# cli_group=None: `flask --app server push-keys`, not `flask agenda push-keys`.
bp = Blueprint("agenda", __name__, cli_group=None)
bp.record_once(lambda state: tasks.configure(state.app))

MAX_EVENTS = 100


# --- schemas --------------------------------------------------------------------------------------------------

class PublicEventSchema(StrictSchema):
    id = fields.UUID()
    title = fields.String()
    kind = fields.String()
    status = fields.String(metadata={"description": "scheduled or cancelled"})
    date = fields.String(metadata={"description": "local date (Europe/Paris), YYYY-MM-DD"})
    time = fields.String(metadata={"description": "local start time, HH:MM"})
    end_time = fields.String(metadata={"description": "local end time, HH:MM"})
    starts_at = fields.String(metadata={"description": "ISO 8601 with the local offset"})
    ends_at = fields.String()
    place = fields.String()
    description = fields.String()


class PublicAgendaSchema(StrictSchema):
    site = fields.Dict(metadata={"description": "code and name"})
    kinds = fields.List(fields.String())
    events = fields.List(fields.Nested(PublicEventSchema))


def _b64_len(value: str, size: int, name: str) -> None:
    try:
        raw = keys.b64url_decode(value)
    except (ValueError, TypeError):
        raise ValidationError(f"{name} : base64url attendu.")
    if len(raw) != size or (name == "p256dh" and raw[0] != 4):
        raise ValidationError(f"{name} : clé invalide.")


class SubscriptionKeysSchema(StrictSchema):
    p256dh = fields.String(required=True, validate=validate.Length(max=200))
    auth = fields.String(required=True, validate=validate.Length(max=100))

    @validates("p256dh")
    def _p256dh(self, value, **_):
        _b64_len(value, 65, "p256dh")

    @validates("auth")
    def _auth(self, value, **_):
        _b64_len(value, 16, "auth")


class BrowserSubscriptionSchema(StrictSchema):
    """PushSubscription.toJSON() as the browser gives it."""
    endpoint = fields.String(required=True, validate=validate.Length(max=1000))
    expirationTime = fields.Integer(allow_none=True, load_default=None)
    keys = fields.Nested(SubscriptionKeysSchema, required=True)

    @validates("endpoint")
    def _endpoint(self, value, **_):
        url = urlsplit(value)
        allowed_scheme = ("https", "http") if push.setting("PUSH_ALLOW_HTTP") else ("https",)
        host = url.hostname or ""
        hosts = push.setting("PUSH_ENDPOINT_HOSTS")
        if url.scheme not in allowed_scheme or not any(host == h or host.endswith("." + h) for h in hosts):
            raise ValidationError("Service de notification non reconnu.")


class SubscribeSchema(StrictSchema):
    subscription = fields.Nested(BrowserSubscriptionSchema, required=True)
    site_code = Text(max_length=40, min_length=1, required=True)
    kinds = fields.List(fields.String(validate=validate.OneOf(EVENT_KINDS, error="Type d'événement inconnu.")),
                        required=True, validate=validate.Length(min=1, error="Choisissez au moins un type."))
    consent = fields.Boolean(required=True, metadata={"description": "the resident ticked the consent text"})
    consent_text_version = Text(max_length=40, min_length=1, required=True)

    @validates_schema
    def _consent(self, data, **_):
        if data.get("consent") is not True:
            raise ValidationError("Le consentement explicite est nécessaire.", "consent")


class SubscribedSchema(StrictSchema):
    id = fields.UUID()
    site_code = fields.String()
    kinds = fields.List(fields.String())
    consent_at = fields.AwareDateTime()
    consent_text_version = fields.String()
    token = fields.String(metadata={"description": "keep it: it withdraws this consent"})
    unsubscribe_url = fields.String()


class UnsubscribeSchema(StrictSchema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=200))


class UnsubscribedSchema(StrictSchema):
    withdrawn_at = fields.AwareDateTime()


class RenewSchema(StrictSchema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=200),
                          metadata={"description": "the consent's unsubscribe token: proves this browser holds it"})
    subscription = fields.Nested(BrowserSubscriptionSchema, required=True)


class RenewedSchema(StrictSchema):
    site_code = fields.String()
    kinds = fields.List(fields.String())


class VapidKeySchema(StrictSchema):
    public_key = fields.String(metadata={"description": "applicationServerKey, base64url"})


class PushAlertSchema(StrictSchema):
    id = fields.UUID()
    push_service = fields.String()
    status = fields.Integer()
    count = fields.Integer()
    first_at = fields.AwareDateTime()
    last_at = fields.AwareDateTime()


# --- views ----------------------------------------------------------------------------------------------------

def _site_by_code(code: str) -> Site:
    site = db.session.execute(sa.select(Site).where(Site.code == code, Site.deleted.is_(False))).scalar_one_or_none()
    if site is None:
        raise ApiError(404, "site_not_found", "Site inconnu.")
    return site


def _public_event(ev: Event) -> dict:
    tz = ZoneInfo(push.setting("PUSH_TIMEZONE"))
    start, end = ev.starts_at.astimezone(tz), ev.ends_at.astimezone(tz)
    return {"id": ev.id, "title": ev.title, "kind": ev.kind, "status": ev.status, "date": start.date().isoformat(),
            "time": start.strftime("%H:%M"), "end_time": end.strftime("%H:%M"), "starts_at": start.isoformat(),
            "ends_at": end.isoformat(), "place": ev.place, "description": ev.description}


@bp.get("/api/public/sites/<code>/agenda")
def public_agenda(code):
    """Upcoming events of a site, for residents (no login, no personal data).
    ---
    get:
      tags: [agenda]
      security: []
      responses:
        200: {content: {application/json: {schema: PublicAgendaSchema}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
    """
    site = _site_by_code(code)
    q = (planning.events_of_site(site.id).where(Event.ends_at > datetime.now(timezone.utc))
         .order_by(Event.starts_at).limit(MAX_EVENTS))
    events = db.session.execute(q).scalars().all()
    return PublicAgendaSchema().dump({"site": {"code": site.code, "name": site.name}, "kinds": list(EVENT_KINDS),
                                      "events": [_public_event(ev) for ev in events]})


@bp.get("/api/public/sites/<code>/events/<uuid:event_id>")
def public_event(code, event_id):
    """One event of a site's agenda (the page a notification opens).
    ---
    get:
      tags: [agenda]
      security: []
      responses:
        200: {content: {application/json: {schema: PublicEventSchema}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
    """
    site = _site_by_code(code)
    ev = db.session.execute(planning.events_of_site(site.id).where(Event.id == event_id)).scalar_one_or_none()
    if ev is None:
        raise ApiError(404)
    return PublicEventSchema().dump(_public_event(ev))


@bp.get("/api/public/vapid-public-key")
def vapid_public_key():
    """The applicationServerKey the PWA passes to PushManager.subscribe().
    ---
    get:
      tags: [agenda]
      security: []
      responses:
        200: {content: {application/json: {schema: VapidKeySchema}}}
        503: {content: {application/json: {schema: ErrorSchema}}}
    """
    try:
        return VapidKeySchema().dump({"public_key": keys.settings()["public_key"]})
    except keys.PushNotConfigured:
        raise ApiError(503, "push_not_configured", "Les notifications ne sont pas configurées sur ce serveur.")


@bp.post("/api/public/subscriptions")
def subscribe():
    """Subscribe a browser to a site's reminders, with the resident's explicit consent (recorded with its time).
    ---
    post:
      tags: [agenda]
      security: []
      requestBody: {content: {application/json: {schema: SubscribeSchema}}}
      responses:
        201: {content: {application/json: {schema: SubscribedSchema}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    data = load_json(SubscribeSchema())
    site = _site_by_code(data["site_code"])
    b = data["subscription"]
    sub, token = push.subscribe(site, b["endpoint"], b["keys"]["p256dh"], b["keys"]["auth"], data["kinds"],
                                data["consent_text_version"])
    db.session.commit()
    return SubscribedSchema().dump({
        "id": sub.id, "site_code": site.code, "kinds": sub.kinds, "consent_at": sub.consent_at,
        "consent_text_version": sub.consent_text_version, "token": token,
        "unsubscribe_url": f"/agenda/{site.code}/unsubscribe#{token}"}), 201


@bp.post("/api/public/subscriptions/unsubscribe")
def unsubscribe():
    """Withdraw a consent with its token (one tap from a notification or the page). Idempotent.
    The token travels in the body, never in a URL that logs would keep.
    ---
    post:
      tags: [agenda]
      security: []
      requestBody: {content: {application/json: {schema: UnsubscribeSchema}}}
      responses:
        200: {content: {application/json: {schema: UnsubscribedSchema}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
    """
    data = load_json(UnsubscribeSchema())
    sub = push.unsubscribe(data["token"])
    if sub is None:
        raise ApiError(404, "unknown_token", "Lien de désabonnement inconnu.")
    db.session.commit()
    return UnsubscribedSchema().dump({"withdrawn_at": sub.withdrawn_at})


@bp.post("/api/public/subscriptions/renew")
def renew_subscription():
    """The browser's push service replaced its subscription ('pushsubscriptionchange' in the service worker): the
    consent moves to the new endpoint and keys. Kinds, consent time and a resident's link stay, and so does the
    token; re-subscribing instead would record a consent the resident did not give again and lose the link.
    ---
    post:
      tags: [agenda]
      security: []
      requestBody: {content: {application/json: {schema: RenewSchema}}}
      responses:
        200: {content: {application/json: {schema: RenewedSchema}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
        409: {content: {application/json: {schema: ErrorSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    data = load_json(RenewSchema())
    sub = db.session.execute(sa.select(PushSubscription).where(
        PushSubscription.token_hash == token_hash(data["token"])).with_for_update()).scalar_one_or_none()
    if sub is None or sub.withdrawn_at is not None:
        raise ApiError(404, "unknown_token", "Abonnement inconnu ou retiré.")
    b = data["subscription"]
    taken = db.session.execute(sa.select(PushSubscription.id).where(
        PushSubscription.site_id == sub.site_id, PushSubscription.endpoint == b["endpoint"],
        PushSubscription.id != sub.id)).first()
    if taken is not None:  # the resident already consented again from that new subscription
        raise ApiError(409, "already_subscribed", "Ce navigateur est déjà abonné aux rappels de ce site.")
    sub.endpoint, sub.p256dh, sub.auth = b["endpoint"], b["keys"]["p256dh"], b["keys"]["auth"]
    sub.failures, sub.last_failure_status, sub.last_failure_at = 0, None, None
    site = db.session.get(Site, sub.site_id)
    db.session.commit()
    return RenewedSchema().dump({"site_code": site.code, "kinds": sub.kinds})


@bp.get("/api/sites/<uuid:site_id>/subscribe-qr")
@roles_required(*ALL_ROLES)
def subscribe_qr(site_id):
    """An SVG QR code of the site's subscription page, for staff to show during a visit (own sites only).
    ---
    get:
      tags: [agenda]
      responses:
        200: {content: {image/svg+xml: {}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
    """
    site = get_scoped_or_404(Site, site_id, current_user, site_attr="id")
    base = (push.setting("PUBLIC_BASE_URL") or request.host_url).rstrip("/")
    out = io.BytesIO()
    segno.make(f"{base}/agenda/{site.code}", error="m").save(out, kind="svg", scale=8, border=2,
                                                             title=f"Agenda {site.name}")
    return Response(out.getvalue(), mimetype="image/svg+xml", headers={"Cache-Control": "private, max-age=3600"})


@bp.get("/api/push/alerts")
@roles_required(*REVIEW_ROLES)
def push_alerts():
    """Push services that refused our VAPID credentials (401/403), unresolved, for head office.
    ---
    get:
      tags: [agenda]
      responses:
        200: {content: {application/json: {schema: {type: array, items: PushAlertSchema}}}}
    """
    rows = db.session.execute(sa.select(PushAlert).where(PushAlert.resolved_at.is_(None))
                              .order_by(PushAlert.last_at.desc())).scalars().all()
    return PushAlertSchema(many=True).dump(rows)


# --- setup ----------------------------------------------------------------------------------------------------

@bp.cli.command("push-keys")
@click.option("--subject", default=keys.DEFAULT_SUBJECT, show_default=True,
              help="mailto: or https: contact that push services may use (VAPID sub).")
@click.option("--force", is_flag=True, help="Replace existing keys (every browser must subscribe again).")
def push_keys(subject, force):
    """Generate the VAPID key pair into instance/vapid.json (mode 600). Does nothing when it exists."""
    path = keys.key_file()
    if not subject.startswith(("mailto:", "https:")):
        raise click.BadParameter("mailto:… ou https:…", param_hint="--subject")
    if path.exists() and not force:
        click.echo(f"Clés VAPID déjà présentes : {path}")
        return
    created = keys.write_key_file(path, subject)
    click.echo(f"Clés VAPID écrites dans {path} (clé publique : {created['public_key']})")
