"""Engine evaluation cost per request: durable-rules vs plain Python over the same compiled rules.

    python -m bench.engine_bench [--iterations N]

Facts are derived once (their cost belongs to the fact benchmark); what is timed is `decide`:
building subjects, asserting them into durable-rules stage by stage, choosing winners. The
baseline evaluates the very same parsed conditions in plain Python, in the same process, so the
ratio survives a noisy machine. Target (issue 3): durable path under 2 ms per request.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

from engine.api import build_engine
from engine.evaluate import decide
from engine.fixtures import build_resources

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
# A breast-cancer patient with symptoms, two SINS lesions, KPS, NRS: about 20 relevant facts.
TWENTY_FACTS = {
    "diagnoses": [
        {"concept": "breast-cancer", "onset": "400 days ago"},
        {"concept": "bone-metastasis", "onset": "60 days ago"},
    ],
    "symptoms": [
        {"code": "radicular-deficit", "side": "left", "course": "progressive", "onset": "3 days ago"},
        {"code": "local-back-pain", "onset": "37 days ago"},
        {"code": "radicular-pain", "side": "left", "onset": "18 days ago"},
    ],
    "kps": [{"value": 70, "when": "9 days ago"}],
    "nrs": [{"value": 5, "when": "9 days ago"}, {"value": 8, "when": "1 day ago"}],
    "sins": [
        {
            "level": "T12",
            "when": "2 days ago",
            "location": "loc-junctional",
            "pain": "pain-mechanical",
            "lesion": "lesion-lytic",
            "alignment": "align-normal",
            "collapse": "collapse-lt50",
            "posterolateral": "postero-unilateral",
        },
        {
            "level": "L2",
            "when": "2 days ago",
            "location": "loc-mobile",
            "pain": "pain-occasional",
            "lesion": "lesion-mixed",
            "alignment": "align-normal",
            "collapse": "collapse-none",
            "posterolateral": "postero-none",
        },
    ],
}


def twenty_fact_patient() -> list[dict]:
    """The TWENTY_FACTS patient as FHIR resources (the shared fixture builder), anchored at NOW."""
    return build_resources(TWENTY_FACTS, NOW, patient_id="bench")


def _time(function, iterations: int) -> list[float]:
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    args = parser.parse_args(argv)

    from engine.facts import derive_facts

    engine = build_engine(run_cases=False)
    facts = derive_facts(twenty_fact_patient(), NOW, hook="patient-view", patient_id="bench")
    relevant = len(facts.patient) + sum(len(s) for s in facts.symptoms + facts.lesions)
    extra = {"service.base_url": "https://bench"}
    durable = lambda: decide(engine.compiled, engine.runner, facts, extra)  # noqa: E731
    python = lambda: decide(engine.compiled, None, facts, extra)  # noqa: E731
    assert [f.outcome.action for f in durable().fired] == [f.outcome.action for f in python().fired]
    for function in (durable, python):  # warm-up
        _time(function, 200)
    durable_ms, python_ms = _time(durable, args.iterations), _time(python, args.iterations)
    fired = len(durable().fired)
    print(
        f"engine evaluation, {args.iterations} iterations, {relevant} fact values, "
        f"{len(engine.compiled.outcomes)} outcomes in {len(engine.compiled.stages)} stages, {fired} rules fired"
    )
    for label, samples in (("durable-rules", durable_ms), ("plain Python", python_ms)):
        ordered = sorted(samples)
        print(
            f"  {label:14s} mean {statistics.fmean(samples):.3f} ms  p50 {ordered[len(ordered) // 2]:.3f} ms  "
            f"p95 {ordered[int(len(ordered) * 0.95)]:.3f} ms"
        )
    ratio = statistics.fmean(durable_ms) / statistics.fmean(python_ms)
    print(
        f"  ratio durable/python (mean): {ratio:.2f}x; target: durable mean < 2 ms -> "
        f"{'met' if statistics.fmean(durable_ms) < 2 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
