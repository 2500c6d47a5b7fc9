"""`spinecds sandbox fhir-server`: a real process serving the preloaded synthetic patients until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests

from tests.service_fixtures import closed_port


def _as_background_job() -> None:
    # What `spinecds sandbox fhir-server &` in a script does to the child: SIGINT ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start(*args: str, background: bool = False) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "cds_hooks.cli", "sandbox", "fhir-server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=_as_background_job if background else None,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 30
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Ctrl-C"):
            break
    return process, lines


def _interrupt(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()


def test_fhir_server_command_serves_every_synthetic_patient_and_stops_on_ctrl_c():
    port = closed_port()
    process, lines = _start("--port", str(port))
    try:
        base = f"http://127.0.0.1:{port}"
        assert lines[0] == f"FHIR R4 server (in memory) at {base}", lines
        assert "20 synthetic patients" in lines[1] and "spinecds-p04" in lines[1] and "spinecds-p20" in lines[1]
        patient = requests.get(f"{base}/Patient/spinecds-p06", timeout=5)
        assert patient.status_code == 200 and patient.json()["id"] == "spinecds-p06"
        spine = requests.get(f"{base}/Condition", params={"patient": "spinecds-p06"}, timeout=5).json()
        assert spine["total"] >= 2
        assert not any("Warning" in line for line in lines)  # fhirstarter's deprecation noise is hidden
    finally:
        rc = _interrupt(process)
    assert rc == 0


def test_fhir_server_command_no_preload_starts_empty():
    port = closed_port()
    process, lines = _start("--port", str(port), "--no-preload")
    try:
        assert lines[1].startswith("empty; load patients with: spinecds sandbox load --fhir-server")
        assert requests.get(f"http://127.0.0.1:{port}/Patient/spinecds-p06", timeout=5).status_code == 404
    finally:
        assert _interrupt(process) == 0


def test_fhir_server_command_reports_a_taken_port():
    port = closed_port()
    process, _ = _start("--port", str(port))
    try:
        second, second_lines = _start("--port", str(port), "--no-preload")
        assert second.wait(timeout=20) == 2
        assert any("is the port already in use" in line for line in second_lines), second_lines
    finally:
        _interrupt(process)


def test_fhir_server_command_stops_on_sigint_even_as_a_background_job():
    port = closed_port()
    process, lines = _start("--port", str(port), "--no-preload", background=True)
    assert lines and lines[-1].startswith("Ctrl-C"), lines
    assert _interrupt(process) == 0


def test_fhir_server_command_stops_on_sigterm():
    port = closed_port()
    process, _ = _start("--port", str(port), "--no-preload")
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
