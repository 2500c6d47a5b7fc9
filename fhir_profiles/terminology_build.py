"""`spinecds terminology build`: intensional ValueSet definitions + public sources -> shipped expansions.

Each ``valuesets/<concept>.json`` holds its definition in ``compose`` and, once built, its expansion
in ``expansion.contains`` (codes + displays). The build reads only files in this repository:

- ``compose.include[].concept``: listed codes (spine-findings, LOINC, CPT, local codes) as they are;
- a SNOMED CT ``filter`` ``{property: concept, op: is-a, value: ROOT}``: ROOT plus its descendants as
  far as the public sources know them. There is no SNOMED CT release here, so the descendants come
  from published expansions (VSAC, mCODE) copied into ``terminology-sources/``, selected by the
  recipe for ROOT in ``terminology-sources/snomed-descendants.json`` (which sources, which display
  words, which not) plus the recipe's reviewed ``extra`` codes. A terminology server gives the true
  closure: ``spinecds terminology expand --server URL``;
- an ICD-10-CM / WHO ICD-10 ``filter`` ``{property: concept, op: is-a, value: CODE}``: CODE itself
  (it covers its subcodes, see terminology.py) plus the source codes under it, for their displays;
- a legacy ``{property: code, op: regex}`` filter: the source codes that match (the loader keeps
  compiling the regex too, so a file written before expansions still works);
- ``compose.exclude``: the same forms, removed from the result;
- ``include.valueSet``: the union of the named ValueSets' expansions.

The output is deterministic (sorted, no timestamps) so a test can rebuild and compare.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir_profiles.terminology import (
    DEFAULT_DIRECTORY,
    ICD10_SYSTEMS,
    SNOMED,
    VALUESET_URL_PREFIX,
    TerminologyError,
    icd10_ancestors,
    normalise_code,
)

SOURCES_DIRNAME = "terminology-sources"
RECIPES_FILE = "snomed-descendants.json"
SOURCES_FILE = "sources.json"
SNOMED_COPYRIGHT = (
    "This value set includes content from SNOMED CT, which is copyright © 2002+ International Health "
    "Terminology Standards Development Organisation (IHTSDO), and distributed by agreement between IHTSDO "
    "and HL7. Implementer use of SNOMED CT is not covered by this agreement"
)
DEFINITION_HASH = "spinecds-definition-sha256"  # expansion.parameter: the compose the expansion was made from
EXPANDED_BY = "spinecds-expanded-by"  # expansion.parameter: "offline build" or the terminology server's base URL
OFFLINE = "spinecds terminology build (terminology-sources)"

Code = tuple[str, str]  # system, code


@dataclass(frozen=True)
class Sources:
    """Every code the source files know, with its display, per source id; and the is-a recipes."""

    codes: dict[str, dict[Code, str]]  # source id -> (system, code) -> display
    recipes: dict[str, dict[str, Any]]  # SNOMED CT root -> recipe
    described: dict[str, dict[str, Any]]  # source id -> provenance record

    def display(self, system: str, code: str) -> str | None:
        for codes in self.codes.values():
            found = codes.get((system, code))
            if found:
                return found
        return None


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TerminologyError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None


def load_sources(directory: Path = DEFAULT_DIRECTORY) -> Sources:
    folder = directory / SOURCES_DIRNAME
    described = {entry["id"]: entry for entry in _read(folder / SOURCES_FILE)["sources"]}
    codes: dict[str, dict[Code, str]] = {}
    for source_id, entry in described.items():
        data = _read(folder / entry["file"])
        table: dict[Code, str] = {}
        for item in (data.get("expansion") or {}).get("contains") or []:
            system = item["system"]
            table[(system, normalise_code(system, item["code"]))] = _clean_display(item.get("display") or "")
        codes[source_id] = table
    recipes = _read(folder / RECIPES_FILE)["roots"]
    return Sources(codes=codes, recipes=recipes, described=described)


_SEMANTIC_TAG = re.compile(
    r"\s+\((disorder|finding|disease|body structure|procedure|regime/therapy|qualifier value)\)$"
)


def _clean_display(display: str) -> str:
    """Source displays sometimes carry the SNOMED CT semantic tag (fully specified name): drop it."""
    return _SEMANTIC_TAG.sub("", display.strip())


def _recipe_codes(root: str, sources: Sources, where: str) -> dict[Code, str]:
    recipe = sources.recipes.get(root)
    if recipe is None:
        raise TerminologyError(
            f"{where}: no recipe for SNOMED CT is-a {root} in {SOURCES_DIRNAME}/{RECIPES_FILE} "
            "(add one, or list the codes as concept[])"
        )
    words = [w.lower() for w in recipe.get("words", [])]
    unwanted = [w.lower() for w in recipe.get("not", [])]
    also = [w.lower() for w in recipe.get("also", [])]
    found: dict[Code, str] = {(SNOMED, root): recipe["display"]}
    for source_id in recipe.get("sources", []):
        if source_id not in sources.codes:
            raise TerminologyError(f"{SOURCES_DIRNAME}/{RECIPES_FILE}: {root}: unknown source {source_id!r}")
        for (system, code), display in sources.codes[source_id].items():
            if system != SNOMED:
                continue
            text = display.lower()
            if words and not any(w in text for w in words):
                continue
            if also and not any(w in text for w in also):
                continue
            if any(w in text for w in unwanted):
                continue
            found.setdefault((system, code), display)
    for extra in recipe.get("extra", []):
        found[(SNOMED, extra["code"])] = extra["display"]
    for dropped in recipe.get("drop", []):
        found.pop((SNOMED, dropped), None)
    return found


def _icd_under(root: str, system: str, sources: Sources) -> dict[Code, str]:
    found: dict[Code, str] = {}
    for table in sources.codes.values():
        for (sys, code), display in table.items():
            if sys == system and root in icd10_ancestors(code):
                found.setdefault((sys, code), display)
    return found


def _part_codes(part: dict[str, Any], sources: Sources, where: str) -> dict[Code, str]:
    system = part.get("system")
    if not isinstance(system, str):
        raise TerminologyError(f"{where}: needs a system")
    found: dict[Code, str] = {}
    for entry in part.get("concept") or []:
        code = normalise_code(system, entry["code"])
        found[(system, code)] = entry.get("display") or sources.display(system, code) or code
    for j, flt in enumerate(part.get("filter") or []):
        op, value = flt.get("op"), str(flt.get("value", ""))
        if op == "is-a" and system == SNOMED:
            found.update(_recipe_codes(value, sources, f"{where}.filter[{j}]"))
        elif op == "is-a" and system in ICD10_SYSTEMS:
            code = normalise_code(system, value)
            found[(system, code)] = flt.get("display") or sources.display(system, code) or f"{code} and subcodes"
            for key, display in _icd_under(code, system, sources).items():
                found.setdefault(key, display)
        elif op == "regex":
            pattern = re.compile(value)
            for table in sources.codes.values():
                for (sys, code), display in table.items():
                    if sys == system and pattern.fullmatch(code):
                        found.setdefault((sys, code), display)
        else:
            raise TerminologyError(f"{where}.filter[{j}]: cannot expand op {op!r} for {system}")
    return found


def expand_definition(
    data: dict[str, Any], sources: Sources, others: dict[str, dict[Code, str]], where: str
) -> dict[Code, str]:
    """The expansion of one ValueSet's compose. ``others``: the expansions of the ValueSets it includes."""
    compose = data.get("compose") or {}
    result: dict[Code, str] = {}
    for i, part in enumerate(compose.get("include") or []):
        if part.get("valueSet") and not part.get("system"):
            for ref in part["valueSet"]:
                result.update(others[ref[len(VALUESET_URL_PREFIX) :]])
            continue
        for key, display in _part_codes(part, sources, f"{where}: compose.include[{i}]").items():
            result.setdefault(key, display)
    for i, part in enumerate(compose.get("exclude") or []):
        removed = _part_codes(part, sources, f"{where}: compose.exclude[{i}]")
        icd_roots = {code for (system, code) in removed if system in ICD10_SYSTEMS}
        for key in list(result):
            system, code = key
            if key in removed or (system in ICD10_SYSTEMS and icd_roots & set(icd10_ancestors(code))):
                del result[key]
    return result


