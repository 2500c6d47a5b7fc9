"""Prefetch resolution: use what the client sent, fetch what it did not, fail with 412 otherwise.

Per template key, exactly one of:
- present with a resource or Bundle: used as sent;
- present as JSON null: the client has no such data (spec: "no data") -> empty, never re-fetched;
- absent, or an OperationOutcome in its place (the client's query failed): fetched from fhirServer.
If a key must be fetched and cannot be (no fhirServer, unreachable, HTTP error, timeout, garbage),
the service cannot decide safely and answers 412 Precondition Failed.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from engine import bundles

from .fhir_client import CallObserver, FetchResult, FhirClient, FhirFetchError
from .operation_outcome import ApiError, operation_outcome
from .request_models import HookRequest

log = logging.getLogger("spinecds.prefetch")

TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")
USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}
MAX_FETCH_THREADS = 8
FETCH_FAILED = "could not be fetched from the FHIR server"
# Keys whose absence can only make cards more urgent, never less: without them an MRI already done or
# ordered, or a MESCC treatment already started, is not seen. When the client neither sends nor lets
# us fetch them, the service decides without them and says so under data quality (no 412).
OPTIONAL_KEYS = frozenset({"procedures", "imagingStudies", "diagnosticReports", "serviceRequests"})
NOT_READ_NOTE = (
    "not provided and not fetched: spine MRIs done or ordered and MESCC treatments were not read, so cards "
    "may be more urgent than needed"
)


@dataclass
class ResolvedPrefetch:
    data: dict[str, dict[str, Any] | None]  # key -> resource / Bundle, or None for "no data"
    fetched: list[str] = field(default_factory=list)  # keys fetched from the FHIR server
    notes: list[dict[str, Any]] = field(default_factory=list)  # data-quality notes (no patient data)


def render_template(template: str, context: dict[str, Any]) -> str:
    """Replace {{context.x}} and {{userPractitionerId}}-style tokens (spec: root-level primitives only)."""

    def substitute(match: re.Match[str]) -> str:
        token = match.group(1)
        if token.startswith("context."):
            value = context.get(token.removeprefix("context."))
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                return _encoded(str(value))
            raise ValueError(f"prefetch token {token} has no primitive value in the context")
        if token in USER_TOKENS:
            user = str(context.get("userId", ""))
            prefix = f"{USER_TOKENS[token]}/"
            if user.startswith(prefix):
                return _encoded(user.removeprefix(prefix))
            raise ValueError(f"prefetch token {token} does not match context.userId")
        raise ValueError(f"unknown prefetch token {token}")

    return TOKEN.sub(substitute, template)


def _encoded(value: str) -> str:
    """A context value as one URL component: whatever it holds, it cannot add a path segment, a query
    parameter or a fragment to the FHIR query (ids are checked too; this holds for every token)."""
    if not value.strip("."):
        raise ValueError("a prefetch token value of dots only would be a path segment of its own")
    return quote(value, safe="")


def _issue_codes(outcome: dict[str, Any]) -> list[str]:
    return [str(i.get("code")) for i in outcome.get("issue") or [] if isinstance(i, dict)]


def classify(request: HookRequest, templates: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Split the template keys into usable prefetch data and keys that must be fetched."""
    sent = request.prefetch or {}
    usable: dict[str, Any] = {}
    missing: list[str] = []
    for key in templates:
        if key not in sent:
            missing.append(key)
            continue
        value = sent[key]
        if value is None:
            usable[key] = None
        elif not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
            raise ApiError(
                400,
                "invalid",
                f"prefetch.{key} must be a FHIR resource, a Bundle or null",
                expression=[f"prefetch.{key}"],
            )
        elif value["resourceType"] == "OperationOutcome":
            log.warning(
                "prefetch key replaced by an OperationOutcome; fetching it instead",
                extra={"prefetch_key": key, "issue_codes": _issue_codes(value)},
            )
            missing.append(key)
        else:
            usable[key] = value
    return usable, missing


def resolve_prefetched(request: HookRequest, templates: dict[str, str]) -> ResolvedPrefetch | None:
    """The resolution when the client prefetched (or nulled) every key; None when a fetch is needed."""
    usable, missing = classify(request, templates)
    return None if missing else ResolvedPrefetch(data=usable)


