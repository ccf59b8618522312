"""VAPID keys: generated once at setup into instance/vapid.json (mode 600, never committed), or given by config."""
import base64
import json
import os
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app
from py_vapid import Vapid

DEFAULT_SUBJECT = "mailto:contact@palier.invalid"


class PushNotConfigured(RuntimeError):
    """No VAPID key: run `flask --app server push-keys`."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key_pair() -> dict:
    key = ec.generate_private_key(ec.SECP256R1())
    private_raw = key.private_numbers().private_value.to_bytes(32, "big")
    public_raw = key.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.UncompressedPoint)
    return {"private_key": b64url(private_raw), "public_key": b64url(public_raw)}


def write_key_file(path: Path, subject: str) -> dict:
    """Write a new key pair, readable by its owner only (the file is created with mode 600, never widened)."""
    keys = {**new_key_pair(), "subject": subject}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keys, f, indent=2)
    path.chmod(0o600)
    return keys


def key_file() -> Path:
    return Path(current_app.instance_path) / "vapid.json"


def settings() -> dict:
    """private_key, public_key (base64url raw) and subject: config (PALIER_VAPID_*) first, then the key file."""
    cfg = current_app.config
    stored = {}
    path = key_file()
    if not (cfg.get("VAPID_PRIVATE_KEY") and cfg.get("VAPID_PUBLIC_KEY")) and path.exists():
        stored = json.loads(path.read_text())
    out = {
        "private_key": cfg.get("VAPID_PRIVATE_KEY") or stored.get("private_key"),
        "public_key": cfg.get("VAPID_PUBLIC_KEY") or stored.get("public_key"),
        "subject": cfg.get("VAPID_SUBJECT") or stored.get("subject") or DEFAULT_SUBJECT,
    }
    if not out["private_key"] or not out["public_key"]:
        raise PushNotConfigured("No VAPID key: run `flask --app server push-keys`.")
    return out


@lru_cache(maxsize=4)
def vapid_signer(private_key: str) -> Vapid:
    """The signer, parsed once per key (pywebpush would parse the key string again on every message)."""
    return Vapid.from_string(private_key)
