"""A development SMART on FHIR authorisation server for the local FHIR server (synthetic data only).

- `GET /.well-known/smart-configuration`: endpoints and capabilities (EHR and standalone launch,
  public clients, PKCE S256 only).
- `GET /auth/launch?app=<launch url>&patient=<id>&appContext=<text>`: what an EHR does with a card's
  `smart` link: remember the launch context and open `app?launch=<id>&iss=<this server>`.
- `GET /auth/authorize`: the authorisation endpoint. With `launch` the patient comes from the launch
  context and the redirect_uri must be on the launched app's origin; without it (standalone launch,
  scope `launch/patient`) a patient picker is shown first. PKCE is required (S256), `aud` must be
  this server.
- `POST /auth/token`: code + code_verifier -> access token, `patient`, `scope`, `appContext` (CDS Hooks
  passes the card's appContext this way) and, with `openid fhirUser`, an id_token naming the user.

There is no login: every request acts as one synthetic clinician. Tokens live in memory. The
transaction endpoint (`transaction.py`) checks them; plain reads and writes stay open, as before,
for the sandbox tools.

It redirects only to apps on this machine (loopback hosts, any port) or on the origins listed in
SPINECDS_SANDBOX_APP_ORIGINS (comma-separated, e.g. `http://spinecds:8000` in a compose network):
otherwise `/auth/launch?app=` and `/auth/authorize?redirect_uri=` would send a browser, or an
authorisation code, anywhere (an open redirect). Launch contexts expire like codes do.
"""

from __future__ import annotations

import base64
import hashlib
import html
import ipaddress
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from .server import ResourceStore

CODE_LIFETIME_SECONDS = 300
LAUNCH_LIFETIME_SECONDS = 600
MAX_LAUNCHES = 1000
MAX_GRANTS = 1000  # codes and tokens each: a development server must not grow without bound
APP_ORIGINS_ENV = "SPINECDS_SANDBOX_APP_ORIGINS"
TOKEN_LIFETIME_SECONDS = 3600
USER_ID = "sandbox-clinician"
USER_NAME = "Sandbox Clinician (synthetic)"
# form-action also governs where the form's redirect may lead: the app's origin is added per request.
PICKER_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'"


@dataclass
class Grant:
    client_id: str
    scope: str
    patient: str | None
    app_context: str | None = None
    redirect_uri: str = ""
    challenge: str = ""
    expires: float = 0.0


@dataclass
class SmartState:
    """Launch contexts, authorisation codes and tokens of one server (in memory, thread-safe)."""

    launches: dict[str, dict[str, str | None]] = field(default_factory=dict)
    launch_expiry: dict[str, float] = field(default_factory=dict)
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, Grant] = field(default_factory=dict)
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def token(self, authorization: str | None) -> Grant | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        with self.lock:
            grant = self.tokens.get(authorization.split(" ", 1)[1].strip())
        return grant if grant and grant.expires > time.time() else None


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "invalid", "diagnostics": message}],
        },
        status_code=status,
        media_type="application/fhir+json",
    )


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers={"Cache-Control": "no-store"}
    )


