"""`spinecds rules new <rule-id>`: a rule folder that validates and passes its own cases.

The new rule is a `draft` (it never produces a card in the service) with one outcome, a README for
the clinical rationale and two cases (one card, no card). `spinecds rules test` runs draft rules'
cases too, so the author proves the rule before switching it to `active`.
"""

from __future__ import annotations

import re
from pathlib import Path

RULE_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

RULE_YAML = """\
id: {rule_id}
version: 0.1.0
status: draft                     # draft: validated and tested, never served; set active when reviewed
title: {title}
hooks: [patient-view]
citation:
  source: Dutch guideline spinal metastases 2015 (Groenen et al., Cancer Treat Rev 2018;69:29-38)
  section: Which section, table or figure this rule implements
  url: https://doi.org/10.1016/j.ctrv.2018.05.013
  passage: >-
    Quote the guideline passage this rule implements, word for word.

# Preconditions for every outcome (the fact vocabulary is in rules/README.md).
when:
  - has: cancer
  - has: spinal_metastasis

outcomes:
  - id: advise
    outcome: advise
    card:
      indicator: info
      summary: "Replace with the advice, under 140 characters"
      detail: |
        **What to do**, why (the guideline's reason), and which data were used.
"""

README = """\
# {rule_id}

Clinical rationale for reviewers: which patients, what the guideline says, why these conditions
and deadlines, and what the rule deliberately leaves out. The cases in `cases/` show each outcome.
"""

CASE_CARD = """\
title: "Cancer with a spinal metastasis: the {rule_id} card"
diagnoses:
  - {{concept: breast-cancer, onset: 400 days ago}}
  - {{concept: bone-metastasis, onset: 60 days ago}}
expect:
  cards:
    - indicator: info
      outcome: advise
"""

CASE_NO_CARD = """\
title: "Cancer without a spinal metastasis: no {rule_id} card"
diagnoses:
  - {concept: breast-cancer, onset: 400 days ago}
expect:
  cards: []
"""


class ScaffoldError(ValueError):
    pass


def new_rule(rules_dir: Path, rule_id: str) -> list[Path]:
    """Write rules/<rule_id>/ (rule.yaml, README.md, two cases); returns the files written."""
    if not RULE_ID.match(rule_id):
        raise ScaffoldError(f"{rule_id!r}: a rule id is lowercase words joined by dashes, e.g. sins-referral")
    folder = rules_dir / rule_id
    if folder.exists():
        raise ScaffoldError(f"{folder} already exists")
    title = rule_id.replace("-", " ").capitalize() + " (describe the advice)"
    files = {
        folder / "rule.yaml": RULE_YAML.format(rule_id=rule_id, title=title),
        folder / "README.md": README.format(rule_id=rule_id),
        folder / "cases" / "advise-spinal-metastasis.yaml": CASE_CARD.format(rule_id=rule_id),
        folder / "cases" / "no-card-without-spinal-metastasis.yaml": CASE_NO_CARD.replace("{rule_id}", rule_id),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)
