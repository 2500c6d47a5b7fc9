"""engine.durable_runner: the hazards of durable-rules stay contained (a failing action, session
limits, no state shared between evaluations) now that the runner reads the state assert_facts
returns and numbers its sessions with a counter."""

from __future__ import annotations

from typing import Any

import pytest

from engine import durable_runner
from engine.compiler import CATCH_ALL_ACTION
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


def test_an_action_that_raises_fails_the_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    original = durable_runner._QuietHost.get_action

    def get_action(self: Any, action_name: str) -> Any:
        record = original(self, action_name)
        if action_name != "kps-low":
            return record

        def broken(context: Any) -> None:
            raise RuntimeError("a bug in an action")

        return broken

    monkeypatch.setattr(durable_runner._QuietHost, "get_action", get_action)
    runner = DurableRunner((stage(),))
    with pytest.raises(EngineError, match="action failed"):
        runner.run(0, [{"kind": "patient", "i": 0, "kps": 40}])
    # The failed session was deleted and the runner still answers.
    assert runner.run(0, [{"kind": "patient", "i": 0, "kps": 80}]) == []
