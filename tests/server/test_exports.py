"""Exports for French Excel: CSV (BOM, ';', CRLF, French headers, Paris times, formula injection neutralised) and
XLSX (read back with openpyxl), with the lists' filters, streamed, each one in the audit log."""
import csv
import io
import uuid
from urllib.parse import unquote

import openpyxl
import pytest
import sqlalchemy as sa

from server.extensions import db
from server.models import AuditLog, Visit

from .office_support import office, paris, raw  # noqa: F401 (office is a fixture)


def _csv(resp):
    assert resp.status_code == 200, resp.get_data()[:300]
    data = resp.get_data()
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8 with a BOM, so that Excel reads the accents"
    text = data[3:].decode("utf-8")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))


def test_visits_csv_columns_accents_and_paris_times(office):
    resp = office["head"].get("/api/exports/visits.csv?from=2026-10-05&to=2026-10-11")
    assert resp.mimetype == "text/csv"
    rows = _csv(resp)
    header, body = rows[0], rows[1:]
    assert header[:8] == ["Date de la visite", "Site", "Bâtiment", "Escalier", "Étage", "Porte", "Réf. bailleur",
                          "Résultat"]
    assert len(body) == 3 and all(len(r) == len(header) for r in body)
    first = dict(zip(header, body[0]))
    assert first["Date de la visite"] == "11/10/2026 23:30"  # Paris time, newest first
    assert (first["Site"], first["Résultat"]) == ("Les Tilleuls", "Refus")
    assert {r[header.index("Résultat")] for r in body} == {"Refus", "Échange", "Absent"}


def test_csv_neutralises_formulas_but_keeps_the_text(office, make):
    h = office["h1"]
    make.resident(h, first_name="=HYPERLINK(\"http://x\")", last_name="@SUM(A1)", phone="+33 6 12 34 56 78",
                  email="-2+3@exemple.fr")
    rows = _csv(office["head"].get("/api/exports/residents.csv?q=hyperlink"))
    header, (row,) = rows[0], rows[1:]
    got = dict(zip(header, row))
    assert got["Prénom"] == "'=HYPERLINK(\"http://x\")" and got["Nom"] == "'@SUM(A1)"
    assert got["Téléphone"] == "'+33 6 12 34 56 78" and got["Courriel"] == "'-2+3@exemple.fr"
    assert got["Bâtiment"] == "A" and got["Accord contact"] == "non"


def test_residents_csv_has_every_listed_resident(office):
    rows = _csv(office["head"].get(f"/api/exports/residents.csv?site_id={office['s1'].id}"))
    live = raw("SELECT COUNT(*) FROM residents WHERE deleted = :no AND site_id = :site", site=office["s1"].id)
    assert len(rows) - 1 == live.scalar_one()
    names = {(r[0], r[1]) for r in rows[1:]}
    assert ("Odette", "Lemaire") in names and ("Gisèle", "Wattez") not in names


def test_events_and_engagements_csv(office):
    rows = _csv(office["head"].get("/api/exports/events.csv?from=2026-10-01&to=2026-10-31"))
    assert rows[0] == ["Début", "Fin", "Titre", "Type", "Lieu", "Statut", "Sites", "Présents nommés",
                       "Comptage (personnes)"]
    assert rows[1:] == [["10/10/2026 14:00", "10/10/2026 16:00", "Atelier cuisine", "Atelier", "", "Prévu",
                         "Les Tilleuls", "1", "42"]]
    rows = _csv(office["head"].get("/api/exports/engagements.csv?status=ended"))
    assert rows[1:] == [["Paul", "Fini", "Jardin partagé", "Les Tilleuls", "Contributeur", "Terminé", "06/10/2026",
                         "25/10/2026", rows[1][8]]]


