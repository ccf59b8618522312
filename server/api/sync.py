"""Sync endpoints (push, pull): see docs/PROTOCOL.md. The protocol lives in sync/; storage in sync_store."""
from flask import Blueprint, current_app, request
from flask_jwt_extended import current_user
from marshmallow import fields

from sync import ProtocolError, answer_replay, apply_push, compute_pull, parse_pull, parse_push, request_digest

from .. import audit
from ..auth import ALL_ROLES, roles_required
from ..errors import ApiError, error_response
from ..extensions import compress, db
from ..models import FIELD_ROLES
from ..schemas import StrictSchema
from ..sync_store import SqlStore, principal_for

bp = Blueprint("sync", __name__, url_prefix="/api/sync")


class PushResponseSchema(StrictSchema):
    last_applied = fields.Integer()
    results = fields.List(fields.Dict())


class PullResponseSchema(StrictSchema):
    cursor = fields.String()
    has_more = fields.Boolean()
    reset = fields.Boolean()
    last_applied = fields.Integer()
    scope = fields.Dict()
    format = fields.Integer(metadata={"description": "2 when asked for; absent in format 1"})
    progress = fields.Dict(allow_none=True)
    fields_ = fields.Dict(data_key="fields", metadata={"description": "format 2: entity -> field names"})
    changes = fields.List(fields.Raw(), metadata={"description": "format 1: objects; format 2: rows"})


@bp.errorhandler(ProtocolError)
def _protocol_error(e: ProtocolError):
    db.session.rollback()
    return error_response(e.status, e.code, e.message, e.details)


def _raw_body() -> bytes:
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "Le corps doit être du JSON (application/json).")
    # A declared length over MAX_CONTENT_LENGTH raises 413 here. Chunked: werkzeug cuts the stream at the limit
    # without a word, and a cut body must be a 413, not a 400.
    raw = request.get_data(cache=True)
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if request.content_length is None and limit and len(raw) >= limit:
        raise ApiError(413, "payload_too_large", "Requête trop volumineuse.")
    return raw


def _body():
    _raw_body()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "Le corps n'est pas un objet JSON valide.")
    return body


@bp.post("/push")
@roles_required(*FIELD_ROLES)
def push():
    """Apply a device's numbered mutations exactly once (docs/PROTOCOL.md, Push).
    ---
    post:
      tags: [sync]
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              required: [client_id, mutations]
              properties:
                client_id: {type: string, format: uuid}
                app_version: {type: string, maxLength: 40}
                pending: {type: integer, minimum: 0, maximum: 10000000}
                mutations:
                  type: array
                  maxItems: 500
                  description: numbered n, n+1, ... (docs/PROTOCOL.md); args are checked per op
                  items:
                    type: object
                    additionalProperties: false
                    required: [n, op, at, args]
                    properties:
                      n: {type: integer, minimum: 1}
                      op: {type: string}
                      at: {type: string, format: date-time}
                      args: {type: object}
      responses:
        200: {content: {application/json: {schema: PushResponseSchema}}}
        403: {content: {application/json: {schema: ErrorSchema}}}
        409: {content: {application/json: {schema: ErrorSchema}}}
        413: {content: {application/json: {schema: ErrorSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    store, principal = SqlStore(db.session), principal_for(current_user)
    digest = request_digest(_raw_body())
    # The same bytes as a push already applied (a phone sending again after a lost answer): its receipt answers.
    result = answer_replay(store, principal, digest)
    if result is None:
        req = parse_push(_body(), current_app.config["SYNC_MAX_MUTATIONS"])
        result = apply_push(store, principal, req, digest)
    db.session.commit()
    return current_app.response_class(result.to_json(), mimetype="application/json")


@bp.post("/pull")
@compress.compressed()  # a page of 2,000 records: ~800 kB as JSON, ~10x less compressed
@roles_required(*ALL_ROLES)
def pull():
    """A page of the changes of the user's sites after a cursor (docs/PROTOCOL.md, Pull).
    ---
    post:
      tags: [sync]
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              required: [client_id]
              properties:
                client_id: {type: string, format: uuid}
                cursor: {type: string, nullable: true, maxLength: 500, description: "opaque: the one the last page gave"}
                limit: {type: integer, minimum: 1, maximum: 2000}
                format: {type: integer, enum: [1, 2], default: 1, description: "2: compact rows (PROTOCOL.md)"}
      responses:
        200: {content: {application/json: {schema: PullResponseSchema}}}
        403: {content: {application/json: {schema: ErrorSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    cfg = current_app.config
    client_id, cursor, limit, page_format = parse_pull(_body(), cfg["SYNC_PULL_MAX_LIMIT"],
                                                      cfg["SYNC_PULL_DEFAULT_LIMIT"])
    result = compute_pull(SqlStore(db.session), principal_for(current_user), client_id, cursor, limit, page_format)
    residents = result.delivered.get("resident", 0)
    if residents:  # one audit row per page that delivers residents, with counts (server/audit.py)
        audit.record("sync.pull", f"device:{client_id}", {"residents": residents, "reset": result.reset})
    db.session.commit()
    # Format 2: the changes are stored JSON rows, joined into the body as they are, never parsed and encoded again.
    return current_app.response_class(result.to_json(), mimetype="application/json")
