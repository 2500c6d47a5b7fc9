"""The assessment Questionnaires, their extraction, the engine preview endpoint and the cards' SMART links."""

from __future__ import annotations

import copy
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_hooks.logging_json import JsonLinesFormatter
from cds_hooks.operation_outcome import ApiError
from engine.api import EvaluationRequest, evaluate
from fhir_profiles import questionnaire_extract as qx
from fhir_profiles.profile_checks import check_resource, load_profiles
from fhir_profiles.terminology import load_terminology
from tests import smart_patient as sp
from tests.service_fixtures import FIXED_NOW, hook_request
from tools import make_questionnaires

NOW = FIXED_NOW
SF = "http://spinecds.org/fhir/CodeSystem/spine-findings"
YES_NO = "http://terminology.hl7.org/CodeSystem/v2-0136"
UNK = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"


def outcomes(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    result = evaluate(
        EvaluationRequest(
            hook="patient-view", hook_instance="t", patient_id=sp.PATIENT_ID, resources=resources, now=NOW
        )
    )
    found = {}
    for card in result.cards:  # rules merged into a host card count as present, with their own outcome
        for ext in [card["extension"]["spinecds"], *card["extension"]["spinecds"].get("merged", [])]:
            found[ext["ruleId"]] = ext
    return found


def qr(*items: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "QuestionnaireResponse", "status": "completed", "item": list(items)}


def answer(link: str, **value: Any) -> dict[str, Any]:
    return {"linkId": link, "answer": [value]}


# ------------------------------------------------------------------ the Questionnaires


def test_committed_questionnaires_are_what_the_generator_writes():
    for qid, questionnaire in make_questionnaires.build_all().items():
        committed = (qx.QUESTIONNAIRE_DIR / f"{qid}.json").read_text(encoding="utf-8")
        assert committed == make_questionnaires.render(questionnaire), (
            f"run python -m tools.make_questionnaires ({qid})"
        )
    assert set(qx.questionnaires()) == {qx.SINS_Q, qx.PERFORMANCE_Q, qx.STAGING_Q, qx.RED_FLAGS_Q}


def test_questionnaires_are_valid_r4_and_offer_exactly_the_codes_the_engine_reads():
    from fhir.resources.R4B.questionnaire import Questionnaire

    term = load_terminology()
    for questionnaire in qx.questionnaires().values():
        Questionnaire.model_validate(questionnaire)
    sins_items = qx._items(qx.questionnaires()[qx.SINS_Q])
    for link, valueset in [
        ("location", "sins-location"),
        ("pain", "sins-pain"),
        ("bone-lesion", "sins-bone-lesion"),
        ("alignment", "sins-alignment"),
        ("collapse", "sins-collapse"),
        ("posterolateral", "sins-posterolateral"),
    ]:
        offered = {(o["valueCoding"]["system"], o["valueCoding"]["code"]) for o in sins_items[link]["answerOption"]}
        assert offered == set(term.codes(valueset)), link
    flags = qx._items(qx.questionnaires()[qx.RED_FLAGS_Q])
    symptoms = {o["valueCoding"]["code"] for o in flags["code"]["answerOption"]}
    assert all(term.matches(f"symptom-{code}", [{"system": SF, "code": code}]) for code in symptoms)
    symptom_parts = json.loads((qx.QUESTIONNAIRE_DIR.parent / "valuesets" / "symptom.json").read_text())
    assert len(symptoms) == len(symptom_parts["compose"]["include"])  # every alarm symptom the rules read
    courses = {(o["valueCoding"]["system"], o["valueCoding"]["code"]) for o in flags["course"]["answerOption"]}
    assert set(term.codes("symptom-course")) == courses - {(UNK, "UNK")}
    sides = [o["valueCoding"] for o in flags["side"]["answerOption"] if o["valueCoding"]["system"] != UNK]
    assert all(term.matches("laterality", [side]) for side in sides)


# ------------------------------------------------------------------ extraction and the engine


def test_extracted_resources_conform_and_the_engine_decides_with_them():
    chart = sp.chart(NOW)
    before = outcomes(chart)
    assert before["sins-referral"]["sins"] == {"min": 7, "max": 17, "category": "incomplete", "level": "T12"}
    assert before["surgery-eligibility"]["outcome"] == "undetermined"
    assert "visceral metastases status" in before["surgery-eligibility"]["missing"]

    extraction = qx.extract(sp.answers(), chart, sp.PATIENT_ID, NOW)
    assert extraction.problems == [] and extraction.updates == []
    sins, staging = extraction.creates
    assert sins["valueInteger"] == 10 and sins["bodySite"] == {"text": "T12"} and len(sins["component"]) == 6
    assert staging["valueBoolean"] is False
    for resource in extraction.resources:
        assert check_resource(resource) == [], resource["resourceType"]
    assert [p.id for p in load_profiles().applicable(sins)] == ["spinecds-sins-observation"]  # checked, not skipped

    after = outcomes(chart + extraction.resources)
    assert after["sins-referral"]["sins"] == {"total": 10, "category": "potentially-unstable", "level": "T12"}
    assert "missing" not in after["sins-referral"]
    assert after["surgery-eligibility"]["outcome"] == "eligible"
    # Van der Linden: A or B while visceral status is unknown, B once it is known to be absent
    assert before["survival-estimate"]["survival"][0] == {"model": "van-der-linden", "groups": ["A", "B"]}
    assert [s["group"] for s in after["survival-estimate"]["survival"]] == ["B", "C"]


@pytest.mark.parametrize("kps", [105, 75, -10, 80.5, "80"])
def test_an_out_of_range_kps_is_a_problem_and_nothing_is_extracted(kps):
    answers = sp.answers()
    answers[qx.PERFORMANCE_Q] = qr(
        answer("scale", valueCoding={"system": "http://loinc.org", "code": "89243-0"}), answer("kps", valueInteger=kps)
    )
    extraction = qx.extract(answers, sp.chart(NOW), sp.PATIENT_ID, NOW)
    assert [p.where for p in extraction.problems] == ["spinecds-performance-status/kps"]
    assert any(word in extraction.problems[0].message for word in ("0-100", "integer", "whole number"))
    assert extraction.resources == []  # all or nothing: the valid SINS answers are not written either


def test_an_answer_outside_the_options_names_the_item():
    answers = sp.answers()
    lesion = answers[qx.SINS_Q]["item"][0]["item"]
    lesion[2] = answer("pain", valueCoding={"system": SF, "code": "lesion-lytic"})
    lesion.append(answer("level", valueString="T12"))
    extraction = qx.extract(answers, sp.chart(NOW), sp.PATIENT_ID, NOW)
    assert {p.where for p in extraction.problems} == {"spinecds-sins/lesion[1]/pain", "spinecds-sins/lesion[1]/level"}


def test_the_prefill_reads_the_chart_and_sending_it_back_unchanged_writes_nothing():
    chart = sp.chart(NOW)
    prefill = qx.prefill(chart, sp.PATIENT_ID, levels=["L3"])
    lesions = prefill[qx.SINS_Q]["item"]
    assert [g["item"][0]["answer"][0]["valueString"] for g in lesions] == ["T12", "L3"]
    assert {i["linkId"] for i in lesions[0]["item"]} == {"level", "location", "bone-lesion", "collapse"}
    assert prefill[qx.PERFORMANCE_Q]["item"][1] == answer("kps", valueInteger=80)
    assert prefill[qx.STAGING_Q]["item"] == []
    extraction = qx.extract(prefill, chart, sp.PATIENT_ID, NOW)
    assert extraction.problems == [] and extraction.resources == []  # an old KPS must not look new


def test_staging_with_one_answer_unknown_stays_unknown():
    answers = {
        qx.STAGING_Q: qr(
            answer("visceral", valueCoding={"system": YES_NO, "code": "N"}),
            answer("brain", valueCoding={"system": UNK, "code": "UNK"}),
        )
    }
    extraction = qx.extract(answers, sp.chart(NOW), sp.PATIENT_ID, NOW)
    assert extraction.resources == [] and "stay unknown" in extraction.notes[0].replace("stays", "stay")
    answers[qx.STAGING_Q]["item"][1] = answer("brain", valueCoding={"system": YES_NO, "code": "Y"})
    (staging,) = qx.extract(answers, sp.chart(NOW), sp.PATIENT_ID, NOW).creates
    assert staging["valueBoolean"] is True
    assert outcomes([*sp.chart(NOW), staging])["surgery-eligibility"]["outcome"] != "undetermined"


def test_ecog_is_written_with_its_grade():
    chart = [r for r in sp.chart(NOW) if r.get("id") != "smart-kps"]
    answers = {
        qx.PERFORMANCE_Q: qr(
            answer("scale", valueCoding={"system": "http://loinc.org", "code": "89247-1"}),
            answer("ecog", valueCoding={"system": "http://loinc.org", "code": "LA9623-5"}),
        )
    }
    (ecog,) = qx.extract(answers, chart, sp.PATIENT_ID, NOW).creates
    assert ecog["code"]["coding"][0]["code"] == "89247-1" and ecog["valueInteger"] == 1
    assert check_resource(ecog) == []


def test_a_recorded_symptom_is_completed_in_place_and_a_new_one_created():
    chart = sp.chart(NOW)
    deficit = {
        "resourceType": "Condition",
        "id": "smart-deficit",
        "clinicalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
        },
        "code": {"coding": [{"system": SF, "code": "radicular-deficit"}]},
        "subject": {"reference": f"Patient/{sp.PATIENT_ID}"},
        "recordedDate": (NOW - timedelta(days=1)).isoformat(),
    }
    chart.append(deficit)
    before = outcomes(chart)["mri-urgency"]
    assert any("laterality" in m for m in before["missing"])
    prefill = qx.prefill(chart, sp.PATIENT_ID)
    group = prefill[qx.RED_FLAGS_Q]["item"][0]
    assert group["item"][0] == answer("existing", valueReference={"reference": "Condition/smart-deficit"})
    group["item"] += [
        answer("side", valueCoding={"system": "http://snomed.info/sct", "code": "7771000"}),
        answer("course", valueCoding={"system": SF, "code": "stable"}),
        answer("onset", valueDate=(NOW - timedelta(days=20)).date().isoformat()),
    ]
    prefill[qx.RED_FLAGS_Q]["item"].append(
        {"linkId": "symptom", "item": [answer("code", valueCoding={"system": SF, "code": "nocturnal-back-pain"})]}
    )
    extraction = qx.extract(prefill, chart, sp.PATIENT_ID, NOW)
    assert extraction.problems == []
    (updated,) = extraction.updates
    assert updated["id"] == "smart-deficit" and updated["bodySite"][0]["coding"][0]["code"] == "7771000"
    assert updated["extension"] == [{"url": qx.COURSE_URL, "valueCode": "stable"}]
    (created,) = extraction.creates
    assert created["code"]["coding"][0]["code"] == "nocturnal-back-pain"
    assert all(check_resource(r) == [] for r in extraction.resources)
    merged = [r for r in chart if r.get("id") != "smart-deficit"] + extraction.resources
    assert not any("radicular deficit" in m for m in outcomes(merged)["mri-urgency"].get("missing", []))


