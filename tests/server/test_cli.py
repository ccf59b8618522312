"""The operations CLI: seed-demo, create-user, users list, import-households."""
import re

import pytest
import sqlalchemy as sa

from server.extensions import db
from server.models import Action, Event, Household, Programme, Resident, Site, User


def _count(model) -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


@pytest.fixture
def seeded(runner, make):  # make: an app context for the checks
    result = runner.invoke(args=["seed-demo", "--households-per-site", "6"])
    assert result.exit_code == 0, result.output
    return result.output


def test_seed_demo_holds_the_sources_sites_actions_agenda_and_figures(seeded):
    names = set(db.session.execute(sa.select(Site.name)).scalars())
    assert {"Résidence Maréchal Leclerc", "ZAC 3", "Résidence Vauban"} <= names
    assert _count(Site) == 15  # the programme's 15 sites; the ten the sources do not name are marked demo
    actions = set(db.session.execute(sa.select(Action.name)).scalars())
    assert {"Portage de pain et d'eau", "Laverie solidaire", "Troc de vêtements", "Jardin partagé",
            "Sortie pêche"} <= actions
    titles = set(db.session.execute(sa.select(Event.title)).scalars())
    assert "Atelier incubateur" in titles and "Journée d'accompagnement « Emploi »" in titles
    programme = db.session.execute(sa.select(Programme)).scalar_one()
    assert (programme.goal, programme.baseline) == (1400, 386)
    assert _count(Household) == 15 * 6 and _count(Resident) > 0


def test_seed_demo_prints_logins_that_work(seeded, client):
    password = re.search(r"mot de passe : (\S+)\)", seeded).group(1)
    emails = re.findall(r"^\s+(\S+@palier\.demo)\s", seeded, re.M)
    assert set(emails) == {"admin@palier.demo", "siege@palier.demo", "gardien.vauban@palier.demo",
                           "proximite.opale@palier.demo"}
    for email in emails:
        resp = client.post("/api/auth/login", json={"email": email, "password": password, "mode": "bearer"})
        assert resp.status_code == 200, (email, resp.get_json())


def test_demo_gardien_lists_only_vauban(seeded, client):
    password = re.search(r"mot de passe : (\S+)\)", seeded).group(1)
    token = client.post("/api/auth/login", json={"email": "gardien.vauban@palier.demo", "password": password,
                                                 "mode": "bearer"}).get_json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    vauban = db.session.execute(sa.select(Site.id).where(Site.code == "vauban")).scalar_one()
    body = client.get("/api/households?per_page=500", headers=auth).get_json()
    assert body["total"] == 6 and {h["site_id"] for h in body["items"]} == {str(vauban)}
    others = db.session.execute(sa.select(Household.id, Household.site_id).where(Household.site_id != vauban)).all()
    assert others
    for hh_id, site_id in others[:10]:
        assert client.get(f"/api/households/{hh_id}", headers=auth).status_code == 404
        listed = client.get(f"/api/households?site_id={site_id}", headers=auth).get_json()
        assert listed["items"] == []
        residents = client.get(f"/api/residents?household_id={hh_id}", headers=auth).get_json()
        assert residents["items"] == []


def test_seed_demo_refuses_to_run_twice(seeded, runner):
    users = _count(User)
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code != 0 and "une fois" in result.output
    assert _count(User) == users and _count(Site) == 15


def test_create_user_and_users_list(runner, make):
    site = make.site(code="vauban")
    result = runner.invoke(args=["create-user", "--email", "Lea@Palier.test", "--name", "Léa", "--role", "gardien",
                                 "--site", "vauban", "--password", "une-phrase-secrete"])
    assert result.exit_code == 0, result.output
    user = db.session.execute(sa.select(User).where(User.email == "lea@palier.test")).scalar_one()
    assert user.role == "gardien" and user.site_ids == {site.id}
    again = runner.invoke(args=["create-user", "--email", "lea@palier.test", "--name", "Léa", "--role", "gardien",
                                "--password", "une-phrase-secrete"])
    assert again.exit_code != 0 and "existe déjà" in again.output
    unknown = runner.invoke(args=["create-user", "--email", "x@palier.test", "--name", "X", "--role", "staff",
                                  "--site", "nulle-part", "--password", "une-phrase-secrete"])
    assert unknown.exit_code != 0 and "Site inconnu" in unknown.output
    listed = runner.invoke(args=["users", "list"])
    assert listed.exit_code == 0 and "lea@palier.test\tgardien\tactif\tvauban" in listed.output
    assert "x@palier.test" not in listed.output


