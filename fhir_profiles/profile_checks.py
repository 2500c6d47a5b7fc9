"""Check resources against the spinecds StructureDefinitions, in Python (no Java validator).

The constraints are read from ``structuredefinitions/*.json``: value types and minValueInteger /
maxValueInteger of ``value[x]``, required bindings (checked through the ValueSets of
:mod:`fhir_profiles.terminology`), closed component slices, extension slices and invariants. Only the
element kinds listed in ``_compile_element`` are understood; a StructureDefinition that promises any
other constraint (a binding, pattern, fixed value, bound or min > 0 elsewhere) stops loading with the
file and element, so a profile can never claim more than these checks enforce.

A resource is checked against a profile when it claims it in ``meta.profile`` or when its code
matches the profile's code (pattern or bound ValueSet). Issues name the profile and what is wrong,
never a patient value. An issue is an error (the resource must not decide) unless it comes from an
invariant with severity ``warning``.

    profiles = load_profiles()
    for issue in profiles.check(resource_json):
        print(issue)        # "spinecds-kps-observation: KPS value out of range 0-100"
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from fhir_profiles.terminology import DEFAULT_DIRECTORY, VALUESET_URL_PREFIX, Terminology, load_terminology

SD_URL_PREFIX = "http://spinecds.org/fhir/StructureDefinition/"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_PRIMITIVES = {
    "boolean",
    "integer",
    "decimal",
    "string",
    "code",
    "uri",
    "url",
    "canonical",
    "dateTime",
    "date",
    "time",
    "instant",
    "id",
    "markdown",
    "positiveInt",
    "unsignedInt",
    "oid",
    "uuid",
    "base64Binary",
}
# Only these ElementDefinition members constrain instances; the rest (short, comment, mustSupport...) document.
_CONSTRAINING = ("binding", "fixed", "pattern", "minValue", "maxValue", "constraint")


class ProfileError(ValueError):
    """A StructureDefinition cannot be checked; the message starts with the file name."""


@dataclass(frozen=True)
class Issue:
    profile: str  # StructureDefinition id
    reason: str  # what is wrong, without the offending value
    severity: str = "error"  # error: the resource must not be used; warning: report, keep using it

    def __str__(self) -> str:
        return f"{self.profile}: {self.reason}"


def _invariant_mescc_date(resource: dict[str, Any]) -> bool:
    # A suspicion needs no date (it is untimed and the most urgent MRI tier); a diagnosis starts the clock.
    verification = resource.get("verificationStatus")
    codes = {
        c["code"]
        for c in _codings(verification)
        if isinstance(c, dict) and isinstance(c.get("code"), str) and c.get("system") in (None, CONDITION_VERIFICATION)
    }
    if codes & {"provisional", "differential"}:
        return True
    return bool(resource.get("onsetDateTime") or resource.get("recordedDate"))


def _invariant_whole_quantity(resource: dict[str, Any]) -> bool:
    value = (
        (resource.get("valueQuantity") or {}).get("value") if isinstance(resource.get("valueQuantity"), dict) else None
    )
    return not isinstance(value, (int, float)) or isinstance(value, bool) or float(value).is_integer()


# Python forms of the FHIRPath invariants in the StructureDefinitions (key -> holds(resource)).
INVARIANTS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "spinecds-mescc-1": _invariant_mescc_date,
    "spinecds-score-1": _invariant_whole_quantity,
}


@dataclass
class _Codes:
    """How an element's CodeableConcept is constrained: a pattern coding and/or a required ValueSet."""

    pattern: tuple[str, str] | None = None
    valueset: str | None = None  # concept id in fhir_profiles/valuesets

    def describe(self) -> str:
        if self.valueset:
            return f"in ValueSet {self.valueset}"
        assert self.pattern is not None, "a _Codes without a ValueSet is made only for a pattern"
        return f"{self.pattern[1]}"

    def matches(self, term: Terminology, concept: Any) -> bool:
        codings = [c for c in _codings(concept) if isinstance(c, dict)]
        if self.pattern and self.pattern not in _pairs(concept):
            return False
        return not self.valueset or term.matches(self.valueset, codings)


