"""The rig for the security tests: the production entry point (`python -m cds_hooks`) in its own
process, EHR signing keys and tokens, and loopback listeners that stand in for "other hosts" and
record every connection they get (so a test can prove that none was made).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

START_TIMEOUT_SECONDS = 60

# ---------------------------------------------------------------- listeners


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


Responder = Callable[[str], tuple[int, dict[str, str], bytes]]  # path -> status, headers, body


def json_answer(resource: dict[str, Any], status: int = 200) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/fhir+json"}, json.dumps(resource).encode()


def empty_bundle(_: str) -> tuple[int, dict[str, str], bytes]:
    return json_answer({"resourceType": "Bundle", "type": "searchset", "total": 0})


@dataclass
class RecordingListener:
    """An HTTP listener on 127.0.0.1 that records every accepted connection and request."""

    responder: Responder = empty_bundle
    connections: int = 0
    requests: list[Seen] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def saw_token(self, token: str) -> bool:
        return any(token in value for seen in self.requests for value in seen.headers.values())


@contextmanager
def recording_listener(responder: Responder = empty_bundle) -> Iterator[RecordingListener]:
    listener = RecordingListener(responder)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            listener.requests.append(Seen("GET", self.path, dict(self.headers.items())))
            status, headers, body = listener.responder(self.path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # The service opens about ten connections at once (one per prefetch key); the default
        # backlog of 5 drops some SYNs, and the retry comes after the service's 1 s connect timeout.
        request_queue_size = 64

        def verify_request(self, request: Any, client_address: Any) -> bool:
            listener.connections += 1
            return True

    server = Server(("127.0.0.1", 0), Handler)
    listener.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- EHR keys and tokens


@dataclass(frozen=True)
class Ehr:
    """One trusted CDS client: its issuer, tenant and ES384 signing key."""

    iss: str
    kid: str
    private: Any
    tenant: str | None = None

    @classmethod
    def new(cls, iss: str, tenant: str | None = None) -> Ehr:
        return cls(iss, f"{uuid.uuid4().hex[:8]}", ec.generate_private_key(ec.SECP384R1()), tenant)

    def jwks(self) -> dict[str, Any]:
        jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "ES384"}]}

    def token(self, aud: str, lifetime: int = 300, **extra: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.iss, "aud": aud, "iat": now, "exp": now + lifetime}
        claims["jti"] = uuid.uuid4().hex
        if self.tenant is not None:
            claims["tenant"] = self.tenant
        claims.update(extra)
        return jwt.encode(claims, self.private, algorithm="ES384", headers={"kid": self.kid, "typ": "JWT"})

    def headers(self, aud: str, **extra: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(aud, **extra)}"}


def write_trusted_clients(folder: Path, clients: list[tuple[Ehr, list[str]]]) -> Path:
    """A trusted-clients file with each EHR's key set file and its FHIR server allowlist."""
    entries = []
    for ehr, fhir_servers in clients:
        jwks = folder / f"{ehr.kid}.jwks.json"
        jwks.write_text(json.dumps(ehr.jwks()), encoding="utf-8")
        entry: dict[str, Any] = {"iss": ehr.iss, "jwks_file": jwks.name, "fhir_server_allowlist": fhir_servers}
        if ehr.tenant is not None:
            entry["tenant"] = ehr.tenant
        entries.append(entry)
    path = folder / "trusted-clients.json"
    path.write_text(json.dumps({"trusted_clients": entries}), encoding="utf-8")
    return path


# ---------------------------------------------------------------- the production entry point


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ProductionService:
    base: str
    folder: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINTS = ("python -m cds_hooks", "gunicorn")


def _command(entry: str, port: int, folder: Path) -> list[str]:
    if entry == "python -m cds_hooks":
        return [sys.executable, "-m", "cds_hooks"]
    # The image's command line (Dockerfile CMD), one worker, on loopback.
    return [
        *(sys.executable, "-m", "gunicorn", "cds_hooks.app:app"),
        *("-k", "cds_hooks.gunicorn_worker.SpinecdsWorker", "--workers", "1"),
        *("--bind", f"127.0.0.1:{port}", "--config", str(ROOT / "deploy" / "gunicorn.conf.py")),
    ]


@contextmanager
def production_service(
    folder: Path, entry: str = "python -m cds_hooks", **settings: str
) -> Iterator[ProductionService]:
    """The production entry point (`python -m cds_hooks`, or gunicorn as the image runs it) on a free
    127.0.0.1 port with only the SPINECDS_* settings given (name without the prefix) plus host, port
    and database; yields once /ready answers 200."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SPINECDS_")}
    env.update(
        {
            "SPINECDS_HOST": "127.0.0.1",
            "SPINECDS_PORT": str(port),
            "SPINECDS_DATABASE_PATH": str(folder / "spinecds.sqlite3"),
            "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics"),
            "SPINECDS_PSEUDONYM_KEY": "attack-rig-pseudonym-key-0123456789abcdef",  # required with auth on
        }
    )
    if entry == "python -m cds_hooks":
        env.pop("PROMETHEUS_MULTIPROC_DIR")
    env.update({f"SPINECDS_{name.upper()}": value for name, value in settings.items()})
    log_path = folder / "service.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _command(entry, port, folder), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder
        )
    service = ProductionService(f"http://127.0.0.1:{port}", folder, log_path, process)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited with {process.returncode}: {service.log()[-3000:]}")
            try:
                if requests.get(f"{service.base}/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or gunicorn's worker still loading
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service was not ready within {START_TIMEOUT_SECONDS} s")
            time.sleep(0.1)
        yield service
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
