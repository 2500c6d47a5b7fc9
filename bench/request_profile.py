"""Where one hook call's CPU goes, step by step, in this process (no HTTP client competing for it).

    python -m bench.request_profile [--iterations 300] [--cprofile] [--no-freeze]

Each step of `POST /cds-services/spinecds-patient-view` is timed on its own with the same inputs
the real request gives it (CPU time of this process, median of `--iterations` calls), for the
~300-resource body and the filtered one; then the whole request through the ASGI app (middleware,
routing, the audit write; with SQLite the evaluation runs on the event loop) is timed, and what the
steps do not explain is the framework's share. Each middleware layer is measured by removing it,
and the thread hop on its own. `--cprofile` prints the top functions of 300 whole requests instead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse

from bench.http_bench import hook_call
from cds_hooks import cards as service_cards
from cds_hooks import prefetch
from cds_hooks.app import create_app
from cds_hooks.auth_settings import AuthSettings
from cds_hooks.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from cds_hooks.request_models import CONTEXT_MODELS, HookRequest
from cds_hooks.services import SERVICES
from cds_hooks.settings import Settings
from cds_hooks.validation import nesting_within, validate
from engine import api as engine_api
from engine import cards as engine_cards
from engine.evaluate import decide
from engine.facts import derive_facts
from engine.parse import parse_resources
from fhir_profiles.terminology import load_terminology

SERVICE = SERVICES["spinecds-patient-view"]
BASE_URL = "http://127.0.0.1:8000/"


def cpu_ms(call: Callable[[], Any], iterations: int) -> float:
    samples = []
    for _ in range(iterations):
        start = time.process_time_ns()
        call()
        samples.append((time.process_time_ns() - start) / 1e6)
    return statistics.median(samples)


def mean_cpu_ms(call: Callable[[], Any], iterations: int) -> float:
    """Mean, not median: includes the occasional full garbage collection a median hides."""
    start = time.process_time_ns()
    for _ in range(iterations):
        call()
    return (time.process_time_ns() - start) / 1e6 / iterations


class AsgiDriver:
    """Calls the ASGI app as uvicorn would, without sockets."""

    def __init__(self, app: Any, body: bytes):
        self.app = app
        self.body = body
        self.loop = asyncio.new_event_loop()
        self.status = 0

    async def _call(self) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": SERVICE_PATH,
            "raw_path": SERVICE_PATH.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(self.body)).encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": self.body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]

        await self.app(scope, receive, send)

    def __call__(self) -> None:
        self.loop.run_until_complete(self._call())
        if self.status != 200:
            raise RuntimeError(f"hook answered {self.status}")


SERVICE_PATH = f"/cds-services/{SERVICE.id}"


def build_app(database: Path) -> Any:
    settings = Settings(database_path=database, log_level="WARNING")
    return create_app(settings, auth_settings=AuthSettings(auth_enabled=False))


def middleware_costs(iterations: int) -> dict[str, float]:
    """Each of the service's middleware layers around an app that only answers 200 (its own cost)."""

    async def plain(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"{}"})

    body = b"{}"
    baseline = cpu_ms(AsgiDriver(plain, body), iterations)
    layers = {
        "RequestContextMiddleware (request id, access log)": RequestContextMiddleware(plain),
        "CORSMiddleware": CORSMiddleware(plain, allow_origins=[], allow_methods=["POST"]),
        "BodySizeLimitMiddleware": BodySizeLimitMiddleware(plain, max_bytes=5_000_000),
    }
    return {
        f"  middleware: {name}": cpu_ms(AsgiDriver(app, body), iterations) - baseline for name, app in layers.items()
    }