@dataclass
class _Value:
    types: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None
    codes: _Codes | None = None


@dataclass
class _Slice:
    name: str
    max: int | None = None
    code: _Codes = field(default_factory=_Codes)
    value: _Value = field(default_factory=_Value)


@dataclass
class _Extension:
    url: str
    name: str
    max: int | None = None
    value: _Value = field(default_factory=_Value)


@dataclass
class Profile:
    """One compiled constraint profile."""

    id: str
    url: str
    type: str
    label: str
    code: _Codes | None = None
    value: _Value | None = None
    bindings: dict[str, _Codes] = field(default_factory=dict)  # element name -> required codes
    slices: list[_Slice] = field(default_factory=list)  # Observation.component slices
    closed_components: bool = False
    extensions: dict[str, _Extension] = field(default_factory=dict)
    invariants: list[tuple[str, str, str]] = field(default_factory=list)  # (key, severity, human)

    def component_slice(self, concept: Any) -> _Slice | None:
        for slc in self.slices:
            if slc.code.pattern and slc.code.pattern in _pairs(concept):
                return slc
        return None


def _codings(concept: Any) -> list[Any]:
    if isinstance(concept, dict) and isinstance(concept.get("coding"), list):
        return concept["coding"]
    return []


def _pairs(concept: Any) -> set[tuple[Any, Any]]:
    return {
        (c["system"], c["code"])
        for c in _codings(concept)
        if isinstance(c, dict) and isinstance(c.get("system"), str) and isinstance(c.get("code"), str)
    }


def _max(text: Any) -> int | None:
    return None if text in (None, "*") else int(text)


def _value_keys(data: dict[str, Any], prefix: str = "value") -> list[str]:
    return [key for key in data if key.startswith(prefix) and len(key) > len(prefix) and key[len(prefix)].isupper()]


def _type_of(key: str, prefix: str = "value") -> str:
    name = key[len(prefix) :]
    lowered = name[0].lower() + name[1:]
    return lowered if lowered in _PRIMITIVES else name


# ------------------------------------------------------------------------------------------ loading


