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

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
SF = "http://spinecds.org/fhir/CodeSystem/spine-findings"


def _coding(system: str, code: str) -> dict:
    return {"coding": [{"system": system, "code": code}]}


def twenty_fact_patient() -> list[dict]:
    """A breast-cancer patient with symptoms, two SINS lesions, KPS, NRS: about 20 relevant facts."""
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/bench"},
        "clinicalStatus": _coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
        "verificationStatus": _coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"),
    }
    left = {"coding": [{"system": "http://snomed.info/sct", "code": "7771000"}]}
    resources: list[dict] = [{"resourceType": "Patient", "id": "bench"}]
    resources.append({**condition, "id": "c1", "code": _coding("http://hl7.org/fhir/sid/icd-10-cm", "C50.911")})
    resources.append({**condition, "id": "c2", "code": _coding("http://hl7.org/fhir/sid/icd-10-cm", "C79.51")})
    resources.append(
        {
            **condition,
            "id": "c3",
            "code": _coding(SF, "radicular-deficit"),
            "bodySite": [left],
            "onsetDateTime": "2026-03-07T09:00:00Z",
            "extension": [
                {"url": "http://spinecds.org/fhir/StructureDefinition/symptom-course", "valueCode": "progressive"}
            ],
        }
    )
    resources.append(
        {**condition, "id": "c4", "code": _coding(SF, "local-back-pain"), "onsetDateTime": "2026-02-01T09:00:00Z"}
    )
    resources.append(
        {
            **condition,
            "id": "c5",
            "code": _coding(SF, "radicular-pain"),
            "bodySite": [left],
            "onsetDateTime": "2026-02-20T09:00:00Z",
        }
    )
    observation = {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/bench"}}
    resources.append(
        {
            **observation,
            "id": "o1",
            "code": _coding("http://loinc.org", "89243-0"),
            "valueInteger": 70,
            "effectiveDateTime": "2026-03-01T09:00:00Z",
        }
    )
    resources.append(
        {
            **observation,
            "id": "o2",
            "code": _coding("http://loinc.org", "72514-3"),
            "valueInteger": 8,
            "effectiveDateTime": "2026-03-09T09:00:00Z",
        }
    )
    resources.append(
        {
            **observation,
            "id": "o3",
            "code": _coding("http://loinc.org", "72514-3"),
            "valueInteger": 5,
            "effectiveDateTime": "2026-03-01T09:00:00Z",
        }
    )
    for index, (level, answers) in enumerate(
        [
            (
                "T12",
                [
                    "loc-junctional",
                    "pain-mechanical",
                    "lesion-lytic",
                    "align-normal",
                    "collapse-lt50",
                    "postero-unilateral",
                ],
            ),
            ("L2", ["loc-mobile", "pain-occasional", "lesion-mixed", "align-normal", "collapse-none", "postero-none"]),
        ]
    ):
        components = [
            "sins-location",
            "sins-pain",
            "sins-bone-lesion",
            "sins-alignment",
            "sins-collapse",
            "sins-posterolateral",
        ]
        resources.append(
            {
                **observation,
                "id": f"s{index}",
                "code": _coding(SF, "sins"),
                "bodySite": {"text": level},
                "effectiveDateTime": "2026-03-08T09:00:00Z",
                "component": [
                    {"code": _coding(SF, c), "valueCodeableConcept": _coding(SF, a)}
                    for c, a in zip(components, answers, strict=True)
                ],
            }
        )
    return resources


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
