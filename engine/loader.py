"""Read every rule folder, validate and compile it; report every broken file, located."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.compiler import CompiledRules, LoadedRule, compile_rules
from engine.rulefile import RuleFileError, parse_rule_file
from engine.vocabulary import RULES_DIR, Vocabulary, load_vocabulary

NOT_RULE_FOLDERS = {"scores"}


class RuleLoadError(Exception):
    """The rules on disk cannot be served; `errors` lists each problem as file:line: rule: message."""

    def __init__(self, errors: Sequence[RuleFileError | str]):
        self.errors = [str(error) for error in errors]
        super().__init__("\n".join(self.errors))


def rule_files(rules_dir: Path) -> list[Path]:
    return sorted(
        folder / "rule.yaml"
        for folder in rules_dir.iterdir()
        if folder.is_dir() and folder.name not in NOT_RULE_FOLDERS and not folder.name.startswith((".", "_"))
    )


def load_rules(
    rules_dir: Path = RULES_DIR, vocabulary: Vocabulary | None = None, include_drafts: bool = False
) -> CompiledRules:
    # The vocabulary is what engine.facts produces, so it comes with the code, not the rules folder.
    vocabulary = vocabulary or load_vocabulary()
    errors: list[RuleFileError | str] = []
    loaded: list[LoadedRule] = []
    for path in rule_files(rules_dir):
        if not path.exists():
            errors.append(f"{path.parent}: a rule folder needs a rule.yaml")
            continue
        try:
            rule, located = parse_rule_file(path)
        except RuleFileError as error:
            errors.append(error)
            continue
        loaded.append(LoadedRule(rule=rule, path=path, located=located))
    if errors:
        raise RuleLoadError(errors)
    try:
        return compile_rules(loaded, vocabulary, include_drafts)
    except RuleFileError as error:
        raise RuleLoadError([error]) from None
