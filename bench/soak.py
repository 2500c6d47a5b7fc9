"""Memory over a long run with realistic variety: `python -m bench.soak [--requests 100000] [--charts 5000]`.

The HTTP benchmark posts one body again and again, so every cache hits after the first request and
memory cannot grow. Here each request is another chart: `--charts` patients, each with its own ids
(so its resources are new to the validated-model cache, its undated Conditions new to the first-seen
table), a fresh hookInstance, taken in turn by wrk (bench/wrk_bodies.lua) at 8 clients against one
uvicorn process. The server's resident memory is sampled every few seconds; the report gives it after
the first pass over all charts (every cache full) and at the end, with CPU per request.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import uuid
from pathlib import Path

from bench.http_bench import ROOT, cpu_seconds, hook_call, rss_mb, serve, spinecds_command

BODIES_SCRIPT = ROOT / "bench" / "wrk_bodies.lua"
CHUNK_SECONDS = 30


def chart_bodies(charts: int, resources: int) -> list[str]:
    """One hook call per chart: the benchmark patient under other patient and resource ids."""
    template = json.dumps(hook_call(resources))
    bodies = []
    for number in range(charts):
        text = template.replace('"bench"', f'"soak-{number}"').replace("Patient/bench", f"Patient/soak-{number}")
        body = json.loads(re.sub(r'"id": "(o-|c-)', rf'"id": "\g<1>{number}-', text))
        body["hookInstance"] = str(uuid.uuid4())
        bodies.append(json.dumps(body, separators=(",", ":")))
    return bodies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000, help="about this many requests in all")
    parser.add_argument("--charts", type=int, default=5_000, help="distinct charts taken in turn")
    parser.add_argument("--resources", type=int, default=0, help="0: the filtered prefetch; 300: a sloppy one")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="spinecds-soak-"))
    bodies_file = workdir / "bodies.jsonl"
    bodies = chart_bodies(args.charts, args.resources)
    bodies_file.write_text("\n".join(bodies) + "\n")
    command, env = spinecds_command(0, str(workdir / "metrics"))
    env["SPINECDS_DATABASE_PATH"] = str(workdir / "soak.sqlite3")
    with serve("spinecds", command, env, bodies[0].encode()) as server:
        url = server.base + "/cds-services/spinecds-patient-view"
        wrk = ["wrk", "-t2", f"-c{args.clients}", "--timeout", "10s", "-s", str(BODIES_SCRIPT)]
        # A first pass over every chart: the caches fill; what grows after that would be a leak.
        subprocess.run([*wrk, "-d3s", url, "--", str(bodies_file)], capture_output=True, check=True)
        fill_seconds = max(5, round(args.charts / _rps_probe(wrk, url, bodies_file)) + 5)
        subprocess.run([*wrk, f"-d{fill_seconds}s", url, "--", str(bodies_file)], capture_output=True, check=True)
        rss_full, cpu_before = rss_mb(server.pid), cpu_seconds(server.pid)
        # Chunks of CHUNK_SECONDS until the requests are done: a resident-memory sample after each.
        runs: list[dict[str, float]] = []
        samples: list[float] = []
        while sum(run["requests"] for run in runs) < args.requests:
            runs.append(
                _wrk_json(
                    subprocess.run(
                        [*wrk, f"-d{CHUNK_SECONDS}s", url, "--", str(bodies_file)], capture_output=True, text=True
                    ).stdout
                )
            )
            samples.append(rss_mb(server.pid))
        cpu_after = cpu_seconds(server.pid)
    requests = sum(run["requests"] for run in runs)
    failed = sum(
        run[k] for run in runs for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    seconds = sum(run["duration_us"] for run in runs) / 1e6
    print(
        f"soak: {requests:.0f} requests after the caches filled, over {args.charts} charts "
        f"({args.resources or 'filtered'} body), {args.clients} clients, {requests / seconds:.0f} req/s, "
        f"{failed} failed, "
        f"worst chunk p95 {max(run['p95_us'] for run in runs) / 1000:.1f} ms, "
        f"CPU {(cpu_after - cpu_before) * 1000 / requests:.2f} ms/request"
    )
    print(
        f"server RSS: {rss_full:.1f} MB after every chart was seen; after each {CHUNK_SECONDS} s: "
        + ", ".join(f"{sample:.1f}" for sample in samples)
        + " MB"
    )


def _wrk_json(output: str) -> dict[str, float]:
    return json.loads(re.search(r"^WRK_JSON (.*)$", output, re.MULTILINE).group(1))  # type: ignore[union-attr]


def _rps_probe(wrk: list[str], url: str, bodies_file: Path) -> float:
    raw = _wrk_json(subprocess.run([*wrk, "-d3s", url, "--", str(bodies_file)], capture_output=True, text=True).stdout)
    return raw["requests"] / (raw["duration_us"] / 1e6)


if __name__ == "__main__":
    main()