def steps(body_json: dict[str, Any], iterations: int, database: Path) -> dict[str, float]:
    body = json.dumps(body_json).encode()
    engine = engine_api.get_engine()
    now = datetime.now(UTC)
    term = load_terminology()
    data = orjson.loads(body)
    hook_request = validate(HookRequest, data)
    context = validate(CONTEXT_MODELS[SERVICE.hook], hook_request.context, prefix="context")
    resolved = prefetch.resolve_prefetched(hook_request, SERVICE.prefetch)
    assert resolved is not None
    resources = prefetch.flatten(resolved.data)
    facts = derive_facts(resources, now, hook=SERVICE.hook, patient_id=context.patientId)
    extra = {"service.base_url": BASE_URL.rstrip("/")}
    decision = decide(engine.compiled, engine.runner, facts, extra, now=now)

    def raw_cards() -> list[dict[str, Any]]:
        return engine_cards.render_cards(
            decision.fired,
            decision.published,
            now,
            hook_request.hookInstance,
            BASE_URL,
            facts.order_resources,
            hook=SERVICE.hook,
            provenance=facts.provenance,
        ).cards

    cards = service_cards.build_cards(raw_cards(), BASE_URL)
    app = build_app(database)
    store = app.state.store
    result: dict[str, float] = {}

    def time_step(name: str, call: Callable[[], Any]) -> None:
        result[name] = cpu_ms(call, iterations)

    time_step("JSON depth check", lambda: nesting_within(body, 64))
    time_step("JSON parse (orjson)", lambda: orjson.loads(body))
    time_step(
        "request models (HookRequest, context)",
        lambda: validate(CONTEXT_MODELS[SERVICE.hook], validate(HookRequest, data).context, prefix="context"),
    )
    time_step(
        "prefetch classify + flatten",
        lambda: prefetch.flatten(prefetch.resolve_prefetched(hook_request, SERVICE.prefetch).data),  # type: ignore[union-attr]
    )
    time_step("  of facts: filter, FHIR validation, profiles", lambda: parse_resources(resources, term, "bench"))
    time_step("facts (parse + derivation)", lambda: derive_facts(resources, now, SERVICE.hook, context.patientId))
    time_step("rules in durable-rules (decide)", lambda: decide(engine.compiled, engine.runner, facts, extra, now=now))
    time_step("  reference: same rules in plain Python", lambda: decide(engine.compiled, None, facts, extra, now=now))
    time_step("engine cards (templates, ranking, merging)", raw_cards)
    time_step("card validation + strip_empty (service)", lambda: service_cards.build_cards(raw_cards(), BASE_URL))
    fired = [{"ruleId": "r", "ruleVersion": "1", "outcome": "x"}] * len(cards)
    time_step(
        "audit write (SQLite, committed)",
        lambda: store.record_evaluation(now, hook_request.hookInstance, SERVICE.id, fired, [c["uuid"] for c in cards]),
    )
    time_step("response JSON", lambda: JSONResponse({"cards": cards}).body)
    loop = asyncio.new_event_loop()
    time_step(
        "thread hop (PostgreSQL only; not on the SQLite path)", lambda: loop.run_until_complete(run_in_threadpool(int))
    )
    loop.close()
    result["sum of steps"] = sum(v for k, v in result.items() if not k.startswith(" ") and "hop" not in k)
    whole = AsgiDriver(app, body)
    whole()
    result["whole request through the ASGI app (median)"] = cpu_ms(whole, iterations)
    result["whole request, mean (includes GC pauses)"] = mean_cpu_ms(whole, iterations)
    result.update(middleware_costs(iterations))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="CPU per step of one hook call")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--cprofile", action="store_true", help="profile 300 whole requests instead")
    parser.add_argument("--no-freeze", action="store_true", help="do not gc.freeze() after start-up")
    parser.add_argument("--body", choices=("300", "filtered"), default=None, help="only this body")
    args = parser.parse_args(argv)
    engine_api.get_engine()
    if not args.no_freeze:
        gc.freeze()  # what the service does after start-up (cds_hooks.app lifespan)
    database = Path(tempfile.mkdtemp(prefix="spinecds-profile-")) / "audit.sqlite3"
    bodies = {"300": hook_call(300), "filtered": hook_call(0)}
    if args.body:
        bodies = {args.body: bodies[args.body]}
    if args.cprofile:
        # cProfile sees one thread: run the thread-pool work inline so the profile shows all of it.
        import fastapi.dependencies.utils
        import fastapi.routing

        import cds_hooks.app
        import cds_hooks.hook_pipeline

        async def inline(function: Callable[..., Any], *call_args: Any, **kwargs: Any) -> Any:
            return function(*call_args, **kwargs)

        for module in (cds_hooks.app, cds_hooks.hook_pipeline, fastapi.routing, fastapi.dependencies.utils):
            module.run_in_threadpool = inline  # type: ignore[attr-defined]
        for name, body_json in bodies.items():
            whole = AsgiDriver(build_app(database), json.dumps(body_json).encode())
            whole()
            profiler = cProfile.Profile(time.process_time)  # CPU time: other load on the machine does not count
            profiler.enable()
            for _ in range(300):
                whole()
            profiler.disable()
            print(f"== {name} body: top functions by own time (300 requests)")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)
        return
    tables = {name: steps(body_json, args.iterations, database) for name, body_json in bodies.items()}
    names = list(next(iter(tables.values())))
    print(f"CPU ms per step (median of {args.iterations}; gc.freeze: {not args.no_freeze})")
    print(f"| step | {' | '.join(tables)} |")
    print("|---|" + "---:|" * len(tables))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{tables[t][name]:.3f}" for t in tables) + " |")


if __name__ == "__main__":
    main()
