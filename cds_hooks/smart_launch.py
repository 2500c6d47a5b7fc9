"""Proof of a SMART launch for `POST /smart/api/assess`: the app's own access token, checked with the EHR.

The assessment endpoint runs the engine twice on a chart the caller sends, so it must not be open to
anyone who can reach the service. The app already holds what proves a launch: the EHR's access token
for the launch patient. It sends that token (`Authorization: Bearer`), the FHIR server it got it from
(`X-Smart-Fhir-Server`) and the patient (`X-Smart-Patient`). Before the body is read, the service

1. checks the FHIR server against the FHIR servers it may call at all (every trusted client's
   allowlist; with authentication off the development allowlist), so the header cannot aim the
   service at other hosts;
2. reads `Patient/<id>` there with the token (no redirects, no proxy or .netrc from the environment,
   a short timeout, a bounded answer) and accepts only a 200 carrying that Patient.

A success is remembered for VERIFIED_SECONDS under a hash of (server, patient, token), so the app's
previews while a clinician types cost one EHR read a minute, not one per keystroke. Every failure is
one neutral 401; the reason goes to the log (without the token, the patient or the URL).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from urllib.parse import quote

import orjson
import requests

from .fhir_server_policy import FhirServerPolicy, ServerUrl
from .operation_outcome import ApiError
from .outbound import outbound_session
from .request_models import valid_fhir_id

log = logging.getLogger("spinecds.smart")

VERIFIED_SECONDS = 60.0
MAX_REMEMBERED = 1000
FETCH_TIMEOUT_SECONDS = 5.0
MAX_PATIENT_BYTES = 256 * 1024
MAX_TOKEN_CHARS = 8192
REFUSED = "a SMART launch is required: send the EHR access token, its FHIR server and the launch patient"


def refused(reason: str) -> ApiError:
    log.warning("SMART assessment refused", extra={"reason": reason})
    return ApiError(401, "login", REFUSED)


class SmartLaunchCheck:
    """Verifies (and briefly remembers) that a bearer token reads a patient on an allowed FHIR server."""

    def __init__(self, servers: tuple[ServerUrl, ...], allow_http_loopback: bool) -> None:
        self.policy = FhirServerPolicy(servers, allow_http_loopback)
        self._verified: dict[str, float] = {}
        self._lock = threading.Lock()

    def verify(self, authorization: str | None, fhir_server: str | None, patient_id: str | None) -> str:
        """The verified patient id; raises a 401 ApiError otherwise. Blocking (one HTTP read at most)."""
        token = _bearer(authorization)
        if not fhir_server or not patient_id or not valid_fhir_id(patient_id):
            raise refused("missing-launch-headers")
        reason = self.policy.reason_to_refuse(fhir_server)
        if reason is not None:
            raise refused(f"fhir-server-{reason}")
        key = hashlib.sha256(orjson.dumps([fhir_server, patient_id, token])).hexdigest()
        if self._remembered(key):
            return patient_id
        _read_patient(fhir_server.rstrip("/"), patient_id, token)
        self._remember(key)
        return patient_id

    def _remembered(self, key: str) -> bool:
        with self._lock:
            until = self._verified.get(key)
            return until is not None and until > time.monotonic()

    def _remember(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._verified) >= MAX_REMEMBERED:
                self._verified = {k: until for k, until in self._verified.items() if until > now}
                if len(self._verified) >= MAX_REMEMBERED:
                    self._verified.clear()  # forgetting only costs another EHR read
            self._verified[key] = now + VERIFIED_SECONDS


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        raise refused("no-bearer-token")
    return token


def _read_patient(base: str, patient_id: str, token: str) -> None:
    url = f"{base}/Patient/{quote(patient_id, safe='')}"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    session = outbound_session()  # no proxy, no .netrc: the token goes to the EHR and nowhere else
    try:
        with (
            session,
            session.get(
                url, headers=headers, timeout=FETCH_TIMEOUT_SECONDS, allow_redirects=False, stream=True
            ) as response,
        ):
            if response.status_code != 200:
                raise refused(f"ehr-answered-{response.status_code}")
            body = response.raw.read(MAX_PATIENT_BYTES + 1, decode_content=True)
    except requests.RequestException as error:
        raise refused(f"ehr-unreachable-{type(error).__name__}") from None
    if len(body) > MAX_PATIENT_BYTES:
        raise refused("ehr-patient-too-large")
    try:
        patient = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise refused("ehr-patient-not-json") from None
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient" or patient.get("id") != patient_id:
        raise refused("ehr-patient-mismatch")