HEADER = "site_code;landlord_ref;building;staircase;floor;door;first_name;last_name;phone;email\n"


@pytest.fixture
def sites(make):
    return make.site(code="zac-3"), make.site(code="vauban")


def _import(runner, tmp_path, text, encoding="utf-8"):
    path = tmp_path / "export.csv"
    path.write_bytes(text.encode(encoding))
    return runner.invoke(args=["import-households", str(path)])


GOOD = HEADER + ("zac-3;Z-001;A;1;0;01;Nadia;Benali;0600000001;nadia@exemple.fr\n"
                 "zac-3;Z-001;A;1;0;01;Karim;Benali;;\n"
                 "vauban;V-010;B;2;3;32;;;;\n")


def test_import_households_good_file_with_bom_and_semicolons(runner, tmp_path, sites):
    result = _import(runner, tmp_path, "\ufeff" + GOOD)
    assert result.exit_code == 0, result.output
    assert "2 logements et 2 habitants importés" in result.output
    assert _count(Household) == 2 and _count(Resident) == 2
    hh = db.session.execute(sa.select(Household).where(Household.landlord_ref == "Z-001")).scalar_one()
    assert (hh.building, hh.staircase, hh.floor, hh.door, hh.site_id) == ("A", "1", "0", "01", sites[0].id)


def test_import_accepts_commas_too(runner, tmp_path, sites):
    result = _import(runner, tmp_path, GOOD.replace(";", ","))
    assert result.exit_code == 0, result.output
    assert _count(Household) == 2


def test_reimport_is_idempotent(runner, tmp_path, sites):
    assert _import(runner, tmp_path, GOOD).exit_code == 0
    seqs = sorted(db.session.execute(sa.select(Household.seq)).scalars())
    result = _import(runner, tmp_path, GOOD)
    assert result.exit_code == 0, result.output
    assert "0 logements et 0 habitants importés (2 déjà présents)" in result.output
    db.session.expire_all()
    assert _count(Household) == 2 and _count(Resident) == 2
    assert sorted(db.session.execute(sa.select(Household.seq)).scalars()) == seqs


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(runner, tmp_path, sites):
    bad = HEADER + ("zac-3;Z-001;A;1;0;01;Nadia;Benali;;\n"          # line 2: good
                    "nulle-part;Z-002;A;1;0;02;;;;\n"                 # line 3: unknown site
                    "zac-3;;A;1;0;03;;;;\n"                           # line 4: no landlord_ref
                    "zac-3;Z-004;A;1;0;04;Seulement;;;\n"             # line 5: first name without last name
                    "zac-3;Z-005;A;1;0;05;Léa;Petit;;pas-une-adresse\n"  # line 6: bad email
                    "vauban;V-006;" + "B" * 41 + ";1;0;06;;;;\n")      # line 7: building too long
    result = _import(runner, tmp_path, bad)
    assert result.exit_code != 0
    for line in (3, 4, 5, 6, 7):
        assert f"ligne {line} :" in result.output, result.output
    assert "ligne 2 :" not in result.output
    assert "rien n'a été importé" in result.output
    db.session.expire_all()
    assert _count(Household) == 0 and _count(Resident) == 0


def test_unknown_columns_and_non_utf8_are_refused(runner, tmp_path, sites):
    result = _import(runner, tmp_path, "site_code;landlord_ref;couleur\nzac-3;Z-1;bleu\n")
    assert result.exit_code != 0 and "colonnes inconnues : couleur" in result.output
    result = _import(runner, tmp_path, GOOD.replace("Nadia", "Nadïa"), encoding="latin-1")
    assert result.exit_code != 0 and "UTF-8" in result.output
    assert _count(Household) == 0
