"""The compact rule-case format: strict keys with file:line, the failure explains itself, cases stay small,
and `spinecds rules new` scaffolds a folder that passes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cds_hooks.cli import main
from engine.api import Engine, build_engine
from engine.case_file import CaseFileError, hook_call, read_case
from engine.cases import CASE_NOW, case_files, run_case
from engine.loader import load_rules
from engine.vocabulary import RULES_DIR

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
GOOD = """\
title: Progressive deficit since 3 days
diagnoses:
  - {concept: breast-cancer, onset: 400 days ago}
symptoms:
  - {code: radicular-deficit, side: left, course: progressive, onset: 3 days ago}
expect:
  cards:
    - indicator: critical
      outcome: 2
      deadlineHours: 24
"""


@pytest.fixture(scope="module")
def engine() -> Engine:
    return build_engine(run_cases=False)


def _case(tmp_path: Path, text: str, rule: str = "mri-urgency") -> Path:
    path = tmp_path / rule / "cases" / "a-case.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_case_expands_into_the_hook_call_an_ehr_would_send(tmp_path):
    body = hook_call(read_case(_case(tmp_path, GOOD)), "mri-urgency", CASE_NOW)
    assert body["hook"] == "patient-view" and body["context"]["patientId"] == "p1"
    (symptom,) = [e["resource"] for e in body["prefetch"]["conditions"]["entry"] if e["resource"]["id"] == "sx-1"]
    assert symptom["onsetDateTime"] == "2026-03-07T09:00:00Z"
    assert symptom["bodySite"][0]["coding"][0]["code"] == "7771000"  # SNOMED left
    assert symptom["extension"][0]["valueCode"] == "progressive"


def test_an_unknown_expect_key_names_file_line_and_the_fix(tmp_path):
    path = _case(tmp_path, GOOD.replace("    - indicator: critical", "    - indicater: critical"))
    with pytest.raises(CaseFileError) as error:
        read_case(path)
    assert str(error.value) == f"{path}:8: unknown key 'indicater' - did you mean 'indicator'?"


def test_an_unknown_item_key_and_concept_are_located(tmp_path, engine):
    path = _case(tmp_path, GOOD.replace("side: left", "sied: left"))
    result = run_case(engine, "mri-urgency", path)
    assert result.problems == [f"cannot read case: {path}:5: unknown key 'sied' - did you mean 'side'?"]
    path = _case(tmp_path, GOOD.replace("breast-cancer", "brest-cancer"))
    result = run_case(engine, "mri-urgency", path)
    assert f"{path}:3: unknown concept 'brest-cancer' - did you mean 'breast-cancer'?" in result.problems[0]


def test_a_bad_time_says_how_to_write_it(tmp_path, engine):
    path = _case(tmp_path, GOOD.replace("onset: 3 days ago}", "onset: $now-3d}"))
    (problem,) = run_case(engine, "mri-urgency", path).problems
    assert f"{path}:5:" in problem and "'3 days ago'" in problem


def test_a_failing_case_says_what_failed_and_why(tmp_path, engine):
    # Onset 10 days before it was presented (now): developed over more than 7 days, tier 3, not tier 2
    # (revision 2 reads "develops within seven days" from onset to presentation). The report shows
    # the failed condition of outcome 2.
    result = run_case(
        engine, "mri-urgency", _case(tmp_path, GOOD.replace("onset: 3 days ago", "onset: 10 days ago, recorded: now"))
    )
    report = "\n".join(result.report())
    assert "outcome: expected 2, got 3" in report
    assert "why" in report
    assert "failed:" in report and "mri-urgency#" in report


def test_the_escape_hatch_writes_codings_statuses_and_raw_resources(tmp_path):
    text = """\
title: escape hatch
diagnoses:
  - {coding: {system: icd-10, code: C80.1}, verification: refuted, onset: 2 years ago}
  - {concept: mescc, coded_as: spine-findings, clinical: resolved, recorded: absent}
symptoms:
  - {code: radicular-pain, body_site: {system: snomed, code: "61685007", display: Lower limb}, onset: now}
resources:
  - {resourceType: Condition, id: raw-1, code: {text: odd}, onsetDateTime: 30 hours ago}
expect:
  cards: []
