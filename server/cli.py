"""Operations from the command line: `flask --app server <command>` (database, users, imports, demo data)."""
import csv
import io
import random
import secrets
import uuid
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup
from werkzeug.security import generate_password_hash

from sync.rules import name_key

from .database import next_seq
from .extensions import db
from .models import (ROLES, Action, Engagement, Event, Household, Programme, Resident, Site, User, Visit)

PARIS = ZoneInfo("Europe/Paris")


def register(app: Flask) -> None:
    app.cli.add_command(create_user)
    app.cli.add_command(import_households)
    app.cli.add_command(seed_demo)
    app.cli.add_command(users_group)
    app.cli.add_command(purge_command)


# --- users -------------------------------------------------------------------------------------------------

@click.command("create-user")
@click.option("--email", required=True)
@click.option("--name", "display_name", required=True)
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--site", "site_codes", multiple=True, help="Code of a site the user works on (repeatable).")
@click.password_option()
def create_user(email, display_name, role, site_codes, password):
    """Create a staff account."""
    email = email.strip().lower()
    if db.session.execute(sa.select(User.id).where(User.email == email)).first():
        raise click.ClickException(f"Un compte existe déjà pour {email}.")
    sites = _sites_by_code(site_codes)
    user = User(email=email, display_name=display_name, role=role, password_hash=generate_password_hash(password))
    user.sites = sites
    db.session.add(user)
    db.session.commit()
    click.echo(f"Compte créé : {email} ({role}).")


users_group = AppGroup("users", help="Manage accounts.")


@users_group.command("list")
def list_users():
    for u in db.session.execute(sa.select(User).order_by(User.email)).scalars():
        click.echo(f"{u.email}\t{u.role}\t{'actif' if u.active else 'désactivé'}\t"
                   f"{', '.join(s.code for s in u.sites)}")


def _sites_by_code(codes) -> list[Site]:
    sites = []
    for code in codes:
        site = db.session.execute(sa.select(Site).where(Site.code == code)).scalar_one_or_none()
        if site is None:
            raise click.ClickException(f"Site inconnu : {code}")
        sites.append(site)
    return sites


# --- retention (docs/privacy.md) ------------------------------------------------------------------------

@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be purged, change nothing.")
def purge_command(dry_run):
    """Apply the retention settings now (the worker also does it every night); prints counts per kind."""
    from . import privacy
    counts = privacy.purge(dry_run=dry_run)
    if not dry_run:
        db.session.commit()
    click.echo("Purge (simulation, rien n'est modifié)" if dry_run else "Purge effectuée")
    for kind, n in counts.items():
        click.echo(f"{kind}\t{n}")


# --- CSV import ------------------------------------------------------------------------------------------

IMPORT_COLUMNS = ("site_code", "landlord_ref", "building", "staircase", "floor", "door",
                  "first_name", "last_name", "phone", "email")
REQUIRED_COLUMNS = ("site_code", "landlord_ref")


class ImportError_(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def read_landlord_csv(text: str) -> list[tuple[int, dict]]:
    """Rows of the landlord's export with their line numbers; ';' or ',' separated, BOM tolerated."""
    text = text.lstrip("\ufeff")
    sample = text[:4096]
    delimiter = ";" if sample.count(";") >= sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    if reader.fieldnames is None:
        raise ImportError_(["ligne 1 : fichier vide"])
    header = [h.strip().lower() for h in reader.fieldnames]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in IMPORT_COLUMNS]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"ligne 1 : colonnes manquantes : {', '.join(missing)}")
        if unknown:
            problems.append(f"ligne 1 : colonnes inconnues : {', '.join(unknown)}")
        raise ImportError_(problems)
    reader.fieldnames = header
    return [(reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None})
            for row in reader]


