"""Time derive_facts on a 300-resource request: 250 unrelated vital signs + 50 relevant resources.

Run: python bench/bench_facts.py   (from the repository root)
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.facts import derive_facts
from engine.fixtures.resources import (
    ICD10,
    SINS_ANSWERS_18,
    make_condition,
    make_ecog,
    make_kps,
    make_nrs,
    make_patient,
    make_sins,
    make_vital,
)
from engine.scores import load_scores
from fhir_profiles.terminology import load_terminology

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def request() -> list[dict]:
    resources = [make_patient()]
    resources += [make_vital(NOW - timedelta(hours=i)) for i in range(250)]
    relevant = [
        make_condition("C50.9", ICD10, onset="2020-01-01"),
        make_condition("C79.51", ICD10),
        make_condition("radicular-deficit", laterality="left", onset=NOW - timedelta(days=3)),
        make_condition("mescc", verification="provisional"),
    ]
    for i in range(46):
        kind = i % 4
        when = NOW - timedelta(days=i)
        relevant.append(
            [
                make_kps(80, when),
                make_ecog(1, when),
                make_nrs(i % 11, when),
                make_sins(f"L{i % 5 + 1}", SINS_ANSWERS_18, when=when),
            ][kind]
        )
    return resources + relevant[:50]


def main(rounds: int = 200) -> None:
    resources = request()
    assert len(resources) == 301  # 250 vitals + 50 relevant + the Patient
    term, tables = load_terminology(), load_scores()
    derive_facts(resources, NOW, "patient-view", "p1", terminology=term, scores=tables)  # warm caches
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        facts = derive_facts(resources, NOW, "patient-view", "p1", terminology=term, scores=tables)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(
        f"derive_facts, {len(resources)} resources ({facts.validated} validated): "
        f"median {statistics.median(times):.2f} ms, p95 {times[int(0.95 * len(times))]:.2f} ms, "
        f"max {times[-1]:.2f} ms over {rounds} runs"
    )


if __name__ == "__main__":
    main()
