"""engine.api.LazyVersions: the same "Type/id" -> version mapping as resource_versions, computed
only for the references a card asks about."""

from __future__ import annotations

from unittest import mock

from engine import api
from engine.api import LazyVersions, resource_versions

RESOURCES = [
    {"resourceType": "Condition", "id": "c1", "meta": {"versionId": "3"}},
    {"resourceType": "Observation", "id": "o1", "meta": {"lastUpdated": "2026-11-30T10:00:00Z"}},
    {"resourceType": "Observation", "id": "o2", "valueInteger": 5},  # no meta: a content digest
    {"resourceType": "Observation", "id": "o2", "valueInteger": 6},  # a duplicate: the last one wins
    {"resourceType": "Patient"},  # no id: not versioned
    "junk",
]


def test_same_mapping_as_resource_versions() -> None:
    lazy = LazyVersions(RESOURCES)  # type: ignore[arg-type]
    assert dict(lazy) == resource_versions(RESOURCES)  # type: ignore[arg-type]
    assert lazy.get("Observation/missing", "") == ""
    assert lazy["Observation/o2"].startswith("sha256:")


def test_only_the_references_asked_for_are_digested() -> None:
    vitals = [{"resourceType": "Observation", "id": f"v{i}", "valueInteger": i} for i in range(300)]
    with mock.patch.object(api, "resource_versions", wraps=api.resource_versions) as digest:
        lazy = LazyVersions(vitals)
        assert lazy.get("Observation/v7") == resource_versions([vitals[7]])["Observation/v7"]
        lazy.get("Observation/v7")
    assert digest.call_count == 1
