"""Where the blocking part of a hook call runs (first-seen times, the engine, the card checks, the audit).

Not on the event loop: the audit write may wait on the disk or on PostgreSQL, and health checks,
metrics and feedback must still be answered meanwhile. Not in Starlette's shared thread pool either:
at 8 concurrent calls it ran up to 8 evaluations at once, and with one GIL and one durable-rules lock
they only took turns, each switch costing cache misses (docs/performance.md: about 0.5 ms of CPU per
request at 8 clients). A small pool of our own does the same work in turn: one thread when the store
is SQLite (its writes take microseconds), a few with PostgreSQL so that one call's database round
trip does not hold up the next call's rules.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

SQLITE_THREADS = 1
POSTGRES_THREADS = 4

_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def threads_for(configured: int, uses_postgres: bool) -> int:
    """`SPINECDS_EVALUATION_THREADS`, else what the store needs (0 means: choose)."""
    if configured > 0:
        return configured
    return POSTGRES_THREADS if uses_postgres else SQLITE_THREADS


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
        self._pool = _pool(threads)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on one of the pool's threads, with the caller's context variables (the
        request id in log lines)."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, function, *args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)
