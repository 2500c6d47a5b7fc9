"""Cards leave the service spec-valid: uuids, absolute links, no nulls; invalid engine cards are dropped."""

from __future__ import annotations

import copy
import uuid

import pytest
from pydantic import ValidationError

from cds_hooks.card_models import Card
from cds_hooks.prefetch_templates import prefetch_templates
from engine.api import EvaluationResult
from tests.service_fixtures import hook_request

URL = "/cds-services/spinecds-patient-view"
NO_DATA = {key: None for key in prefetch_templates()}

GOOD = {
    "summary": "Spinal cord compression: start dexamethasone and radiotherapy within 24 h",
    "detail": "**MESCC** confirmed.",
    "indicator": "critical",
    "source": {
        "label": "Dutch guideline spinal metastases",
        "url": "https://doi.org/10.1016/j.ctrv.2018.05.013",
        "topic": {"system": "http://spinecds.org/fhir/CodeSystem/spine-findings", "code": "mescc"},
    },
    "suggestions": [
        {
            "label": "Order MRI whole spine",
            "isRecommended": True,
            "actions": [
                {
                    "type": "create",
                    "description": "MRI whole spine, stat",
                    "resource": {"resourceType": "ServiceRequest", "status": "draft", "intent": "order", "note": []},
                }
            ],
        }
    ],
    "selectionBehavior": "at-most-one",
    "overrideReasons": [
        {
            "system": "http://spinecds.org/fhir/CodeSystem/override",
            "code": "palliative",
            "display": "Palliative care only",
        }
    ],
    "links": [{"label": "Rule explanation", "url": "/docs/rules/mescc-treatment", "type": "absolute"}],
    "extension": {
        "spinecds": {"ruleId": "mescc-treatment", "ruleVersion": "1.0.0", "outcome": "confirmed", "missing": []}
    },
}


def _walk(value, path="$"):  # type: ignore[no-untyped-def]
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def _good() -> dict:
    return copy.deepcopy(GOOD)


