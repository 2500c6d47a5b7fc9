"""durable-rules is not thread-safe and caps live sessions at 1,024: hammer the wrapper."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

from engine.durable_runner import DurableRunner
from engine.evaluate import decide
from engine.loader import load_rules
from engine.vocabulary import load_vocabulary

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
THREADS, PER_THREAD = 8, 2_000


def _facts(n: int) -> SimpleNamespace:
    """Patient n: lesion SINS n % 20, so each evaluation has a known right answer."""
    sins = n % 20
    return SimpleNamespace(
        patient={"patient.id": f"p{n}", "hook": "order-sign", "cancer": True},
        symptoms=[],
        lesions=[{"lesion.level": "T12", "lesion.sins_min": sins, "lesion.sins_max": sins}],
        orders=[{"order.kind": "mri-spine", "order.id": f"o{n}", "order.deadline_hours": float(n % 48)}],
        order_resources={},
    )


def _expected(n: int) -> list[str]:
    sins = n % 20
    fired = []
    if sins >= 7:
        # demo-followup: draft later than the 24 h of an unstable spine wins over after-sins
        fired.append("demo-followup#draft-too-late" if sins >= 13 and n % 48 > 24 else "demo-followup#after-sins")
        fired.append("demo-sins#unstable" if sins >= 13 else "demo-sins#potentially-unstable")
    return fired


def _rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_eight_threads_of_two_thousand_evaluations_are_all_right_and_memory_stays_flat():
    compiled = load_rules(FIXTURES, load_vocabulary())
    runner = DurableRunner(compiled.stages)
    for n in range(500):  # warm up allocator and caches before the baseline
        decide(compiled, runner, _facts(n), {})
    baseline = _rss_kb()
    wrong: list[tuple[int, list[str]]] = []
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for k in range(PER_THREAD):
                n = thread * PER_THREAD + k
                got = [f.outcome.action for f in decide(compiled, runner, _facts(n), {}).fired]
                if got != _expected(n):
                    wrong.append((n, got))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    assert not wrong, wrong[:5]
    growth_mb = (_rss_kb() - baseline) / 1024
    # 16,000 evaluations each open and delete a session: leaked sessions would grow far beyond this.
    assert growth_mb < 25, f"resident memory grew {growth_mb:.1f} MB"
