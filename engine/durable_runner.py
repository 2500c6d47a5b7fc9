"""A careful wrapper around durable-rules 2.0.28 (a C extension, unmaintained since 2020).

What we measured when we chose it, and what this module does about it:
- not thread-safe, and its Host starts timer threads that dispatch actions behind our back:
  `_QuietHost` never starts them, and one process-wide lock serialises every engine call;
- at most 1,024 live sessions per ruleset: one fresh session id per evaluation (a counter: unique
  within the process, cheaper than a uuid), deleted in `finally`, and a bound on evaluations
  waiting for the engine;
- a fact matching no rule raises MessageNotHandledException: the compiler adds a catch-all rule;
- exceptions inside actions are swallowed into the session state: we check `state['exception']`
  on the state `assert_facts` hands back (reading it again with `get_state` cost a C call and a
  JSON parse per stage);
- a ruleset name can be registered only once: every runner gets names of its own generation.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import durable.engine as durable_engine

from engine.compiler import CATCH_ALL_ACTION

# One lock for the whole process: the C library keeps global state shared by all hosts.
_ENGINE_LOCK = threading.Lock()
_GENERATIONS = itertools.count(1)
MAX_WAITING = 256  # well under durable-rules' 1,024 sessions, and far above 2 cores' useful queue


class EngineError(RuntimeError):
    """durable-rules failed; the evaluation gives no cards rather than partial ones."""


class EngineBusy(EngineError):
    """Too many evaluations are waiting for the engine."""


class _QuietHost(durable_engine.Host):
    def __init__(self) -> None:
        self.fired: list[tuple[str, int]] = []
        super().__init__()

    def _run(self) -> None:
        # The stock Host starts timer threads here; our rules use no timers.
        return None

    def get_action(self, action_name: str):
        fired = self.fired

        def record(context: Any) -> None:
            if action_name != CATCH_ALL_ACTION:
                fired.append((action_name, context.m["i"]))

        return record


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

    def run(self, stage: int, facts: list[dict[str, Any]]) -> list[tuple[str, int]]:
        """Assert every fact in a fresh session; return (action, subject index) for each rule fired."""
        if not facts:
            return []
        sid = str(next(self._sessions))  # itertools.count is atomic under the GIL
        session_facts = [dict(fact, sid=sid) for fact in facts]  # built before taking the lock
        if not self._waiting.acquire(timeout=self._wait_timeout):
            raise EngineBusy("rule engine queue is full")
        try:
            with _ENGINE_LOCK:
                return self._run_locked(self.names[stage], sid, session_facts)
        finally:
            self._waiting.release()

    def _run_locked(self, ruleset: str, sid: str, facts: list[dict[str, Any]]) -> list[tuple[str, int]]:
        host = self._host
        host.fired.clear()
        try:
            # The state after every action ran; an action that raised left its error in it.
            state = host.assert_facts(ruleset, facts)
            if isinstance(state, dict) and state.get("exception"):
                raise EngineError("a rule action failed inside durable-rules")
            return list(host.fired)
        except EngineError:
            raise
        except Exception as error:  # durable raises bare Exceptions with numeric codes
            raise EngineError(f"durable-rules rejected the evaluation: {type(error).__name__}") from error
        finally:
            try:
                host.delete_state(ruleset, sid)
            except Exception:  # noqa: BLE001 - a session that never got created has nothing to delete
                pass
            host.fired.clear()
