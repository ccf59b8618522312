"""Sync endpoints (push, pull): see docs/PROTOCOL.md. The protocol lives in sync/; storage in sync_store."""
import contextlib
import time
import uuid

import brotli
from flask import Blueprint, current_app, request, stream_with_context
from flask_compress.compat import compression
from flask_jwt_extended import current_user
from marshmallow import fields

from sync import ProtocolError, answer_replay, apply_push, parse_pull, parse_push, pull_pages, request_digest

from .. import audit
from ..auth import ALL_ROLES, roles_required, token_user_again
from ..database import reads_in_autocommit
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
                pages: {type: integer, minimum: 1, maximum: 20, default: 1,
                        description: "format 2 only: up to this many pages in one answer, one per line (NDJSON)"}
      responses:
        200:
          content:
            application/json: {schema: PullResponseSchema}
            application/x-ndjson:
              schema: {type: string, description: "pages > 1: one page (PullResponseSchema) per line"}
        403: {content: {application/json: {schema: ErrorSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    cfg = current_app.config
    req = parse_pull(_body(), cfg["SYNC_PULL_MAX_LIMIT"], cfg["SYNC_PULL_DEFAULT_LIMIT"], cfg["SYNC_PULL_MAX_PAGES"])
    principal = principal_for(current_user)
    pages = pull_pages(SqlStore(db.session), principal, req.client_id, req.cursor, req.limit, req.page_format,
                       req.pages)
    first = next(pages)
    audited = _PullAudit(req.client_id, principal.user_id, first.reset)
    audited.page(first)
    db.session.commit()
    if req.pages == 1:
        # Format 2: the changes are stored JSON rows, joined into the body as they are, never parsed and encoded again.
        return current_app.response_class(first.to_json(), mimetype="application/json")
    encoding = request.accept_encodings.best_match(STREAM_ENCODINGS)
    lines = _stream(first, pages, audited, principal)
    resp = current_app.response_class(stream_with_context(_encoded(lines, encoding) if encoding else lines),
                                      mimetype="application/x-ndjson")
    if encoding:
        resp.headers["Content-Encoding"] = encoding  # flask-compress leaves an encoded answer as it is
    resp.vary.add("Accept-Encoding")
    return resp


STREAM_ENCODINGS = ("zstd", "br")  # what Chromium accepts and a compressor can flush at each line (gzip: never)


def _encoded(lines, encoding: str):
    """A streamed answer's lines compressed as they go, the compressor flushed at the end of each: a phone
    decompresses a whole page as soon as its line arrived. flask-compress's own streaming keeps up to a block of
    a page's end until the next page's bytes push it out, so a page would be applied one page late (and lost with
    a cut that came after it was sent)."""
    cfg = current_app.config
    with contextlib.closing(lines):  # an answer closed early closes its pages too (their audit row's count)
        if encoding == "zstd":
            zstd = compression.zstd.ZstdCompressor(level=cfg["COMPRESS_ZSTD_LEVEL"])
            for line in lines:
                yield zstd.compress(line, mode=zstd.FLUSH_BLOCK)
            yield zstd.flush(mode=zstd.FLUSH_FRAME)
        else:
            br = brotli.Compressor(quality=cfg["COMPRESS_BR_LEVEL"])
            for line in lines:
                yield br.process(line) + br.flush()
            yield br.finish()


class _PullAudit:
    """One audit row per answer that delivers residents (server/audit.py), with their count: written with the first
    page that delivers any, in its transaction, so that it is stored before a resident leaves; a streamed answer
    completes its count (and pages) when it ends, cut short or not."""

    def __init__(self, client_id: str, user_id: str, reset: bool):
        self.subject, self.user_id, self.reset = f"device:{client_id}", uuid.UUID(user_id), reset
        self.row_id, self.details = None, None

    def page(self, page) -> None:
        residents = page.delivered.get("resident", 0)
        if not residents:
            return
        if self.row_id is None:
            self.details = {"residents": residents, "reset": self.reset, "pages": 1}
            # The user named by id: past the first page of a stream, the request's user is of a closed session.
            row = audit.record("sync.pull", self.subject, dict(self.details), user=self.user_id)
            db.session.flush()
            self.row_id = row.id
        else:
            self.details["residents"] += residents
            self.details["pages"] += 1

    def close(self) -> None:
        if self.row_id is None or self.details["pages"] == 1:
            return
        try:
            audit.amend(self.row_id, self.details)
            db.session.commit()
        except Exception:  # the row stays with its first page's count: logged, never raised into a closing answer
            db.session.rollback()
            current_app.logger.exception("the audit row of a streamed pull kept its first count")


def _line(page) -> bytes:
    body = page.to_json("\n")
    return body if type(body) is bytes else body.encode()


def _stream(page, pages, audited: _PullAudit, principal):
    """A streamed pull, a page per line (docs/PROTOCOL.md, "Streamed pages"): each page is read, in a transaction
    of its own (PostgreSQL: in autocommit after the first), once the one before was handed over to be sent. The
    token is checked again before a page when SYNC_PULL_RECHECK_SECONDS have passed since it last was: a logout, a
    deactivation or a change of role or sites ends the answer, and the device's next request meets the refusal or
    the reset as usual. A failure ends the answer after the last whole line: the device holds whole pages, and asks
    again from the last cursor it applied."""
    recheck, checked = float(current_app.config["SYNC_PULL_RECHECK_SECONDS"]), time.monotonic()
    try:
        yield _line(page)
        while page.has_more:
            try:
                # PostgreSQL: this page's reads without BEGIN and COMMIT. What it may write commits as it goes: its
                # audit row before the page is handed over, as in a transaction; stored texts in one of their own.
                reads_in_autocommit()
                if time.monotonic() - checked >= recheck:
                    user = token_user_again()
                    if user is None or principal_for(user) != principal:
                        return
                    checked = time.monotonic()
                audit.lock_for_write()  # SQLite: a page may write (its audit row, stale texts), as the first did
                page = next(pages, None)
                if page is None:  # as many pages as asked for
                    return
                audited.page(page)
                db.session.commit()
            except Exception:  # the status line went out with the first page: the answer can only end early
                db.session.rollback()
                current_app.logger.exception("streamed pull stopped after a page")
                return
            yield _line(page)
    finally:
        audited.close()
