"""The access log of gunicorn keeps no query string: resident searches (?q=<name>) must not reach a log."""
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gunicorn_access_log_has_the_path_only():
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    fmt = conf["access_log_format"]
    assert "%(U)s" in fmt  # the path
    for atom in ("%(r)s", "%(q)s", "%(f)s", "%(a)s"):  # request line, query, referer, user agent
        assert atom not in fmt


def test_every_gunicorn_start_uses_that_config():
    # gunicorn reads ./gunicorn.conf.py from its working directory: nobody may override the log format
    for name in ("dev", "docker-compose.yml", "Dockerfile"):
        text = (ROOT / name).read_text()
        assert "gunicorn" in text
        assert "access-logformat" not in text and "--config" not in text
    assert "gunicorn.conf.py" in (ROOT / "Dockerfile").read_text()
