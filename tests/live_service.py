"""The REAL service in its own process: `uvicorn cds_hooks.app:app` on a free 127.0.0.1 port.

For end-to-end and browser tests, which must see what `make serve` serves (settings from the
environment, lifespan, middleware), not a TestClient.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.service_fixtures import closed_port

START_TIMEOUT_SECONDS = 60


@contextmanager
def live_service(tmp_path: Path, **settings: str) -> Iterator[str]:
    """Yield the base URL once /ready says yes; `settings` are SPINECDS_* variables (name without prefix)."""
    port = closed_port()
    env = {
        **os.environ,
        "SPINECDS_AUTH_ENABLED": "false",
        "SPINECDS_FHIR_ALLOW_HTTP_LOOPBACK": "true",  # the sandbox FHIR server is plain http on 127.0.0.1
        "SPINECDS_DATABASE_PATH": str(tmp_path / "spinecds.sqlite3"),
        "SPINECDS_LOG_LEVEL": "WARNING",
    }
    env.update({f"SPINECDS_{name.upper()}": value for name, value in settings.items()})
    log = (tmp_path / "service.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "cds_hooks.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the service exited with {process.returncode}: {(tmp_path / 'service.log').read_text()[-2000:]}"
                )
            try:
                if requests.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service was not ready within {START_TIMEOUT_SECONDS} s")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
