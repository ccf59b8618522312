"""A Web Push service on loopback, for the tests and the bench: a real HTTP server in a thread.

It checks what a real one checks (the VAPID JWT, ES256, aud, exp, sub; TTL, Urgency and Topic headers), decrypts
each payload with the subscription's private key (RFC 8291, via http_ece) and answers scripted statuses in turn.
Not used in production.
"""
import base64
import json
import os
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakePushService:
    def __init__(self, decrypt: bool = True, vapid_public_key: str | None = None):
        self.decrypt = decrypt
        self.vapid_public_key = vapid_public_key  # when set, the k= of every request must be this key
        self.clients: dict[str, tuple] = {}  # name -> (private key, auth secret)
        self.script: deque = deque()  # statuses answered in turn (then 201)
        self.scripts: dict[str, deque] = {}  # per subscription name, before the shared script
        self.received: list[dict] = []  # accepted deliveries
        self.requests: list[dict] = []  # every request: name, status answered
        self.errors: list[str] = []  # what a real service would have refused
        self.count = 0
        # A barrier the first requests wait at: holds a sender mid-batch until another sender's request arrives.
        self.gate: threading.Barrier | None = None
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakePushService":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def new_subscription(self, name: str | None = None) -> dict:
        """What PushManager.subscribe() gives a browser: an endpoint here and the browser's keys."""
        name = name or os.urandom(8).hex()
        key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        self.clients[name] = (key, auth)
        public = key.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": f"{self.origin}/push/{name}", "expirationTime": None,
                "keys": {"p256dh": _b64(public), "auth": _b64(auth)}}

    def deliveries(self) -> Counter:
        """How many times each (subscription name, event id, type) arrived."""
        return Counter((r["name"], r["payload"]["event_id"], r["payload"]["type"]) for r in self.received)

    # --- the checks of a real push service -------------------------------------------------------------------

    def _verify_vapid(self, header: str) -> str | None:
        scheme, _, params = header.partition(" ")
        if scheme.lower() != "vapid":
            return "Authorization is not vapid"
        parts = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
        if "t" not in parts or "k" not in parts:
            return "vapid t= or k= missing"
        if self.vapid_public_key and parts["k"] != self.vapid_public_key:
            return "k is not the application server key"
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _unb64(parts["k"]))
            claims = jwt.decode(parts["t"], key, algorithms=["ES256"], audience=self.origin,
                                options={"require": ["aud", "exp", "sub"]})
        except (jwt.PyJWTError, ValueError) as e:
            return f"VAPID JWT refused: {e}"
        if claims["exp"] > time.time() + 24 * 3600:
            return "VAPID exp more than 24 h ahead"
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            return "VAPID sub is not mailto: or https:"
        return None

    def _check(self, name: str, headers, body: bytes) -> tuple[str | None, dict | None]:
        if name not in self.clients:
            return None, None
        err = self._verify_vapid(headers.get("Authorization", ""))
        if err:
            return err, None
        ttl, topic = headers.get("TTL"), headers.get("Topic", "")
        if ttl is None or not ttl.isdigit():
            return "TTL header missing", None
        if headers.get("Urgency") not in ("very-low", "low", "normal", "high"):
            return "Urgency header missing or invalid", None
        if not topic or len(topic) > 32 or not all(c.isalnum() or c in "-_" for c in topic):
            return "Topic header missing or invalid", None
        if headers.get("Content-Encoding") != "aes128gcm":
            return "Content-Encoding is not aes128gcm", None
        key, auth = self.clients[name]
        try:
            plain = http_ece.decrypt(body, private_key=key, auth_secret=auth, version="aes128gcm")
            return None, json.loads(plain)
        except Exception as e:  # noqa: BLE001 - any failure to decrypt is what we report
            return f"payload does not decrypt: {e!r}", None

    def _handler(self):
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real push services

            def log_message(self, *args):
                pass

            def _answer(self, status: int, headers: dict | None = None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                name = self.path.rsplit("/", 1)[-1]
                if not service.decrypt:
                    with service.lock:
                        service.count += 1
                    return self._answer(201)
                gate = service.gate
                if gate is not None:
                    try:
                        gate.wait(timeout=10)
                    except threading.BrokenBarrierError:
                        service.errors.append("the gate was not passed: senders did not overlap")
                    service.gate = None
                err, data = service._check(name, self.headers, body)
                with service.lock:
                    if err:
                        service.errors.append(err)
                        status = 400
                    elif data is None:
                        status = 404
                    else:
                        own = service.scripts.get(name)
                        status = (own.popleft() if own else service.script.popleft() if service.script else 201)
                        if status == 201:
                            service.received.append({"name": name, "payload": data, "ttl": int(self.headers["TTL"]),
                                                     "urgency": self.headers["Urgency"],
                                                     "topic": self.headers["Topic"]})
                    service.requests.append({"name": name, "status": status})
                self._answer(status, {"Retry-After": "120"} if status == 429 else None)

            def do_GET(self):  # the bench asks how many arrived
                body = str(service.count).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def main() -> None:  # pragma: no cover - the bench runs it in its own process
    import sys
    service = FakePushService(decrypt=False)
    print(service.origin, flush=True)
    service.thread.start()
    sys.stdin.read()  # until the parent closes our stdin
    service.stop()


if __name__ == "__main__":
    main()
