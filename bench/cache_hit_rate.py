"""Hit rate of the validated-model cache (engine/model_cache.py) on realistic traffic, not on the
identical bodies of the HTTP benchmark (where every lookup after the first is a hit).

    python -m bench.cache_hit_rate [--patients 300] [--visits 2000] [--size 2048]

The model of a clinic's day, decided and written down here because no traffic log exists yet:
- `--patients` charts, each with 2-5 cancer Conditions, a KPS, 1-4 pain scores, sometimes a SINS
  Observation and a symptom, every resource with meta.versionId (what an EHR sends);
- `--visits` chart openings spread over the patients with a skew (a fifth of the patients get half of
  the openings: those on the ward), each a patient-view with the filtered prefetch our templates ask
  for; 40 % of the openings go on to order-select then order-sign of an MRI (same prefetch plus
  the draft order, which changes between select and sign: its status and priority are edited);
- between two openings of the same chart there is a 30 % chance the record changed: a new pain score
  arrives (new resource) or the KPS is amended (new versionId and value: a new key).
Only resources that reach validation count (the filter drops unrelated ones before the cache).
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.model_cache import MODEL_CACHE
from engine.parse import parse_resources
from fhir_profiles.terminology import load_terminology

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
SF = "http://spinecds.org/fhir/CodeSystem/spine-findings"
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _meta(version: int) -> dict[str, Any]:
    return {"versionId": str(version), "lastUpdated": (NOW - timedelta(days=version)).isoformat()}


def _condition(pid: str, n: int, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": f"{pid}-c{n}",
        "meta": _meta(1),
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": ICD, "code": code}]},
        "onsetDateTime": (NOW - timedelta(days=30 * n)).isoformat(),
    }


def _score(pid: str, name: str, code: str, value: int, version: int = 1) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"{pid}-{name}",
        "meta": _meta(version),
        "status": "final",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": (NOW - timedelta(hours=version)).isoformat(),
        "valueInteger": value,
    }


def _sins(pid: str) -> dict[str, Any]:
    parts = ("sins-location", "sins-pain", "sins-bone-lesion", "sins-alignment", "sins-collapse", "sins-posterolateral")
    answers = ("loc-junctional", "pain-mechanical", "lesion-lytic", "align-normal", "collapse-lt50", "postero-none")
    return {
        "resourceType": "Observation",
        "id": f"{pid}-sins",
        "meta": _meta(1),
        "status": "final",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": SF, "code": "sins"}]},
        "effectiveDateTime": (NOW - timedelta(days=2)).isoformat(),
        "bodySite": {"text": "T12"},
        "component": [
            {
                "code": {"coding": [{"system": SF, "code": c}]},
                "valueCodeableConcept": {"coding": [{"system": SF, "code": a}]},
            }
            for c, a in zip(parts, answers, strict=True)
        ],
    }


class Chart:
    def __init__(self, rng: random.Random, n: int):
        self.pid = f"p{n}"
        self.rng = rng
        primaries = ["C50.911", "C61", "C34.90", "C64.9"]
        self.resources: list[dict[str, Any]] = [{"resourceType": "Patient", "id": self.pid, "meta": _meta(1)}]
        self.resources.append(_condition(self.pid, 0, rng.choice(primaries)))
        self.resources += [_condition(self.pid, i, "C79.51") for i in range(1, rng.randint(2, 5))]
        self.kps_version = 1
        self.resources.append(_score(self.pid, "kps", "89243-0", rng.choice((50, 60, 70, 80))))
        self.pains = rng.randint(1, 4)
        self.resources += [_score(self.pid, f"nrs{i}", "72514-3", rng.randint(2, 9)) for i in range(self.pains)]
        if rng.random() < 0.4:
            self.resources.append(_sins(self.pid))

    def maybe_change(self) -> None:
        if self.rng.random() >= 0.3:
            return
        if self.rng.random() < 0.5:
            self.pains += 1
            self.resources.append(_score(self.pid, f"nrs{self.pains}", "72514-3", self.rng.randint(2, 9)))
        else:
            self.kps_version += 1
            kps = _score(self.pid, "kps", "89243-0", self.rng.choice((40, 50, 60)), self.kps_version)
            self.resources = [r for r in self.resources if r["id"] != f"{self.pid}-kps"] + [kps]

    def draft_mri(self, status: str, priority: str) -> dict[str, Any]:
        return {
            "resourceType": "ServiceRequest",
            "id": f"{self.pid}-mri",
            "status": status,
            "intent": "order",
            "priority": priority,
            "subject": {"reference": f"Patient/{self.pid}"},
            "code": {"coding": [{"system": LOINC, "code": "36553-5"}]},
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="model-cache hit rate on simulated clinic traffic")
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--visits", type=int, default=2000)
    parser.add_argument("--size", type=int, default=2048, help="cache size (SPINECDS_MODEL_CACHE_SIZE)")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    term = load_terminology()
    charts = [Chart(rng, n) for n in range(args.patients)]
    ward = charts[: max(1, args.patients // 5)]
    MODEL_CACHE.resize(args.size)
    MODEL_CACHE.clear()
    by_hook: dict[str, list[int]] = {}
    opened: set[str] = set()

    def call(hook: str, chart: Chart, drafts: list[dict[str, Any]]) -> None:
        before = MODEL_CACHE.info()
        parse_resources(chart.resources, term, chart.pid, drafts)
        after = MODEL_CACHE.info()
        counts = by_hook.setdefault(hook, [0, 0])
        counts[0] += after.hits - before.hits
        counts[1] += after.misses - before.misses

    for _ in range(args.visits):
        chart = rng.choice(ward) if rng.random() < 0.5 else rng.choice(charts)
        if chart.pid in opened:
            chart.maybe_change()
        opened.add(chart.pid)
        call("patient-view", chart, [])
        if rng.random() < 0.4:
            call("order-select", chart, [chart.draft_mri("draft", "routine")])
            call("order-sign", chart, [chart.draft_mri("draft", "urgent")])
    info = MODEL_CACHE.info()
    print(f"model cache, size {args.size}: {args.visits} openings of {args.patients} charts")
    for hook, (hits, misses) in by_hook.items():
        print(f"  {hook:13s} hits {hits:6d}  misses {misses:6d}  hit rate {hits / max(1, hits + misses):.0%}")
    print(f"  overall       hit rate {info.hit_rate:.0%}; {info.size} models held; {info.uncacheable} uncacheable")


if __name__ == "__main__":
    main()