def test_a_future_onset_and_another_patient_are_refused():
    answers = {
        qx.RED_FLAGS_Q: {
            **qr(
                {
                    "linkId": "symptom",
                    "item": [
                        answer("code", valueCoding={"system": SF, "code": "local-back-pain"}),
                        answer("onset", valueDate=(NOW + timedelta(days=2)).date().isoformat()),
                    ],
                }
            )
        },
        qx.STAGING_Q: {**qr(), "subject": {"reference": "Patient/someone-else"}},
    }
    problems = qx.extract(answers, sp.chart(NOW), sp.PATIENT_ID, NOW).problems
    assert {(p.where, p.message) for p in problems} == {
        ("spinecds-red-flags/symptom[1]/onset", "lies in the future"),
        ("spinecds-staging", "is about another patient"),
    }


def test_the_transaction_has_a_provenance_naming_the_app_and_the_user():
    extraction = qx.extract(sp.answers(), sp.chart(NOW), sp.PATIENT_ID, NOW)
    bundle = qx.transaction_bundle(
        extraction,
        sp.PATIENT_ID,
        NOW,
        app_name="app",
        client_id="cid",
        user_reference="Practitioner/u1",
        user_display="Dr U",
    )
    assert bundle["type"] == "transaction"
    *writes, provenance = bundle["entry"]
    assert [e["request"]["method"] for e in writes] == ["POST", "POST"]
    assert [t["reference"] for t in provenance["resource"]["target"]] == [e["fullUrl"] for e in writes]
    agents = provenance["resource"]["agent"]
    assert agents[0]["who"] == {"reference": "Practitioner/u1", "display": "Dr U"}
    assert agents[1]["who"]["identifier"]["value"] == "cid"


