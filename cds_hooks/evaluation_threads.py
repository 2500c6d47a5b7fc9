"""Where the blocking part of a hook call runs (first-seen times, the engine, the card checks, the audit).

With SQLite (the default): on the event loop itself. The work is CPU-bound Python (one GIL, one
durable-rules lock: evaluations only ever take turns) and SQLite's writes in WAL mode take
microseconds without a sync per commit, so a hop to a thread only added cost: over HTTP at 8
clients, one uvicorn process, 2.62-2.77 ms CPU and 318-338 requests/s on a thread of our own
against 2.35-2.38 ms and ~400 requests/s on the loop (docs/performance.md). The price: while an
evaluation runs (2-5 ms) or the disk stalls, this worker answers nothing else, health checks
included; run several workers (the image runs 2), or set SPINECDS_EVALUATION_THREADS=1.
With PostgreSQL: a few threads of our own, so one call's database round trips overlap the next
call's rules and never stall the loop. Never Starlette's shared pool: at 8 concurrent calls it ran
up to 8 evaluations at once, which took turns on the GIL and cost ~0.5 ms more CPU per request.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .operation_outcome import ApiError

T = TypeVar("T")

INLINE = 0  # on the event loop
POSTGRES_THREADS = 4
# Calls waiting for an evaluation thread, per thread, before the service answers 503: a queue that
# long is already ~30 evaluations (~100 ms) deep; beyond it an EHR is better served by a retry.
QUEUE_PER_THREAD = 32
BUSY_RETRY_AFTER_SECONDS = 1

_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def threads_for(configured: int | None, uses_postgres: bool) -> int:
    """`SPINECDS_EVALUATION_THREADS` if set (0: on the event loop), else what the store needs."""
    if configured is not None:
        return configured
    return POSTGRES_THREADS if uses_postgres else INLINE


def _pool(threads: int) -> ThreadPoolExecutor:
    # One pool per size for the whole process, like the engine lock it feeds: an app built per test
    # must not leave a pool of idle threads behind each time.
    with _pools_lock:
        pool = _pools.get(threads)
        if pool is None:
            pool = _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix=f"spinecds-evaluate-{threads}")
        return pool


class EvaluationThreads:
    def __init__(self, threads: int):
        self.threads = threads
        self._pool = _pool(threads) if threads > 0 else None
        self._waiting = 0  # changed on the event loop only: no lock needed
        self.max_waiting = threads * QUEUE_PER_THREAD

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on the event loop (threads == 0) or on one of the pool's threads, with the
        caller's context variables (the request id in log lines)."""
        if self._pool is None:
            return function(*args)
        if self._waiting >= self.max_waiting:
            raise ApiError(
                503,
                "transient",
                "the service is busy; retry in a moment",
                headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
            )
        context = contextvars.copy_context()
        call = functools.partial(context.run, function, *args)
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        finally:
            self._waiting -= 1
