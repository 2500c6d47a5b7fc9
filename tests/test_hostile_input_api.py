"""Schemathesis against the service's own OpenAPI document, in-process (ASGI): every documented
operation, schema-valid and schema-violating requests, a bounded number of each, never a 5xx answer.

Driven through hypothesis directly (operation.as_strategy) rather than schemathesis' pytest plugin,
which does not run under this pytest version.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from cds_hooks.app import create_app
from cds_hooks.auth_settings import AuthSettings
from cds_hooks.settings import Settings

MAX_EXAMPLES = 30
# Every operation in the document; test_every_documented_operation_is_fuzzed keeps this list honest.
OPERATIONS = [
    "GET /patient-sheets/{sheet}",
    "GET /cds-services",
    "POST /cds-services/{service_id}",
    "POST /cds-services/{service_id}/feedback",
]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):  # type: ignore[no-untyped-def]
    app = create_app(
        # The OpenAPI document is off by default (SPINECDS_API_DOCS); the fuzzer needs it.
        Settings(database_path=tmp_path_factory.mktemp("schemathesis") / "db.sqlite3", api_docs=True),
        auth_settings=AuthSettings(auth_enabled=False),
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_documented_operation_is_fuzzed(api_schema) -> None:  # type: ignore[no-untyped-def]
    documented = [f"{op.ok().method.upper()} {op.ok().path}" for op in api_schema.get_all_operations()]
    assert sorted(documented) == sorted(OPERATIONS)


def test_openapi_documents_the_request_bodies(api_schema) -> None:  # type: ignore[no-untyped-def]
    document = api_schema.raw_schema
    hook = document["paths"]["/cds-services/{service_id}"]["post"]
    feedback = document["paths"]["/cds-services/{service_id}/feedback"]["post"]
    assert hook["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/HookRequest"}
    assert feedback["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/FeedbackRequest"
    }
    components = document["components"]["schemas"]
    assert {"hook", "hookInstance", "context"} <= set(components["HookRequest"]["required"])
    assert components["FeedbackItem"]["properties"]["outcome"]["enum"] == ["accepted", "overridden"]
    assert "spinecds-patient-view" in hook["parameters"][0]["schema"]["enum"]


# Schema-violating requests only where the schema constrains something a client sends (the bodies);
# for a GET without parameters there is nothing to violate.
CASES = [pytest.param(label, GenerationMode.POSITIVE, id=f"{label} valid") for label in OPERATIONS] + [
    pytest.param(label, GenerationMode.NEGATIVE, id=f"{label} invalid")
    for label in OPERATIONS
    if label.startswith("POST")
]


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_api_never_answers_5xx(api_schema, label: str, mode: GenerationMode) -> None:  # type: ignore[no-untyped-def]
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, label
    statuses: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def call(case) -> None:  # type: ignore[no-untyped-def]
        response = case.call()
        statuses.append(response.status_code)
        assert response.status_code < 500, (case.method, case.formatted_path, case.body, response.text)

    call()
    assert statuses, "no request was generated"