def _page(title: str, body: str, status: int = 200, redirect_uri: str | None = None) -> HTMLResponse:
    text = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<style>body{font:16px system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}"
        "select,button{font:inherit;padding:.4rem;margin:.3rem 0}button{min-width:8rem}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    csp = PICKER_CSP
    if redirect_uri:
        parts = urlsplit(redirect_uri)
        csp += f" {parts.scheme}://{parts.netloc}"
    headers = {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    return HTMLResponse(text, status_code=status, headers=headers)


def _http_url(url: str | None) -> bool:
    if not url:
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_app_url(url: str | None) -> bool:
    """An http(s) URL of an app this development server may redirect to (see the module docstring)."""
    if not _http_url(url):
        return False
    assert url is not None
    parts = urlsplit(url)
    if parts.username or parts.password:
        return False
    listed = {o.strip().rstrip("/").lower() for o in os.environ.get(APP_ORIGINS_ENV, "").split(",") if o.strip()}
    return _loopback(parts.hostname) or _origin(url).lower() in listed


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _redirect(uri: str, **params: str | None) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return RedirectResponse(f"{uri}{'&' if '?' in uri else '?'}{query}", status_code=302)


def _patient_name(resource: dict[str, Any]) -> str:
    names = resource.get("name") or [{}]
    name = names[0] if isinstance(names, list) and names else {}
    given = " ".join(name.get("given") or [])
    return f"{given} {name.get('family', '')}".strip() or resource.get("id", "?")


def install_smart(app: FastAPI, store: ResourceStore) -> SmartState:
    state = SmartState()
    app.state.smart = state

    @app.get("/.well-known/smart-configuration", include_in_schema=False)
    async def smart_configuration(request: Request) -> JSONResponse:
        base = _base(request)
        return JSONResponse(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/auth/authorize",
                "token_endpoint": f"{base}/auth/token",
                "grant_types_supported": ["authorization_code"],
                "token_endpoint_auth_methods_supported": ["none"],
                "code_challenge_methods_supported": ["S256"],
                "response_types_supported": ["code"],
                "scopes_supported": [
                    "openid",
                    "fhirUser",
                    "launch",
                    "launch/patient",
                    "patient/*.read",
                    "patient/*.write",
                ],
                "capabilities": [
                    "launch-ehr",
                    "launch-standalone",
                    "client-public",
                    "context-ehr-patient",
                    "context-standalone-patient",
                    "permission-patient",
                    "sso-openid-connect",
                ],
            }
        )

    @app.get("/auth/launch", include_in_schema=False)
    async def ehr_launch(request: Request) -> Response:
        params = request.query_params
        app_url, patient = params.get("app"), params.get("patient")
        if not allowed_app_url(app_url):
            return _error(400, f"app must be an http(s) launch URL on this machine or listed in {APP_ORIGINS_ENV}")
        if not patient or store.get("Patient", patient) is None:
            return _error(404, "patient: no such Patient on this server")
        launch = secrets.token_urlsafe(16)
        with state.lock:
            _forget_old_launches(state)
            state.launch_expiry[launch] = time.time() + LAUNCH_LIFETIME_SECONDS
            state.launches[launch] = {
                "patient": patient,
                "appContext": params.get("appContext"),
                "origin": _origin(str(app_url)),
            }
        return _redirect(str(app_url), launch=launch, iss=_base(request))

    @app.get("/auth/authorize", include_in_schema=False)
    async def authorize(request: Request) -> Response:
        params = dict(request.query_params)
        redirect_uri = params.get("redirect_uri")
        if not allowed_app_url(redirect_uri):
            # Nothing is sent to a redirect_uri this server does not know: no error redirect either.
            return _page("Sign-in refused", "<p>The app sent no valid redirect_uri for this server.</p>", 400)
        assert redirect_uri is not None
        app_state = params.get("state")

        def refuse(error: str, description: str) -> RedirectResponse:
            return _redirect(redirect_uri, error=error, error_description=description, state=app_state)

        if params.get("response_type") != "code":
            return refuse("unsupported_response_type", "response_type must be code")
        if not params.get("client_id") or not app_state:
            return refuse("invalid_request", "client_id and state are required")
        if params.get("aud", "").rstrip("/") != _base(request):
            return refuse("invalid_request", "aud must be this FHIR server's base URL")
        if not params.get("code_challenge") or params.get("code_challenge_method") != "S256":
            return refuse("invalid_request", "PKCE is required: code_challenge with code_challenge_method S256")
        scope = params.get("scope", "")
        patient: str | None = None
        app_context: str | None = None
        if params.get("launch"):
            with state.lock:
                live = state.launch_expiry.get(params["launch"], 0.0) > time.time()
                context = state.launches.get(params["launch"]) if live else None
            if context is None:
                return refuse("invalid_request", "unknown launch context: launch the app again from the EHR")
            if _origin(redirect_uri) != context["origin"]:
                # The code must go back to the app the EHR launched, not to wherever the request says.
                return _page("Sign-in refused", "<p>The redirect_uri is not on the launched app's origin.</p>", 400)
            patient, app_context = context["patient"], context["appContext"]
        elif "launch/patient" in scope.split():
            patient = params.get("patient")
            if not patient or store.get("Patient", patient) is None:
                return _picker(params)
        code = secrets.token_urlsafe(24)
        with state.lock:
            _forget_old_grants(state.codes)
            state.codes[code] = Grant(
                client_id=params["client_id"],
                scope=scope,
                patient=patient,
                app_context=app_context,
                redirect_uri=redirect_uri,
                challenge=params["code_challenge"],
                expires=time.time() + CODE_LIFETIME_SECONDS,
            )
        return _redirect(redirect_uri, code=code, state=app_state)

    def _picker(params: dict[str, str]) -> HTMLResponse:
        patients = sorted(store.all("Patient"), key=lambda p: p.get("id", ""))
        options = "".join(
            f'<option value="{html.escape(p["id"])}">{html.escape(_patient_name(p))} ({html.escape(p["id"])})</option>'
            for p in patients
        )
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
            if k != "patient"
        )
        body = (
            "<p>Development authorisation server: choose the synthetic patient the app may open.</p>"
            f'<form method="get" action="/auth/authorize">{hidden}'
            f'<label for="patient">Patient</label><br><select id="patient" name="patient">{options}</select><br>'
            '<button type="submit">Allow</button></form>'
        )
        return _page("Choose a patient", body, redirect_uri=params["redirect_uri"])

    @app.post("/auth/token", include_in_schema=False)
    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        fields = {k: str(v) for k, v in form.items()}
        if fields.get("grant_type") != "authorization_code":
            return _oauth_error("unsupported_grant_type", "grant_type must be authorization_code")
        with state.lock:
            grant = state.codes.pop(fields.get("code", ""), None)  # one use only, right or wrong
        if grant is None or grant.expires < time.time():
            return _oauth_error("invalid_grant", "unknown, used or expired authorization code")
        if fields.get("redirect_uri") != grant.redirect_uri:
            return _oauth_error("invalid_grant", "redirect_uri differs from the authorization request")
        if fields.get("client_id", grant.client_id) != grant.client_id:
            return _oauth_error("invalid_client", "client_id differs from the authorization request")
        verifier = fields.get("code_verifier", "")
        if not verifier or not secrets.compare_digest(_challenge(verifier), grant.challenge):
            return _oauth_error("invalid_grant", "code_verifier does not match the code_challenge (PKCE)")
        access = secrets.token_urlsafe(32)
        issued = Grant(
            grant.client_id, grant.scope, grant.patient, grant.app_context, expires=time.time() + TOKEN_LIFETIME_SECONDS
        )
        with state.lock:
            _forget_old_grants(state.tokens)
            state.tokens[access] = issued
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECONDS,
            "scope": grant.scope,
            "need_patient_banner": True,
        }
        if grant.patient:
            body["patient"] = grant.patient
        if grant.app_context:
            body["appContext"] = grant.app_context
        scopes = grant.scope.split()
        if "openid" in scopes and "fhirUser" in scopes:
            base = _base(request)
            now = int(time.time())
            claims = {
                "iss": base,
                "sub": USER_ID,
                "aud": grant.client_id,
                "iat": now,
                "exp": now + TOKEN_LIFETIME_SECONDS,
                "fhirUser": f"{base}/Practitioner/{USER_ID}",
                "name": USER_NAME,
            }
            body["id_token"] = jwt.encode(claims, state.secret, algorithm="HS256")
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    return state


