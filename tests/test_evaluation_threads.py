"""cds_hooks.evaluation_threads: the blocking part of a hook call runs on the event loop with SQLite (no
thread hop), on the service's own threads with PostgreSQL or when configured (then the loop stays free),
always with the caller's request id, never on Starlette's shared pool."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest

from cds_hooks.app import create_app
from cds_hooks.auth_settings import AuthSettings
from cds_hooks.evaluation_threads import INLINE, POSTGRES_THREADS, threads_for
from cds_hooks.logging_json import request_id_var
from cds_hooks.prefetch_templates import prefetch_templates
from cds_hooks.service_parts import rules_engine
from cds_hooks.settings import Settings
from engine.api import EvaluationResult
from tests.service_fixtures import EngineSpy, hook_request

HOOK = "/cds-services/spinecds-patient-view"


def test_thread_count_follows_the_store_unless_configured() -> None:
    assert threads_for(None, uses_postgres=False) == INLINE == 0
    assert threads_for(None, uses_postgres=True) == POSTGRES_THREADS > 1
    assert threads_for(3, uses_postgres=False) == 3
    assert threads_for(0, uses_postgres=True) == 0


class BlockingEngine(EngineSpy):
    """Records where and how many evaluations run at once; holds each until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Event()
        self.where: list[tuple[str, str | None]] = []
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def evaluate(self, request: Any) -> Any:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.where.append((threading.current_thread().name, request_id_var.get()))
        self.entered.set()
        try:
            assert self.release.wait(10), "the test never released the evaluation"
            return EvaluationResult(cards=[])
        finally:
            with self._lock:
                self.running -= 1


def _app(tmp_path: Any, engine: EngineSpy, **settings: Any) -> Any:
    app = create_app(
        Settings(database_path=tmp_path / "db.sqlite3", **settings), auth_settings=AuthSettings(auth_enabled=False)
    )
    app.dependency_overrides[rules_engine] = lambda: engine
    return app


def _body() -> dict[str, Any]:
    return hook_request(prefetch={key: None for key in prefetch_templates()})


def _call_once(app: Any) -> httpx.Response:
    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.post(HOOK, json=_body(), headers={"x-request-id": "req-evaluation-1"})

    return asyncio.run(call())


def test_with_sqlite_the_evaluation_runs_on_the_event_loop_without_a_hop(tmp_path: Any) -> None:
    engine = BlockingEngine()
    engine.release.set()
    app = _app(tmp_path, engine)
    response = _call_once(app)
    assert response.status_code == 200, response.text
    [(thread, request_id)] = engine.where
    assert thread == threading.main_thread().name  # asyncio.run's loop runs on this test's thread
    assert request_id == response.headers["x-request-id"]
    app.state.store.close()


def test_on_its_threads_the_evaluation_keeps_the_request_id(tmp_path: Any) -> None:
    engine = BlockingEngine()
    engine.release.set()
    app = _app(tmp_path, engine, evaluation_threads=1)
    response = _call_once(app)
    assert response.status_code == 200, response.text
    [(thread, request_id)] = engine.where
    assert thread.startswith("spinecds-evaluate-")
    assert request_id == response.headers["x-request-id"]
    app.state.store.close()


def test_with_one_thread_the_loop_answers_while_an_evaluation_blocks_and_evaluations_take_turns(tmp_path: Any) -> None:
    engine = BlockingEngine()
    app = _app(tmp_path, engine, evaluation_threads=1)

    async def scenario() -> tuple[int, list[int]]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            hooks = [asyncio.create_task(client.post(HOOK, json=_body())) for _ in range(2)]
            while not engine.entered.is_set():
                await asyncio.sleep(0.01)
            discovery = await asyncio.wait_for(client.get("/cds-services"), timeout=5)
            assert not any(hook.done() for hook in hooks)  # both still waiting for the engine
            engine.release.set()
            answers = await asyncio.gather(*hooks)
            return discovery.status_code, [answer.status_code for answer in answers]

    discovery_status, hook_statuses = asyncio.run(scenario())
    assert discovery_status == 200
    assert hook_statuses == [200, 200]
    assert engine.most_at_once == 1  # one evaluation thread: in turn, never together
    app.state.store.close()


@pytest.mark.parametrize("threads", [2])
def test_configured_threads_evaluate_side_by_side(tmp_path: Any, threads: int) -> None:
    engine = BlockingEngine()
    app = _app(tmp_path, engine, evaluation_threads=threads)

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            hooks = [asyncio.create_task(client.post(HOOK, json=_body())) for _ in range(threads)]
            for _ in range(500):
                if engine.running == threads:
                    break
                await asyncio.sleep(0.01)
            engine.release.set()
            assert [answer.status_code for answer in await asyncio.gather(*hooks)] == [200] * threads

    asyncio.run(scenario())
    assert engine.most_at_once == threads
    app.state.store.close()


def test_a_full_queue_answers_503_with_retry_after(tmp_path: Any) -> None:
    engine = BlockingEngine()
    app = _app(tmp_path, engine, evaluation_threads=1)
    app.state.parts.evaluation.max_waiting = 1  # one call in the thread: the next one finds the queue full

    async def scenario() -> tuple[int, httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            first = asyncio.create_task(client.post(HOOK, json=_body()))
            while not engine.entered.is_set():
                await asyncio.sleep(0.01)
            refused = await client.post(HOOK, json=_body())
            engine.release.set()
            return (await first).status_code, refused

    first_status, refused = asyncio.run(scenario())
    assert first_status == 200
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.json()["issue"][0]["code"] == "transient"
    assert len(engine.where) == 1  # the refused call never reached the engine
    app.state.store.close()
