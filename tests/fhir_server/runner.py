"""Run the test FHIR server with uvicorn in a background thread on a free 127.0.0.1 port."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import uvicorn

from .server import Faults, ResourceStore, build_app


@dataclass
class RunningServer:
    base_url: str
    store: ResourceStore
    faults: Faults
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(store: ResourceStore | None = None, faults: Faults | None = None) -> RunningServer:
    app = build_app(store, faults)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fhir-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test FHIR server did not start")
        time.sleep(0.01)
    return RunningServer(f"http://127.0.0.1:{port}", app.state.store, app.state.faults, server, thread)


if __name__ == "__main__":  # pragma: no cover - manual sandbox use
    import argparse

    parser = argparse.ArgumentParser(description="Run the spinecds test FHIR server (in-memory, R4)")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    uvicorn.run(build_app(), host="127.0.0.1", port=args.port)
