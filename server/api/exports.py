"""Head office's exports of the lists, with the lists' filters: CSV for French Excel and XLSX, both streamed.

CSV: UTF-8 with a BOM (Excel guesses the encoding from it), ';' separators, CRLF, French headers, Paris times as
JJ/MM/AAAA HH:MM; a text cell that a spreadsheet would read as a formula is neutralised with a leading quote.
XLSX: XlsxWriter in constant-memory mode into a temporary file, then streamed; text is always written as text.
Every export is recorded in the audit log (who, which kind, which filters, how many rows) before it streams.
"""
import csv
import io
import os
import tempfile
from datetime import date, datetime
from urllib.parse import quote

import sqlalchemy as sa
from flask import Blueprint, Response, stream_with_context

from .. import audit, office
from ..auth import roles_required
from ..errors import ApiError
from ..extensions import db
from ..models import REVIEW_ROLES, Action
from .common import load_args
from .lists import FILTERS, _filters_for_audit

bp = Blueprint("exports", __name__, url_prefix="/api/exports")

YIELD_PER = 1000
FILENAMES = {"visits": "visites", "residents": "résidents", "events": "événements", "engagements": "engagements"}
ASCII_FILENAMES = {"visits": "visites", "residents": "residents", "events": "evenements", "engagements": "engagements"}
OUTCOMES = {"absent": "Absent", "refused": "Refus", "talked": "Échange"}
EVENT_KINDS = {"atelier": "Atelier", "accompagnement": "Accompagnement", "sortie": "Sortie", "reunion": "Réunion",
               "permanence": "Permanence"}
EVENT_STATUSES = {"scheduled": "Prévu", "cancelled": "Annulé"}
ENGAGEMENT_ROLES = {"contributor": "Contributeur", "volunteer": "Bénévole", "beneficiary": "Bénéficiaire"}
ENGAGEMENT_STATUSES = {"active": "Actif", "paused": "En pause", "ended": "Terminé"}
NEEDS = {"isolement": "Isolement", "mobilite": "Mobilité", "courses": "Courses", "numerique": "Numérique",
         "emploi": "Emploi", "budget": "Budget", "logement": "Logement", "lien_social": "Lien social",
         "autre": "Autre"}
# A spreadsheet reads a cell starting with one of these as a formula (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _yes(v) -> str:
    return "oui" if v else "non"


def _label(table):
    return lambda v: table.get(v, v)


def _columns(kind: str, actions: dict):
    """(French header, row key, converter) of each column of an export."""
    if kind == "visits":
        return [("Date de la visite", "visited_at", None), ("Site", "site_name", None),
                ("Bâtiment", "building", None), ("Escalier", "staircase", None), ("Étage", "floor", None),
                ("Porte", "door", None), ("Réf. bailleur", "landlord_ref", None),
                ("Résultat", "outcome", _label(OUTCOMES)), ("Prénom", "first_name", None), ("Nom", "last_name", None),
                ("Saisie par", "user_name", None),
                ("Besoins", "needs", lambda v: ", ".join(NEEDS.get(n, n) for n in v or ())),
                ("Intérêts", "interests", lambda v: ", ".join(actions.get(a, a) for a in v or ())),
                ("Suivi à faire", "follow_up", _yes), ("Accord pour être recontacté", "consent_recontact", _yes),
                ("Note", "note", None), ("Reçue le", "received_at", None),
                ("Horloge de l'appareil douteuse", "clock_suspect", _yes)]
    if kind == "residents":
        return [("Prénom", "first_name", None), ("Nom", "last_name", None), ("Site", "site_name", None),
                ("Bâtiment", "building", None), ("Escalier", "staircase", None), ("Étage", "floor", None),
                ("Porte", "door", None), ("Réf. bailleur", "landlord_ref", None), ("Téléphone", "phone", None),
                ("Courriel", "email", None), ("Accord contact", "consent_contact", _yes),
                ("Accord image", "consent_image", _yes), ("Engagé aujourd'hui", "engaged", _yes),
                ("Doublon suspecté", "duplicate_of", lambda v: _yes(v is not None)), ("Créé le", "created_at", None)]
    if kind == "events":
        return [("Début", "starts_at", None), ("Fin", "ends_at", None), ("Titre", "title", None),
                ("Type", "kind", _label(EVENT_KINDS)), ("Lieu", "place", None),
                ("Statut", "status", _label(EVENT_STATUSES)), ("Sites", "sites", lambda v: ", ".join(v)),
                ("Présents nommés", "named_attendance", None), ("Comptage (personnes)", "head_count", None)]
    return [("Prénom", "first_name", None), ("Nom", "last_name", None), ("Action", "action_name", None),
            ("Site", "site_name", None), ("Rôle", "role", _label(ENGAGEMENT_ROLES)),
            ("Statut", "status", _label(ENGAGEMENT_STATUSES)), ("Début", "started_on", None),
            ("Fin", "ended_on", None), ("Créé le", "created_at", None)]


def _rows(kind: str, f: office.Filters):
    """The export's rows as dicts, read yield_per at a time (a server-side cursor on PostgreSQL)."""
    query = office.LIST_QUERIES[kind](f).execution_options(yield_per=YIELD_PER)
    result = db.session.execute(query).mappings()
    for part in result.partitions():
        rows = [dict(r) for r in part]
        if kind == "events":
            names = office.event_site_names([r["event_id"] for r in rows])
            for r in rows:
                r["sites"] = names.get(r["event_id"], [])
        yield from rows


