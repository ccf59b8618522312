"""Background jobs on Huey: SQLite (instance/jobs.sqlite3) by default, Redis when PALIER_JOBS_URL is redis://.

Run the worker with `huey_consumer server.tasks.huey`. Tests set JOBS_IMMEDIATE: tasks run inline.
"""
import os
from contextlib import nullcontext
from pathlib import Path

from flask import Flask, has_app_context
from huey import RedisHuey, SqliteHuey, crontab

from .config import defaults


def _instance_path() -> str:
    # The same place as create_app's, without creating an app at import time.
    return os.environ.get("PALIER_INSTANCE_PATH") or str(Path(__file__).resolve().parent.parent / "instance")


def make_huey(url: str):
    if url.startswith(("redis://", "rediss://")):
        return RedisHuey("palier", url=url)
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("palier", filename=path)


huey = make_huey(defaults(_instance_path())["JOBS_URL"])

_app: Flask | None = None


def configure(app: Flask) -> None:
    """Called when the app is made: JOBS_IMMEDIATE runs tasks inline (tests, single-process setups)."""
    huey.immediate = bool(app.config.get("JOBS_IMMEDIATE"))


def _context():
    """Tasks run inside the caller's app context (immediate mode) or an app of their own, made once."""
    global _app
    if has_app_context():
        return nullcontext()
    if _app is None:
        from . import create_app
        _app = create_app()
    return _app.app_context()


@huey.task()
def send_due_task() -> dict:
    """Send what is due now (enqueued after an agenda change; the periodic tick does it too)."""
    from . import push
    with _context():
        return dict(push.send_due())


@huey.periodic_task(crontab(minute="*"))
def push_tick() -> dict:
    """Every minute: plan reminders of new subscriptions and events, then send what is due."""
    from . import push
    from .extensions import db
    with _context():
        planned = push.plan_reminders()
        db.session.commit()
        return {"planned": planned, **push.send_due()}


@huey.periodic_task(crontab(hour="3", minute="20"))
def purge_daily() -> dict:
    """Every night: apply the retention settings (server/privacy.py, docs/privacy.md)."""
    from . import privacy
    from .extensions import db
    with _context():
        counts = privacy.purge()
        db.session.commit()
        return counts
