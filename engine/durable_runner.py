"""A careful wrapper around durable-rules 2.0.28 (a C extension, unmaintained since 2020).

What we measured when we chose it, and what this module does about it:
- not thread-safe, and its Host starts timer threads that dispatch actions behind our back:
  `_QuietHost` never starts them, and one process-wide lock serialises every engine call;
- at most 1,024 live sessions per ruleset: one fresh session id per evaluation (a counter: unique
  within the process, cheaper than a uuid), deleted in `finally`, and a bound on evaluations
  waiting for the engine;
- a fact matching no rule raises MessageNotHandledException: the compiler adds a catch-all rule;
- a ruleset name can be registered only once: every runner gets names of its own generation;
- its JSON reader crashes the process (a segmentation fault) on a number written with an exponent
  and no fraction, which is how Python writes 1e-05 or 1e+16, and on Infinity: `fact_json` writes
  such numbers as 1.0e-05 and leaves non-finite ones out (no number at all, like a missing value).

The C engine matches the facts (the Rete network) and queues one action per rule match; durable's
Python layer then ran each queued action through a Closure, two clock reads, and a JSON dump of
the session state that was parsed back in C, with any exception swallowed into the state. That layer
was ~28 % of a whole hook call. Our actions only record (rule, subject index), so `_run_locked`
takes the queued matches straight from the C engine with the same calls, in the same order, that
durable's own `Ruleset.do_actions` makes (tests/test_durable_runner.py compares the two on every rule
case). No Python runs between the C calls but our own few lines, so nothing can be swallowed.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
from typing import Any

import durable.engine as durable_engine
import durable_rules_engine
import orjson

from engine.compiler import CATCH_ALL_ACTION

# One lock for the whole process: the C library keeps global state shared by all hosts.
_ENGINE_LOCK = threading.Lock()
_GENERATIONS = itertools.count(1)
# A last bound, well under durable-rules' 1,024 sessions: callers bound themselves first (the hook
# path runs one evaluation at a time per event loop, or queues at most 32 per evaluation thread:
# cds_hooks/evaluation_threads.py; the SMART preview runs at most 2 at a time).
MAX_WAITING = 256


class EngineError(RuntimeError):
    """durable-rules failed; the evaluation gives no cards rather than partial ones."""


class EngineBusy(EngineError):
    """Too many evaluations are waiting for the engine."""


class _QuietHost(durable_engine.Host):
    def _run(self) -> None:
        # The stock Host starts timer threads here; our rules use no timers.
        return None

    def get_action(self, action_name: str):
        def never(context: Any) -> None:
            # DurableRunner takes the matches from the C engine itself; durable's dispatch is not used.
            raise EngineError(f"durable-rules dispatched action {action_name!r} behind the runner")

        return never


class DurableRunner:
    """Owns one Host with one ruleset per stage; `run` is safe to call from any thread."""

    def __init__(self, stages: tuple[dict[str, Any], ...], wait_timeout: float = 5.0):
        generation = next(_GENERATIONS)
        self.names = [f"spinecds_g{generation}_s{index}" for index in range(len(stages))]
        self._waiting = threading.BoundedSemaphore(MAX_WAITING)
        self._wait_timeout = wait_timeout
        self._sessions = itertools.count(1)
        with _ENGINE_LOCK:
            self._host = _QuietHost()
            self._host.set_rulesets(dict(zip(self.names, stages, strict=True)))
            self._rulesets = [self._host.get_ruleset(name) for name in self.names]

    def run(self, stage: int, facts: list[dict[str, Any]]) -> list[tuple[str, int]]:
        """Assert every fact in a fresh session; return (action, subject index) for each rule fired."""
        if not facts:
            return []
        sid = str(next(self._sessions))  # itertools.count is atomic under the GIL
        # Built before taking the lock.
        session_facts = [dict(fact, sid=sid) for fact in facts]
        payload = fact_json(session_facts)
        if not self._waiting.acquire(timeout=self._wait_timeout):
            raise EngineBusy("rule engine queue is full")
        try:
            with _ENGINE_LOCK:
                return self._run_locked(self._rulesets[stage], sid, payload, session_facts)
        finally:
            self._waiting.release()

    @staticmethod
    def _run_locked(ruleset: Any, sid: str, payload: str, facts: list[dict[str, Any]]) -> list[tuple[str, int]]:
        handle = ruleset._handle
        fired: list[tuple[str, int]] = []
        state_handle = None
        try:
            state_handle = ruleset._handle_result(durable_rules_engine.assert_facts(handle, payload), facts)
            started = durable_rules_engine.start_action_for_state(handle, state_handle)
            if not started:
                return fired
            state, message = started  # the session state (JSON) and the first queued match
            while message:
                # {rule name: {"m": the fact}}; the compiler names every rule after its action.
                # Like durable's dispatch, the first entry is the match (there is only one).
                action, match = next(iter(orjson.loads(message).items()))
                if action != CATCH_ALL_ACTION:
                    fired.append((action, match["m"]["i"]))
                # Unchanged state, handed back as durable's dispatch does before completing an action.
                durable_rules_engine.update_state(handle, state)
                message = durable_rules_engine.complete_and_start_action(handle, state_handle)
            return fired
        except EngineError:
            raise
        except Exception as error:  # durable raises bare Exceptions with numeric codes
            if state_handle is not None:
                try:
                    durable_rules_engine.abandon_action(handle, state_handle)
                except Exception:  # noqa: BLE001 - nothing was started, or it already ended
                    pass
            raise EngineError(f"durable-rules rejected the evaluation: {type(error).__name__}") from error
        finally:
            try:
                ruleset.delete_state(sid)
            except Exception:  # noqa: BLE001 - a session that never got created has nothing to delete
                pass


def _plain(value: float) -> bool:
    """Python writes a finite float without an exponent exactly in this range (repr's rule)."""
    return value == 0 or 1e-4 <= abs(value) < 1e16


def fact_json(facts: list[dict[str, Any]]) -> str:
    """The facts as JSON durable-rules can read: what durable's own assert_facts sends (json.dumps;
    orjson writes the same values, without the spaces, in a fifth of the time), unless a float would
    be written in a form its reader crashes on (see the module docstring)."""
    if all(_plain(value) for fact in facts for value in fact.values() if isinstance(value, float)):
        try:
            return orjson.dumps(facts).decode()
        except orjson.JSONEncodeError:  # an integer beyond 64 bits, a subclass of a JSON type
            pass  # json.dumps would write a float subclass with repr (1e-05): the careful path instead
    return "[" + ",".join(_careful_fact(fact) for fact in facts) + "]"


def _careful_fact(fact: dict[str, Any]) -> str:
    items = []
    for name, value in fact.items():
        if isinstance(value, float) and not _plain(value):
            if not math.isfinite(value):
                continue  # NaN or infinity: no number to compare, as if the value were missing
            mantissa, _, exponent = float.__repr__(value).partition("e")
            text = (
                f"{mantissa if '.' in mantissa else mantissa + '.0'}e{exponent}" if exponent else float.__repr__(value)
            )
        else:
            text = json.dumps(value, ensure_ascii=False)
        items.append(f"{json.dumps(name, ensure_ascii=False)}:{text}")
    return "{" + ",".join(items) + "}"
