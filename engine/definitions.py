"""The numbers of the shared clinical definitions (rules/definitions.yaml), loaded once.

They belong to no single rule (look-back window, whole-spine MRI from regions, MESCC windows), so
they live in one data file next to the rules; the facts read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "rules" / "definitions.yaml"
_FIELDS = (
    "lookback_days",
    "whole_spine_combine_hours",
    "diagnosis_mri_before_hours",
    "treatment_before_diagnosis_hours",
    "mescc_window_days",
)


class DefinitionsError(ValueError):
    """rules/definitions.yaml is broken; the message names the file and the key."""


@dataclass(frozen=True)
class Definitions:
    lookback_days: float
    whole_spine_combine_hours: float
    diagnosis_mri_before_hours: float
    treatment_before_diagnosis_hours: float
    mescc_window_days: float


@lru_cache(maxsize=4)
def load_definitions(path: Path = DEFAULT_FILE) -> Definitions:
    """The packaged (or a given) file, read once per path."""
    return read_definitions(path)


def definitions_for(rules_dir: Path) -> Definitions:
    """The definitions of a rules folder (SPINECDS_RULES_DIR), read afresh for each engine build so a
    hot reload picks up an edit; a folder without the file uses the packaged one."""
    path = rules_dir / "definitions.yaml"
    return read_definitions(path) if path.is_file() else load_definitions()


def read_definitions(path: Path) -> Definitions:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise DefinitionsError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise DefinitionsError(f"{path}: expected a mapping of name: number")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise DefinitionsError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_FIELDS)}")
    values = {}
    for name in _FIELDS:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise DefinitionsError(f"{path}: {name} must be a number >= 0, found {value!r}")
        values[name] = float(value)
    return Definitions(**values)