"""
    body = hook_call(read_case(_case(tmp_path, text)), "mri-urgency", CASE_NOW)
    by_id = {e["resource"]["id"]: e["resource"] for e in body["prefetch"]["conditions"]["entry"]}
    assert by_id["cond-1"]["code"]["coding"][0]["code"] == "C80.1"
    assert by_id["cond-1"]["verificationStatus"]["coding"][0]["code"] == "refuted"
    assert [c["code"] for c in by_id["mescc-1"]["code"]["coding"]] == ["mescc"]
    assert "recordedDate" not in by_id["mescc-1"]
    assert by_id["sx-1"]["bodySite"] == [
        {"coding": [{"system": "http://snomed.info/sct", "code": "61685007", "display": "Lower limb"}]}
    ]
    assert by_id["raw-1"]["onsetDateTime"] == "2026-03-09T03:00:00Z"
    assert by_id["raw-1"]["subject"] == {"reference": "Patient/p1"}


def test_order_cases_carry_draft_orders_and_selections(tmp_path):
    text = """\
title: order select
hook: order-select
orders:
  - {concept: mri-whole-spine, priority: routine, by: in 14 days}
  - {concept: spine-radiotherapy, priority: urgent}
selections: [sr-rt]
expect:
  cards: []
"""
    body = hook_call(read_case(_case(tmp_path, text)), "mri-urgency", CASE_NOW)
    orders = [e["resource"] for e in body["context"]["draftOrders"]["entry"]]
    assert [o["id"] for o in orders] == ["sr-mri", "sr-rt"]
    assert orders[0]["occurrencePeriod"]["end"] == "2026-03-24T09:00:00Z"
    assert body["context"]["selections"] == ["ServiceRequest/sr-rt"]


def test_every_case_in_the_repository_is_small_and_readable():
    files = [path for _rule, path in case_files(RULES_DIR)]
    assert len(files) >= 100
    lines = [len(path.read_text().splitlines()) for path in files]
    assert sum(lines) / len(lines) <= 40, f"average case is {sum(lines) / len(lines):.1f} lines"
    for path in files:
        case = read_case(path)  # strict: every key known
        assert case.title and "$now" not in path.read_text(), path


def test_rules_new_scaffolds_a_folder_that_validates_and_passes(tmp_path, capsys):
    rules = tmp_path / "rules"
    shutil.copytree(FIXTURES, rules)
    shutil.copy(RULES_DIR / "README.md", rules / "README.md")
    assert main(["rules", "--rules-dir", str(rules), "new", "pain-follow-up"]) == 0
    folder = rules / "pain-follow-up"
    assert sorted(p.name for p in (folder / "cases").iterdir()) == [
        "advise-spinal-metastasis.yaml",
        "no-card-without-spinal-metastasis.yaml",
    ]
    assert (folder / "README.md").exists()
    assert main(["rules", "--rules-dir", str(rules), "validate"]) == 0
    capsys.readouterr()
    assert main(["rules", "--rules-dir", str(rules), "test", "--rule", "pain-follow-up", "-v"]) == 0
    out = capsys.readouterr().out
    assert out.count("PASS pain-follow-up/") == 2 and "0 failed" in out
    # A draft never serves: the service's engine leaves it out.
    assert "pain-follow-up" not in {rule.id for rule in load_rules(rules).rules}
    assert main(["rules", "--rules-dir", str(rules), "new", "pain-follow-up"]) == 2  # exists already
    assert main(["rules", "--rules-dir", str(rules), "new", "Bad_Id"]) == 2


def test_a_leftover_json_case_is_reported_not_skipped(tmp_path, engine):
    path = tmp_path / "mri-urgency" / "cases" / "old.json"
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    assert case_files(tmp_path) == [("mri-urgency", path)]
    (problem,) = run_case(engine, "mri-urgency", path).problems
    assert "write it as YAML" in problem


def test_rules_explain_reads_a_yaml_case(capsys):
    path = RULES_DIR / "mri-urgency" / "cases" / "tier1-leg-weakness.yaml"
    assert main(["rules", "explain", str(path), "--now", "2026-03-10T09:00:00+00:00"]) == 0
    out = capsys.readouterr().out
    assert "[CRITICAL]" in out and "FIRED  mri-urgency#" in out and "Condition/sx-1" in out


def test_the_example_case_in_rules_readme_passes(tmp_path, engine):
    readme = (RULES_DIR / "README.md").read_text()
    section = readme[readme.index("## Cases") :]
    example = section[
        section.index("```yaml\n") + len("```yaml\n") : section.index("```", section.index("```yaml\n") + 7)
    ]
    result = run_case(engine, "mri-urgency", _case(tmp_path, example))
    assert result.passed, result.report()
