"""Configuration: embedded defaults that need nothing set, overridden by PALIER_* environment variables."""
import os
from datetime import timedelta
from pathlib import Path


class ConfigError(RuntimeError):
    """A setting that production needs is missing."""


def database_url(url: str | None, instance: Path) -> str:
    """DATABASE_URL as people write it (postgresql://...) pointed at the psycopg 3 driver we ship."""
    if not url:
        return f"sqlite:///{instance / 'palier.sqlite3'}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def defaults(instance_path: str) -> dict:
    instance = Path(instance_path)
    return {
        "SQLALCHEMY_DATABASE_URI": database_url(os.environ.get("DATABASE_URL"), instance),
        # hide_parameters: a database error's text (logged on a 500) never carries a resident's name or phone.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True},
        # Tokens: short access, refresh long enough for a whole offline shift and a weekend.
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=15),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=7),
        "JWT_TOKEN_LOCATION": ["cookies", "headers"],
        "JWT_COOKIE_SECURE": False,  # set true behind TLS (PALIER_JWT_COOKIE_SECURE=true); see README
        "JWT_COOKIE_SAMESITE": "Strict",
        "JWT_COOKIE_CSRF_PROTECT": True,
        "JWT_ACCESS_COOKIE_PATH": "/api/",
        "JWT_REFRESH_COOKIE_PATH": "/api/auth/",
        "JWT_SESSION_COOKIE": False,
        # Sync limits (docs/PROTOCOL.md)
        "SYNC_MAX_MUTATIONS": 500,
        "SYNC_PULL_MAX_LIMIT": 2000,
        "SYNC_PULL_DEFAULT_LIMIT": 500,
        "SYNC_PULL_MAX_PAGES": 20,  # pages of one streamed answer: a site's first pull (~35,000 records) in one
        # A streamed answer checks its token again (logout, deactivation, sites) before a page once this has passed.
        "SYNC_PULL_RECHECK_SECONDS": 1.0,
        "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
        # Capture times further than this from the server's clock are flagged, never trusted.
        "SYNC_CLOCK_SKEW_TOLERANCE": timedelta(hours=12),
        "PWA_DIST": str(Path(__file__).resolve().parent.parent / "pwa" / "dist"),
        "JOBS_URL": os.environ.get("PALIER_JOBS_URL") or f"sqlite:///{instance / 'jobs.sqlite3'}",
        "ENV_NAME": "development",
        **RETENTION_DEFAULTS,
        # A per-resident push link (QR shown during a visit) is single-use and lives this long.
        "PRIVACY_PUSH_LINK_TTL": timedelta(minutes=30),
        # Login abuse (server/security.py): memory counts in one process; several workers share Redis
        # (PALIER_RATELIMIT_STORAGE_URI=redis://..., set by docker-compose.yml).
        "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,  # Redis down: limit per process rather than refuse logins
        "RATELIMIT_LOGIN": "20 per minute;200 per hour",  # per client address (an office behind one NAT)
        "RATELIMIT_LOGIN_ACCOUNT": "5 per minute;30 per hour",  # failed logins per account, from any address
        "RATELIMIT_REFRESH": "30 per minute",
        # Reverse proxies in front of gunicorn that append X-Forwarded-For/-Proto (TLS terminated there): 0 ignores
        # those headers (a client could forge them to dodge the per-address limits); 1 behind one proxy, etc.
        "TRUSTED_PROXIES": 0,
    }


# Retention in days per kind of record (docs/privacy.md); PALIER_RETENTION_..._DAYS=n overrides one.
# CNIL-minded: free text shortest, prospection-like data 3 years after the last contact, logs 6 to 12 months.
RETENTION_DEFAULTS = {
    "RETENTION_VISIT_NOTES_DAYS": 365,  # a visit's free-text note is blanked (the visit stays)
    "RETENTION_VISITS_DAYS": 3 * 365,  # visits of households where nobody takes part in an action
    "RETENTION_INACTIVE_RESIDENTS_DAYS": 3 * 365,  # no engagement, visit or check-in since then: erased
    "RETENTION_REVIEW_DAYS": 90,  # resolved conflicts, rejections and duplicate suspicions
    "RETENTION_MUTATION_LOG_DAYS": 180,  # replay answers (op and body hash) of devices' mutations
    "RETENTION_AUDIT_LOG_DAYS": 365,  # who read, exported or erased personal data
    "RETENTION_PUSH_WITHDRAWN_DAYS": 365,  # a withdrawn consent's record (the proof), then deleted
    "RETENTION_PUSH_DELIVERIES_DAYS": 30,  # finished deliveries (sent, failed, dropped)
    "RETENTION_REVOKED_TOKENS_DAYS": 1,  # after the token's own expiry, when it can no longer be used
}


def secret_key_for(instance_path: str) -> str:
    """Development secret kept in instance/ (never committed), made once on first start."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(os.urandom(32).hex())
        path.chmod(0o600)
    return path.read_text().strip()


def check_production(config) -> None:
    if config.get("ENV_NAME") != "production":
        return
    missing = [k for k in ("SECRET_KEY", "JWT_SECRET_KEY") if not config.get(k)]
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        missing.append("DATABASE_URL (PostgreSQL)")
    if missing:
        raise ConfigError("Production configuration missing: " + ", ".join(missing))
    # Production runs behind TLS (HSTS is sent, server/security.py): session cookies never travel in clear.
    config["JWT_COOKIE_SECURE"] = True
