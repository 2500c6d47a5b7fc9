"""`spinecds terminology expand --server URL`: refresh the shipped expansions from a FHIR terminology server.

It follows the FHIR R4 operation ``ValueSet/$expand`` as HAPI FHIR, CSIRO Ontoserver, SNOMED
International's Snowstorm and tx.fhir.org implement it: ``POST [base]/ValueSet/$expand`` with a
``Parameters`` body carrying the ValueSet to expand (``valueSet``, a resource) and paging (``count``,
``offset``); the answer is the ValueSet with ``expansion.total`` and ``expansion.contains`` (nested
``contains`` are flattened). Only the parts the server can know are sent: includes of our own
CodeSystems (spine-findings, local codes under http://spinecds.org/) and includes of other spinecds
ValueSets are expanded here, as the offline build does. ICD-10 is-a roots are always kept, because
the matcher reads an ICD-10 entry as covering its subcodes.

This runs when a maintainer asks for it, never while the service runs: the service only reads the
files it was shipped with.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import requests

from fhir_profiles.terminology import DEFAULT_DIRECTORY, VALUESET_URL_PREFIX, normalise_code
from fhir_profiles.terminology_build import (
    Code,
    _must_have,
    _read,
    build_all,
    expansion_resource,
    load_sources,
    render,
)

LOCAL_SYSTEM_PREFIX = "http://spinecds.org/"
PAGE = 1000
MAX_CODES = 200_000  # a runaway answer (an unfiltered SNOMED CT) stops here with a message


class ExpandError(RuntimeError):
    """The server could not expand a ValueSet; the message names the ValueSet and the server's answer."""


def _remote_part(data: dict[str, Any]) -> dict[str, Any] | None:
    """The ValueSet as the server should see it: no expansion, no local systems, no spinecds unions."""
    remote = {k: copy.deepcopy(v) for k, v in data.items() if k not in ("expansion", "text")}
    compose = remote.get("compose") or {}
    keep = []
    for part in compose.get("include") or []:
        system = part.get("system")
        if isinstance(system, str) and not system.startswith(LOCAL_SYSTEM_PREFIX):
            keep.append(part)
    if not keep:
        return None
    compose["include"] = keep
    compose["exclude"] = [p for p in compose.get("exclude") or [] if p.get("system")]
    if not compose["exclude"]:
        compose.pop("exclude")
    return remote


def _flatten(contains: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in contains or []:
        if item.get("code") and item.get("system"):
            out.append(item)
        out.extend(_flatten(item.get("contains") or []))
    return out


def expand_remote(
    session: requests.Session, base: str, valueset: dict[str, Any], name: str, timeout: float
) -> dict[Code, str]:
    url = base.rstrip("/") + "/ValueSet/$expand"
    found: dict[Code, str] = {}
    offset = 0
    while True:
        body = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "valueSet", "resource": valueset},
                {"name": "count", "valueInteger": PAGE},
                {"name": "offset", "valueInteger": offset},
            ],
        }
        try:
            response = session.post(
                url,
                json=body,
                headers={"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"},
                timeout=timeout,
            )
        except requests.RequestException as exc:
            raise ExpandError(f"{name}: {url}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise ExpandError(f"{name}: {url} answered HTTP {response.status_code}: {response.text[:300]}")
        try:
            expansion = response.json().get("expansion") or {}
        except ValueError:
            raise ExpandError(f"{name}: {url} did not answer JSON") from None
        top = expansion.get("contains") or []
        for item in _flatten(top):
            system = item["system"]
            found.setdefault((system, normalise_code(system, item["code"])), item.get("display") or item["code"])
        total = expansion.get("total")
        offset += len(top)  # paging counts the top-level entries; nested ones come with their parent
        if len(found) > MAX_CODES:
            raise ExpandError(f"{name}: more than {MAX_CODES} codes: is the definition too wide?")
        if not top or not isinstance(total, int) or offset >= total:
            return found


def expand_all(
    server: str,
    directory: Path = DEFAULT_DIRECTORY,
    only: list[str] | None = None,
    token: str | None = None,
    timeout: float = 60.0,
) -> list[Path]:
    """Refresh the expansions (all, or the ValueSets named in ``only``) from ``server``; returns the
    files changed. Local parts come from the offline build so they never depend on the server."""
    offline = build_all(directory)
    sources = load_sources(directory)
    session = requests.Session()
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    changed = []
    by_name = {path.stem: path for path in offline}
    unknown = sorted(set(only or ()) - set(by_name))
    if unknown:
        raise ExpandError(f"no such ValueSet: {', '.join(unknown)}")
    for name, path in by_name.items():
        if only and name not in only:
            continue
        data = _read(path)
        remote = _remote_part(data)
        if remote is None:
            continue  # nothing a terminology server knows (our own codes, unions): the offline expansion stands
        codes = expand_remote(session, server, remote, name, timeout)
        built = offline[path]
        must_have = _must_have(data)
        for item in built["expansion"]["contains"]:
            key = (item["system"], item["code"])
            # our own codes, listed codes and ICD-10 roots never depend on what the server knows
            if item["system"].startswith(LOCAL_SYSTEM_PREFIX) or key in must_have:
                codes.setdefault(key, item["display"])
        resource = {k: v for k, v in data.items() if k != "expansion"}
        if "copyright" in built:
            resource["copyright"] = built["copyright"]
        resource["expansion"] = expansion_resource(codes, [], sources, data, expanded_by=server)
        text = render(resource)
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    for _ in range(2):  # twice: a union may include another union
        _refresh_unions(by_name)
    return changed


def _refresh_unions(by_name: dict[str, Path]) -> None:
    """A union ValueSet's expansion is its members' expansions: recompute them from the files."""
    for path in by_name.values():
        data = _read(path)
        refs = [
            ref[len(VALUESET_URL_PREFIX) :]
            for part in (data.get("compose") or {}).get("include") or []
            for ref in part.get("valueSet") or []
        ]
        if not refs:
            continue
        contains: dict[Code, str] = {}
        for ref in refs:
            for item in _read(by_name[ref]).get("expansion", {}).get("contains") or []:
                contains.setdefault((item["system"], item["code"]), item.get("display") or "")
        for part in (data.get("compose") or {}).get("include") or []:
            for item in part.get("concept") or []:
                contains.setdefault((part["system"], item["code"]), item.get("display") or "")
        expansion = data.get("expansion") or {}
        new = [
            {"system": s, "code": c, "display": d}
            for (s, c), d in sorted(contains.items(), key=lambda kv: (kv[0][0], kv[0][1]))
        ]
        if expansion.get("contains") != new:
            expansion["contains"] = new
            expansion["total"] = len(new)
            expansion["identifier"] = f"urn:spinecds:expansion:{len(new)}"
            data["expansion"] = expansion
            path.write_text(render(data), encoding="utf-8")
