"""Run the local FHIR server with uvicorn in a background thread, optionally preloaded.

`start_server()` (tests: a free 127.0.0.1 port, empty store) and `spinecds sandbox fhir-server`
(a fixed port, every synthetic patient preloaded) share this code.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import uvicorn

from .. import patients
from .server import Faults, ResourceStore, build_app


@dataclass
class RunningServer:
    base_url: str
    store: ResourceStore
    faults: Faults
    _server: uvicorn.Server
    _thread: threading.Thread

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True while the server still runs."""
        self._thread.join(timeout)
        return self._thread.is_alive()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def preload_sandbox_patients(store: ResourceStore, now: datetime | None = None) -> list[str]:
    """Every synthetic patient's resources into `store`, dates anchored at `now`; the Patient ids."""
    bundles = patients.build_all(now)
    for bundle in bundles.values():
        store.load(bundle)
    return list(bundles)


def start_server(
    store: ResourceStore | None = None, faults: Faults | None = None, host: str = "127.0.0.1", port: int | None = None
) -> RunningServer:
    """Serve in a daemon thread; returns once it accepts connections, RuntimeError if it cannot start
    (e.g. the port is taken: uvicorn logs why)."""
    app = build_app(store, faults)
    port = port or _free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fhir-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"the FHIR server did not start on {host}:{port}")
        time.sleep(0.01)
    shown_host = f"[{host}]" if ":" in host else host
    return RunningServer(f"http://{shown_host}:{port}", app.state.store, app.state.faults, server, thread)
