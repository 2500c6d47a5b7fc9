"""HTTP benchmark: spinecds against the HealthChain peer and a bare endpoint, same bodies, same run.

    make bench-peers                 # once: bench/.peers-venv with PyPI healthchain; gunicorn in .venv
    python -m bench.http_bench [--seconds 10] [--repeat 3] [--workers 2,4] [--soak-seconds 0] [--quick]

The load generator is Debian's `wrk` (compiled C, bench/wrk_bodies.lua posts a body read once), so the
client takes little of the two cores the servers need. Each server is its own process; its CPU per
request comes from /proc/<pid>/stat (utime + stime, workers included) and is less sensitive to other
load on the machine than requests/s. Rounds are interleaved (spinecds, peer, bare; then again) so
noise from other users of the machine hits every target alike; the spread over rounds is reported.

Bodies: patient-view with a ~300-resource prefetch (250 unrelated vitals in one search, a sloppy EHR)
and with the filtered prefetch the service's templates ask for (the 8 resources the rules read).
Targets (issue 16): spinecds >= 0.33 of the peer's requests/s at 8 clients for both bodies; p95 < 10 ms
at 1 client and < 50 ms at 8; server CPU <= 3.5 ms per request.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cds_hooks.prefetch_templates import prefetch_templates

ROOT = Path(__file__).resolve().parent.parent
PREFETCHED = ("patient", "conditions", "performanceStatus", "pain", "sins", "staging")
PEERS_PYTHON = ROOT / "bench" / ".peers-venv" / "bin" / "python"
WRK_SCRIPT = ROOT / "bench" / "wrk_bodies.lua"
HOOK_PATH = "/cds-services/spinecds-patient-view"
SF = "http://spinecds.org/fhir/CodeSystem/spine-findings"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _condition(id_: str, system: str, code: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": id_,
        "subject": {"reference": "Patient/bench"},
        "code": {"coding": [{"system": system, "code": code}]},
        **extra,
    }


def _observation(id_: str, system: str, code: str, when: datetime, **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": id_,
        "status": "final",
        "subject": {"reference": "Patient/bench"},
        "code": {"coding": [{"system": system, "code": code}]},
        "effectiveDateTime": when.isoformat(timespec="seconds"),
        **value,
    }


def hook_call(total_resources: int) -> dict[str, Any]:
    """Breast cancer, progressive unilateral radicular deficit, SINS lesion, KPS, NRS, plus vitals noise."""
    now = datetime.now(UTC)
    left = [{"coding": [{"system": "http://snomed.info/sct", "code": "7771000"}]}]
    conditions = [
        _condition("c-breast", ICD, "C50.911"),
        _condition("c-spine", ICD, "C79.51"),
        _condition(
            "c-deficit",
            SF,
            "radicular-deficit",
            bodySite=left,
            onsetDateTime=(now - timedelta(days=3)).isoformat(timespec="seconds"),
            extension=[
                {"url": "http://spinecds.org/fhir/StructureDefinition/symptom-course", "valueCode": "progressive"}
            ],
        ),
    ]
    answers = [
        ("sins-location", "loc-junctional"),
        ("sins-pain", "pain-mechanical"),
        ("sins-bone-lesion", "lesion-lytic"),
        ("sins-alignment", "align-normal"),
        ("sins-collapse", "collapse-lt50"),
        ("sins-posterolateral", "postero-none"),
    ]
    sins = _observation(
        "o-sins",
        SF,
        "sins",
        now - timedelta(days=1),
        bodySite={"text": "T12"},
        component=[
            {
                "code": {"coding": [{"system": SF, "code": c}]},
                "valueCodeableConcept": {"coding": [{"system": SF, "code": a}]},
            }
            for c, a in answers
        ],
    )
    relevant = [
        _observation("o-kps", LOINC, "89243-0", now - timedelta(days=2), valueInteger=80),
        _observation("o-nrs1", LOINC, "72514-3", now - timedelta(days=5), valueInteger=5),
        _observation("o-nrs2", LOINC, "72514-3", now - timedelta(days=1), valueInteger=8),
        sins,
    ]
    used = 1 + len(conditions) + len(relevant)
    vitals = [
        _observation(
            f"o-vital-{i}",
            LOINC,
            ("8867-4", "8480-6", "8310-5", "9279-1")[i % 4],
            now - timedelta(hours=i),
            valueQuantity={"value": 70 + i % 30, "unit": "/min"},
        )
        for i in range(max(0, total_resources - used))
    ]

    def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}

    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/bench", "patientId": "bench"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "bench"},
            "conditions": searchset(conditions),
            # A real EHR's searches are filtered, but a sloppy one sends everything: put the noise here.
            "performanceStatus": searchset([relevant[0]] + vitals),
            "pain": searchset(relevant[1:3]),
            "sins": searchset([sins]),
            "staging": None,
            # Every other key the service's templates ask for: searched, nothing found.
            **{key: searchset([]) for key in prefetch_templates() if key not in PREFETCHED},
        },
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _process_tree(pid: int) -> list[int]:
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
            for child in children.read().split():
                pids.extend(_process_tree(int(child)))
    except OSError:
        pass
    return pids


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process and its live descendants (gunicorn workers)."""
    total = 0
    for candidate in _process_tree(pid):
        try:
            with open(f"/proc/{candidate}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    total = 0.0
    for candidate in _process_tree(pid):
        try:
            with open(f"/proc/{candidate}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


@dataclass
class Server:
    name: str
    base: str
    pid: int


@contextmanager
def serve(name: str, command: list[str], env: dict[str, str], probe: bytes) -> Iterator[Server]:
    """Start a server, wait until the hook answers 200 to `probe`, stop it afterwards."""
    port = _free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    # stdout (banners) is dropped; stderr stays, so a server that fails to start says why.
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}")
            try:
                if httpx.post(base + HOOK_PATH, content=probe, headers=JSON_HEADERS, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start")
            time.sleep(0.3)
        yield Server(name, base, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


JSON_HEADERS = {"content-type": "application/json"}


def spinecds_command(workers: int, metrics_dir: str) -> tuple[list[str], dict[str, str]]:
    env = {
        "SPINECDS_DATABASE_PATH": str(ROOT / "var" / "bench.sqlite3"),
        # Loopback benchmark: client authentication costs 0.4-0.8 ms per token (docs/security.md) and
        # would add token minting to the load generator.
        "SPINECDS_AUTH_ENABLED": "false",
        "SPINECDS_LOG_LEVEL": "WARNING",
    }
    if workers == 0:  # one uvicorn process, as `make serve` runs it
        python = [sys.executable, "-m", "uvicorn", "cds_hooks.app:app", "--host", "127.0.0.1", "--port", "{port}"]
        return [*python, "--log-level", "warning", "--no-access-log"], env
    # gunicorn as the Dockerfile runs it (deploy/gunicorn.conf.py), with N workers.
    env.update({"WEB_CONCURRENCY": str(workers), "PROMETHEUS_MULTIPROC_DIR": metrics_dir})
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "cds_hooks.app:app"]
    return [*gunicorn, "--bind", "127.0.0.1:{port}", "--log-level", "warning"], env


def peer_command() -> list[str]:
    return [str(PEERS_PYTHON), "-m", "uvicorn", "bench.peers.healthchain_app:app", "--host", "127.0.0.1"] + [
        "--port",
        "{port}",
        "--log-level",
        "warning",
        "--no-access-log",
    ]


def bare_command() -> list[str]:
    return [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1", "--port", "{port}"] + [
        "--log-level",
        "warning",
        "--no-access-log",
    ]


def run_wrk(server: Server, body_file: Path, clients: int, seconds: float) -> dict[str, float]:
    """One wrk run; requests/s, latency percentiles and the server's CPU per request."""
    threads = min(clients, 2)
    command = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{seconds:.0f}s", "--timeout", "10s"]
    command += ["-s", str(WRK_SCRIPT), server.base + HOOK_PATH, "--", str(body_file)]
    cpu_before = cpu_seconds(server.pid)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu_after = cpu_seconds(server.pid)
    match = re.search(r"^WRK_JSON (.*)$", output, re.MULTILINE)
    if match is None:
        raise SystemExit(f"wrk printed no result:\n{output}")
    raw = json.loads(match.group(1))
    failed = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    if failed or not raw["requests"]:
        raise SystemExit(f"{server.name}: {failed} of {raw['requests']} requests failed; the numbers would be wrong")
    return {
        "requests": raw["requests"],
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50": raw["p50_us"] / 1000,
        "p95": raw["p95_us"] / 1000,
        "p99": raw["p99_us"] / 1000,
        "cpu_ms": (cpu_after - cpu_before) * 1000 / raw["requests"],
    }


def check_answers(server: Server, body: bytes, expect_cards: int | None = None) -> int:
    response = httpx.post(server.base + HOOK_PATH, content=body, headers=JSON_HEADERS, timeout=10)
    response.raise_for_status()
    cards = len(response.json()["cards"])
    if expect_cards is not None and cards != expect_cards:
        raise SystemExit(f"{server.name} answered {cards} cards, expected {expect_cards}")
    return cards


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} ({min(values):.1f}-{max(values):.1f})"


def _row(label: str, runs: list[dict[str, float]]) -> dict[str, float]:
    summary = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    print(
        f"  {label:34s} req/s {_spread([r['rps'] for r in runs])}  p50 {summary['p50']:6.2f}  "
        f"p95 {summary['p95']:6.2f} ms  CPU {_spread([r['cpu_ms'] for r in runs])} ms/req"
    )
    summary["rps_min"] = min(r["rps"] for r in runs)
    summary["rps_max"] = max(r["rps"] for r in runs)
    return summary


def _uptime() -> str:
    with open("/proc/loadavg", encoding="ascii") as loadavg:
        return "load average " + " ".join(loadavg.read().split()[:3])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="spinecds HTTP benchmark against the HealthChain peer")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each wrk run")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (the spread is reported)")
    parser.add_argument("--workers", default="2,4", help="gunicorn worker counts to scale to ('' skips)")
    parser.add_argument("--soak-seconds", type=float, default=0, help="also run spinecds this long at 8 clients")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 round: a smoke run")
    parser.add_argument("--no-peer", action="store_true", help="skip the HealthChain peer (no bench/.peers-venv)")
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench-http.json", help="results file")
    args = parser.parse_args(argv)
    seconds, repeat = (3.0, 1) if args.quick else (args.seconds, args.repeat)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian package `wrk`)")
    with_peer = not args.no_peer
    if with_peer and not PEERS_PYTHON.exists():
        raise SystemExit("the HealthChain peer needs `make bench-peers` first (or pass --no-peer)")
    (ROOT / "var").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="spinecds-bench-"))
    bodies = {"300 resources": hook_call(300), "filtered (8)": hook_call(0)}
    files = {}
    for label, body in bodies.items():
        files[label] = workdir / f"{len(files)}.json"
        files[label].write_bytes(json.dumps(body).encode())
    probe = files["filtered (8)"].read_bytes()
    print(f"HTTP benchmark: wrk, {seconds:.0f} s per run, {repeat} interleaved round(s); {_uptime()}")
    results: dict[str, Any] = {"seconds": seconds, "repeat": repeat, "load_before": _uptime(), "runs": {}}
    runs: dict[str, list[dict[str, float]]] = {}
    command, env = spinecds_command(0, str(workdir))
    with (
        serve("spinecds", command, env, probe) as spinecds,
        serve("bare", bare_command(), {}, probe) as bare,
        serve("peer", peer_command(), {}, probe) if with_peer else _nothing() as peer,
    ):
        targets = [t for t in (spinecds, peer, bare) if t is not None]
        for label, path in files.items():
            cards = check_answers(spinecds, path.read_bytes())
            print(f"  spinecds answers {cards} card(s) to the {label} body")
            if peer is not None:
                check_answers(peer, path.read_bytes(), expect_cards=1)
        for target in targets:  # warm-up: imports, caches, SQLite
            run_wrk(target, files["300 resources"], 4, 2)
        rss_before = rss_mb(spinecds.pid)
        for round_ in range(repeat):
            for label, path in files.items():
                for clients in (1, 8):
                    for target in targets:
                        key = f"{target.name} | {label} | {clients} client(s)"
                        runs.setdefault(key, []).append(run_wrk(target, path, clients, seconds))
            print(f"  round {round_ + 1} of {repeat} done; {_uptime()}")
        for key, key_runs in runs.items():
            results["runs"][key] = _row(key, key_runs)
        if with_peer:
            print("  spinecds / peer requests/s at 8 clients, per round (target >= 0.33):")
            for label in files:
                ours = runs[f"spinecds | {label} | 8 client(s)"]
                theirs = runs[f"peer | {label} | 8 client(s)"]
                ratios = [a["rps"] / b["rps"] for a, b in zip(ours, theirs, strict=True)]
                results[f"ratio | {label}"] = ratios
                print(
                    f"    {label:16s} median {statistics.median(ratios):.2f}  ("
                    + ", ".join(f"{r:.2f}" for r in ratios)
                    + ")"
                )
        if args.soak_seconds:
            soak = run_wrk(spinecds, files["300 resources"], 8, args.soak_seconds)
            results["soak"] = {**soak, "rss_before_mb": rss_before, "rss_after_mb": rss_mb(spinecds.pid)}
            print(
                f"  soak: {soak['requests']:.0f} requests at 8 clients, {soak['rps']:.1f} req/s,"
                f" p95 {soak['p95']:.1f} ms;"
                f" server RSS {rss_before:.1f} MB after warm-up, {rss_mb(spinecds.pid):.1f} MB after"
            )
        results["rss_mb"] = rss_mb(spinecds.pid)
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    if worker_counts:
        print("  scaling: gunicorn workers, 300-resource body, 8 and 16 clients")
        for workers in [1, *worker_counts]:
            command, env = spinecds_command(workers, str(workdir / f"metrics-{workers}"))
            Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(exist_ok=True)
            with serve(f"gunicorn-{workers}w", command, env, probe) as server:
                run_wrk(server, files["300 resources"], 8, 2)
                for clients in (8, 16):
                    scaled = [run_wrk(server, files["300 resources"], clients, seconds) for _ in range(repeat)]
                    results["runs"][f"gunicorn {workers}w | 300 resources | {clients} clients"] = _row(
                        f"gunicorn {workers} worker(s), {clients} clients", scaled
                    )
    results["load_after"] = _uptime()
    args.json.write_text(json.dumps(results, indent=1))
    shutil.rmtree(workdir, ignore_errors=True)
    print(f"  {_uptime()}; results in {args.json}")


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    main()