# ------------------------------------------------------------------ the service: preview, pages, card links


class TrustingLaunch:
    """Stands in for the EHR's word on a launch (the real check: tests/test_smart_launch.py): the
    test token is good for any patient."""

    def verify(self, authorization: str | None, fhir_server: str | None, patient_id: str | None) -> str:
        if authorization != f"Bearer {TEST_TOKEN}" or not patient_id:
            raise ApiError(401, "login", "no launch")
        return patient_id


TEST_TOKEN = "test-smart-token"


def launched(client):
    client.app.state.smart_launch = TrustingLaunch()
    return client


def post_assess(client, body: dict[str, Any]):
    """POST /smart/api/assess as the app does: with its token, FHIR server and launch patient."""
    headers = {
        "Authorization": f"Bearer {TEST_TOKEN}",
        "X-Smart-Fhir-Server": "http://127.0.0.1:1/fhir",
        "X-Smart-Patient": str(body.get("patientId")),
    }
    return client.post("/smart/api/assess", json=body, headers=headers)


@pytest.fixture
def smart_client(make_client):
    return launched(make_client(smart_app=True))


def test_the_preview_endpoint_shows_before_and_after_without_storing_anything(smart_client):
    body = {"patientId": sp.PATIENT_ID, "chart": sp.chart(NOW), "answers": sp.answers(), "user": "Practitioner/u1"}
    answer_ = post_assess(smart_client, body)
    assert answer_.status_code == 200, answer_.text
    result = answer_.json()
    by_rule = {c["ruleId"]: c for c in result["after"]["cards"]}
    assert by_rule["sins-referral"]["sins"]["total"] == 10
    assert by_rule["surgery-eligibility"]["outcome"] == "eligible"
    assert "visceral metastases status" in result["before"]["missing"] and result["after"]["missing"] == []
    assert result["transaction"]["type"] == "transaction" and len(result["resources"]) == 2
    assert result["prefill"][qx.PERFORMANCE_Q]["item"][1] == answer("kps", valueInteger=80)
    assert answer_.headers["cache-control"] == "no-store"


