"""Code before against code after, in two persistent processes run in strict alternation.

    python -m bench.interleaved_ab --old /tmp/old-checkout [--new .] [--mode request|store]
        [--rounds 60] [--per-round 100]

Export the old code first, e.g. `git archive <commit> | tar -x -C /tmp/old-checkout`. Each process
imports its own checkout (PYTHONPATH) with this checkout's interpreter, warms up, then runs blocks of
`--per-round` calls when told to: A then B, then B then A, and so on, so a change in the machine's
load hits both alike. `request`: whole requests through the ASGI app (`AsgiDriver`, filtered body,
thread hop inline); `store`: the store steps of a hook call (bench/store_bench.py). Prints the median
of the block medians of each side and the median (and quartiles) of the per-round ratios B/A. Run
it with the same checkout on both sides once to see what "no change" looks like on this machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

WORKER = r"""
import json, statistics, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
import store_bench
mode = sys.argv[1]
if mode == "request":
    from bench.http_bench import hook_call
    from bench.request_profile import AsgiDriver, build_app
    from cds_hooks import hook_pipeline

    async def inline(function, *args, **kwargs):
        return function(*args, **kwargs)

    hook_pipeline.run_in_threadpool = inline
    driver = AsgiDriver(build_app(Path(tempfile.mkdtemp()) / "ab.sqlite3"), json.dumps(hook_call(0)).encode())

    def run(n):
        samples = []
        for _ in range(n):
            start = time.process_time_ns()
            driver()
            samples.append((time.process_time_ns() - start) / 1e6)
        return samples
else:
    def run(n):
        return store_bench.store_cpu(n, Path(tempfile.mkdtemp()) / "ab.sqlite3", None)
run(200)
for line in sys.stdin:
    samples = run(int(line))
    print(json.dumps({"median": statistics.median(samples), "mean": statistics.mean(samples)}), flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", required=True, type=Path)
    parser.add_argument("--new", default=Path(), type=Path)
    parser.add_argument("--mode", choices=("request", "store"), default="request")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--per-round", type=int, default=100)
    args = parser.parse_args()
    bench_dir = str(Path(__file__).resolve().parent)
    workers = {
        name: subprocess.Popen(
            [sys.executable, "-c", WORKER, args.mode, bench_dir],
            cwd=root,
            env={"PYTHONPATH": str(root.resolve()), "PATH": "/usr/bin:/bin"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for name, root in (("A", args.old), ("B", args.new))
    }
    medians: dict[str, list[float]] = {"A": [], "B": []}
    for round_ in range(args.rounds):
        for name in ("A", "B") if round_ % 2 == 0 else ("B", "A"):
            worker = workers[name]
            assert worker.stdin is not None and worker.stdout is not None
            worker.stdin.write(f"{args.per_round}\n")
            worker.stdin.flush()
            medians[name].append(json.loads(worker.stdout.readline())["median"])
    for worker in workers.values():
        assert worker.stdin is not None
        worker.stdin.close()
        worker.wait()
    ratios = [b / a for a, b in zip(medians["A"], medians["B"], strict=True)]
    for name, label in (("A", args.old), ("B", args.new)):
        print(f"{name} ({label}): median of block medians {statistics.median(medians[name]):.4f} ms")
    quartiles = ", ".join(f"{q:.3f}" for q in statistics.quantiles(ratios, n=4))
    print(f"B/A: median of per-round ratios {statistics.median(ratios):.3f} (quartiles {quartiles})")


if __name__ == "__main__":
    main()
