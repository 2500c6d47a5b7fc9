"""Concept matching through the ValueSets in fhir_profiles/valuesets/.

A *concept* is a ValueSet id (``malignancy``, ``primary-breast``, ``symptom-radicular-pain``...).
A coding belongs to a concept when its system + code is in the ValueSet's shipped **expansion**
(``expansion.contains``, built by ``spinecds terminology build``), or is listed in its
``compose.include[].concept`` (so a site's local code counts before the next build). ICD-10-CM and
WHO ICD-10 carry their hierarchy in the code: an ICD-10 expansion entry covers its subcodes, so
C50.912 matches through C50.912, C50.91, C50.9 or C50 (at most five dict lookups). A legacy
``{"property": "code", "op": "regex"}`` filter is still compiled, for ValueSets written before
expansions existed. See README.md.

Everything is read once and compiled into dict lookups; ``concepts()`` memoises per coding, so a
request with hundreds of resources costs a few dict hits per coding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

DEFAULT_DIRECTORY = Path(__file__).resolve().parent
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"  # WHO ICD-10
ICD10_SYSTEMS = frozenset({ICD10CM, ICD10})
SNOMED = "http://snomed.info/sct"
VALUESET_URL_PREFIX = "http://spinecds.org/fhir/ValueSet/"


class TerminologyError(ValueError):
    """A terminology file is broken; the message starts with the file name."""


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    concept: str


def normalise_code(system: str, code: str) -> str:
    """ICD-10 codes are compared upper-case and with the dot after the category (C7951 -> C79.51)."""
    code = code.strip()
    if system in ICD10_SYSTEMS:
        code = code.upper()
        if "." not in code and len(code) > 3:
            code = f"{code[:3]}.{code[3:]}"
    return code


def icd10_ancestors(code: str) -> list[str]:
    """A normalised ICD-10 code and its parents, most specific first: C50.912 -> C50.912, C50.91, C50.9, C50."""
    found = [code]
    while len(code) > 3:
        code = code[:-1].rstrip(".")
        found.append(code)
    return found


def _coding_pair(coding: Any) -> tuple[str, str] | None:
    if isinstance(coding, dict):
        system, code = coding.get("system"), coding.get("code")
    else:  # an R4B Coding model (or anything with the attributes)
        system, code = getattr(coding, "system", None), getattr(coding, "code", None)
    if not isinstance(system, str) or not isinstance(code, str) or not code:
        return None
    return system, code


class Terminology:
    """Compiled ValueSets and CodeSystem displays. Build it with :func:`load_terminology`."""

    def __init__(
        self,
        exact: dict[tuple[str, str], frozenset[str]],
        patterns: dict[str, list[_Pattern]],
        explicit: dict[str, list[tuple[str, str]]],
        displays: dict[tuple[str, str], str],
        sources: dict[str, str],
    ):
        self._exact = exact
        self._patterns = patterns
        self._explicit = explicit
        self._displays = displays
        self.sources = sources  # concept -> file it came from (for messages)
        self._memo: dict[tuple[str, str], frozenset[str]] = {}
        self._systems: dict[str, frozenset[str]] = {}  # concept -> the code systems it has codes in

    @property
    def concept_names(self) -> frozenset[str]:
        return frozenset(self.sources)

    def concepts_of(self, system: str, code: str) -> frozenset[str]:
        """All concepts one system + code belongs to."""
        key = (system, code)
        found = self._memo.get(key)
        if found is None:
            norm = normalise_code(system, code)
            if system in ICD10_SYSTEMS:
                hits: set[str] = set()
                for ancestor in icd10_ancestors(norm):
                    hits.update(self._exact.get((system, ancestor), ()))
            else:
                hits = set(self._exact.get((system, norm), ()))
            for pattern in self._patterns.get(system, ()):
                if pattern.concept not in hits and pattern.regex.fullmatch(norm):
                    hits.add(pattern.concept)
            found = frozenset(hits)
            if len(self._memo) < 100_000:  # bounded: codes come from outside
                self._memo[key] = found
        return found

    def concepts(self, codings: Iterable[Any] | None) -> frozenset[str]:
        """Union of the concepts of the given codings (dicts or R4B Coding models)."""
        # _coding_pair and the memo lookup of concepts_of inlined: this runs for every coding of
        # every resource of a prefetch (a 300-resource body: ~1,000 codings per request).
        result: frozenset[str] = frozenset()
        memo = self._memo
        for coding in codings or ():
            if isinstance(coding, dict):
                system, code = coding.get("system"), coding.get("code")
            else:  # an R4B Coding model (or anything with the attributes)
                system, code = getattr(coding, "system", None), getattr(coding, "code", None)
            if not isinstance(system, str) or not isinstance(code, str) or not code:
                continue
            hits = memo.get((system, code))
            if hits is None:
                hits = self.concepts_of(system, code)
            if hits:
                result = result | hits
        return result

    def systems_of(self, concept: str) -> frozenset[str]:
        """The code systems a concept has codes or patterns in: a coding of any other system is never in it."""
        systems = self._systems.get(concept)
        if systems is None:
            systems = self._systems[concept] = frozenset(
                [system for (system, _code), found in self._exact.items() if concept in found]
                + [system for system, patterns in self._patterns.items() if any(p.concept == concept for p in patterns)]
            )
        return systems

    def has_concept(self, concept: str, codings: Iterable[Any] | None) -> bool:
        """``concept in self.concepts(codings)``, without looking up codings of code systems the
        concept has no code or pattern in (most of a prefetch, for a narrow concept)."""
        systems = self.systems_of(concept)
        for coding in codings or ():
            system = coding.get("system") if isinstance(coding, dict) else getattr(coding, "system", None)
            if isinstance(system, str) and system in systems and concept in self.concepts((coding,)):
                return True
        return False

    def matches(self, concept: str, codings: Iterable[Any] | None) -> bool:
        if concept not in self.sources:
            raise KeyError(f"unknown concept {concept!r}: no fhir_profiles/valuesets/{concept}.json")
        return concept in self.concepts(codings)

    def codes(self, concept: str) -> list[tuple[str, str]]:
        """The (system, code) pairs of a concept: the codes its definition lists first, then its expansion
        (ICD-10 entries stand for their subcodes; a legacy regex filter is not enumerated)."""
        if concept not in self.sources:
            raise KeyError(f"unknown concept {concept!r}: no fhir_profiles/valuesets/{concept}.json")
        return list(self._explicit.get(concept, ()))

    def display(self, system: str, code: str) -> str | None:
        return self._displays.get((system, normalise_code(system, code)))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TerminologyError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise TerminologyError(f"{path}: expected a JSON object")
    return data


def _compile_valueset(
    path: Path, data: dict[str, Any], exact: dict, patterns: dict, explicit: dict, displays: dict, unions: dict
) -> str:
    if data.get("resourceType") != "ValueSet":
        raise TerminologyError(f"{path}: resourceType must be 'ValueSet'")
    concept = data.get("id")
    if not isinstance(concept, str) or concept != path.stem:
        raise TerminologyError(f"{path}: id must equal the file name ({path.stem!r}), found {concept!r}")
    if data.get("url") != VALUESET_URL_PREFIX + concept:
        raise TerminologyError(f"{path}: url must be {VALUESET_URL_PREFIX + concept!r}")
    includes = (data.get("compose") or {}).get("include")
    if not isinstance(includes, list) or not includes:
        raise TerminologyError(f"{path}: compose.include must be a non-empty list")
    for i, include in enumerate(includes):
        where = f"{path}: compose.include[{i}]"
        if isinstance(include, dict) and include.get("valueSet") and not include.get("system"):
            refs = include["valueSet"]
            if (
                not isinstance(refs, list)
                or len(refs) != 1
                or not isinstance(refs[0], str)
                or not refs[0].startswith(VALUESET_URL_PREFIX)
            ):
                # several valueSet entries in one include mean an intersection in FHIR: not supported
                raise TerminologyError(
                    f"{where}: valueSet must be one {VALUESET_URL_PREFIX}<id> "
                    "(write one include per ValueSet for a union)"
                )
            unions.setdefault(concept, []).append((where, refs[0][len(VALUESET_URL_PREFIX) :]))
            continue
        system = include.get("system") if isinstance(include, dict) else None
        if not isinstance(system, str) or not system:
            raise TerminologyError(f"{where}: needs a system")
        entries = include.get("concept") or []
        filters = include.get("filter") or []
        if not entries and not filters:
            raise TerminologyError(f"{where}: needs concept[] or filter[]")
        for j, entry in enumerate(entries):
            code = entry.get("code") if isinstance(entry, dict) else None
            if not isinstance(code, str) or not code.strip():
                raise TerminologyError(f"{where}.concept[{j}]: needs a code")
            code = normalise_code(system, code)
            exact.setdefault((system, code), set()).add(concept)
            explicit.setdefault(concept, []).append((system, code))
            if entry.get("display"):
                displays.setdefault((system, code), entry["display"])
        for j, flt in enumerate(filters):
            if isinstance(flt, dict) and flt.get("property") == "concept" and flt.get("op") == "is-a":
                # an intensional definition: what it means is in the expansion (spinecds terminology
                # build); without one, the root code itself still matches
                root = normalise_code(system, str(flt.get("value", "")))
                exact.setdefault((system, root), set()).add(concept)
                continue
            if not isinstance(flt, dict) or flt.get("property") != "code" or flt.get("op") != "regex":
                raise TerminologyError(
                    f"{where}.filter[{j}]: only {{property: concept, op: is-a}} and {{property: code, op: regex}}"
                    " are supported"
                )
            try:
                regex = re.compile(str(flt.get("value", "")))
            except re.error as exc:
                raise TerminologyError(f"{where}.filter[{j}]: bad regex {flt.get('value')!r}: {exc}") from None
            patterns.setdefault(system, []).append(_Pattern(regex, concept))
    # The expansion after the definition's own codes: codes(concept) lists the codes the author
    # wrote first (the canonical coding of the concept), then what the expansion adds.
    for j, entry in enumerate((data.get("expansion") or {}).get("contains") or []):
        system, code = (entry.get("system"), entry.get("code")) if isinstance(entry, dict) else (None, None)
        if not isinstance(system, str) or not isinstance(code, str) or not code.strip():
            raise TerminologyError(f"{path}: expansion.contains[{j}]: needs a system and a code")
        code = normalise_code(system, code)
        exact.setdefault((system, code), set()).add(concept)
        explicit.setdefault(concept, []).append((system, code))
        if entry.get("display"):
            displays.setdefault((system, code), entry["display"])
    return concept


def _resolve_unions(
    unions: dict[str, list[tuple[str, str]]], exact: dict, patterns: dict, explicit: dict, sources: dict[str, str]
) -> None:
    """A ValueSet that includes other ValueSets (``include.valueSet``) gets all their codes and filters,
    so a union such as ``laterality`` never repeats a code list (and cannot drift from its parts)."""
    members: dict[str, set[str]] = {}

    def expand(concept: str, trail: tuple[str, ...]) -> set[str]:
        if concept in members:
            return members[concept]
        found: set[str] = set()
        for where, ref in unions.get(concept, ()):
            if ref not in sources:
                raise TerminologyError(f"{where}: includes unknown ValueSet {ref!r}")
            if ref in trail:
                raise TerminologyError(f"{where}: ValueSet {ref!r} includes itself ({' -> '.join(trail + (ref,))})")
            found |= {ref} | expand(ref, trail + (ref,))
        members[concept] = found
        return found

    for union in unions:
        parts = expand(union, (union,))
        for concepts in exact.values():
            if concepts & parts:
                concepts.add(union)
        for entries in patterns.values():
            entries.extend([_Pattern(p.regex, union) for p in entries if p.concept in parts])
        codes = [pair for part in sorted(parts) for pair in explicit.get(part, ())]
        explicit[union] = list(dict.fromkeys(explicit.get(union, []) + codes))


def _build(directory: Path) -> Terminology:
    exact: dict[tuple[str, str], set[str]] = {}
    patterns: dict[str, list[_Pattern]] = {}
    explicit: dict[str, list[tuple[str, str]]] = {}
    displays: dict[tuple[str, str], str] = {}
    sources: dict[str, str] = {}
    for path in sorted((directory / "codesystems").glob("*.json")):
        data = _read_json(path)
        if data.get("resourceType") != "CodeSystem" or not isinstance(data.get("url"), str):
            raise TerminologyError(f"{path}: expected a CodeSystem with a url")
        for j, entry in enumerate(data.get("concept") or []):
            if not isinstance(entry, dict) or not entry.get("code") or not entry.get("display"):
                raise TerminologyError(f"{path}: concept[{j}] needs code and display")
            displays[(data["url"], entry["code"])] = entry["display"]
    valueset_files = sorted((directory / "valuesets").glob("*.json"))
    if not valueset_files:
        raise TerminologyError(f"{directory / 'valuesets'}: no ValueSet files")
    unions: dict[str, list[tuple[str, str]]] = {}
    for path in valueset_files:
        concept = _compile_valueset(path, _read_json(path), exact, patterns, explicit, displays, unions)
        sources[concept] = str(path)
    _resolve_unions(unions, exact, patterns, explicit, sources)
    explicit = {concept: list(dict.fromkeys(codes)) for concept, codes in explicit.items()}
    frozen = {key: frozenset(value) for key, value in exact.items()}
    return Terminology(frozen, patterns, explicit, displays, sources)


@lru_cache(maxsize=8)
def _load_cached(directory: str) -> Terminology:
    return _build(Path(directory))


def load_terminology(directory: str | Path | None = None) -> Terminology:
    """Read and compile fhir_profiles (or another directory with codesystems/ and valuesets/) once."""
    if directory is None:  # the per-request path: no filesystem call
        return _load_default()
    return _load_cached(str(Path(directory).resolve()))


@lru_cache(maxsize=1)
def _load_default() -> Terminology:
    return _load_cached(str(Path(DEFAULT_DIRECTORY).resolve()))
