"""The fact vocabulary: every fact name a rule may test, its type and its scope.

The single source is the tables under "## Fact vocabulary" in rules/README.md, the page rule
authors read, so the documentation and the validator cannot drift apart.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"

SCOPES = ("patient", "symptom", "lesion", "order")
_TYPE_WORDS = {"bool": "bool", "int": "number", "number": "number", "string": "string", "list": "list"}
_NAME = re.compile(r"`([a-z][a-z0-9_.\-]*)`")


@dataclass(frozen=True)
class Fact:
    name: str
    type: str  # bool | number | string | list
    scope: str  # patient | symptom | lesion | order | any


@dataclass(frozen=True)
class Vocabulary:
    facts: dict[str, Fact]

    def get(self, name: str) -> Fact | None:
        return self.facts.get(name)

    def suggest(self, name: str) -> str | None:
        close = difflib.get_close_matches(name, list(self.facts), n=1, cutoff=0.6)
        return close[0] if close else None


def _scope_of(heading: str) -> str | None:
    lowered = heading.lower()
    for scope in SCOPES:
        if lowered.startswith(f"### {scope}"):
            return scope
    return None


def parse_vocabulary(markdown: str) -> Vocabulary:
    facts: dict[str, Fact] = {}
    in_vocabulary = False
    scope: str | None = None
    for line in markdown.splitlines():
        if line.startswith("## "):
            in_vocabulary = line.strip().lower() == "## fact vocabulary"
            scope = None
            continue
        if not in_vocabulary:
            continue
        if line.startswith("### "):
            scope = _scope_of(line)
            continue
        if scope is None or not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        names = _NAME.findall(cells[0])
        types = [_TYPE_WORDS.get(word.strip(), "string") for word in cells[1].split("/")]
        for index, name in enumerate(names):
            fact_type = types[index] if len(types) == len(names) else types[0]
            previous = facts.get(name)
            # A name documented under several subject scopes (e.g. `missing`) is valid on any subject.
            fact_scope = scope if previous is None or previous.scope == scope else "any"
            facts[name] = Fact(name=name, type=fact_type, scope=fact_scope)
    return Vocabulary(facts=facts)


@lru_cache(maxsize=4)
def load_vocabulary(readme: Path = RULES_DIR / "README.md") -> Vocabulary:
    return parse_vocabulary(readme.read_text(encoding="utf-8"))