class _Compiler:
    def __init__(self, path: Path, data: dict[str, Any]):
        self.path = path
        self.data = data

    def fail(self, where: str, problem: str) -> ProfileError:
        return ProfileError(f"{self.path}: {where}: {problem}")

    def codes(self, element: dict[str, Any], where: str) -> _Codes:
        codes = _Codes()
        pattern = element.get("patternCodeableConcept")
        if pattern is not None:
            pairs = [(c.get("system"), c.get("code")) for c in _codings(pattern)]
            if len(pairs) != 1 or not all(pairs[0]):
                raise self.fail(where, "patternCodeableConcept needs exactly one coding with system and code")
            codes.pattern = pairs[0]
        binding = element.get("binding")
        if binding is not None:
            url = binding.get("valueSet", "")
            strength = binding.get("strength")
            if strength not in ("required", "extensible", "preferred", "example"):
                raise self.fail(where, f"binding strength {strength!r} is not a FHIR binding strength")
            if not url.startswith(VALUESET_URL_PREFIX):
                raise self.fail(where, f"bindings must point to {VALUESET_URL_PREFIX}<id>")
            # Only a required binding rejects a resource. Extensible ones document the codes we read:
            # an unrecognised code there is read cautiously by the facts, never dropped (dropping a
            # symptom could lower an MRI tier).
            if strength == "required":
                codes.valueset = url[len(VALUESET_URL_PREFIX) :]
        return codes

    def value(self, element: dict[str, Any], where: str) -> _Value:
        value = _Value(
            types=tuple(t["code"] for t in element.get("type") or ()),
            low=element.get("minValueInteger"),
            high=element.get("maxValueInteger"),
        )
        if "binding" in element:
            codes = self.codes(element, where)
            value.codes = codes if (codes.valueset or codes.pattern) else None
        return value

    def compile(self) -> Profile:
        data = self.data
        sd_id, rtype = data.get("id"), data.get("type")
        if data.get("resourceType") != "StructureDefinition" or sd_id != self.path.stem:
            raise self.fail("id", f"expected a StructureDefinition with id {self.path.stem!r}")
        if data.get("url") != SD_URL_PREFIX + sd_id:
            raise self.fail("url", f"must be {SD_URL_PREFIX + sd_id!r}")
        # `type` is read as written (JSON); a StructureDefinition without one is not checked here.
        profile = Profile(id=sd_id, url=data["url"], type=cast(str, rtype), label=sd_id)
        slices: dict[str, _Slice] = {}
        for element in (data.get("differential") or {}).get("element") or ():
            self.element(profile, element, slices)
        profile.slices = list(slices.values())
        return profile

    def element(self, profile: Profile, element: dict[str, Any], slices: dict[str, _Slice]) -> None:
        eid = element.get("id", "")
        rest = eid.split(".", 1)[1] if "." in eid else ""
        head, _, tail = rest.partition(".")
        name, _, slice_name = head.partition(":")
        constraining = [key for key in element if key.startswith(_CONSTRAINING)]

        if not rest:  # the root: label and invariants
            profile.label = element.get("label") or profile.label
            for constraint in element.get("constraint") or ():
                key = constraint.get("key")
                if key not in INVARIANTS:
                    raise self.fail(eid, f"invariant {key!r} has no Python form in profile_checks.INVARIANTS")
                severity = constraint.get("severity")
                if severity not in ("error", "warning"):
                    raise self.fail(eid, f"invariant {key!r} needs severity error or warning")
                profile.invariants.append((key, severity, constraint.get("human", key)))
        elif profile.type == "Extension":
            if rest == "value[x]":
                profile.value = self.value(element, eid)
            elif rest == "url" and element.get("fixedUri") not in (None, profile.url):
                raise self.fail(eid, "fixedUri must be the extension's own url")
            elif rest not in ("url", "extension") and constraining:
                raise self.fail(eid, "this element's constraints are not checked by profile_checks")
        elif rest == "code":
            profile.code = self.codes(element, eid)
        elif rest == "value[x]":
            profile.value = self.value(element, eid)
        elif name == "component" and not slice_name and not tail:
            slicing = element.get("slicing") or {}
            if [d.get("path") for d in slicing.get("discriminator") or ()] != ["code"]:
                raise self.fail(eid, "components must be sliced by code")
            profile.closed_components = slicing.get("rules") == "closed"
        elif name == "component" and slice_name:
            slc = slices.setdefault(slice_name, _Slice(slice_name))
            if not tail:
                slc.max = _max(element.get("max"))
            elif tail == "code":
                slc.code = self.codes(element, eid)
            elif tail == "value[x]":
                slc.value = self.value(element, eid)
            elif constraining:
                raise self.fail(eid, "only code and value[x] of a component slice are checked")
        elif name == "extension" and slice_name and not tail:
            urls = [p for t in element.get("type") or () for p in t.get("profile") or ()]
            if len(urls) != 1:
                raise self.fail(eid, "an extension slice needs exactly one type profile")
            profile.extensions[urls[0]] = _Extension(urls[0], urls[0].rsplit("/", 1)[-1], _max(element.get("max")))
        elif not tail and not slice_name and "binding" in element:
            codes = self.codes(element, eid)
            if codes.valueset or codes.pattern:  # a non-required binding documents, it does not reject
                profile.bindings[name] = codes
        elif constraining and name not in ("extension",):
            raise self.fail(eid, "this element's constraints are not checked by profile_checks")


