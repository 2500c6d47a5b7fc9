"""Hot reload swaps only a rule set that compiles and passes its cases; otherwise the old one stays."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import api
from engine.reloader import RulesWatcher

FIXTURES = Path(__file__).parent / "fixtures" / "rules"


@pytest.fixture()
def rules_dir(tmp_path, monkeypatch):
    target = tmp_path / "rules"
    shutil.copytree(FIXTURES, target)
    shutil.copy(Path(api.RULES_DIR) / "README.md", target / "README.md")  # the vocabulary
    monkeypatch.setattr(api, "_current", None)
    report = api.reload(target)
    assert report.ok, report.errors
    return target


def _bump_version(rules_dir: Path, new: str) -> None:
    path = rules_dir / "demo-sins" / "rule.yaml"
    path.write_text(path.read_text().replace("version: 1.2.0", f"version: {new}"))


def test_a_good_edit_is_swapped_in(rules_dir):
    _bump_version(rules_dir, "1.3.0")
    report = api.reload(rules_dir)
    assert report.ok
    assert api.get_engine().rule_versions["demo-sins"] == "1.3.0"


def test_a_broken_edit_keeps_the_old_rules_serving(rules_dir):
    before = api.get_engine()
    path = rules_dir / "demo-sins" / "rule.yaml"
    path.write_text(path.read_text().replace("lesion.sins_min >= 13", "lesion.sins_mim >= 13"))
    report = api.reload(rules_dir)
    assert not report.ok
    assert "did you mean 'lesion.sins_min'" in report.errors[0]
    assert api.get_engine() is before
    assert report.rule_versions["demo-sins"] == "1.2.0"


def test_a_failing_case_keeps_the_old_rules_serving(rules_dir):
    before = api.get_engine()
    cases = rules_dir / "demo-sins" / "cases"
    cases.mkdir()
    (cases / "wrong-expectation.yaml").write_text(
        "title: expects a card that cannot come\nexpect:\n  cards:\n    - {indicator: info, outcome: x}\n"
    )
    report = api.reload(rules_dir)
    assert not report.ok
    assert "wrong-expectation.yaml" in report.errors[0]
    assert api.get_engine() is before


def test_the_watcher_reloads_after_a_file_changes(rules_dir):
    reports = []
    watcher = RulesWatcher(rules_dir, interval=60, on_reload=reports.append)
    assert watcher.check_now() is None  # nothing changed yet
    _bump_version(rules_dir, "2.0.0")
    report = watcher.check_now()
    assert report is not None and report.ok
    assert reports == [report]
    assert api.get_engine().rule_versions["demo-sins"] == "2.0.0"