def test_xlsx_opens_with_openpyxl_and_keeps_text_as_text(office, make):
    make.resident(office["h1"], first_name="=1+1", last_name="Lefèvre")
    resp = office["head"].get(f"/api/exports/residents.xlsx?site_id={office['s1'].id}")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = openpyxl.load_workbook(io.BytesIO(resp.get_data()), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("Prénom", "Nom", "Site")
    live = raw("SELECT COUNT(*) FROM residents WHERE deleted = :no AND site_id = :site", site=office["s1"].id)
    assert len(rows) - 1 == live.scalar_one()
    formula = next(r for r in rows if r[1] == "Lefèvre")
    assert formula[0] == "=1+1"  # a string cell, not a formula: openpyxl would give the formula text otherwise
    cells = {c.value: c.data_type for c in next(r for r in sheet.iter_rows() if r[1].value == "Lefèvre")}
    assert cells["=1+1"] == "s"


def test_visits_xlsx_dates_are_excel_dates_in_paris_time(office):
    resp = office["head"].get("/api/exports/visits.xlsx?from=2026-10-05&to=2026-10-05")
    sheet = openpyxl.load_workbook(io.BytesIO(resp.get_data())).active
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 3
    assert [r[0].strftime("%d/%m/%Y %H:%M") for r in rows[1:]] == ["05/10/2026 11:00", "05/10/2026 10:00"]
    assert sheet.cell(row=2, column=1).number_format == "dd/mm/yyyy hh:mm"


def test_french_filename_and_no_cache(office):
    resp = office["head"].get("/api/exports/events.csv")
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and 'filename="evenements-' in disposition
    assert unquote(disposition.split("filename*=UTF-8''")[1]).startswith("événements-")
    assert resp.headers["Cache-Control"] == "no-store"


def test_every_export_is_audited_with_its_filters_and_row_count(office):
    head = office["head"]
    _csv(head.get(f"/api/exports/visits.csv?site_id={office['s2'].id}&outcome=talked"))
    head.get("/api/exports/residents.xlsx?q=Wattez")
    rows = db.session.execute(sa.select(AuditLog).where(AuditLog.action.like("export.%"))
                              .order_by(AuditLog.id)).scalars().all()
    assert [(r.action, r.subject) for r in rows] == [("export.csv", "visits"), ("export.xlsx", "residents")]
    assert rows[0].details == {"filters": {"site_id": str(office["s2"].id), "outcome": "talked"}, "rows": 2}
    assert rows[1].details == {"filters": {"q": "<recherche>"}, "rows": 1}
    assert {str(r.user_id) for r in rows} == {office["head"].user_id}


def test_a_large_export_streams_every_row(office, make):
    """Past several yield_per batches: every visit is in the file once."""
    h2, s2 = office["h2"], office["s2"]
    seq = make._seq
    db.session.execute(sa.insert(Visit), [
        {"id": uuid.uuid4(), "household_id": h2.id, "site_id": s2.id, "seq": seq(),
         "visited_at": paris(2026, 9, 1, 9), "outcome": "absent", "deleted": False, "interests": [], "needs": [],
         "note": f"n°{i}"} for i in range(2500)])
    db.session.commit()
    resp = office["head"].get(f"/api/exports/visits.csv?site_id={s2.id}")
    assert resp.is_streamed
    rows = _csv(resp)
    notes = [r[rows[0].index("Note")] for r in rows[1:]]
    assert len(notes) == 2503 and len(set(notes)) == 2501  # the three fixture visits have an empty note


@pytest.mark.parametrize("url,status", [("/api/exports/users.csv", 404), ("/api/exports/visits.pdf", 404),
                                        ("/api/exports/visits.csv?page=2", 422),
                                        ("/api/exports/residents.xlsx?engaged=bof", 422)])
def test_unknown_kind_or_filter(office, url, status):
    resp = office["head"].get(url)
    assert resp.status_code == status and set(resp.get_json()) == {"error"}


def test_field_roles_cannot_export(office, make, login):
    gardien = login(make.user("gardien", sites=[office["s1"]]))
    assert gardien.get("/api/exports/residents.csv").status_code == 403
    assert db.session.execute(sa.select(sa.func.count()).select_from(AuditLog)
                              .where(AuditLog.action.like("export.%"))).scalar_one() == 0