def _forget_old_launches(state: SmartState) -> None:
    """Expired launch contexts go; so do the oldest beyond MAX_LAUNCHES (memory stays bounded)."""
    now = time.time()
    for launch in [key for key, expires in state.launch_expiry.items() if expires <= now]:
        state.launch_expiry.pop(launch, None)
        state.launches.pop(launch, None)
    while len(state.launches) >= MAX_LAUNCHES:
        oldest = next(iter(state.launches))
        state.launches.pop(oldest)
        state.launch_expiry.pop(oldest, None)


def _forget_old_grants(grants: dict[str, Grant]) -> None:
    """Expired codes or tokens go; so do the oldest beyond MAX_GRANTS."""
    now = time.time()
    for key in [key for key, grant in grants.items() if grant.expires <= now]:
        grants.pop(key, None)
    while len(grants) >= MAX_GRANTS:
        grants.pop(next(iter(grants)))


def may_write(grant: Grant, resource_type: str) -> bool:
    """SMART v1 (`.write`, `.*`) and v2 (`.c`/`.u` in `cruds`) scopes, patient or user level."""
    for scope in grant.scope.split():
        level, _, rest = scope.partition("/")
        kind, _, access = rest.partition(".")
        if level not in ("patient", "user") or kind not in (resource_type, "*"):
            continue
        if access in ("write", "*") or ("c" in access and "u" in access and access.isalpha()):
            return True
    return False
