"""HTTP benchmark: the real ASGI app under uvicorn on loopback vs a bare FastAPI endpoint.

    python -m bench.http_bench [--seconds 8] [--quick]

Reports, in one run so the ratios survive a noisy machine:
- patient-view latency p50/p95/p99 and requests/s at 1, 8 and 32 concurrent clients, for spinecds
  and for the bare endpoint (bench/bare_app.py) that parses and answers the same JSON;
- latency versus prefetch size (20, 100, 300, 1,000 resources, the extra ones unrelated vitals);
- peak resident memory of the spinecds server process;
- throughput of 2 uvicorn workers at 8 clients.
Targets (issue 8): p95 < 25 ms at 1 client with a 300-resource prefetch; throughput at 8 clients
>= 50 % of the bare baseline; cost growing at most linearly with prefetch size.
The load generator is asyncio + httpx in this process; the servers are separate processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
JSON_HEADERS = {"content-type": "application/json"}
SF = "http://spinecds.org/fhir/CodeSystem/spine-findings"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(app: str, workers: int = 1, env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--workers",
        str(workers),
    ]
    environment = {**os.environ, "SPINECDS_LOG_LEVEL": "WARNING", **(env or {})}
    process = subprocess.Popen(command, cwd=ROOT, env=environment)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/docs", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"{app} did not start")
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)


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
        },
    }


async def _load(base: str, body: dict[str, Any], clients: int, seconds: float) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    url = f"{base}/cds-services/spinecds-patient-view"
    payload = json.dumps(body).encode()  # encoded once: the load generator must not be the bottleneck
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                start = time.perf_counter()
                response = await client.post(url, content=payload, headers=JSON_HEADERS)
                latencies.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return latencies, errors, elapsed


def _summary(label: str, latencies: list[float], errors: int, elapsed: float) -> dict[str, float]:
    if errors:
        raise SystemExit(f"{label}: {errors} of {len(latencies)} requests failed; the numbers would be meaningless")
    ordered = sorted(latencies)
    pick = lambda q: ordered[min(len(ordered) - 1, int(len(ordered) * q))]  # noqa: E731
    result = {"p50": pick(0.5), "p95": pick(0.95), "p99": pick(0.99), "rps": len(latencies) / elapsed}
    print(
        f"  {label:34s} n={len(latencies):6d} err={errors:3d}  p50 {result['p50']:6.2f} ms  "
        f"p95 {result['p95']:6.2f} ms  p99 {result['p99']:6.2f} ms  {result['rps']:7.1f} req/s"
    )
    return result


def _rss_mb(pid: int) -> float:
    total = 0.0
    for candidate in [pid, *_children(pid)]:
        try:
            with open(f"/proc/{candidate}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def _current_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _load_count(base: str, body: dict[str, Any], clients: int, count: int) -> tuple[list[float], int, float]:
    """A fixed number of requests (the soak), spread over `clients` connections."""
    latencies: list[float] = []
    errors = 0
    remaining = count
    url = f"{base}/cds-services/spinecds-patient-view"
    payload = json.dumps(body).encode()
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=clients), timeout=10) as client:

        async def worker() -> None:
            nonlocal errors, remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                response = await client.post(url, content=payload, headers=JSON_HEADERS)
                latencies.append((time.perf_counter() - start) * 1000)
                errors += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return latencies, errors, time.perf_counter() - started


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
            return [int(p) for p in children.read().split()]
    except OSError:
        return []


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="spinecds HTTP benchmark")
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each load step")
    parser.add_argument("--quick", action="store_true", help="2 s steps, for a smoke run")
    parser.add_argument("--soak", type=int, default=0, help="also send this many requests and compare memory")
    args = parser.parse_args(argv)
    seconds = 2.0 if args.quick else args.seconds
    body300 = hook_call(300)
    # Loopback benchmark: client authentication is measured separately (0.4-0.8 ms per token, see
    # docs/security.md); here it would only add token minting to the load generator.
    env = {"SPINECDS_DATABASE_PATH": str(ROOT / "var" / "bench.sqlite3"), "SPINECDS_AUTH_ENABLED": "false"}
    print(f"HTTP benchmark, {seconds:.0f} s per step, patient-view with a 300-resource prefetch")
    results: dict[str, dict[str, float]] = {}
    with serve("bench.bare_app:app") as (bare_base, _), serve("cds_hooks.app:app", env=env) as (base, pid):
        asyncio.run(_load(base, body300, 4, 1.0))  # warm-up: imports, caches, SQLite
        asyncio.run(_load(bare_base, body300, 4, 1.0))
        for clients in (1, 8, 32):
            results[f"spinecds@{clients}"] = _summary(
                f"spinecds, {clients} client(s)", *asyncio.run(_load(base, body300, clients, seconds))
            )
            results[f"bare@{clients}"] = _summary(
                f"bare FastAPI, {clients} client(s)", *asyncio.run(_load(bare_base, body300, clients, seconds))
            )
        print("  latency vs prefetch size (1 client):")
        size_p50 = {}
        for size in (20, 100, 300, 1000):
            summary = _summary(f"    {size:5d} resources", *asyncio.run(_load(base, hook_call(size), 1, seconds / 2)))
            size_p50[size] = summary["p50"]
        if args.soak:
            rss_before = _current_rss_mb(pid)
            latencies, errors, elapsed = asyncio.run(_load_count(base, body300, 8, args.soak))
            _summary(f"soak, {args.soak} requests, 8 clients", latencies, errors, elapsed)
            print(f"    server RSS before {rss_before:.1f} MB, after {_current_rss_mb(pid):.1f} MB")
        peak = _rss_mb(pid)
    with serve("cds_hooks.app:app", workers=2, env=env) as (base2, _):
        asyncio.run(_load(base2, body300, 8, 2.0))
        results["spinecds-2w@8"] = _summary(
            "spinecds, 2 workers, 8 clients", *asyncio.run(_load(base2, body300, 8, seconds))
        )
    ratio = results["spinecds@8"]["rps"] / results["bare@8"]["rps"]
    growth = (size_p50[1000] - size_p50[20]) / (size_p50[300] - size_p50[20]) if size_p50[300] > size_p50[20] else 0
    print("  results:")
    print(f"    p95 at 1 client, 300 resources: {results['spinecds@1']['p95']:.2f} ms (target < 25 ms)")
    print(f"    throughput at 8 clients: {ratio:.0%} of the bare endpoint (target >= 50 %)")
    print(f"    cost growth 20->1000 vs 20->300 resources: {growth:.2f}x for 3.4x the resources (linear = 3.4)")
    print(f"    peak resident memory of the spinecds server: {peak:.1f} MB")
    print(f"    2 workers vs 1 at 8 clients: {results['spinecds-2w@8']['rps'] / results['spinecds@8']['rps']:.2f}x")


if __name__ == "__main__":
    main()