def import_rows(rows: list[tuple[int, dict]], progress=None) -> dict:
    """Validate every row, then write all of them in one transaction: nothing is half-imported."""
    from .schemas import _clean_text
    from marshmallow import ValidationError

    limits = {"site_code": 40, "landlord_ref": 60, "building": 40, "staircase": 20, "floor": 10, "door": 20,
              "first_name": 100, "last_name": 100, "phone": 30, "email": 254}
    sites = {s.code: s for s in db.session.execute(sa.select(Site).where(Site.deleted.is_(False))).scalars()}
    problems = []
    for line, row in rows:
        for col, value in row.items():
            if len(value) > limits[col]:
                problems.append(f"ligne {line} : {col} dépasse {limits[col]} caractères")
            try:
                _clean_text(value)
            except ValidationError:
                problems.append(f"ligne {line} : {col} contient un caractère non autorisé")
        if not row.get("landlord_ref"):
            problems.append(f"ligne {line} : landlord_ref manquant")
        if row.get("site_code") not in sites:
            problems.append(f"ligne {line} : site inconnu « {row.get('site_code', '')} »")
        if bool(row.get("first_name")) != bool(row.get("last_name")):
            problems.append(f"ligne {line} : prénom et nom vont ensemble")
        if row.get("email") and "@" not in row["email"]:
            problems.append(f"ligne {line} : adresse électronique invalide")
    if problems:
        raise ImportError_(problems)

    counts = {"households": 0, "residents": 0, "unchanged": 0}
    households: dict[tuple, Household] = {}
    for line, row in rows:
        site = sites[row["site_code"]]
        key = (site.id, row["landlord_ref"])
        hh = households.get(key) or db.session.execute(
            sa.select(Household).where(Household.site_id == site.id,
                                       Household.landlord_ref == row["landlord_ref"])).scalar_one_or_none()
        if hh is None:
            hh = Household(id=uuid.uuid4(), site_id=site.id, landlord_ref=row["landlord_ref"],
                           building=row.get("building", ""), staircase=row.get("staircase", ""),
                           floor=row.get("floor", ""), door=row.get("door", ""), seq=next_seq(db.session))
            db.session.add(hh)
            counts["households"] += 1
        households[key] = hh
        if row.get("first_name"):
            key_name = name_key(row["first_name"], row["last_name"])
            exists = db.session.execute(sa.select(Resident.id).where(
                Resident.household_id == hh.id, Resident.name_key == key_name,
                Resident.deleted.is_(False))).first()
            if exists:
                counts["unchanged"] += 1
            else:
                db.session.add(Resident(id=uuid.uuid4(), household_id=hh.id, site_id=site.id,
                                        first_name=row["first_name"], last_name=row["last_name"],
                                        name_key=key_name, phone=row.get("phone", ""),
                                        email=row.get("email", ""), seq=next_seq(db.session)))
                counts["residents"] += 1
        db.session.flush()
        if progress:
            progress(1)
    return counts


@click.command("import-households")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_households(csv_file: Path):
    """Import households and residents from the landlord's CSV export.

    Columns: site_code;landlord_ref;building;staircase;floor;door;first_name;last_name;phone;email.
    Every bad row is reported with its line number, and then nothing at all is imported.
    """
    try:
        rows = read_landlord_csv(csv_file.read_text(encoding="utf-8-sig"))
        with click.progressbar(length=len(rows), label="Import") as bar:
            counts = import_rows(rows, progress=bar.update)
        db.session.commit()
    except ImportError_ as e:
        db.session.rollback()
        for p in e.problems:
            click.echo(p, err=True)
        raise click.ClickException(f"{len(e.problems)} erreur(s) : rien n'a été importé.")
    except UnicodeDecodeError:
        raise click.ClickException("Le fichier n'est pas en UTF-8 : rien n'a été importé.")
    click.echo(f"{counts['households']} logements et {counts['residents']} habitants importés "
               f"({counts['unchanged']} déjà présents).")


# --- demo data --------------------------------------------------------------------------------------------

# From ../shared/seeds: Increase Valorisation Sociale, Pas-de-Calais habitat (INCREASE NEWS n°1, avril 2019).
SOURCE_SITES = [
    ("marechal-leclerc", "Résidence Maréchal Leclerc", "Saint-Martin-Boulogne", "Côte d'Opale-Audomarois"),
    ("zac-3", "ZAC 3", "Outreau", "Côte d'Opale-Audomarois"),
    ("vauban", "Résidence Vauban", "Béthune", "Artois"),
    ("achicourt", "Quartier d'Achicourt", "Achicourt", "Arras"),
    ("beurains", "Quartier de Beurains", "Beurains", "Arras"),
]
# The programme counts 15 sites; the sources name five. The ten others are demo placeholders, marked so.
DEMO_COMMUNES = ["Boulogne-sur-Mer", "Calais", "Saint-Omer", "Lens", "Liévin", "Bruay-la-Buissière",
                 "Arras", "Berck", "Étaples", "Hénin-Beaumont"]