def _includes_of(data: dict[str, Any]) -> list[str]:
    refs: list[str] = []
    for part in (data.get("compose") or {}).get("include") or []:
        if part.get("valueSet") and not part.get("system"):
            refs.extend(ref[len(VALUESET_URL_PREFIX) :] for ref in part["valueSet"])
    return refs


def _sources_used(data: dict[str, Any], sources: Sources, codes: dict[Code, str]) -> list[str]:
    """The sources behind an expansion: those its SNOMED CT recipes read, and every source that lists
    one of its codes (where a listed code or an ICD-10 title comes from)."""
    used: set[str] = set()
    for key in ("include", "exclude"):
        for part in (data.get("compose") or {}).get(key) or []:
            for flt in part.get("filter") or []:
                if part.get("system") == SNOMED and flt.get("op") == "is-a":
                    used.update(sources.recipes.get(str(flt.get("value")), {}).get("sources", []))
    for source_id, table in sources.codes.items():
        if source_id not in used and any(key in table for key in codes):
            used.add(source_id)
    return sorted(used)


def definition_hash(data: dict[str, Any]) -> str:
    """A stable fingerprint of a ValueSet's definition (its compose), kept with its expansion."""
    canonical = json.dumps(data.get("compose") or {}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def expansion_resource(
    codes: dict[Code, str],
    used: Iterable[str],
    sources: Sources,
    definition: dict[str, Any],
    expanded_by: str = OFFLINE,
) -> dict[str, Any]:
    contains = [
        {"system": system, "code": code, "display": display}
        for (system, code), display in sorted(codes.items(), key=lambda item: (item[0][0], item[0][1]))
    ]
    parameters: list[dict[str, Any]] = [
        {"name": DEFINITION_HASH, "valueString": definition_hash(definition)},
        {"name": EXPANDED_BY, "valueString": expanded_by},
    ]
    parameters += [
        {"name": "used-source", "valueUri": f"{sources.described[s]['url']}|{sources.described[s]['version']}"}
        for s in used
    ]
    expansion: dict[str, Any] = {
        "identifier": f"urn:spinecds:expansion:{len(contains)}",
        "timestamp": "2026-01-01T00:00:00Z",  # fixed: the build is reproducible; the sources carry their dates
        "total": len(contains),
    }
    expansion["parameter"] = parameters
    expansion["contains"] = contains
    return expansion


def build_all(directory: Path = DEFAULT_DIRECTORY) -> dict[Path, dict[str, Any]]:
    """Every ValueSet file with a freshly computed expansion (nothing written)."""
    sources = load_sources(directory)
    files = {path.stem: path for path in sorted((directory / "valuesets").glob("*.json"))}
    data = {name: _read(path) for name, path in files.items()}
    expanded: dict[str, dict[Code, str]] = {}

    def expand(name: str, trail: tuple[str, ...]) -> dict[Code, str]:
        if name in expanded:
            return expanded[name]
        if name not in data:
            raise TerminologyError(f"{files[trail[-1]]}: includes unknown ValueSet {name!r}")
        if name in trail:
            raise TerminologyError(f"{files[name]}: includes itself ({' -> '.join(trail + (name,))})")
        others = {ref: expand(ref, trail + (name,)) for ref in _includes_of(data[name])}
        expanded[name] = expand_definition(data[name], sources, others, str(files[name]))
        return expanded[name]

    result: dict[Path, dict[str, Any]] = {}
    for name, path in files.items():
        codes = expand(name, ())
        resource = {key: value for key, value in data[name].items() if key != "expansion"}
        if any(system == SNOMED for system, _ in codes):
            resource["copyright"] = SNOMED_COPYRIGHT
        used = _sources_used(data[name], sources, codes)
        resource["expansion"] = expansion_resource(codes, used, sources, data[name])
        result[path] = resource
    return result


def render(resource: dict[str, Any]) -> str:
    return json.dumps(resource, indent=2, ensure_ascii=False) + "\n"


def write_all(directory: Path = DEFAULT_DIRECTORY) -> list[Path]:
    """Rebuild every expansion; returns the files whose content changed."""
    changed = []
    for path, resource in build_all(directory).items():
        text = render(resource)
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def _parameter(expansion: dict[str, Any], name: str) -> str | None:
    for parameter in expansion.get("parameter") or []:
        if parameter.get("name") == name:
            value = parameter.get("valueString")
            return value if isinstance(value, str) else None
    return None


def stale_expansions(directory: Path = DEFAULT_DIRECTORY) -> list[str]:
    """One line per ValueSet whose shipped expansion no longer matches its definition: missing, made
    from another compose (the definition was edited, e.g. a site added a local code), or, for an
    offline build, different from what the definition builds to today."""
    problems = []
    built = build_all(directory)
    made_by = {path.stem: _parameter(_read(path).get("expansion") or {}, EXPANDED_BY) for path in built}
    for path, resource in built.items():
        shipped = _read(path).get("expansion")
        if shipped is None:
            problems.append(f"{path}: no expansion: run `spinecds terminology build`")
            continue
        if _parameter(shipped, DEFINITION_HASH) != definition_hash(resource):
            problems.append(
                f"{path}: the definition (compose) changed since the expansion was made: "
                "run `spinecds terminology build` (or `expand --server URL`)"
            )
            continue
        want = {(c["system"], c["code"]) for c in resource["expansion"]["contains"]}
        have = {(c["system"], normalise_code(c["system"], c["code"])) for c in shipped.get("contains") or []}
        server_made = any(made_by.get(name) not in (None, OFFLINE) for name in [path.stem, *_includes_of(resource)])
        # A server knows more descendants than the sources: its expansion may be larger, never smaller
        # than what the definition lists explicitly (codes, ICD-10 roots, local systems).
        missing = sorted(want - have) if not server_made else sorted(_must_have(resource) - have)
        extra = sorted(have - want) if not server_made else []
        if missing or extra:
            detail = []
            if missing:
                detail.append(f"{len(missing)} code(s) of the definition missing, e.g. {'|'.join(missing[0])}")
            if extra:
                detail.append(f"{len(extra)} code(s) not in the definition, e.g. {'|'.join(extra[0])}")
            problems.append(
                f"{path}: expansion does not match the definition ({'; '.join(detail)}): "
                "run `spinecds terminology build`"
            )
    return problems


def _must_have(resource: dict[str, Any]) -> set[Code]:
    """Codes any correct expansion of this definition contains: listed concepts and is-a roots."""
    found: set[Code] = set()
    for part in (resource.get("compose") or {}).get("include") or []:
        system = part.get("system")
        if not isinstance(system, str):
            continue
        found |= {(system, normalise_code(system, c["code"])) for c in part.get("concept") or []}
        found |= {
            (system, normalise_code(system, str(f.get("value"))))
            for f in part.get("filter") or []
            if f.get("op") == "is-a"
        }
    return found
