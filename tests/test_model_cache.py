"""engine.model_cache: validated models are reused for identical JSON, can never carry state from
one request to the next (deeply read-only), and the cache stays within its bound."""

from __future__ import annotations

import copy
import threading
import warnings
from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from engine.model_cache import MODEL_CACHE, ModelCache, ReadOnlyList
from engine.parse import parse_resources
from fhir_profiles.terminology import load_terminology

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
LOINC = "http://loinc.org"


def kps(value: int, id_: str = "k1") -> dict:
    return {
        "resourceType": "Observation",
        "id": id_,
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": LOINC, "code": "89243-0"}]},
        "effectiveDateTime": "2026-11-29T10:00:00+00:00",
        "valueInteger": value,
    }


def test_the_same_json_validates_once_and_gives_an_equal_model() -> None:
    cache = ModelCache(16)
    first = cache.validate(Observation, kps(80))
    reordered = dict(reversed(list(kps(80).items())))  # key order does not matter
    assert cache.validate(Observation, reordered) is first
    assert first.model_dump(mode="json") == Observation.model_validate(kps(80)).model_dump(mode="json")
    assert isinstance(first, Observation) and first.valueInteger == 80
    assert cache.info().hits == 1 and cache.info().misses == 1


def test_different_json_gives_a_different_model() -> None:
    cache = ModelCache(16)
    assert cache.validate(Observation, kps(80)).valueInteger == 80
    assert cache.validate(Observation, kps(40)).valueInteger == 40
    assert cache.validate(Observation, {**kps(80), "valueInteger": 80.0}) is not cache.validate(Observation, kps(80))


def test_a_cached_model_cannot_be_changed_anywhere_in_its_tree() -> None:
    cache = ModelCache(16)
    model = cache.validate(Observation, kps(80))
    attempts = [
        lambda: setattr(model, "valueInteger", 10),
        lambda: setattr(model.code, "text", "changed"),
        lambda: setattr(model.code.coding[0], "code", "72514-3"),
        lambda: model.code.coding.append(model.code.coding[0]),
        lambda: model.code.coding.__setitem__(0, None),
        lambda: model.code.coding.pop(),
        lambda: delattr(model, "status"),
    ]
    for attempt in attempts:
        with pytest.raises(TypeError, match="read-only"):
            attempt()
    # The next request with the same JSON gets exactly what was validated.
    again = cache.validate(Observation, kps(80))
    assert again.valueInteger == 80 and again.code.coding[0].code == "89243-0" and len(again.code.coding) == 1


def test_changing_the_request_json_afterwards_does_not_reach_the_cached_model() -> None:
    cache = ModelCache(16)
    raw = kps(80)
    model = cache.validate(Observation, raw)
    raw["valueInteger"] = 10
    raw["code"]["coding"][0]["code"] = "72514-3"
    assert model.valueInteger == 80 and model.code.coding[0].code == "89243-0"
    assert cache.validate(Observation, kps(80)) is model
    assert cache.validate(Observation, raw).valueInteger == 10


def test_read_only_models_serialise_and_copy_like_the_originals() -> None:
    cache = ModelCache(16)
    model = cache.validate(Observation, kps(80))
    fresh = Observation.model_validate(kps(80))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pydantic would warn about unexpected types
        assert model.model_dump(mode="json") == fresh.model_dump(mode="json")
        assert model.model_dump_json() == fresh.model_dump_json()
    duplicate = copy.deepcopy(model)
    assert duplicate.model_dump() == fresh.model_dump()
    assert isinstance(duplicate.code.coding, ReadOnlyList)


def test_the_cache_keeps_at_most_its_size_least_recently_used_out_first() -> None:
    cache = ModelCache(3)
    models = [cache.validate(Observation, kps(v)) for v in (10, 20, 30)]
    cache.validate(Observation, kps(10))  # 10 is now the most recently used
    cache.validate(Observation, kps(40))  # evicts 20
    assert cache.info().size == 3
    assert cache.validate(Observation, kps(10)) is models[0]
    assert cache.validate(Observation, kps(20)) is not models[1]


def test_invalid_json_and_json_with_null_are_validated_every_time() -> None:
    cache = ModelCache(16)
    for _ in range(2):
        with pytest.raises(ValidationError):
            cache.validate(Observation, {**kps(80), "valueInteger": "eighty"})
    # orjson writes NaN (which a lenient parser lets through) as null: such JSON is never a key.
    with_null = {**kps(80), "issued": None}
    first = cache.validate(Observation, with_null)
    assert cache.validate(Observation, with_null) is not first
    assert cache.info().uncacheable == 2 and cache.info().size == 0


def test_size_zero_turns_the_cache_off() -> None:
    cache = ModelCache(0)
    first = cache.validate(Observation, kps(80))
    assert cache.validate(Observation, kps(80)) is not first
    first.valueInteger = 10  # an uncached model is the caller's own
    assert cache.info().size == 0


def test_threads_share_the_cache_safely() -> None:
    cache = ModelCache(8)
    errors: list[str] = []

    def work(offset: int) -> None:
        for n in range(300):
            value = (n + offset) % 12
            if cache.validate(Observation, kps(value)).valueInteger != value:
                errors.append(f"{offset}:{n}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and cache.info().size <= 8


def test_parsing_the_same_chart_twice_reuses_the_models_and_gives_the_same_entries() -> None:
    MODEL_CACHE.clear()
    term = load_terminology()
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C79.51"}]},
    }
    chart = [{"resourceType": "Patient", "id": "p1"}, condition, kps(80)]
    first = parse_resources(chart, term, "p1")
    second = parse_resources(copy.deepcopy(chart), term, "p1")
    assert [e.ref for e in second.conditions] == ["Condition/c1"]
    assert second.conditions[0].model is first.conditions[0].model
    assert isinstance(second.conditions[0].model, Condition)
    assert second.observations[0].model is first.observations[0].model
    assert MODEL_CACHE.info().hits >= 3