SOURCE_ACTIONS = [
    ("portage-pain-eau", "Portage de pain et d'eau", "marechal-leclerc",
     "Portage gratuit de pain et de packs d'eau aux locataires âgés, à mobilité réduite ou malades, "
     "par les bénévoles d'Ech'Ostrohove."),
    ("visites-courtoisie", "Visites de courtoisie", "marechal-leclerc",
     "Visites aux personnes isolées, en complément du portage."),
    ("atelier-couture", "Atelier couture", "marechal-leclerc", "Confection de sacs à pain accrochés aux portes."),
    ("meubles", "Récupération et création de meubles", "marechal-leclerc", ""),
    ("laverie-solidaire", "Laverie solidaire", "zac-3",
     "Projet du collectif ZAC 3 : laver, sécher et repasser son linge, et créer du lien."),
    ("troc-vetements", "Troc de vêtements", "vauban", ""),
    ("jardin-partage", "Jardin partagé", "vauban", "Des légumes de qualité à moindre coût pour tous."),
    ("ateliers-cuisine", "Ateliers cuisine", "vauban", ""),
    ("sortie-peche", "Sortie pêche", None, "Sortie commune des quartiers, pilotée par Ech'Ostrohove."),
]

FIRST_NAMES = ["Nadia", "Julien", "Sylvie", "Karim", "Monique", "Thierry", "Aïcha", "Bernard", "Chantal", "Yanis",
               "Françoise", "Mickaël", "Josiane", "Rachid", "Céline", "Gérard", "Sandrine", "Mehdi", "Odette",
               "Ludovic", "Brigitte", "Samir", "Hélène", "Dominique", "Léa", "Kevin", "Jacqueline", "Éric"]
LAST_NAMES = ["Lefebvre", "Dubois", "Lemaire", "Caron", "Dupont", "Leroy", "Martin", "Bouchart", "Delattre",
              "Benali", "Fournier", "Vasseur", "Lecomte", "Haddad", "Deprez", "Carpentier", "Duhamel", "Petit",
              "Lebrun", "Wattez", "Mercier", "Boulanger", "Delbarre", "Hamdi"]


def _paris(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), PARIS).astimezone(timezone.utc)


def _next_occurrence(month: int, day: int, today: date) -> date:
    d = date(today.year, month, day)
    return d if d >= today else date(today.year + 1, month, day)


