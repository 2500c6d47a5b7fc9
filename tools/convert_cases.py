"""ONE-OFF: convert rules/*/cases/*.json (generated FHIR) into the compact YAML case format.

Run once, checked side by side (tools/compare in the commit message), then deleted with the JSON.
Reverse-maps each FHIR resource to a clinical description item, keeps a field only when it differs
from what the builder writes by default, and verifies that the builder gives back the same ids,
codes, statuses and times.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.case_file import Case, hook_call
from engine.cases import CASE_NOW
from engine.fixtures import concepts as C

RULES = Path(__file__).resolve().parent.parent / "rules"
_REL = re.compile(r"^\$now(?:(?P<sign>[+-])(?P<amount>\d+(?:\.\d+)?)(?P<unit>[mhdw]))?$")
_UNITS = {"m": "minute", "h": "hour", "d": "day", "w": "week"}
LATERAL = {"7771000": "left", "24028007": "right", "51440002": "bilateral"}


def rel(value: str) -> str:
    m = _REL.match(value)
    assert m, value
    if not m["sign"]:
        return "now"
    amount = m["amount"]
    amount = amount[:-2] if amount.endswith(".0") else amount
    unit = _UNITS[m["unit"]] + ("" if amount == "1" else "s")
    return f"{amount} {unit} ago" if m["sign"] == "-" else f"in {amount} {unit}"


def status(res: dict[str, Any], key: str) -> str | None:
    concept = res.get(key)
    return concept["coding"][0]["code"] if concept else None


def find_diagnosis(system: str, code: str) -> tuple[str, str | None]:
    for name, concept in C.DIAGNOSES.items():
        if concept.codings[0][:2] == (system, code):
            return name, None
    for name, concept in C.DIAGNOSES.items():
        for coding in (*concept.codings[1:], *concept.alternatives):
            if coding[:2] == (system, code):
                short = {v: k for k, v in C.SYSTEMS.items()}[system]
                return name, short
    raise KeyError((system, code))


def condition_item(res: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    coding = res["code"]["coding"][0]
    system, code = coding["system"], coding["code"]
    item: dict[str, Any] = {}
    symptom = code if system == C.SF and C.symptom_coding(code) else None
    if system == C.SNOMED:
        symptom = next((n for n, (c, _) in C.SNOMED_SYMPTOMS.items() if c[1] == code), None)
    if symptom:
        section = "symptoms"
        item["code"] = symptom
    else:
        section = "diagnoses"
        name, coded_as = find_diagnosis(system, code)
        item["concept"] = name
        if coded_as:
            item["coded_as"] = coded_as
    if "onsetDateTime" in res:
        item["onset"] = rel(res["onsetDateTime"])
    item["recorded"] = rel(res["recordedDate"]) if "recordedDate" in res else "absent"
    for key, field, default in (
        ("clinical", "clinicalStatus", "active"),
        ("verification", "verificationStatus", "confirmed"),
    ):
        value = status(res, field)
        if value is None:
            if not (key == "clinical" and status(res, "verificationStatus") == "entered-in-error"):
                item[key] = "absent"
        elif value != default:
            item[key] = value
    for ext in res.get("extension", []):
        assert ext["url"] == C.COURSE_URL
        item["course"] = ext["valueCode"]
    for site in res.get("bodySite", []):
        if "coding" in site and site["coding"][0]["code"] in LATERAL:
            item["side"] = LATERAL[site["coding"][0]["code"]]
        elif "coding" in site:
            c = site["coding"][0]
            item["body_site"] = {"system": "snomed", "code": c["code"], "display": c["display"]}
        else:
            item["site"] = site["text"]
    item["key"] = res["id"]
    return section, item


def observation_item(res: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    coding = res["code"]["coding"][0]
    code = coding["code"]
    item: dict[str, Any] = {}
    loinc = {C.listed_coding(vs)[1]: key for key, vs in C.SCORES.items()}
    if code in loinc:
        section = loinc[code]
        item["value"] = res["valueInteger"]
    elif code == "visceral-metastases":
        section = "visceral_metastases"
        item["present"] = res["valueBoolean"]
    elif code == "sins":
        section = "sins"
        item["level"] = res["bodySite"]["text"]
        by_code = {v: k for k, v in C.SINS_COMPONENTS.items()}
        for comp in res["component"]:
            item[by_code[comp["code"]["coding"][0]["code"]]] = comp["valueCodeableConcept"]["coding"][0]["code"]
        if "valueInteger" in res:
            item["stated"] = res["valueInteger"]
    else:
        raise KeyError(code)
    item["when"] = rel(res["effectiveDateTime"])
    if res["status"] != "final":
        item["status"] = res["status"]
    item["key"] = res["id"]
    return section, item


def order_item(res: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"concept": res["code"]["coding"][0]["code"]}
    if "priority" in res:
        item["priority"] = res["priority"]
    if "occurrencePeriod" in res:
        assert res["occurrencePeriod"]["start"] == "$now"
        item["by"] = rel(res["occurrencePeriod"]["end"])
    assert res["status"] == "draft" and res["authoredOn"] == "$now" and res["intent"] == "order"
    item["key"] = res["id"]
    return item


ORDER = ["hook", "diagnoses", "symptoms", "kps", "ecog", "nrs", "visceral_metastases", "sins", "orders", "selections"]


def describe(old: dict[str, Any]) -> dict[str, Any]:
    req = old["request"]
    desc: dict[str, Any] = {"title": old["title"]}
    if req["hook"] != "patient-view":
        desc["hook"] = req["hook"]
    sections: dict[str, list[dict[str, Any]]] = {}
    for key in ("conditions", "observations"):
        for entry in req["prefetch"][key]["entry"]:
            res = entry["resource"]
            section, item = (condition_item if res["resourceType"] == "Condition" else observation_item)(res)
            sections.setdefault(section, []).append(item)
    for section in ORDER:
        if section in sections:
            desc[section] = sections[section]
    orders = [e["resource"] for e in (req["context"].get("draftOrders") or {}).get("entry", [])]
    if orders:
        desc["orders"] = [order_item(o) for o in orders]
    if req["hook"] == "order-select":
        sel = req["context"]["selections"]
        if sel != [f"ServiceRequest/{o['id']}" for o in orders]:
            desc["selections"] = [s.removeprefix("ServiceRequest/") for s in sel]
    return desc


def build(desc: dict[str, Any], rule: str, stem: str) -> dict[str, Any]:
    body = {k: v for k, v in desc.items() if k not in ("title", "hook", "selections", "expect")}
    case = Case(
        Path(f"{rule}/{stem}.yaml"), desc["title"], desc.get("hook", "patient-view"), body, {}, desc.get("selections")
    )
    return hook_call(case, rule, CASE_NOW)


def projection(req: dict[str, Any], now: datetime | None) -> list[Any]:
    """What the engine reads from each resource (codings as sets; times resolved)."""

    def t(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("$now"):
            m = _REL.match(value)
            delta = timedelta(0)
            if m["sign"]:
                unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m["unit"]]
                delta = timedelta(**{unit: float(m["amount"])}) * (1 if m["sign"] == "+" else -1)
            return (CASE_NOW + delta).isoformat(timespec="seconds").replace("+00:00", "Z")
        return value

    out = []
    bundles = [req["prefetch"][k] for k in ("conditions", "observations", "other") if k in req["prefetch"]]
    bundles.append(req["context"].get("draftOrders") or {"entry": []})
    for bundle in bundles:
        for entry in bundle["entry"]:
            r = entry["resource"]
            out.append(
                (
                    r["resourceType"],
                    r["id"],
                    r["code"]["coding"][0]["system"],
                    r["code"]["coding"][0]["code"],
                    status(r, "clinicalStatus"),
                    status(r, "verificationStatus"),
                    t(r.get("onsetDateTime")),
                    t(r.get("recordedDate")),
                    t(r.get("effectiveDateTime")),
                    r.get("status"),
                    r.get("priority"),
                    json.dumps(t((r.get("occurrencePeriod") or {}).get("end"))),
                    json.dumps(
                        [[c["code"] for c in s.get("coding", [])] or s.get("text") for s in r.get("bodySite", [])]
                        if isinstance(r.get("bodySite"), list)
                        else r.get("bodySite")
                    ),
                    json.dumps(r.get("extension")),
                    r.get("valueInteger"),
                    r.get("valueBoolean"),
                    json.dumps(
                        [
                            (c["code"]["coding"][0]["code"], c["valueCodeableConcept"]["coding"][0]["code"])
                            for c in r.get("component", [])
                        ]
                    ),
                )
            )
    out.append(tuple(req["context"].get("selections") or []))
    return sorted(out, key=str)


def minimise(desc: dict[str, Any], rule: str, stem: str, target: list[Any]) -> None:
    """Drop each field whose removal leaves the built request identical to the old one."""
    for section in ORDER:
        items = desc.get(section)
        if not isinstance(items, list) or section == "selections":
            continue
        for item in items:
            for key in ("key", "recorded"):
                if key not in item:
                    continue
                saved = item.pop(key)
                try:
                    same = projection(build(desc, rule, stem), None) == target
                except Exception:  # noqa: BLE001
                    same = False
                if not same:
                    item[key] = saved


class Dumper(yaml.SafeDumper):
    pass


def _flow_items(dumper: yaml.SafeDumper, data: dict[str, Any]) -> Any:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=None)


def to_yaml(desc: dict[str, Any]) -> str:
    lines = [f"title: {json.dumps(desc['title'], ensure_ascii=False) if needs_quote(desc['title']) else desc['title']}"]
    for key, value in desc.items():
        if key in ("title", "expect"):
            continue
        if isinstance(value, list) and value and isinstance(value[0], dict):
            lines.append(f"{key}:")
            for item in value:
                lines.append("  - " + flow(item))
        elif isinstance(value, list):
            lines.append(f"{key}: [{', '.join(value)}]")
        else:
            lines.append(f"{key}: {value}")
    lines.append("expect:")
    expect = desc["expect"]
    if not expect["cards"]:
        lines.append("  cards: []")
    else:
        lines.append("  cards:")
        for card in expect["cards"]:
            first = True
            for key, value in card.items():
                prefix = "    - " if first else "      "
                first = False
                lines.append(f"{prefix}{key}: {flow_value(value)}")
    for key in ("absentRules", "presentRules"):
        if expect.get(key):
            lines.append(f"  {key}: [{', '.join(expect[key])}]")
    return "\n".join(lines) + "\n"


def needs_quote(text: str) -> bool:
    try:
        return yaml.safe_load(f"k: {text}") != {"k": text}
    except yaml.YAMLError:
        return True


def flow_value(value: Any) -> str:
    if isinstance(value, dict):
        return flow(value)
    if isinstance(value, list):
        return "[" + ", ".join(flow_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if needs_quote(value) or "," in value or ":" in value else value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def flow(item: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {flow_value(v)}" for k, v in item.items()) + "}"


def main() -> int:
    written = 0
    for path in sorted(RULES.glob("*/cases/*.json")):
        rule, stem = path.parent.parent.name, path.stem
        old = json.loads(path.read_text())
        desc = describe(old)
        target = projection(old["request"], None)
        minimise(desc, rule, stem, target)
        got = projection(build(desc, rule, stem), None)
        if got != target:
            print("MISMATCH", path)
            for a, b in zip(got, target, strict=False):
                if a != b:
                    print("  new", a, "\n  old", b)
            return 1
        cards = []
        for card in old["expect"]["cards"]:
            assert card.pop("ruleId") == rule
            cards.append(card)
        desc["expect"] = {
            "cards": cards,
            **{k: old["expect"][k] for k in ("absentRules", "presentRules") if k in old["expect"]},
        }
        text = to_yaml(desc)
        assert yaml.safe_load(text)["expect"]["cards"] == cards, path
        path.with_suffix(".yaml").write_text(text, encoding="utf-8")
        written += 1
    print(f"{written} cases converted")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