def test_the_preview_endpoint_refuses_bad_answers_with_422_and_no_transaction(smart_client):
    answers = {
        qx.PERFORMANCE_Q: qr(
            answer("scale", valueCoding={"system": "http://loinc.org", "code": "89243-0"}),
            answer("kps", valueInteger=150),
        )
    }
    answer_ = post_assess(smart_client, {"patientId": sp.PATIENT_ID, "chart": sp.chart(NOW), "answers": answers})
    assert answer_.status_code == 422
    assert answer_.json()["problems"] == [
        {"where": "spinecds-performance-status/kps", "message": "out of range: must be 0-100 in steps of 10"}
    ]
    assert "transaction" not in answer_.json()
    bad = post_assess(smart_client, {"patientId": "../x", "chart": []})
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"


def test_app_pages_are_served_with_a_strict_content_security_policy(smart_client, client):
    for path in ("/smart/launch.html", "/smart/index.html", "/smart/app.js", "/smart/vendor/fhir-client.pure.min.js"):
        page = smart_client.get(path)
        assert page.status_code == 200, path
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert smart_client.get("/smart/config.json").json()["clientId"] == "spinecds-assessment"
    assert smart_client.get("/smart/../app.py").status_code == 404
    assert smart_client.get("/smart/questionnaires/spinecds-sins").json()["resourceType"] == "Questionnaire"
    assert client.get("/smart/launch.html").status_code == 404  # off unless SPINECDS_SMART_APP


def _cards(client, resources) -> list[dict[str, Any]]:
    """patient-view with every prefetch key answered: Conditions under `conditions`, all Observations
    under the first Observation key (the engine reads them all alike), the other keys empty."""
    from cds_hooks.services import SERVICES

    def searchset(kind: str) -> dict[str, Any]:
        entries = [{"resource": r} for r in resources if r["resourceType"] == kind]
        return {"resourceType": "Bundle", "type": "searchset", "entry": entries}

    empty = {"resourceType": "Bundle", "type": "searchset"}
    prefetch: dict[str, Any] = {}
    observations_given = False
    for key, template in SERVICES["spinecds-patient-view"].prefetch.items():
        if template.startswith("Patient/"):
            prefetch[key] = resources[0]
        elif template.startswith("Condition"):
            prefetch[key] = searchset("Condition")
        else:
            prefetch[key] = empty if observations_given else searchset("Observation")
            observations_given = True
    request = hook_request(prefetch=prefetch)
    request["context"]["patientId"] = sp.PATIENT_ID
    answer_ = client.post("/cds-services/spinecds-patient-view", json=request)
    assert answer_.status_code == 200, answer_.text
    return answer_.json()["cards"]


