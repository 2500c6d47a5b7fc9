"""Fetch prefetch data the CDS client did not send from its FHIR server (`requests`, bounded in time).

Every call presents the client's access token and stays on the client's FHIR server: the base URL
was checked against the caller's allowlist (fhir_server_policy) before this runs, redirects are never
followed, and a `next` link is followed only when it stays under that base URL, so the token never
leaves it. One deadline bounds the whole hook request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import requests

from .fhir_server_policy import same_server
from .outbound import outbound_session

log = logging.getLogger("spinecds.fhir")

FHIR_ACCEPT = "application/fhir+json, application/json;q=0.9"


FhirFailure = Literal["timeout", "connect", "http-status", "bad-json"]  # the metrics label of a failed call


class FhirFetchError(Exception):
    """The data could not be fetched; the message is safe to return and log (no patient data)."""

    def __init__(self, message: str, reason: FhirFailure = "connect"):
        super().__init__(message)
        self.reason = reason


CallObserver = Callable[[float, "FhirFailure | None"], None]  # (seconds, failure reason or None)


@dataclass
class FetchResult:
    data: dict[str, Any]
    pages: int = 1
    truncated: bool = False  # the page cap stopped us while a `next` link remained
    calls: list[float] = field(default_factory=list)  # seconds per HTTP call


@dataclass(frozen=True)
class FhirClient:
    base_url: str
    access_token: str | None
    deadline: float  # time.monotonic() value by which everything must be done
    connect_timeout: float = 1.0
    max_pages: int = 10
    on_call: CallObserver | None = None  # told of every HTTP call, for the FHIR latency metrics

    def fetch(self, query: str) -> FetchResult:
        """GET `query` relative to the server base, following Bundle `next` links up to max_pages."""
        url = f"{self.base_url.rstrip('/')}/{query.lstrip('/')}"
        with outbound_session() as session:
            session.headers["Accept"] = FHIR_ACCEPT
            if self.access_token:
                session.headers["Authorization"] = f"Bearer {self.access_token}"
            calls: list[float] = []
            data = self._get(session, url, calls)
            result = FetchResult(data=data, calls=calls)
            if data.get("resourceType") != "Bundle":
                return result
            entries = list(data.get("entry") or [])
            next_url = _next_link(data)
            while next_url and result.pages < self.max_pages:
                self._check_same_origin(next_url)
                page = self._get(session, next_url, result.calls)
                if page.get("resourceType") != "Bundle":
                    raise FhirFetchError("a next page was not a Bundle", "bad-json")
                entries.extend(page.get("entry") or [])
                result.pages += 1
                next_url = _next_link(page)
            result.truncated = bool(next_url)
            merged = {k: v for k, v in data.items() if k not in ("entry", "link")}
            if entries:
                merged["entry"] = entries
            result.data = merged
            return result

    def _check_same_origin(self, url: str) -> None:
        if not same_server(self.base_url, url):
            raise FhirFetchError(
                "a next link points outside the FHIR server; not following it with the token", "bad-json"
            )

    def _get(self, session: requests.Session, url: str, calls: list[float]) -> dict[str, Any]:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise FhirFetchError("FHIR time budget exhausted", "timeout")
        started = time.monotonic()
        failure: FhirFailure | None = None
        try:
            return self._get_resource(session, url, remaining)
        except FhirFetchError as error:
            failure = error.reason
            raise
        finally:
            seconds = time.monotonic() - started
            calls.append(seconds)
            if self.on_call is not None:
                self.on_call(seconds, failure)

    def _get_resource(self, session: requests.Session, url: str, remaining: float) -> dict[str, Any]:
        try:
            # No redirects: a 3xx could send the token to any host, past the allowlist check.
            response = session.get(
                url, timeout=(min(self.connect_timeout, remaining), remaining), allow_redirects=False
            )
        except requests.Timeout as exc:
            raise FhirFetchError("FHIR server timed out", "timeout") from exc
        except requests.RequestException as exc:
            raise FhirFetchError(f"FHIR server unreachable ({type(exc).__name__})", "connect") from exc
        if response.status_code >= 300:
            raise FhirFetchError(f"FHIR server answered HTTP {response.status_code}", "http-status")
        try:
            data = response.json()
        except ValueError as exc:
            raise FhirFetchError("FHIR server answered with a body that is not JSON", "bad-json") from exc
        if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
            raise FhirFetchError("FHIR server answered with JSON that is not a FHIR resource", "bad-json")
        if data["resourceType"] == "OperationOutcome":
            raise FhirFetchError("FHIR server answered with an OperationOutcome instead of data", "bad-json")
        return data


def _next_link(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None