def resolve(
    request: HookRequest,
    templates: dict[str, str],
    *,
    budget_seconds: float,
    connect_timeout: float,
    max_pages: int,
    on_call: CallObserver | None = None,
) -> ResolvedPrefetch:
    """Blocking: call it from a worker thread (FastAPI's threadpool), never on the event loop."""
    usable, missing = classify(request, templates)
    resolved = ResolvedPrefetch(data=usable)
    if not missing:
        return resolved
    if request.fhirServer is None and set(missing) <= OPTIONAL_KEYS:
        resolved.notes.extend({"resource": f"prefetch/{key}", "issue": NOT_READ_NOTE} for key in sorted(missing))
        return resolved
    if request.fhirServer is None:
        raise ApiError(
            412,
            "not-found",
            f"prefetch {sorted(missing)} not provided and no fhirServer to fetch it from",
            expression=[f"prefetch.{key}" for key in missing],
        )
    deadline = time.monotonic() + budget_seconds
    client = FhirClient(
        base_url=str(request.fhirServer),
        access_token=request.fhirAuthorization.access_token if request.fhirAuthorization else None,
        deadline=deadline,
        connect_timeout=connect_timeout,
        max_pages=max_pages,
        on_call=on_call,
    )
    try:
        queries = {key: render_template(templates[key], request.context) for key in missing}
    except ValueError as exc:
        raise ApiError(400, "invalid", str(exc), expression=["context"]) from exc

    fetched, failures, unfinished = _fetch_all(client, queries, deadline)
    failed = {key for key, _ in failures}
    if failures and failed <= OPTIONAL_KEYS and not unfinished:
        log.warning("optional prefetch keys not fetched", extra={"failed_keys": sorted(failed)})
        resolved.notes.extend({"resource": f"prefetch/{key}", "issue": NOT_READ_NOTE} for key in sorted(failed))
        failures = []
    if failures:
        raise _fetch_failed(queries, failures)
    for key in queries:
        if key in fetched:
            _use_fetched(resolved, key, fetched[key], request)
    return resolved


def _fetch_all(
    client: FhirClient, queries: dict[str, str], deadline: float
) -> tuple[dict[str, FetchResult], list[tuple[str, BaseException]], bool]:
    """Fetch every query in parallel within the deadline: (results by key, failures, whether some
    fetch was still unfinished). A required key failing stops the wait at once; an optional one
    failing first does not, since the required ones still decide."""
    # No `with`: leaving a with-block waits for stragglers, and the deadline must win.
    pool = ThreadPoolExecutor(max_workers=min(MAX_FETCH_THREADS, len(queries)), thread_name_prefix="fhir-fetch")
    futures: dict[Any, str] = {}
    try:
        futures = {pool.submit(client.fetch, query): key for key, query in queries.items()}
        done, pending = wait(futures, timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_EXCEPTION)
        failures = _failures(done, futures)
        if pending and failures and {key for key, _ in failures} <= OPTIONAL_KEYS:
            more, pending = wait(pending, timeout=max(0.0, deadline - time.monotonic()))
            failures += _failures(more, futures)
            done |= more
        if pending and not failures:
            failures = [(futures[f], FhirFetchError("FHIR time budget exhausted")) for f in pending]
        fetched = {futures[f]: f.result() for f in done if f.exception() is None}
        return fetched, failures, bool(pending)
    finally:
        for future in futures:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


def _failures(done: Iterable[Any], futures: dict[Any, str]) -> list[tuple[str, BaseException]]:
    return [(futures[future], error) for future in done if (error := future.exception()) is not None]


def _fetch_failed(queries: dict[str, str], failures: list[tuple[str, BaseException]]) -> ApiError:
    """One answer whatever went wrong and whichever fetch failed first: telling "refused" from "timed
    out" from "HTTP 404" would let a caller map ports and paths behind the service. Every key that had
    to be fetched is named; the reasons go to the log and the metrics."""
    issues = [
        operation_outcome("exception", f"prefetch.{key}: {FETCH_FAILED}", expression=[f"prefetch.{key}"])["issue"][0]
        for key in sorted(queries)
    ]
    log.warning(
        "FHIR fallback fetch failed",
        extra={
            "failed_keys": sorted(k for k, _ in failures),
            "reasons": sorted({_safe_message(err) for _, err in failures}),
        },
    )
    return ApiError(412, "exception", "required data could not be fetched from the FHIR server", issues=issues)


def _use_fetched(resolved: ResolvedPrefetch, key: str, result: FetchResult, request: HookRequest) -> None:
    if key == "patient":
        _check_fetched_patient(result.data, request.context.get("patientId"))
    resolved.data[key] = result.data
    resolved.fetched.append(key)
    if result.truncated:
        resolved.notes.append(
            {
                "resource": f"prefetch/{key}",
                "issue": f"search truncated after {result.pages} pages; older data not read",
            }
        )


def _check_fetched_patient(data: dict[str, Any], patient_id: Any) -> None:
    """The server must answer the read of Patient/{id} with that patient: anything else (another
    patient, a Bundle) means we would decide on the wrong chart."""
    if data.get("resourceType") != "Patient" or data.get("id") != patient_id:
        log.warning("FHIR server returned a Patient other than context.patientId")
        raise ApiError(
            412,
            "conflict",
            "prefetch.patient: the FHIR server did not return the patient named in context.patientId",
            expression=["prefetch.patient"],
        )


def _safe_message(error: BaseException) -> str:
    if isinstance(error, FhirFetchError):
        return str(error)
    return f"unexpected {type(error).__name__}"


def flatten(data: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Bundles -> their entry resources, each resource once (see engine.bundles.flatten)."""
    return bundles.flatten(data.values())