def test_every_card_lacking_data_links_to_the_app_with_what_to_ask(smart_client, client):
    cards = _cards(smart_client, sp.chart(NOW))
    lacking = [
        c
        for c in cards
        if any(e.get("missing") for e in [c["extension"]["spinecds"], *c["extension"]["spinecds"].get("merged", [])])
    ]
    assert {c["extension"]["spinecds"]["ruleId"] for c in lacking} >= {"sins-referral", "surgery-eligibility"}
    for card in cards:
        smart = [link for link in card.get("links", []) if link["type"] == "smart"]
        if card not in lacking:
            assert smart == []
            continue
        (link,) = smart
        assert link["url"].endswith("/smart/launch.html")
        context = json.loads(link["appContext"])
        own = card["extension"]["spinecds"].get("missing", [])
        assert context["missing"][: len(own)] == own  # then what the merged rules lack
        if context["ruleId"] == "sins-referral":
            assert context["questions"][0] == "sins" and context["levels"] == ["T12"]
        if context["ruleId"] == "surgery-eligibility":
            assert "staging" in context["questions"]
    assert all(link["type"] != "smart" for c in _cards(client, sp.chart(NOW)) for link in c.get("links", []))


def test_app_context_stays_small():
    from cds_hooks.smart_links import MAX_APP_CONTEXT, app_context

    text = app_context(
        {"ruleId": "mri-urgency", "missing": [f"laterality of symptom {n} unknown" * 5 for n in range(100)]}
    )
    assert len(text) <= MAX_APP_CONTEXT and json.loads(text)["questions"] == ["symptoms"]


def test_now_must_be_aware():
    with pytest.raises(ValueError):
        qx.extract({}, [], "p", datetime(2026, 1, 1))
    assert copy.deepcopy(qx.extract({}, [], "p", datetime(2026, 1, 1, tzinfo=UTC)).resources) == []


def test_sandbox_fire_prints_the_local_ehr_launch_url_of_each_smart_link():
    from urllib.parse import parse_qs, urlsplit

    from sandbox.render import smart_launch_urls

    link = {"label": "x", "url": "http://127.0.0.1:8000/smart/launch.html", "type": "smart", "appContext": '{"a":1}'}
    body = {"cards": [{"links": [link]}, {"links": [link, {"type": "absolute", "url": "https://x"}]}]}
    (url,) = smart_launch_urls(body, "http://127.0.0.1:8080", "spinecds-p10")
    assert url.startswith("http://127.0.0.1:8080/auth/launch?")
    query = parse_qs(urlsplit(url).query)
    assert query == {"app": [link["url"]], "patient": ["spinecds-p10"], "appContext": ['{"a":1}']}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(garbage=json_values, link=st.sampled_from(["lesion", "level", "kps", "scale", "symptom", "visceral", "x"]))
def test_hostile_answers_and_charts_give_problems_never_exceptions(garbage, link):
    chart = sp.chart(NOW)
    chart[4] = {**chart[4], "bodySite": garbage, "component": garbage}  # a malformed SINS in the chart
    chart.append(
        {
            "resourceType": "Condition",
            "id": "junk",
            "subject": {"reference": f"Patient/{sp.PATIENT_ID}"},
            "code": garbage,
        }
    )
    for qid in qx.questionnaires():
        answers = {qid: qr({"linkId": link, "answer": garbage, "item": garbage}, {"linkId": link, "answer": [garbage]})}
        extraction = qx.extract(answers, chart, sp.PATIENT_ID, NOW)
        assert all(check_resource(r) == [] for r in extraction.resources)
    qx.prefill(chart, sp.PATIENT_ID)
    assert qx.extract({qx.SINS_Q: garbage}, chart, sp.PATIENT_ID, NOW).resources == []