def neutralise(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(office.PARIS).strftime("%d/%m/%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, bool):
        return _yes(value)
    if isinstance(value, (int, float)):
        return str(value)
    return neutralise(str(value))


def _values(columns, row):
    return [(convert(row[key]) if convert else row[key]) for _h, key, convert in columns]


def _csv(columns, rows):
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)

    def flush():
        out = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return out.encode("utf-8")

    yield "\ufeff".encode("utf-8")
    writer.writerow([h for h, _k, _c in columns])
    for i, row in enumerate(rows, 1):
        writer.writerow([csv_cell(v) for v in _values(columns, row)])
        if i % 500 == 0:
            yield flush()
    yield flush()


def _xlsx_file(columns, rows) -> str:
    """The workbook in a temporary file (constant memory: each row is flushed as it is written)."""
    import xlsxwriter

    fd, path = tempfile.mkstemp(prefix="palier-export-", suffix=".xlsx")
    os.close(fd)
    wb = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_formulas": False,
                                    "strings_to_urls": False, "strings_to_numbers": False,
                                    "remove_timezone": True})
    ws = wb.add_worksheet("Export")
    bold = wb.add_format({"bold": True})
    when = wb.add_format({"num_format": "dd/mm/yyyy hh:mm"})
    day = wb.add_format({"num_format": "dd/mm/yyyy"})
    for c, (header, _k, _conv) in enumerate(columns):
        ws.write_string(0, c, header, bold)
    for r, row in enumerate(rows, 1):
        for c, v in enumerate(_values(columns, row)):
            if v is None:
                continue
            if isinstance(v, datetime):
                ws.write_datetime(r, c, v.astimezone(office.PARIS).replace(tzinfo=None), when)
            elif isinstance(v, date):
                ws.write_datetime(r, c, datetime(v.year, v.month, v.day), day)
            elif isinstance(v, bool):
                ws.write_string(r, c, _yes(v))
            elif isinstance(v, (int, float)):
                ws.write_number(r, c, v)
            else:
                ws.write_string(r, c, str(v))
    wb.close()
    return path


def _stream_file(path: str, chunk: int = 64 * 1024):
    handle = open(path, "rb")
    os.unlink(path)  # the open handle keeps the data; nothing stays on disk whatever happens to the download

    def gen():
        with handle:
            while block := handle.read(chunk):
                yield block

    return gen()


def _disposition(kind: str, ext: str) -> str:
    """A French file name (RFC 5987 filename*) with an ASCII fallback for old clients."""
    day = office.paris_today().isoformat()
    return (f"attachment; filename=\"{ASCII_FILENAMES[kind]}-{day}.{ext}\"; "
            f"filename*=UTF-8''{quote(f'{FILENAMES[kind]}-{day}.{ext}')}")


def _prepare(kind: str, fmt: str):
    if kind not in FILTERS:
        raise ApiError(404)
    args = load_args(FILTERS[kind]())
    audit.lock_for_write()
    f = office.Filters.from_args(args)
    rows = office.count(office.LIST_QUERIES[kind](f))
    audit.record(f"export.{fmt}", kind, {"filters": _filters_for_audit(args), "rows": rows})
    db.session.commit()
    actions = {str(i): n for i, n in db.session.execute(sa.select(Action.id, Action.name))} \
        if kind == "visits" else {}
    return f, _columns(kind, actions)


@bp.get("/<kind>.csv")
@roles_required(*REVIEW_ROLES)
def export_csv(kind):
    """A list as CSV for French Excel (UTF-8 with BOM, ';', CRLF), with the list's filters; streamed.
    ---
    get:
      tags: [exports]
      parameters: [{in: path, name: kind, required: true, schema: {type: string, enum: [visits, residents, events, engagements]}}]
      responses:
        200: {content: {text/csv: {schema: {type: string}}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    f, columns = _prepare(kind, "csv")
    body = stream_with_context(_csv(columns, _rows(kind, f)))
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": _disposition(kind, "csv"), "Cache-Control": "no-store",
        "Content-Type": "text/csv; charset=utf-8"})


@bp.get("/<kind>.xlsx")
@roles_required(*REVIEW_ROLES)
def export_xlsx(kind):
    """A list as an Excel workbook, with the list's filters; written in constant memory, then streamed.
    ---
    get:
      tags: [exports]
      parameters: [{in: path, name: kind, required: true, schema: {type: string, enum: [visits, residents, events, engagements]}}]
      responses:
        200: {content: {application/vnd.openxmlformats-officedocument.spreadsheetml.sheet: {schema: {type: string, format: binary}}}}
        404: {content: {application/json: {schema: ErrorSchema}}}
        422: {content: {application/json: {schema: ErrorSchema}}}
    """
    f, columns = _prepare(kind, "xlsx")
    path = _xlsx_file(columns, _rows(kind, f))
    return Response(_stream_file(path), headers={
        "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "Content-Disposition": _disposition(kind, "xlsx"), "Cache-Control": "no-store"})
