"""docs/security.md's threat model names the test for each attack: every one of them must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "security.md"


def test_every_test_named_in_the_threat_model_exists():
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("## Threat model") : text.index("## Configuring trusted EHRs")]
    named = set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", table))
    assert len(named) >= 25
    missing = [
        f"{path}::{name}"
        for path, name in sorted(named)
        if not (ROOT / path).is_file() or f"def {name}(" not in (ROOT / path).read_text(encoding="utf-8")
    ]
    assert missing == []


def test_every_threat_model_row_names_a_test():
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("## Threat model") : text.index("## Configuring trusted EHRs")]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| Asset")]
    assert len(rows) >= 15
    assert [row for row in rows if "tests/" not in row.split("|")[-2]] == []
