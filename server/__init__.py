"""Palier server: the app factory."""
import os
from pathlib import Path

from flask import Flask

from . import config as config_mod
from .extensions import compress, db, jwt, migrate

__version__ = "0.1.0"


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=os.environ.get("PALIER_INSTANCE_PATH") or str(
        Path(__file__).resolve().parent.parent / "instance"), static_folder=None)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    app.config.from_mapping(config_mod.defaults(app.instance_path))
    app.config.from_prefixed_env("PALIER")
    if test_config:
        app.config.update(test_config)
    # Before any default is filled in: production must have set each of these itself.
    config_mod.check_production(app.config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = config_mod.secret_key_for(app.instance_path)
    app.config.setdefault("JWT_SECRET_KEY", app.config["SECRET_KEY"])

    register_extensions(app)
    register_blueprints(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    from . import auth, database

    db.init_app(app)
    database.configure(app)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent / "migrations"),
                     render_as_batch=True, compare_type=True)
    jwt.init_app(app)
    app.config.setdefault("COMPRESS_REGISTER", False)  # per view only: server/extensions.py
    compress.init_app(app)
    auth.register_jwt_callbacks(jwt)


def register_blueprints(app: Flask) -> None:
    from .api import register_api
    from .errors import register_error_handlers
    from .web import bp as web_bp

    register_error_handlers(app)
    register_api(app)
    app.register_blueprint(web_bp)
    # Last: it wraps the login views with their rate limits and adds headers to every blueprint's answers.
    from . import security
    security.register(app)


def register_commands(app: Flask) -> None:
    from .cli import register

    register(app)
