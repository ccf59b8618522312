"""docker-compose.yml and the Dockerfile, checked without a Docker engine: structure, health checks, volumes,
start order, and that every command they run exists (flask commands, console scripts, COPY sources)."""
import importlib
import re
import shlex
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _env(service: dict) -> dict:
    env = service.get("environment", {})
    return env if isinstance(env, dict) else dict(item.split("=", 1) for item in env)


def _commands(service: dict) -> list[list[str]]:
    """The command lines a service runs (a `sh -c "a && b && exec c"` gives a, b and c)."""
    cmd = service["command"]
    text = cmd if isinstance(cmd, str) else shlex.join(cmd)
    words = shlex.split(text)
    if words[:2] == ["sh", "-c"]:
        return [shlex.split(part.strip().removeprefix("exec ")) for part in words[2].split("&&")]
    return [words]


def test_services_and_their_images(compose):
    services = compose["services"]
    assert set(services) == {"web", "worker", "db", "redis"}
    assert services["db"]["image"] == "postgres:16"
    assert services["redis"]["image"].startswith("redis")
    assert "build" in services["web"] and services["worker"]["image"] == services["web"]["image"]


@pytest.mark.parametrize("name", ["db", "redis", "web"])
def test_health_checks(compose, name):
    check = compose["services"][name]["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1
    assert check["retries"] >= 1 and check["interval"]


def test_volumes_are_declared_and_used(compose):
    declared = set(compose["volumes"])
    used = {v.split(":", 1)[0] for s in compose["services"].values() for v in s.get("volumes", [])}
    assert used == declared
    db_volumes = compose["services"]["db"]["volumes"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db_volumes)


@pytest.mark.parametrize("name", ["web", "worker"])
def test_app_services_wait_for_healthy_db_and_redis(compose, name):
    depends = compose["services"][name]["depends_on"]
    assert depends["db"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", ["web", "worker"])
def test_app_services_configuration(compose, name):
    service = compose["services"][name]
    env = _env(service)
    assert env["PALIER_ENV_NAME"] == "production"
    assert env["DATABASE_URL"].startswith("postgresql://") and "@db:5432/" in env["DATABASE_URL"]
    assert env["PALIER_JOBS_URL"].startswith("redis://redis:6379")
    assert service["env_file"] in (".env", [".env"])
    assert "PALIER_SECRET_KEY" not in env and "PALIER_JWT_SECRET_KEY" not in env  # from the env file only
    example = (ROOT / ".env.example").read_text()
    for key in ("PALIER_SECRET_KEY", "PALIER_JWT_SECRET_KEY", "POSTGRES_PASSWORD"):
        assert re.search(rf"^{key}=$", example, re.M), key  # named, never filled in
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def _console_scripts() -> set[str]:
    return {ep.name for ep in entry_points(group="console_scripts")}


def _check_command(words: list[str], app) -> None:
    program, args = words[0], words[1:]
    if program == "flask":
        assert args[:2] == ["--app", "server"], words
        group, rest = app.cli, args[2:]
        ctx = app.cli.make_context("flask", ["--help"], resilient_parsing=True)
        while rest and not rest[0].startswith("-"):
            command = group.get_command(ctx, rest[0])
            assert command is not None, f"flask command not registered: {words}"
            group, rest = command, rest[1:]
            if not hasattr(group, "get_command"):
                break
    elif program == "gunicorn":
        assert "gunicorn" in _console_scripts()
        target = args[-1]
        module, call = target.split(":")
        factory = getattr(importlib.import_module(module), call.removesuffix("()"))
        assert callable(factory)
        workers = int(args[args.index("--workers") + 1])
        assert workers > 1 or "--threads" in args
    elif program == "huey_consumer":
        assert "huey_consumer" in _console_scripts()
        module, _, attr = args[0].rpartition(".")
        from huey import Huey
        assert isinstance(getattr(importlib.import_module(module), attr), Huey)
    else:
        raise AssertionError(f"unexpected program {program!r}")


def test_web_migrates_then_serves_with_several_workers(compose, app):
    commands = _commands(compose["services"]["web"])
    assert commands[0][:5] == ["flask", "--app", "server", "db", "upgrade"]
    assert commands[-1][0] == "gunicorn" and int(commands[-1][commands[-1].index("--workers") + 1]) >= 2
    for words in commands:
        _check_command(words, app)


def test_worker_runs_the_huey_consumer(compose, app):
    commands = _commands(compose["services"]["worker"])
    assert [c[:2] for c in commands] == [["huey_consumer", "server.tasks.huey"]]
    for words in commands:
        _check_command(words, app)


def _dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^(\w+)\s+(.*)$", text, re.M)]


def test_dockerfile_builds_the_pwa_then_installs_the_package(app):
    instructions = _dockerfile()
    stages = [arg for op, arg in instructions if op == "FROM"]
    assert stages[0].startswith("node:") and " AS " in stages[0].upper()
    assert stages[-1].startswith("python:3.11")
    runs = " ".join(arg for op, arg in instructions if op == "RUN")
    assert "npm ci" in runs and "npm run build" in runs
    extras = re.search(r'pip install "\.\[([\w,]+)\]"', runs).group(1).split(",")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras) == {"postgres", "redis"} and set(extras) <= set(declared)
    for op, arg in instructions:
        if op == "COPY" and not arg.startswith("--from"):
            for source in arg.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY source missing: {source}"
    cmd = next(arg for op, arg in instructions if op == "CMD")
    import json
    words = json.loads(cmd)
    assert words[:2] == ["sh", "-c"]
    for part in words[2].split("&&"):
        _check_command(shlex.split(part.strip().removeprefix("exec ")), app)
