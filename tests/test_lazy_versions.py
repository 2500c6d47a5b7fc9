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


def _direct_digest(resource: object) -> str:
    """The digest as it was always computed (feedback memory stores it: it must never change)."""
    import hashlib
    import json

    return "sha256:" + hashlib.sha256(json.dumps(resource, sort_keys=True, default=str).encode()).hexdigest()[:16]


def test_the_remembered_digest_is_the_json_digest_for_any_content() -> None:
    from datetime import UTC, datetime

    samples: list[dict[str, object]] = [
        {"resourceType": "Observation", "id": "a", "valueQuantity": {"value": 0.1 + 0.2, "unit": "mg"}},
        {"resourceType": "Observation", "id": "a", "valueQuantity": {"value": -0.0}},
        {"resourceType": "Observation", "id": "a", "valueQuantity": {"value": 1e300, "n": 10**18}},
        {"resourceType": "Observation", "id": "a", "valueInteger": 1, "b": True, "c": [1.0, "1", [], {}]},
        {"resourceType": "Condition", "id": "é", "note": [{"text": 'naïve 日本 \U0001f600 \u202e\u0000 "q" \\'}]},
        {"resourceType": "Condition", "id": "z", "b": 1, "a": {"y": 2, "x": [3, {"k": "v"}]}},
        # not plain JSON, or written as null by orjson: the direct path
        {"resourceType": "Observation", "id": "n", "valueQuantity": {"value": float("nan")}},
        {"resourceType": "Observation", "id": "n", "valueQuantity": {"value": None}},
        {"resourceType": "Observation", "id": "n", "valueQuantity": {"value": float("inf")}},
        {"resourceType": "Observation", "id": "big", "valueInteger": 10**40},
        {"resourceType": "Observation", "id": "t", "effectiveDateTime": datetime(2026, 3, 1, tzinfo=UTC)},
        {"resourceType": "Observation", "id": "k", "extension": {2: "int keys", 1: "x"}},
        {"resourceType": "Observation", "id": "s", "tuple": (1, 2)},
    ]
    for resource in samples:
        for _ in range(2):  # the second call answers from the cache
            assert api._content_version(resource) == _direct_digest(resource), resource  # type: ignore[arg-type]
        ref = f"{resource['resourceType']}/{resource['id']}"
        assert resource_versions([resource])[ref] == _direct_digest(resource)  # type: ignore[list-item]


def test_a_repeated_resource_is_digested_once() -> None:
    resource = {"resourceType": "Observation", "id": "once", "valueInteger": 424242}
    api._digest_of_canonical.cache_clear()
    with mock.patch.object(api, "_json_digest", wraps=api._json_digest) as digest:
        first = api._content_version(resource)
        again = api._content_version({"id": "once", "valueInteger": 424242, "resourceType": "Observation"})
    assert first == again == _direct_digest(resource)
    assert digest.call_count == 1
