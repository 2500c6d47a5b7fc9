"""`spinecds fhir export`: the knowledge Bundle loads back as R4 and carries every rule and artefact."""

import json
import shutil
from pathlib import Path

import pytest
import yaml
from fhir.resources.R4B.bundle import Bundle

from cds_hooks.cli import main
from engine.loader import load_rules
from engine.publish import artefact_files, condition_text, plan_definition

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_RULES = ROOT / "tests" / "fixtures" / "rules"
RULES_DIR = ROOT / "rules"


def export(tmp_path, rules_dir, *extra):
    out = tmp_path / "knowledge.json"
    code = main(["fhir", "export", "--rules-dir", str(rules_dir), "-o", str(out), *extra])
    return code, out


def resources_of(bundle, kind):
    return {e.resource.id: e.resource for e in bundle.entry if e.resource.__resource_type__ == kind}


def rule_files(rules_dir):
    return {path.parent.name: yaml.safe_load(path.read_text()) for path in sorted(rules_dir.glob("*/rule.yaml"))}


def check_bundle(tmp_path, rules_dir):
    code, out = export(tmp_path, rules_dir)
    assert code == 0
    bundle = Bundle.model_validate(json.loads(out.read_text()))
    assert bundle.type == "collection"
    assert all(entry.fullUrl == entry.resource.url for entry in bundle.entry)
    rules = rule_files(rules_dir)
    plans = resources_of(bundle, "PlanDefinition")
    assert set(plans) == {rid for rid, rule in rules.items() if rule["status"] == "active"}
    for rule_id, plan in plans.items():
        rule = rules[rule_id]
        assert plan.url == f"http://spinecds.org/fhir/PlanDefinition/{rule_id}"
        assert (plan.version, plan.status, plan.title) == (rule["version"], "active", rule["title"])
        assert plan.type.coding[0].code == "eca-rule"
        assert [a.id for a in plan.action] == [o["id"] for o in rule["outcomes"]]
        for action, outcome in zip(plan.action, rule["outcomes"], strict=True):
            assert [(t.type, t.name) for t in action.trigger] == [("named-event", h) for h in rule["hooks"]]
            assert action.title == outcome["card"]["summary"] and action.description == outcome["card"]["detail"]
            assert (
                action.priority
                == {"critical": "stat", "warning": "urgent", "info": "routine"}[outcome["card"]["indicator"]]
            )
            assert len(action.condition or ()) == len(rule.get("when") or ()) + len(outcome.get("when") or ())
            assert all(c.expression.language == "text/x-spinecds-condition" for c in action.condition or ())
        citation = plan.relatedArtifact[0]
        assert citation.type == "citation" and citation.url == rule["citation"]["url"]
        assert citation.citation == rule["citation"]["passage"]
        assert rule["citation"]["source"] in citation.display and rule["citation"]["section"] in citation.display
    artefacts = {json.loads(p.read_text())["url"] for p in artefact_files()}
    assert artefacts <= {e.fullUrl for e in bundle.entry}
    return bundle


def test_fixture_rules_export_to_an_r4_bundle_with_every_rule_and_artefact(tmp_path):
    bundle = check_bundle(tmp_path, FIXTURE_RULES)
    kinds = {e.resource.__resource_type__ for e in bundle.entry}
    assert kinds == {"CodeSystem", "ValueSet", "StructureDefinition", "PlanDefinition", "Questionnaire"}
    sins = resources_of(bundle, "PlanDefinition")["demo-sins"]
    assert sins.version == "1.2.0"
    assert [c.expression.expression for c in sins.action[0].condition] == ["has: cancer", "lesion.sins_min >= 13"]


def test_the_project_rules_export(tmp_path):
    if not list(RULES_DIR.glob("*/rule.yaml")):
        pytest.skip("no rule files in rules/ on this branch yet")
    check_bundle(tmp_path, RULES_DIR)


def _rules_with_status(tmp_path, status):
    rules_dir = tmp_path / "rules"
    shutil.copytree(FIXTURE_RULES, rules_dir)
    path = rules_dir / "demo-followup" / "rule.yaml"
    path.write_text(path.read_text().replace("status: active", f"status: {status}"))
    return rules_dir


@pytest.mark.parametrize("status", ["draft", "retired"])
def test_inactive_rules_are_left_out_unless_all_is_asked(tmp_path, status):
    rules_dir = _rules_with_status(tmp_path, status)
    code, out = export(tmp_path, rules_dir)
    assert code == 0
    assert set(resources_of(Bundle.model_validate(json.loads(out.read_text())), "PlanDefinition")) == {"demo-sins"}
    code, out = export(tmp_path, rules_dir, "--all")
    plans = resources_of(Bundle.model_validate(json.loads(out.read_text())), "PlanDefinition")
    assert plans["demo-followup"].status == status and plans["demo-sins"].status == "active"


def test_a_broken_rule_file_exits_1_with_its_location(tmp_path, capsys):
    rules_dir = tmp_path / "rules"
    shutil.copytree(FIXTURE_RULES, rules_dir)
    path = rules_dir / "demo-sins" / "rule.yaml"
    path.write_text(path.read_text().replace("version: 1.2.0", "version: one"))
    code, out = export(tmp_path, rules_dir)
    assert code == 1 and not out.exists()
    assert "demo-sins/rule.yaml:2: demo-sins: version" in capsys.readouterr().err


def test_export_to_stdout(capsys):
    assert main(["fhir", "export", "--rules-dir", str(FIXTURE_RULES)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["resourceType"] == "Bundle"
    assert "2 PlanDefinition" in captured.err


def test_nested_conditions_read_like_the_rule_file():
    condition = {"any": ["kps < 50", {"not": {"has": "cancer"}}, {"all": [{"missing": "kps"}]}]}
    assert condition_text(condition) == "any(kps < 50; not(has: cancer); all(missing: kps))"


def test_plan_definition_of_a_loaded_rule_has_one_action_per_outcome():
    rule = next(item.rule for item in load_rules(FIXTURE_RULES).all_rules if item.rule.id == "demo-followup")
    plan = plan_definition(rule)
    assert [a["id"] for a in plan["action"]] == ["draft-too-late", "after-sins"]
    assert plan["action"][0]["code"][0]["coding"][0] == {
        "system": "http://spinecds.org/fhir/CodeSystem/rules",
        "code": "demo-followup",
        "version": "0.1.0",
    }


def test_fhir_check_command_reports_profile_issues(tmp_path, capsys):
    from engine.fixtures.resources import make_kps, make_patient

    path = tmp_path / "bundle.json"
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": make_patient()},
            {"resource": make_kps(105, id="k1")},
            {"resource": make_kps(80, id="k2")},
        ],
    }
    path.write_text(json.dumps(bundle))
    assert main(["fhir", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert out == f"{path}: Observation/k1: error: spinecds-kps-observation: KPS value out of range 0-100\n"
