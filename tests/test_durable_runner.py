"""engine.durable_runner: the hazards of durable-rules stay contained (a failure inside the engine,
session limits, no state shared between evaluations), and taking the matches straight from the C
engine fires exactly what durable-rules' own Python dispatch fires, on every rule case."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import durable.engine as durable_engine
import pytest

from engine import api as engine_api
from engine import durable_runner
from engine.cases import run_all_cases
from engine.compiler import CATCH_ALL_ACTION, _durable_stages
from engine.durable_runner import DurableRunner, EngineError


def stage() -> dict[str, Any]:
    """A fresh ruleset each time: durable-rules deletes the "run" keys of what it is given."""
    return {
        "kps-low": {"all": [{"m": {"$and": [{"kind": "patient"}, {"$lt": {"kps": 50}}]}}], "run": "kps-low"},
        CATCH_ALL_ACTION: {"all": [{"m": {"$ex": {"kind": 1}}}], "run": CATCH_ALL_ACTION},
    }


def test_rules_fire_per_evaluation_and_nothing_carries_over() -> None:
    runner = DurableRunner((stage(),))
    # More evaluations than durable-rules' 1,024 live sessions: each session must be deleted.
    for n in range(1_500):
        low = n % 2 == 0
        fired = runner.run(0, [{"kind": "patient", "i": 0, "kps": 40 if low else 80}, {"kind": "symptom", "i": 1}])
        assert fired == ([("kps-low", 0)] if low else []), n


class _FailingEngine:
    """durable_rules_engine with complete_and_start_action failing (an error code from the C engine)."""

    def __init__(self, real: Any):
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    @staticmethod
    def complete_and_start_action(handle: int, state_handle: int) -> Any:
        raise Exception("Could not complete action, error code: 101")  # what durable raises: a bare Exception


def test_a_failure_inside_the_c_engine_fails_the_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = DurableRunner((stage(),))
    monkeypatch.setattr(durable_runner, "durable_rules_engine", _FailingEngine(durable_runner.durable_rules_engine))
    with pytest.raises(EngineError, match="rejected the evaluation"):
        runner.run(0, [{"kind": "patient", "i": 0, "kps": 40}])
    monkeypatch.undo()
    # The failed session was deleted and the runner still answers, from a clean state.
    assert runner.run(0, [{"kind": "patient", "i": 0, "kps": 80}]) == []
    assert runner.run(0, [{"kind": "patient", "i": 0, "kps": 30}]) == [("kps-low", 0)]


def test_durable_never_dispatches_an_action_behind_the_runner() -> None:
    host = durable_runner._QuietHost()
    with pytest.raises(EngineError, match="behind the runner"):
        host.get_action("kps-low")(None)


class _StockRunner:
    """The same rulesets run through durable-rules' own Python dispatch (Host.assert_facts with one
    recording action per rule): what the runner did before it took the matches from the C engine."""

    def __init__(self, stages: tuple[dict[str, Any], ...]):
        fired: list[tuple[str, int]] = []

        class Host(durable_engine.Host):
            def _run(self) -> None:
                return None

            def get_action(self, action_name: str) -> Any:
                def record(context: Any) -> None:
                    if action_name != CATCH_ALL_ACTION:
                        fired.append((action_name, context.m["i"]))

                return record

        self.fired = fired
        self.names = [f"stock_{next(_STOCK)}_{index}" for index in range(len(stages))]
        self.host = Host()
        self.host.set_rulesets(dict(zip(self.names, stages, strict=True)))

    def run(self, stage: int, facts: list[dict[str, Any]], sid: str) -> list[tuple[str, int]]:
        self.fired.clear()
        state = self.host.assert_facts(self.names[stage], [dict(fact, sid=sid) for fact in facts])
        assert not (isinstance(state, dict) and state.get("exception")), state
        self.host.delete_state(self.names[stage], sid)
        return list(self.fired)


_STOCK = itertools.count(1)
ROOT = Path(__file__).resolve().parent.parent


def test_every_rule_case_fires_what_durables_own_dispatch_fires(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = engine_api.get_engine()
    stock = _StockRunner(_durable_stages(engine.compiled.outcomes))
    real_run = engine.runner.run
    compared = 0

    def run_both(stage_index: int, facts: list[dict[str, Any]]) -> list[tuple[str, int]]:
        nonlocal compared
        ours = real_run(stage_index, facts)
        if facts:
            assert ours == stock.run(stage_index, facts, sid=f"cmp{compared}")
            compared += 1
        return ours

    monkeypatch.setattr(engine.runner, "run", run_both)
    results = run_all_cases(engine)
    assert results and all(not result.problems for result in results)
    assert compared > len(results)  # nearly every case ran two stages through both (a deceased patient none)


def _threshold_stage() -> dict[str, Any]:
    return {
        "tiny": {"all": [{"m": {"$and": [{"kind": "p"}, {"$gt": {"x": 0}}, {"$lt": {"x": 0.001}}]}}], "run": "tiny"},
        "huge": {"all": [{"m": {"$and": [{"kind": "p"}, {"$gt": {"x": 1.5e15}}]}}], "run": "huge"},
        "negative": {"all": [{"m": {"$and": [{"kind": "p"}, {"$lt": {"x": 0}}]}}], "run": "negative"},
        "present": {"all": [{"m": {"$and": [{"kind": "p"}, {"$ex": {"x": 1}}]}}], "run": "present"},
        CATCH_ALL_ACTION: {"all": [{"m": {"$ex": {"kind": 1}}}], "run": CATCH_ALL_ACTION},
    }


@pytest.mark.parametrize(
    ("value", "fires"),
    [
        (1e-05, {"tiny", "present"}),  # json.dumps writes "1e-05": durable's reader crashed the process
        (3e-07, {"tiny", "present"}),
        (1e16, {"huge", "present"}),  # "1e+16"
        (2.5e20, {"huge", "present"}),
        (-1e-05, {"negative", "present"}),
        (12.5, {"present"}),
        (float("inf"), set()),  # no number at all: as if missing (the reader crashed on Infinity)
        (float("-inf"), set()),
        (float("nan"), set()),
        ("Tiny(1e-05)", {"tiny", "present"}),  # a float subclass: orjson refuses it, json.dumps wrote 1e-05
        ("Tiny(1e16)", {"huge", "present"}),
        ("Tiny('inf')", set()),
    ],
)
def test_numbers_durables_reader_cannot_read_are_written_so_it_can(value: float | str, fires: set[str]) -> None:
    """Run in a child process: before the fix these values killed the interpreter (a segmentation fault)."""
    number = value if isinstance(value, str) else f"float({str(value)!r})"
    script = (
        "import sys, json\n"
        "class Tiny(float): pass\n"
        "from tests.test_durable_runner import _threshold_stage\n"
        "from engine.durable_runner import DurableRunner\n"
        "runner = DurableRunner((_threshold_stage(),))\n"
        f"fired = runner.run(0, [{{'kind': 'p', 'i': 0, 'x': {number}, 'label': 'a \\u00e9 \"q\"'}}])\n"
        "print(json.dumps(sorted(name for name, _ in fired)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert set(json.loads(done.stdout.strip().splitlines()[-1])) == fires


def test_fact_json_is_the_same_json_as_durables_own_when_every_number_is_plain() -> None:
    facts = [{"kind": "p", "i": 0, "x": 12.5, "y": 0.0001, "z": 9.9e15, "s": "é", "b": True, "sid": "1"}]
    assert json.loads(durable_runner.fact_json(facts)) == facts
    assert "e" not in durable_runner.fact_json([{"x": 9.9e15, "y": 0.0001}])  # the plain range stays plain
    assert json.loads(durable_runner.fact_json([{"big": 2**70}])) == [{"big": 2**70}]  # beyond orjson's integers
    careful = durable_runner.fact_json([{**facts[0], "w": 1e-05, "v": float("nan")}])
    assert json.loads(careful) == [{**facts[0], "w": 1e-05}]
    assert '"w":1.0e-05' in careful