def test_a_card_lacking_data_only_through_a_merged_rule_still_links():
    from cds_hooks.smart_links import add_smart_links

    card = {
        "extension": {
            "spinecds": {
                "ruleId": "mri-urgency",
                "outcome": "4",
                "merged": [{"ruleId": "survival-estimate", "missing": ["KPS"]}],
            }
        }
    }
    (link,) = add_smart_links([card], "http://svc.example")[0]["links"]
    assert link["url"] == "http://svc.example/smart/launch.html"
    assert json.loads(link["appContext"]) == {"ruleId": "mri-urgency", "questions": ["performance"], "missing": ["KPS"]}


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonLinesFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def debug_logs() -> Any:
    """Every logger at DEBUG, each record as the JSON line our formatter writes."""
    handler = _Lines()
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]
    levels = [(logger, logger.level) for logger in loggers if isinstance(logger, logging.Logger)]
    logging.getLogger().addHandler(handler)
    for logger, _ in levels:
        logger.setLevel(logging.DEBUG)
    yield handler
    logging.getLogger().removeHandler(handler)
    for logger, level in levels:
        logger.setLevel(level)


def _forbidden(chart: list[dict[str, Any]]) -> set[str]:
    """Names, birth dates, identifiers, addresses and free text of a chart."""
    found: set[Any] = set()
    for resource in chart:
        for name in resource.get("name") or []:
            found |= {name.get("family"), name.get("text"), *(name.get("given") or [])}
        found |= {resource.get("birthDate"), resource.get("valueString"), (resource.get("code") or {}).get("text")}
        found |= {item.get("value") for item in (resource.get("identifier") or []) + (resource.get("telecom") or [])}
        for address in resource.get("address") or []:
            found |= {address.get("city"), address.get("postalCode"), *(address.get("line") or [])}
    return {value for value in found if isinstance(value, str) and len(value) >= 3}


def _leaks(lines: list[str], secrets: set[str]) -> list[tuple[str, str]]:
    patterns = {secret: re.compile(r"(?<![\w])" + re.escape(secret) + r"(?![\w])") for secret in secrets}
    return [(secret, line) for secret, pattern in patterns.items() for line in lines if pattern.search(line)]


def test_the_preview_endpoint_logs_no_patient_data(make_client, debug_logs):
    from sandbox.patients import build_resources, patient_ids

    client = launched(make_client(smart_app=True, log_level="DEBUG"))
    forbidden: set[str] = set()
    for pid in patient_ids():
        chart = build_resources(pid.removeprefix("spinecds-"), NOW)
        forbidden |= _forbidden(chart)
        prefill = post_assess(client, {"patientId": pid, "chart": chart}).json()["prefill"]
        wrong = {qx.PERFORMANCE_Q: qr(answer("kps", valueInteger=155))}
        for answers in (prefill, wrong):
            response = post_assess(client, {"patientId": pid, "chart": chart, "answers": answers})
            assert response.status_code in (200, 422)
    assert forbidden and len(debug_logs.lines) > 10
    assert _leaks(debug_logs.lines, forbidden) == []


def test_a_recorded_sins_component_left_unanswered_is_kept_not_erased():
    chart = sp.chart(NOW)
    answers = {
        qx.SINS_Q: qr(
            {
                "linkId": "lesion",
                "item": [
                    answer("level", valueString="T12"),
                    answer("pain", valueCoding={"system": SF, "code": "pain-occasional"}),
                ],
            }
        )
    }
    extraction = qx.extract(answers, chart, sp.PATIENT_ID, NOW)
    (sins,) = extraction.creates
    codes = [c["valueCodeableConcept"]["coding"][0]["code"] for c in sins["component"]]
    assert codes == ["loc-junctional", "pain-occasional", "lesion-lytic", "collapse-lt50"]  # chart's three kept
    assert "valueInteger" not in sins  # still incomplete: no total
    assert "kept (location, bone-lesion, collapse)" in extraction.notes[0]
    after = outcomes(chart + extraction.resources)["sins-referral"]["sins"]
    assert (after["min"], after["max"]) == (8, 15)  # narrowed, never lowered below what was recorded


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    garbage=json_values,
    kind=st.sampled_from(["Observation", "Condition", "Patient", "Bundle", ""]),
    field=st.sampled_from(["code", "subject", "component", "bodySite", "valueInteger", "extension", "status"]),
)
def test_the_preview_endpoint_never_fails_on_a_hostile_chart(smart_client, garbage, kind, field):
    chart = [*sp.chart(NOW), {"resourceType": kind, "id": "x", field: garbage}]
    chart[3] = {**chart[3], field: garbage}
    response = post_assess(smart_client, {"patientId": sp.PATIENT_ID, "chart": chart, "answers": sp.answers()})
    assert response.status_code in (200, 400, 422), response.text
