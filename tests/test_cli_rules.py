"""`spinecds rules ...`: what a rule author sees."""

from __future__ import annotations

import shutil
from pathlib import Path

from cds_hooks.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "rules"


def test_validate_reports_counts(capsys):
    assert main(["rules", "--rules-dir", str(FIXTURES), "validate"]) == 0
    assert "ok: 2 active rule(s), 4 outcome(s), 2 stage(s)" in capsys.readouterr().out


def test_validate_a_broken_folder_exits_1_with_located_errors(tmp_path, capsys):
    rules = tmp_path / "rules"
    shutil.copytree(FIXTURES, rules)
    path = rules / "demo-sins" / "rule.yaml"
    path.write_text(path.read_text().replace("has: cancer", "has: cancr"))
    assert main(["rules", "--rules-dir", str(rules), "validate"]) == 1
    err = capsys.readouterr().err
    assert "demo-sins/rule.yaml:12: demo-sins: unknown fact 'cancr' - did you mean 'cancer'?" in err
    assert "1 problem(s)" in err


def test_catalog_lists_every_rule_with_its_citation(tmp_path):
    out = tmp_path / "rules.md"
    assert main(["rules", "--rules-dir", str(FIXTURES), "catalog", "-o", str(out)]) == 0
    text = out.read_text()
    assert "| [demo-sins](#demo-sins) | 1.2.0 | active |" in text
    assert "> A fixture that exercises every engine feature" in text
    assert "**draft-too-late** (on each order) when order.kind == mri-spine" in text
