"""Shared fixtures: an app on a throwaway database (SQLite by default, PostgreSQL when DATABASE_URL says so),
a test client, the CLI runner, and helpers to make sites and users and to log in as them."""
import os
import uuid
from datetime import date

import pytest
import sqlalchemy as sa

from server import create_app
from server.devdb import create_pg_database
from server.extensions import db

BASE_URL = os.environ.get("DATABASE_URL")


def _throwaway_database(tmp_path_factory) -> tuple[str, callable]:
    """A database for this test session only, so parallel runs never share rows."""
    if not BASE_URL or BASE_URL.startswith("sqlite"):
        path = tmp_path_factory.mktemp("db") / "test.sqlite3"
        return f"sqlite:///{path}", lambda: None
    return create_pg_database(BASE_URL, "palier_test")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url, drop = _throwaway_database(tmp_path_factory)
    yield url
    drop()


@pytest.fixture(scope="session")
def _schema(database_url, tmp_path_factory):
    """The schema is made by the migrations, as in production, once per session."""
    from flask_migrate import upgrade

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True,
                      "SECRET_KEY": "test-secret-key-test-secret-key-0123456789"})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return database_url


def _wipe():
    tables = [t for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(sa.text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " CASCADE"))
    else:
        for t in tables:
            db.session.execute(t.delete())
    db.session.commit()


@pytest.fixture
def app(_schema, tmp_path):
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": _schema,
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-test-secret-key-0123456789",
        "JWT_COOKIE_SECURE": False,
        "JOBS_IMMEDIATE": True,
    })
    with app.app_context():
        _wipe()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class Factory:
    """Makes the rows tests need, committed, with sensible defaults."""

    def __init__(self, app):
        self.app = app
        self.n = 0

    def _seq(self):
        from server.database import next_seq
        return next_seq(db.session)

    def site(self, name=None, **kw):
        from server.models import Site
        self.n += 1
        site = Site(code=kw.pop("code", f"site-{self.n}-{uuid.uuid4().hex[:4]}"), name=name or f"Site {self.n}",
                    commune=kw.pop("commune", "Outreau"), territory=kw.pop("territory", "Côte d'Opale"),
                    seq=self._seq(), **kw)
        db.session.add(site)
        db.session.commit()
        return site

    def user(self, role="gardien", sites=(), email=None, password="motdepasse-solide", **kw):
        from werkzeug.security import generate_password_hash
        from server.models import User
        self.n += 1
        user = User(email=email or f"{role}{self.n}@palier.test", display_name=kw.pop("display_name", f"{role} {self.n}"),
                    role=role, password_hash=generate_password_hash(password), **kw)
        user.sites = list(sites)
        db.session.add(user)
        db.session.commit()
        return user

    def household(self, site, **kw):
        from server.models import Household
        self.n += 1
        hh = Household(site_id=site.id, building=kw.pop("building", "A"), staircase=kw.pop("staircase", "1"),
                       floor=kw.pop("floor", "2"), door=kw.pop("door", str(self.n)),
                       landlord_ref=kw.pop("landlord_ref", f"REF-{self.n}-{uuid.uuid4().hex[:6]}"),
                       seq=self._seq(), **kw)
        db.session.add(hh)
        db.session.commit()
        return hh

    def resident(self, household, first_name="Maryse", last_name="Moreau", **kw):
        from server.models import Resident
        from sync.rules import name_key
        r = Resident(household_id=household.id, site_id=household.site_id, first_name=first_name,
                     last_name=last_name, name_key=name_key(first_name, last_name), seq=self._seq(), **kw)
        db.session.add(r)
        db.session.commit()
        return r

    def action(self, name="Portage de pain et d'eau", site=None, **kw):
        from server.models import Action
        self.n += 1
        a = Action(code=kw.pop("code", f"action-{self.n}"), name=name, site_id=site.id if site else None,
                   seq=self._seq(), **kw)
        db.session.add(a)
        db.session.commit()
        return a

    def engagement(self, resident, action, role="contributor", started_on=None, **kw):
        from server.models import Engagement
        e = Engagement(resident_id=resident.id, action_id=action.id, site_id=resident.site_id, role=role,
                       started_on=started_on or date(2026, 1, 5), seq=self._seq(), **kw)
        db.session.add(e)
        db.session.commit()
        return e

    def programme(self, goal=1400, baseline=386):
        from server.models import Programme
        p = Programme(name="Habitat contributif", goal=goal, baseline=baseline)
        db.session.add(p)
        db.session.commit()
        return p


@pytest.fixture
def make(app):
    with app.app_context():
        yield Factory(app)


class Api:
    """A test client logged in with a bearer token, speaking JSON."""

    def __init__(self, client, token=None):
        self.client = client
        self.token = token

    def _headers(self, headers=None):
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        return h

    def get(self, url, **kw):
        return self.client.get(url, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, url, json=None, **kw):
        return self.client.post(url, json=json, headers=self._headers(kw.pop("headers", None)), **kw)

    def patch(self, url, json=None, **kw):
        return self.client.patch(url, json=json, headers=self._headers(kw.pop("headers", None)), **kw)

    def put(self, url, json=None, **kw):
        return self.client.put(url, json=json, headers=self._headers(kw.pop("headers", None)), **kw)

    def delete(self, url, **kw):
        return self.client.delete(url, headers=self._headers(kw.pop("headers", None)), **kw)


@pytest.fixture
def login(client):
    """login(user) -> Api logged in as that user (bearer tokens)."""

    def _login(user, password="motdepasse-solide"):
        resp = client.post("/api/auth/login", json={"email": user.email, "password": password, "mode": "bearer"})
        assert resp.status_code == 200, resp.get_json()
        body = resp.get_json()
        api = Api(client, body["access_token"])
        api.refresh_token = body["refresh_token"]
        api.user_id = body["user"]["id"]
        return api

    return _login


@pytest.fixture
def anon(client):
    return Api(client)
