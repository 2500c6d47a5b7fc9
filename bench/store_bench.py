"""CPU of one hook call's store work (first-seen times, feedback-memory recall and hides, the audit
and memory rows), or of the whole request, in this process.

    python -m bench.store_bench [--mode store|request] [--iterations 400] [--database-url URL]

`store`: each call goes through HookPipeline.decide and .audit with the filtered body of
bench/http_bench.py (a new hookInstance, so new card uuids, each time); only the store steps are
timed (first_seen_times, FeedbackMemory.recall, Recall.hides, HookPipeline.audit) and their sum per
call is reported (median). `request`: the whole request through the ASGI app (`AsgiDriver`), with
the thread hop inline. Prints one JSON line, so a driver can run the code before and after a change
in interleaved blocks (PYTHONPATH=<old checkout> for the old code).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.http_bench import hook_call
from bench.request_profile import SERVICE, AsgiDriver, build_app
from cds_hooks import feedback_memory, hook_pipeline
from cds_hooks.settings import Settings


class Timer:
    def __init__(self) -> None:
        self.ns = 0

    def wrap(self, function: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time_ns()
            try:
                return function(*args, **kwargs)
            finally:
                self.ns += time.process_time_ns() - start

        return timed


def store_cpu(iterations: int, database: Path, database_url: str | None) -> list[float]:
    settings = Settings(database_path=database, database_url=database_url, log_level="WARNING")
    from cds_hooks.app import create_app
    from cds_hooks.auth_settings import AuthSettings

    app = create_app(settings, auth_settings=AuthSettings(auth_enabled=False))
    pipeline = hook_pipeline.HookPipeline(app.state.parts, app.state.engine)
    timer = Timer()
    hook_pipeline.first_seen_times = timer.wrap(hook_pipeline.first_seen_times)
    memory = app.state.parts.memory
    memory.recall = timer.wrap(memory.recall)
    feedback_memory.Recall.hides = timer.wrap(feedback_memory.Recall.hides)  # type: ignore[method-assign]
    audit = timer.wrap(pipeline.audit)
    loop = asyncio.new_event_loop()
    samples = []
    for _ in range(iterations):
        body = json.dumps(hook_call(0)).encode()
        call = pipeline.validate(SERVICE, body, client=None, now=datetime.now(UTC), base_url="http://x/")
        resolved = loop.run_until_complete(pipeline.resolve_prefetch(call))
        timer.ns = 0
        decision = pipeline.decide(call, resolved)
        audit(call, decision)
        samples.append(timer.ns / 1e6)
    app.state.store.close()
    return samples


def request_cpu(iterations: int, database: Path) -> list[float]:
    async def inline(function: Any, *args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    hook_pipeline.run_in_threadpool = inline  # type: ignore[assignment]
    driver = AsgiDriver(build_app(database), json.dumps(hook_call(0)).encode())
    samples = []
    for _ in range(iterations):
        start = time.process_time_ns()
        driver()
        samples.append((time.process_time_ns() - start) / 1e6)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("store", "request"), default="store")
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "bench.sqlite3"
        if args.mode == "store":
            samples = store_cpu(args.iterations, database, args.database_url)
        else:
            samples = request_cpu(args.iterations, database)
    warm = samples[len(samples) // 10 :]  # the first calls write the first-seen rows and warm caches
    print(json.dumps({"mode": args.mode, "median_ms": statistics.median(warm), "mean_ms": statistics.mean(warm)}))


if __name__ == "__main__":
    main()