class ProfileSet:
    """The compiled profiles of one directory, checked against one terminology."""

    def __init__(self, profiles: list[Profile], extensions: dict[str, Profile], terminology: Terminology):
        self.profiles = profiles
        self.extensions = extensions  # extension url -> its definition
        self.term = terminology
        self.by_url = {p.url: p for p in profiles}
        self._by_type: dict[str, list[Profile]] = {}
        for profile in profiles:
            self._by_type.setdefault(profile.type, []).append(profile)
        for profile in profiles:
            for url, ext in profile.extensions.items():
                definition = extensions.get(url)
                if definition is None or definition.value is None:
                    raise ProfileError(f"{profile.id}: extension {url} has no StructureDefinition with value[x]")
                ext.value = definition.value
            for codes in [
                profile.code,
                profile.value and profile.value.codes,
                *profile.bindings.values(),
                *(s.value.codes for s in profile.slices),
            ]:
                if codes and codes.valueset and codes.valueset not in terminology.concept_names:
                    raise ProfileError(f"{profile.id}: binding to unknown ValueSet {codes.valueset!r}")

    def get(self, profile_id: str) -> Profile:
        return next(p for p in self.profiles if p.id == profile_id)

    def applicable(self, resource: dict[str, Any]) -> list[Profile]:
        """Profiles the resource claims (meta.profile) or matches by code."""
        rtype = resource.get("resourceType")
        candidates = self._by_type.get(rtype, ()) if isinstance(rtype, str) else ()
        meta = resource.get("meta")
        claimed = (
            {str(url).split("|")[0] for url in (meta.get("profile") or ())}
            if isinstance(meta, dict) and isinstance(meta.get("profile"), list)
            else set()
        )
        code = resource.get("code")
        return [p for p in candidates if p.url in claimed or (p.code is not None and p.code.matches(self.term, code))]

    def check(self, resource: Any) -> list[Issue]:
        """Every profile issue of one resource (a raw dict or an R4B model)."""
        if not isinstance(resource, dict):
            if not hasattr(resource, "model_dump"):
                return []
            resource = resource.model_dump(mode="json", exclude_none=True)
        issues: list[Issue] = []
        profiles = self.applicable(resource)
        for profile in profiles:
            issues.extend(Issue(profile.id, reason, severity) for reason, severity in self._check(profile, resource))
        if not profiles and resource.get("resourceType") == "Observation":
            issues.extend(self._check_member_component(resource))
        return issues

    # -------------------------------------------------------------------------------- checks
    def _check(self, profile: Profile, resource: dict[str, Any]) -> list[tuple[str, str]]:
        """(reason, severity) pairs; only invariants can be warnings."""
        label, reasons = profile.label, []
        if profile.code is not None and not profile.code.matches(self.term, resource.get("code")):
            reasons.append(f"{label} code is not {profile.code.describe()}")
        if profile.value is not None:
            reasons.extend(self._check_value(profile.value, resource, f"{label} value"))
        for element, codes in profile.bindings.items():
            items = resource.get(element)
            for item in items if isinstance(items, list) else [items] if items is not None else []:
                if _codings(item) and not codes.matches(self.term, item):
                    reasons.append(f"{label} {element} is not {codes.describe()}")
                    break
        if profile.slices or profile.closed_components:
            reasons.extend(self._check_components(profile, resource.get("component")))
        for ext in profile.extensions.values():
            reasons.extend(self._check_extension(ext, resource.get("extension")))
        found = [(reason, "error") for reason in reasons]
        for key, severity, human in profile.invariants:
            if not INVARIANTS[key](resource):
                found.append((f"violates {key}: {human}", severity))
        return found

    def _check_value(self, rule: _Value, data: dict[str, Any], what: str) -> list[str]:
        keys = _value_keys(data)
        if not keys:
            return []  # absence is judged by the caller (status decides)
        if len(keys) > 1:
            return [f"{what}: more than one value[x]"]
        kind = _type_of(keys[0])
        if rule.types and kind not in rule.types:
            allowed = " or ".join("value" + t[0].upper() + t[1:] for t in rule.types)
            return [f"{what} must be {allowed}"]
        raw = data[keys[0]]
        if kind in ("integer", "Quantity"):
            number = raw.get("value") if kind == "Quantity" and isinstance(raw, dict) else raw
            if number is None and kind == "Quantity":
                return []
            if not isinstance(number, (int, float)) or isinstance(number, bool):
                return [f"{what} is not a number"]
            if (rule.low is not None and number < rule.low) or (rule.high is not None and number > rule.high):
                return [f"{what} out of range {rule.low}-{rule.high}"]
            if kind == "integer" and not float(number).is_integer():
                return [f"{what} is not a whole number"]
        if rule.codes is not None:
            if kind == "code":
                # A code element is constrained by a required binding, never by a CodeableConcept pattern.
                assert rule.codes.valueset is not None, "a code element is bound to a ValueSet"
                allowed_codes = {code for _system, code in self.term.codes(rule.codes.valueset)}
                if not isinstance(raw, str) or raw not in allowed_codes:
                    return [f"{what} is not {rule.codes.describe()}"]
            elif _codings(raw) and not rule.codes.matches(self.term, raw):
                return [f"{what} is not {rule.codes.describe()}"]
        return []

    def _check_components(self, profile: Profile, components: Any) -> list[str]:
        label, reasons = profile.label, []
        seen: dict[str, int] = {}
        for component in components if isinstance(components, list) else ():
            if not isinstance(component, dict):
                continue
            slc = profile.component_slice(component.get("code"))
            if slc is None:
                if profile.closed_components:
                    reasons.append(f"{label} component code is not one of the {len(profile.slices)} {label} components")
                continue
            seen[slc.name] = seen.get(slc.name, 0) + 1
            if slc.max is not None and seen[slc.name] == slc.max + 1:
                reasons.append(f"{label} has more than {slc.max} {slc.name} component")
            reasons.extend(self._check_value(slc.value, component, f"{label} {slc.name} answer"))
        return reasons

    def _check_member_component(self, resource: dict[str, Any]) -> list[Issue]:
        """A component sent as its own Observation (hasMember) obeys the same slice as inside the parent."""
        for profile in self._by_type.get("Observation", ()):
            slc = profile.component_slice(resource.get("code"))
            if slc is not None:
                return [
                    Issue(profile.id, r)
                    for r in self._check_value(slc.value, resource, f"{profile.label} {slc.name} answer")
                ]
        return []

    def _check_extension(self, ext: _Extension, extensions: Any) -> list[str]:
        found = (
            [e for e in extensions if isinstance(e, dict) and e.get("url") == ext.url]
            if isinstance(extensions, list)
            else []
        )
        reasons = []
        if ext.max is not None and len(found) > ext.max:
            reasons.append(f"more than {ext.max} {ext.name} extension")
        for item in found:
            if not _value_keys(item):
                reasons.append(f"{ext.name} extension has no value")
            else:
                reasons.extend(self._check_value(ext.value, item, f"{ext.name} extension value"))
        return reasons


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: expected a JSON object")
    return data


