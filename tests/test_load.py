"""Bounded load test: the real service under uvicorn on 127.0.0.1 (SQLite in a temporary folder,
auth disabled), 50 concurrent clients for a fixed time (SPINECDS_LOAD_SECONDS, default 60) mixing
patient-view calls (synthetic patients' prefetch) and feedback on the returned cards. Every answer
must be 200, and every distinct feedback item sent must be in the database afterwards.
Bounded in clients, time and requests; loopback only; the server stops by itself."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime

import requests

from cds_hooks.store import SqliteStore
from sandbox.patients import patient_ids
from tests.synthetic_requests import hook_request_for

CLIENTS = 50
SECONDS = float(os.environ.get("SPINECDS_LOAD_SECONDS", "60"))
MAX_REQUESTS_PER_CLIENT = 5000  # a hard cap, whatever the machine's speed
NOW = datetime.now(UTC).replace(microsecond=0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(base: str, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the service exited during start-up"
        try:
            if requests.get(base + "/ready", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError("the service did not become ready")


def test_fifty_clients_no_errors_no_lost_feedback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    database = tmp_path / "load.sqlite3"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SPINECDS_DATABASE_PATH": str(database),
        "SPINECDS_AUTH_ENABLED": "false",
        "SPINECDS_LOG_LEVEL": "WARNING",
    }
    env.pop("SPINECDS_DATABASE_URL", None)
    bodies = [hook_request_for(patient, "patient-view", NOW)[0] for patient in patient_ids()]
    server = subprocess.Popen(
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
            "--no-access-log",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    latencies: list[float] = []
    errors: list[str] = []
    feedback_sent: set[tuple[str, str]] = set()
    hook_calls = [0]
    lock = threading.Lock()
    try:
        _wait_ready(base, server)
        stop_at = time.monotonic() + SECONDS

        def client(number: int) -> None:
            session = requests.Session()
            for i in range(MAX_REQUESTS_PER_CLIENT):
                if time.monotonic() >= stop_at:
                    return
                body = {**bodies[(number + i) % len(bodies)], "hookInstance": str(uuid.uuid4())}
                started = time.perf_counter()
                response = session.post(base + "/cds-services/spinecds-patient-view", json=body, timeout=30)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    with lock:
                        errors.append(f"hook {response.status_code}: {response.text[:200]}")
                    continue
                cards = response.json()["cards"]
                with lock:
                    latencies.append(elapsed)
                    hook_calls[0] += 1
                if not cards:
                    continue
                outcome = "accepted" if i % 2 else "overridden"
                item = {"card": cards[0]["uuid"], "outcome": outcome, "outcomeTimestamp": NOW.isoformat()}
                started = time.perf_counter()
                response = session.post(
                    base + "/cds-services/spinecds-patient-view/feedback", json={"feedback": [item]}, timeout=30
                )
                elapsed = time.perf_counter() - started
                with lock:
                    if response.status_code == 200:
                        feedback_sent.add((item["card"], outcome))
                        latencies.append(elapsed)
                    else:
                        errors.append(f"feedback {response.status_code}: {response.text[:200]}")

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=SECONDS + 120)
        duration = time.monotonic() - started
        assert not any(thread.is_alive() for thread in threads), "clients did not finish"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    store = SqliteStore(database)
    stored = {(f["card"], f["outcome"]) for f in store.list_feedback("spinecds-patient-view")}
    rows = len(store.list_feedback())
    evaluations = len(store.list_evaluations())
    store.close()

    requests_done = len(latencies)
    p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) >= 20 else max(latencies, default=0)
    print(
        f"\nload: {CLIENTS} clients, {duration:.1f} s, {requests_done} requests, "
        f"{requests_done / duration:.1f} req/s, p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, hook calls {hook_calls[0]}, audit rows {evaluations}, "
        f"feedback sent {len(feedback_sent)}, feedback rows {rows}"
    )
    assert errors == [], errors[:5]
    assert feedback_sent, "no card came back to give feedback on"
    assert stored == feedback_sent and rows == len(feedback_sent)
    assert evaluations == hook_calls[0], "audit records were lost under load"
