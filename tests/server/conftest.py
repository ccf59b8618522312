"""Fixtures of the server tests: a small world of two sites (ours and another) with one user per role."""
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
import werkzeug.security
from flask_jwt_extended import create_access_token, create_refresh_token

from server.extensions import db

from ..conftest import Api

ROLES = ("gardien", "staff", "head_office", "admin")


@dataclass
class World:
    """Ids (as strings) of what lives on our site ("own") and on the other site ("other")."""

    ids: dict = field(default_factory=dict)
    users: dict = field(default_factory=dict)  # role -> User (field roles work on the own site only)

    def __getitem__(self, key):
        return self.ids[key]

    def other_site_ids(self) -> list[str]:
        """Everything of the other site that no field user of our site may ever see."""
        return [v for k, v in self.ids.items() if k.startswith("other_")]


_real_hash = werkzeug.security.generate_password_hash
_hashes: dict[str, str] = {}


def _hash_once(password, *args, **kwargs):
    """The fixtures' users share a few passwords: hash each one once (still scrypt) instead of 0.15 s a user."""
    if args or kwargs:
        return _real_hash(password, *args, **kwargs)
    if password not in _hashes:
        _hashes[password] = _real_hash(password)
    return _hashes[password]


@pytest.fixture(autouse=True)
def _fast_fixture_passwords(monkeypatch):
    # Only the test factory looks the function up at call time; the app's modules keep the real one.
    monkeypatch.setattr(werkzeug.security, "generate_password_hash", _hash_once)


def _review_items(w: World, side: str, site, hh, res) -> None:
    """What head office reviews, on each site: a suspected duplicate, a conflict, a rejected mutation."""
    import uuid

    from server.database import next_seq
    from server.models import Conflict, DuplicateSuspicion, Rejection, Resident
    from sync.rules import name_key

    dup = Resident(household_id=hh.id, site_id=site.id, first_name=res.first_name, last_name=res.last_name,
                   name_key=name_key(res.first_name, res.last_name), duplicate_of=res.id, seq=next_seq(db.session))
    db.session.add(dup)
    db.session.flush()
    suspicion = DuplicateSuspicion(resident_id=dup.id, candidate_id=res.id, site_id=site.id)
    conflict = Conflict(entity="resident", entity_id=res.id, site_id=site.id, field="phone", kept_value=res.phone,
                        kept_seq=res.seq, lost_value="07 00 00 00 00", lost_base_seq=res.seq - 1)
    rejection = Rejection(client_id=uuid.uuid4(), n=1, site_id=site.id, op="visit.create", code="invalid",
                          reason={"code": "invalid", "message": "Données invalides."}, args={})
    db.session.add_all([suspicion, conflict, rejection])
    db.session.commit()
    w.ids.update({f"{side}_duplicate": str(suspicion.id), f"{side}_conflict": str(conflict.id),
                  f"{side}_rejection": str(rejection.id), f"{side}_site_code": site.code})


@pytest.fixture
def world(make) -> World:
    from server.models import Event

    w = World()
    for side in ("own", "other"):
        site = make.site(name=f"Résidence {side}")
        hh = make.household(site, building=f"Bât {side}", landlord_ref=f"REF-{side.upper()}-1")
        res = make.resident(hh, first_name="Odette" if side == "own" else "Gisèle",
                            last_name="Lemaire" if side == "own" else "Wattez",
                            phone="06 12 34 56 78", email=f"{side}@exemple.fr")
        action = make.action(name=f"Jardin {side}", site=site)
        start = datetime(2026, 6, 1, 9, tzinfo=timezone.utc)
        ev = Event(title=f"Atelier {side}", kind="atelier", starts_at=start, ends_at=start + timedelta(hours=3),
                   seq=make._seq())
        ev.sites = [site]
        db.session.add(ev)
        db.session.commit()
        w.ids.update({f"{side}_site": str(site.id), f"{side}_household": str(hh.id), f"{side}_resident": str(res.id),
                      f"{side}_action": str(action.id), f"{side}_event": str(ev.id)})
        w.ids[f"{side}_site_obj"] = site
        _review_items(w, side, site, hh, res)
    own, other = w.ids.pop("own_site_obj"), w.ids.pop("other_site_obj")
    for role in ROLES:
        w.users[role] = make.user(role, sites=[own] if role in ("gardien", "staff") else [])
    w.ids["other_gardien"] = str(make.user("gardien", sites=[other]).id)
    w.ids["own_gardien"] = str(w.users["gardien"].id)
    make.programme()
    return w


@pytest.fixture
def as_role(world, client, anon):
    """as_role("gardien") -> Api with tokens of our site's gardien (minted: login itself is tested in test_auth);
    as_role("anonymous") -> no token."""
    cache = {}

    def _as(role):
        if role == "anonymous":
            return anon
        if role not in cache:
            user = world.users[role]
            api = Api(client, create_access_token(identity=user))
            api.refresh_token = create_refresh_token(identity=user)
            cache[role] = api
        return cache[role]

    return _as