def structure_definition_files(directory: str | Path | None = None) -> list[Path]:
    return sorted((Path(directory or DEFAULT_DIRECTORY) / "structuredefinitions").glob("*.json"))


@lru_cache(maxsize=8)
def _load_cached(directory: str, terminology: Terminology) -> ProfileSet:
    profiles, extensions = [], {}
    for path in structure_definition_files(directory):
        profile = _Compiler(path, _read(path)).compile()
        if profile.type == "Extension":
            extensions[profile.url] = profile
        else:
            profiles.append(profile)
    if not profiles:
        raise ProfileError(f"{Path(directory) / 'structuredefinitions'}: no StructureDefinition files")
    return ProfileSet(profiles, extensions, terminology)


def load_profiles(directory: str | Path | None = None, terminology: Terminology | None = None) -> ProfileSet:
    """Read and compile the StructureDefinitions once (per directory and terminology)."""
    if directory is None and (terminology is None or terminology is load_terminology()):
        return _load_default()  # the per-request path: no filesystem call
    resolved = Path(directory or DEFAULT_DIRECTORY).resolve()
    return _load_cached(str(resolved), terminology or load_terminology(resolved))


@lru_cache(maxsize=1)
def _load_default() -> ProfileSet:
    resolved = Path(DEFAULT_DIRECTORY).resolve()
    return _load_cached(str(resolved), load_terminology(resolved))


def check_resource(resource: Any, profiles: ProfileSet | None = None) -> list[Issue]:
    """Profile issues of one resource (raw dict or R4B model); [] when it conforms or claims no profile."""
    return (profiles or load_profiles()).check(resource)
