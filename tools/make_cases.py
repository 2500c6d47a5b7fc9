"""Write the example cases of every rule to rules/<rule-id>/cases/*.json.

    /work/venv/bin/python tools/make_cases.py          # rewrite all case files
    /work/venv/bin/python tools/make_cases.py --check  # fail when a case file differs from this script

The case files are what ships and what the engine tests; this script only keeps their FHIR spelling
consistent. Each case names its expected outcome; see rules/README.md ("Cases") for the format.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases_catalogue
from fhir_build import PATIENT_ID, bundle, patient

RULES = Path(__file__).resolve().parent.parent / "rules"


def request(
    name: str,
    resources: list[dict[str, Any]],
    hook: str = "patient-view",
    draft_orders: list[dict[str, Any]] | None = None,
    selections: list[str] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/dr-jansen", "patientId": PATIENT_ID}
    if hook != "patient-view":
        context["draftOrders"] = bundle(draft_orders or [])
    if hook == "order-select":
        context["selections"] = (
            selections if selections is not None else [f"ServiceRequest/{o['id']}" for o in draft_orders or []]
        )
    conditions = [r for r in resources if r["resourceType"] == "Condition"]
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    return {
        "hook": hook,
        "hookInstance": str(uuid.uuid5(uuid.NAMESPACE_URL, f"spinecds-case:{name}")),
        "context": context,
        "prefetch": {"patient": patient(), "conditions": bundle(conditions), "observations": bundle(observations)},
    }


def build(case: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    rule, name = case["rule"], case["name"]
    out: dict[str, Any] = {
        "title": case["title"],
        "request": request(
            f"{rule}/{name}",
            case["resources"],
            case.get("hook", "patient-view"),
            case.get("draft_orders"),
            case.get("selections"),
        ),
        "expect": {"cards": case["cards"]},
    }
    for key in ("absentRules", "presentRules"):
        if case.get(key):
            out["expect"][key] = case[key]
    return f"{rule}/cases/{name}.json", out


def main(argv: list[str]) -> int:
    check = "--check" in argv
    seen: set[str] = set()
    stale = []
    for case in cases_catalogue.CASES:
        rel, data = build(case)
        if rel in seen:
            raise SystemExit(f"duplicate case {rel}")
        seen.add(rel)
        path = RULES / rel
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if check and stale:
        print("case files out of date with tools/cases_catalogue.py:", *stale, sep="\n  ")
        return 1
    print(f"{len(seen)} cases {'checked' if check else 'written'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