def test_service_cards_are_returned_spec_shaped(make_client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    client = make_client(external_base_url="https://cds.example.org/spine/")
    engine_spy.result = EvaluationResult(cards=[{**_good(), "detail": None}])
    response = client.post(URL, json=hook_request(prefetch=NO_DATA))
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    assert "detail" not in card and "note" not in card["suggestions"][0]["actions"][0]["resource"]
    assert card["indicator"] == "critical" and len(card["summary"]) < 140
    assert len(card["uuid"]) == 36 and len(card["suggestions"][0]["uuid"]) == 36
    assert card["links"][0]["url"] == "https://cds.example.org/spine/docs/rules/mescc-treatment"
    assert card["extension"]["spinecds"]["ruleId"] == "mescc-treatment"
    for path, value in _walk(response.json()):
        assert value is not None, path
        if isinstance(value, (str, list, dict)) and path != "$.cards":
            assert len(value) > 0, path


def test_service_relative_links_use_request_base_url_by_default(client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    card = _good()
    card["source"]["icon"] = "/static/spinecds-100.png"
    engine_spy.result = EvaluationResult(cards=[card])
    (card,) = client.post(URL, json=hook_request(prefetch=NO_DATA)).json()["cards"]
    assert card["links"][0]["url"] == "http://testserver/docs/rules/mescc-treatment"
    assert card["source"]["icon"] == "http://testserver/static/spinecds-100.png"


def test_service_card_uuids_are_random_not_the_engines(client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    # Changed on purpose (issue 15): the engine's uuids are derived from hookInstance and rule id, so
    # anyone could compute them and send feedback on cards they never received. The service replaces
    # them with random (version 4) uuids, different on every call. (The engine now issues random
    # uuids itself; the service still replaces any that is not a random one, as this derived one.)
    derived = str(uuid.uuid5(uuid.NAMESPACE_URL, "hookInstance|mri-urgency"))
    engine_spy.result = EvaluationResult(cards=[{**_good(), "uuid": derived}])
    first = client.post(URL, json=hook_request(prefetch=NO_DATA)).json()["cards"][0]
    second = client.post(URL, json=hook_request(prefetch=NO_DATA)).json()["cards"][0]
    uuids = [first["uuid"], second["uuid"], first["suggestions"][0]["uuid"], second["suggestions"][0]["uuid"]]
    assert derived not in uuids and len(set(uuids)) == 4
    assert {uuid.UUID(value).version for value in uuids} == {4}


BROKEN = {
    "summary too long": {"summary": "x" * 140},
    "bad indicator": {"indicator": "hard-stop"},
    "no source label": {"source": {"url": "https://example.org"}},
    "suggestions without selectionBehavior": {"selectionBehavior": None},
    "delete without resourceId": {
        "suggestions": [{"label": "Cancel", "actions": [{"type": "delete", "description": "Cancel the draft"}]}]
    },
    "action without description": {
        "suggestions": [
            {"label": "Order", "actions": [{"type": "create", "resource": {"resourceType": "ServiceRequest"}}]}
        ]
    },
    "create without resource": {
        "suggestions": [{"label": "Order", "actions": [{"type": "create", "description": "Order MRI"}]}]
    },
    "update with a resource fragment": {
        "suggestions": [
            {
                "label": "Sooner",
                "actions": [{"type": "update", "description": "Bring forward", "resource": {"priority": "stat"}}],
            }
        ]
    },
    "delete with resource instead of resourceId": {
        "suggestions": [
            {
                "label": "Cancel",
                "actions": [
                    {
                        "type": "delete",
                        "description": "Cancel",
                        "resource": {"resourceType": "ServiceRequest", "id": "1"},
                    }
                ],
            }
        ]
    },
    "unknown action type": {
        "suggestions": [
            {
                "label": "x",
                "actions": [{"type": "replace", "description": "x", "resource": {"resourceType": "ServiceRequest"}}],
            }
        ]
    },
    "isRecommended not boolean": {"suggestions": [{"label": "x", "isRecommended": "yes"}]},
    "topic coding without system": {"source": {"label": "s", "topic": {"code": "mescc"}}},
    "relative source url": {"source": {"label": "s", "url": "/rules/x"}},
    "relative link url": {"links": [{"label": "l", "url": "docs/x", "type": "absolute"}]},
    "extension not an object": {"extension": ["spinecds"]},
    "override reason without display": {"overrideReasons": [{"system": "s", "code": "c"}]},
    "appContext on absolute link": {
        "links": [{"label": "l", "url": "https://x.org", "type": "absolute", "appContext": "abc"}]
    },
    "unknown link type": {"links": [{"label": "l", "url": "https://x.org", "type": "relative"}]},
    "two recommended with at-most-one": {
        "suggestions": [{"label": "a", "isRecommended": True}, {"label": "b", "isRecommended": True}]
    },
}


@pytest.mark.parametrize("change", BROKEN.values(), ids=BROKEN.keys())
def test_service_card_model_rejects_spec_violations(change) -> None:  # type: ignore[no-untyped-def]
    card = {**_good(), "uuid": "u1", **change}
    card = {k: v for k, v in card.items() if v is not None}
    with pytest.raises(ValidationError):
        Card.model_validate(card)


def test_service_invalid_engine_card_is_dropped_others_kept(client, engine_spy, caplog) -> None:  # type: ignore[no-untyped-def]
    broken = {**_good(), "summary": "x" * 200, "extension": {"spinecds": {"ruleId": "broken-rule"}}}
    engine_spy.result = EvaluationResult(cards=[broken, "not a card", _good()])  # type: ignore[list-item]
    response = client.post(URL, json=hook_request(prefetch=NO_DATA))
    assert response.status_code == 200
    assert [c["extension"]["spinecds"]["ruleId"] for c in response.json()["cards"]] == ["mescc-treatment"]
    record, not_an_object = [r for r in caplog.records if r.name == "spinecds.cards"]
    assert not_an_object.type == "str"
    assert record.ruleId == "broken-rule" and "x" * 50 not in str(record.errors)


def test_service_data_quality_goes_to_response_extension(client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    engine_spy.result = EvaluationResult(
        cards=[],
        data_quality=[{"resource": "Observation/o-kps", "issue": "status 'bogus' is not a FHIR status; skipped"}],
    )
    body = client.post(URL, json=hook_request(prefetch=NO_DATA)).json()
    assert body["cards"] == []
    assert body["extension"]["spinecds"]["dataQuality"][0]["resource"] == "Observation/o-kps"
    assert "trace" not in body["extension"]["spinecds"]


@pytest.mark.parametrize(
    ("allow_trace", "header", "expected"),
    [(True, "true", True), (True, None, False), (False, "true", False), (True, "false", False)],
)
def test_service_trace_needs_header_and_setting(make_client, engine_spy, allow_trace, header, expected) -> None:  # type: ignore[no-untyped-def]
    client = make_client(allow_trace=allow_trace)
    engine_spy.result = EvaluationResult(cards=[], trace={"rules": [{"ruleId": "mri-urgency", "matched": False}]})
    headers = {"X-SpineCDS-Trace": header} if header else {}
    body = client.post(URL, json=hook_request(prefetch=NO_DATA), headers=headers).json()
    assert engine_spy.requests[0].want_trace is expected
    assert ("trace" in body.get("extension", {}).get("spinecds", {})) is expected


def test_service_engine_gets_pinned_timezone_aware_now(client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    from tests.service_fixtures import FIXED_NOW

    client.post(URL, json=hook_request(prefetch=NO_DATA))
    assert engine_spy.requests[0].now == FIXED_NOW and engine_spy.requests[0].now.tzinfo is not None


def test_service_real_engine_stub_returns_no_cards(client) -> None:  # type: ignore[no-untyped-def]
    # No data for any rule: the CDS Hooks "no guidance" answer, {"cards": []}.
    response = client.post(URL, json=hook_request(prefetch=NO_DATA))
    assert response.status_code == 200 and response.json() == {"cards": []}


def test_service_clock_is_utc() -> None:
    import asyncio

    from cds_hooks.clock import get_now

    # get_now is a coroutine (no thread-pool hop per request), so the test awaits it.
    assert asyncio.run(get_now()).utcoffset().total_seconds() == 0
