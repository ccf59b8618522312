"""Configuration: embedded defaults need nothing; production fails fast without its secrets and database."""
import pytest

from server import create_app
from server.config import ConfigError

PG = "postgresql+psycopg://palier@db:5432/palier"


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("DATABASE_URL", "PALIER_SECRET_KEY", "PALIER_JWT_SECRET_KEY", "PALIER_ENV_NAME",
                 "PALIER_SQLALCHEMY_DATABASE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PALIER_INSTANCE_PATH", str(tmp_path))
    return monkeypatch


@pytest.mark.parametrize("missing", ["PALIER_SECRET_KEY", "PALIER_JWT_SECRET_KEY", "DATABASE_URL"])
def test_production_refuses_to_start_without(clean_env, missing):
    env = {"PALIER_ENV_NAME": "production", "PALIER_SECRET_KEY": "s" * 40, "PALIER_JWT_SECRET_KEY": "j" * 40,
           "DATABASE_URL": PG}
    for name, value in env.items():
        if name != missing:
            clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        create_app()
    assert missing.removeprefix("PALIER_") in str(err.value)


def test_production_starts_with_everything_set(clean_env, tmp_path):
    for name, value in {"PALIER_ENV_NAME": "production", "PALIER_SECRET_KEY": "s" * 40,
                        "PALIER_JWT_SECRET_KEY": "j" * 40, "DATABASE_URL": PG}.items():
        clean_env.setenv(name, value)
    app = create_app()
    assert app.config["JWT_SECRET_KEY"] == "j" * 40 and app.config["SECRET_KEY"] == "s" * 40
    assert not (tmp_path / "secret_key").exists()  # production never makes up a secret


def test_development_needs_nothing(clean_env, tmp_path):
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'palier.sqlite3'}"
    assert len(app.config["SECRET_KEY"]) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert create_app().config["SECRET_KEY"] == app.config["SECRET_KEY"]  # kept across restarts
