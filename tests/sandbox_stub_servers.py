"""Tiny in-test servers for the sandbox client: a FHIR server and a CDS service on 127.0.0.1.

Standard library only and self-contained (the sandbox tests must not depend on other branches'
test servers). Each server records the requests it received so tests can assert what the client sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the PUT fallback makes hundreds of calls
    disable_nagle_algorithm = True  # else each keep-alive response waits ~40 ms for a delayed ACK

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _read(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode(errors="replace")

    def _send(self, status: int, body: Any, content_type: str = "application/fhir+json") -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        body = self._read() if method in ("POST", "PUT") else None
        self.server.owner.seen.append(Seen(method, self.path, dict(self.headers), body))  # type: ignore[attr-defined]
        status, answer = self.server.owner.respond(method, self.path, body)  # type: ignore[attr-defined]
        self._send(status, answer, self.server.owner.content_type)  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")


def outcome(status_code: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": status_code, "diagnostics": text}],
    }


class _QuickServer(ThreadingHTTPServer):
    # Keep-alive handler threads must not hold up the fixture's teardown.
    daemon_threads = True
    block_on_close = False


class _Server:
    content_type = "application/fhir+json"

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def respond(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        raise NotImplementedError

    def start(self) -> None:
        self._httpd = _QuickServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self  # type: ignore[attr-defined]
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()


class TinyFhirServer(_Server):
    """In-memory FHIR R4 server: PUT/GET by id, a simple search, and transaction POST to the base.

    transactions: "ok" (advertised and accepted), "reject" (advertised, but POST answers 500 with an
    OperationOutcome, like a server with transactions disabled by policy) or "absent" (not in the
    CapabilityStatement; POST answers 405).
    """

    def __init__(
        self, transactions: str = "ok", base_path: str = "/fhir", resource_types: tuple[str, ...] | None = None
    ) -> None:
        super().__init__()
        self.transactions = transactions
        self.resource_types = resource_types  # None: any type, not listed in the CapabilityStatement
        self.base_path = base_path
        self.store: dict[str, dict[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    @property
    def base(self) -> str:
        return self.url + self.base_path

    def count(self) -> int:
        return sum(len(by_id) for by_id in self.store.values())

    def put(self, resource: dict[str, Any]) -> int:
        with self._lock:
            by_id = self.store.setdefault(resource["resourceType"], {})
            status = 200 if resource["id"] in by_id else 201
            by_id[resource["id"]] = resource
        return status

    def respond(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = urlsplit(path)
        if not parts.path.startswith(self.base_path):
            return 404, outcome("not-found", f"no FHIR base at {parts.path}")
        route = parts.path[len(self.base_path) :].strip("/")
        segments = route.split("/") if route else []
        if method == "GET" and segments == ["metadata"]:
            interactions = [{"code": "transaction"}, {"code": "batch"}] if self.transactions != "absent" else []
            return 200, {
                "resourceType": "CapabilityStatement",
                "status": "active",
                "kind": "instance",
                "fhirVersion": "4.0.1",
                "format": ["json"],
                "rest": [
                    {
                        "mode": "server",
                        "interaction": interactions,
                        "resource": [{"type": t} for t in self.resource_types or ()],
                    }
                ],
            }
        if self.resource_types is not None and segments and segments[0] not in self.resource_types:
            return 404, outcome("not-supported", f"resource type {segments[0]} is not supported")
        if method == "POST" and not segments:
            return self._transaction(body)
        if method == "PUT" and len(segments) == 2:
            if not isinstance(body, dict) or body.get("resourceType") != segments[0] or body.get("id") != segments[1]:
                return 400, outcome("invalid", "resource type/id must match the URL")
            return self.put(body), body
        if method == "GET" and len(segments) == 2:
            found = self.store.get(segments[0], {}).get(segments[1])
            return (200, found) if found else (404, outcome("not-found", f"{route} is not known"))
        if method == "GET" and len(segments) == 1:
            return 200, self._search(segments[0], parse_qs(parts.query))
        return 400, outcome("not-supported", f"{method} {route}")

    def _transaction(self, bundle: Any) -> tuple[int, Any]:
        if self.transactions == "reject":
            return 500, outcome("not-supported", "Transactions are disabled on this server")
        if self.transactions == "absent":
            return 405, outcome("not-supported", "POST to the base is not allowed")
        if not isinstance(bundle, dict) or bundle.get("type") != "transaction":
            return 400, outcome("invalid", "expected a transaction Bundle")
        answers = []
        for entry in bundle.get("entry") or []:
            request, resource = entry.get("request") or {}, entry.get("resource") or {}
            if (
                request.get("method") != "PUT"
                or request.get("url") != f"{resource.get('resourceType')}/{resource.get('id')}"
            ):
                return 400, outcome("invalid", f"unsupported entry {request}")
            status = self.put(resource)
            answers.append(
                {
                    "response": {
                        "status": "201 Created" if status == 201 else "200 OK",
                        "location": f"{request['url']}/_history/1",
                    }
                }
            )
        return 200, {"resourceType": "Bundle", "type": "transaction-response", "entry": answers}

    def _search(self, resource_type: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """patient=<id> and code=<system>|<code>,... ; other parameters (_count, _sort) are ignored."""
        found = list(self.store.get(resource_type, {}).values())
        if "patient" in query:
            wanted = query["patient"][0].removeprefix("Patient/")
            found = [r for r in found if (r.get("subject") or {}).get("reference") == f"Patient/{wanted}"]
        if "code" in query:
            tokens = {tuple(token.split("|", 1)) for token in query["code"][0].split(",")}
            found = [
                r
                for r in found
                if any((c.get("system"), c.get("code")) in tokens for c in (r.get("code") or {}).get("coding") or [])
            ]
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "entry": [{"fullUrl": f"{self.base}/{resource_type}/{r['id']}", "resource": r} for r in found],
        }


# Prefetch templates in the shape the spinecds service advertises (the codes of the rules' ValueSets).
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}&_count=200",
    "performanceStatus": "Observation?patient={{context.patientId}}&code=http://loinc.org|89243-0,http://loinc.org|89247-1&_sort=-date",
    "pain": "Observation?patient={{context.patientId}}&code=http://loinc.org|72514-3&_sort=-date",
    "sins": "Observation?patient={{context.patientId}}&code=http://spinecds.org/fhir/CodeSystem/spine-findings|sins",
}

CANNED_CARD = {
    "uuid": "0b5c3a4e-3d3c-4b59-9f0e-1f6f0a4c2a11",
    "summary": "MRI whole spine within 24 h: progressive unilateral radicular deficit",
    "detail": "Radicular deficit (right), progressive, onset 3 days ago.",
    "indicator": "critical",
    "source": {
        "label": "Dutch guideline spinal metastases, Table 3",
        "topic": {"system": "http://spinecds.org/fhir/CodeSystem/rules", "code": "mri-urgency", "version": "1.0.0"},
    },
    "suggestions": [
        {
            "label": "Order MRI whole spine within 24 h",
            "isRecommended": True,
            "actions": [
                {
                    "type": "create",
                    "description": "MRI whole spine, asap",
                    "resource": {
                        "resourceType": "ServiceRequest",
                        "status": "draft",
                        "intent": "order",
                        "priority": "asap",
                        "code": {
                            "coding": [
                                {
                                    "system": "http://spinecds.org/fhir/CodeSystem/spine-findings",
                                    "code": "mri-whole-spine",
                                    "display": "MRI whole spine",
                                }
                            ]
                        },
                        "occurrencePeriod": {"end": "2030-01-02T00:00:00Z"},
                    },
                }
            ],
        }
    ],
    "links": [{"label": "Alarm symptom sheet", "url": "https://spinecds.org/alarm-symptoms", "type": "absolute"}],
    "extension": {"spinecds": {"ruleId": "mri-urgency", "ruleVersion": "1.0.0", "outcome": 2, "deadlineHours": 24}},
}


@dataclass
class StubCdsService(_Server):
    """GET /cds-services -> one service per hook with PREFETCH; POST -> the canned card (or `fail_with`)."""

    prefetch: dict[str, str] = field(default_factory=lambda: dict(PREFETCH))
    fail_with: tuple[int, Any] | None = None
    cards_for: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None  # request -> cards

    def __post_init__(self) -> None:
        _Server.__init__(self)
        self.content_type = "application/json"

    def hook_requests(self) -> list[dict[str, Any]]:
        return [seen.body for seen in self.seen if seen.method == "POST"]

    def respond(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/cds-services":
            return 200, {
                "services": [
                    {
                        "hook": hook,
                        "id": f"stub-{hook}",
                        "title": hook,
                        "description": "stub",
                        "prefetch": self.prefetch,
                    }
                    for hook in ("patient-view", "order-select", "order-sign")
                ]
            }
        if method == "POST" and path.startswith("/cds-services/stub-"):
            if self.fail_with:
                return self.fail_with
            return 200, {"cards": self.cards_for(body) if self.cards_for else [CANNED_CARD]}
        return 404, outcome("not-found", path)


@contextmanager
def running(server: _Server) -> Iterator[Any]:
    server.start()
    try:
        yield server
    finally:
        server.stop()