@click.command("seed-demo")
@click.option("--households-per-site", default=24, show_default=True)
@click.option("--seed", "rng_seed", default=2019, show_default=True, help="Random seed of the synthetic data.")
def seed_demo(households_per_site: int, rng_seed: int):
    """Demo data from the source documents (sites, actions, agenda, figures) with synthetic residents.

    Prints the demo logins. Refuses to run twice on the same database.
    """
    if db.session.execute(sa.select(Programme.id)).first():
        raise click.ClickException("Des données existent déjà : la démo n'est semée qu'une fois.")
    rng = random.Random(rng_seed)
    today = date.today()

    db.session.add(Programme(name="Increase Valorisation Sociale — habitat contributif", goal=1400, baseline=386,
                             baseline_on=date(2019, 4, 1)))
    sites: dict[str, Site] = {}
    for code, name, commune, territory in SOURCE_SITES:
        sites[code] = Site(code=code, name=name, commune=commune, territory=territory, seq=next_seq(db.session))
    for i, commune in enumerate(DEMO_COMMUNES, start=6):
        code = f"demo-{i:02d}"
        sites[code] = Site(code=code, name=f"Site de démonstration {i:02d}", commune=commune,
                           territory="Pas-de-Calais", seq=next_seq(db.session))
    db.session.add_all(sites.values())

    actions: dict[str, Action] = {}
    for code, name, site_code, description in SOURCE_ACTIONS:
        actions[code] = Action(code=code, name=name, description=description,
                               site_id=sites[site_code].id if site_code else None, seq=next_seq(db.session))
    db.session.add_all(actions.values())
    db.session.flush()

    # The agenda of the newsletter, at its next occurrence, one event per day.
    agenda = [
        ((5, 9), (5, 10), "Atelier incubateur", "atelier", ["vauban"], "Béthune"),
        ((5, 9), (5, 10), "Journée d'accompagnement « Créations d'activités »", "accompagnement",
         ["achicourt", "beurains"], "Achicourt et Beurains"),
        ((5, 23), (5, 24), "Journée d'accompagnement « Emploi »", "accompagnement",
         ["zac-3", "marechal-leclerc"], "Outreau et Saint-Martin-Boulogne"),
        ((6, 26), (6, 27), "Journée d'accompagnement « Créations d'activités »", "accompagnement",
         ["zac-3", "marechal-leclerc"], "Outreau et Saint-Martin-Boulogne"),
    ]
    for first, second, title, kind, site_codes, place in agenda:
        for month, day in (first, second):
            d = _next_occurrence(month, day, today)
            ev = Event(title=title, kind=kind, place=place, starts_at=_paris(d, 9, 30), ends_at=_paris(d, 16, 30),
                       description="Pour les locataires (agenda Increase Valorisation Sociale).",
                       seq=next_seq(db.session))
            ev.sites = [sites[c] for c in site_codes]
            db.session.add(ev)
    # Near-term demo events so that the field screens have something today.
    near = [
        (0, 14, 16, "Troc de vêtements", "atelier", ["vauban"], "Local commun, Résidence Vauban"),
        (1, 14, 17, "Atelier couture : sacs à pain", "atelier", ["marechal-leclerc"], "Salle d'Ech'Ostrohove"),
        (3, 9, 17, "Sortie pêche commune", "sortie", ["marechal-leclerc", "zac-3"],
         "Départ parking de la Résidence Maréchal Leclerc"),
        (6, 18, 20, "Réunion du collectif ZAC 3 : la laverie solidaire", "reunion", ["zac-3"], "Outreau"),
    ]
    for offset, start_h, end_h, title, kind, site_codes, place in near:
        d = today + timedelta(days=offset)
        ev = Event(title=title, kind=kind, place=place, starts_at=_paris(d, start_h), ends_at=_paris(d, end_h),
                   seq=next_seq(db.session))
        ev.sites = [sites[c] for c in site_codes]
        db.session.add(ev)

    # Synthetic households and residents (no real person from the sources).
    engaged_target = {"marechal-leclerc": 14, "zac-3": 9, "vauban": 8, "achicourt": 3, "beurains": 3}
    for code, site in sites.items():
        site_actions = [a for a in actions.values() if a.site_id in (None, site.id)]
        residents = []
        for i in range(households_per_site):
            building = "ABC"[i % 3]
            hh = Household(site_id=site.id, building=f"Bât. {building}", staircase=str(1 + (i // 3) % 2),
                           floor=str((i // 6) % 5), door=f"{(i // 6) % 5}{1 + i % 3}",
                           landlord_ref=f"{code.upper()}-{i + 1:04d}", seq=next_seq(db.session))
            db.session.add(hh)
            db.session.flush()
            last = rng.choice(LAST_NAMES)
            for _ in range(rng.choice((1, 1, 2, 2, 3))):
                first = rng.choice(FIRST_NAMES)
                if any(r.household_id == hh.id and r.first_name == first for r in residents):
                    continue
                r = Resident(household_id=hh.id, site_id=site.id, first_name=first, last_name=last,
                             name_key=name_key(first, last), consent_contact=rng.random() < 0.5,
                             seq=next_seq(db.session))
                db.session.add(r)
                residents.append(r)
            if i % 4 == 0:
                db.session.add(Visit(household_id=hh.id, site_id=site.id, outcome=rng.choice(VISIT_SAMPLE),
                                     visited_at=_paris(today - timedelta(days=rng.randint(1, 60)), 10),
                                     received_at=datetime.now(timezone.utc), seq=next_seq(db.session)))
        db.session.flush()
        for r in rng.sample(residents, min(len(residents), engaged_target.get(code, 0))):
            action = rng.choice(site_actions)
            db.session.add(Engagement(resident_id=r.id, action_id=action.id, site_id=site.id,
                                      role=rng.choice(("contributor", "volunteer", "beneficiary")),
                                      started_on=today - timedelta(days=rng.randint(7, 300)),
                                      seq=next_seq(db.session)))

    password = secrets.token_urlsafe(9)
    logins = [
        ("admin@palier.demo", "Administratrice Palier", "admin", []),
        ("siege@palier.demo", "Direction de l'Innovation", "head_office", []),
        ("gardien.vauban@palier.demo", "David, gardien Vauban", "gardien", ["vauban"]),
        ("proximite.opale@palier.demo", "Équipe de proximité Côte d'Opale", "staff", ["marechal-leclerc", "zac-3"]),
    ]
    for email, name, role, site_codes in logins:
        u = User(email=email, display_name=name, role=role, password_hash=generate_password_hash(password))
        u.sites = [sites[c] for c in site_codes]
        db.session.add(u)
    db.session.commit()

    lines = [f"  {email:32} {role:12} {', '.join(site_codes) or 'tous les sites'}"
             for email, _, role, site_codes in logins]
    text = "Comptes de démonstration (mot de passe : %s)\n%s\n" % (password, "\n".join(lines))
    out = Path(current_app.instance_path) / "demo-logins.txt"
    out.write_text(text)
    out.chmod(0o600)
    click.echo(text)
    click.echo(f"(aussi dans {out})")


VISIT_SAMPLE = ("absent", "absent", "talked", "talked", "talked", "refused")
