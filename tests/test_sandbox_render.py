"""`spinecds sandbox fire` prints cards as text a person reads at a terminal, not raw markdown."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.api import get_engine
from engine.cases import request_from_hook_call
from sandbox.render import inline, markdown_text, render_response
from tests.synthetic_requests import hook_request_for

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def test_emphasis_marks_and_escapes_are_dropped():
    assert inline(r"**SINS 10** at *L1*: \[not a link\](x) a\*b") == "SINS 10 at L1: [not a link](x) a*b"
    assert inline("2 * 3 * 4") == "2 * 3 * 4"  # a lone asterisk is not emphasis


def test_paragraphs_and_bullets_wrap_at_the_width_with_a_hanging_indent():
    text = markdown_text("**Finding.** " + "word " * 30 + "\n\n- " + "bullet " * 20 + "\n- two", "  ", columns=60)
    lines = text.splitlines()
    assert all(len(line) <= 60 for line in lines)
    assert lines[0].startswith("  Finding. word")
    bullet = next(i for i, line in enumerate(lines) if line.startswith("  - bullet"))
    assert lines[bullet + 1].startswith("    bullet")  # continuation under the text, not the dash
    assert "  - two" in lines


def test_tables_become_aligned_columns():
    text = markdown_text("| model | group |\n|---|---|\n| Van der Linden | A |\n| Bollen | D |")
    assert text.splitlines() == ["model           group", "Van der Linden  A", "Bollen          D"]


def test_real_cards_print_without_markdown_and_within_the_terminal_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    body, _ = hook_request_for("spinecds-p13", "patient-view", NOW)
    printed = render_response({"cards": get_engine().evaluate(request_from_hook_call(body, NOW)).cards})
    assert printed.startswith("3 cards")
    assert "**" not in printed and "\\" not in printed
    # Every line fits, table rows (columns separated by two spaces) aside.
    lines = [line for line in printed.splitlines() if "  " not in line.strip()]
    assert len(lines) > 30 and all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert "merged: mdt-consultation" in printed
