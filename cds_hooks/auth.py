"""CDS Hooks 2.0 client authentication: every call carries `Authorization: Bearer <JWT>` signed by a trusted EHR.

Spec: https://cds-hooks.hl7.org/2.0/#trusting-cds-clients. Use as a FastAPI dependency:

    authenticate = ClientAuthenticator(AuthSettings())
    app = FastAPI(dependencies=[Depends(authenticate)])          # or per route:
    async def hook(..., client: VerifiedClient | None = Depends(authenticate))

A failed check answers 401 with `WWW-Authenticate: Bearer` and no detail; the reason code and the
(claimed) issuer go to the log, the token never does. docs/security.md lists the reason codes.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt
import requests
from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from .auth_settings import AuthConfigError, AuthSettings, TrustedClient
from .jwks import KeyRegistry, KeySetUnavailable
from .replay import ReplayCache

__all__ = [
    "AuthConfigError",
    "AuthFailure",
    "AuthSettings",
    "ClientAuthenticator",
    "TokenVerifier",
    "TrustedClient",
    "VerifiedClient",
    "expected_audience",
    "warn_if_disabled",
]

log = logging.getLogger("spinecds.auth")

# CDS Hooks 2.0 forbids `none` and symmetric algorithms and recommends these two; we accept nothing else.
ALLOWED_ALGORITHMS = ("ES384", "RS384")
MAX_TOKEN_CHARS = 16 * 1024
DISABLED_WARNING = "AUTHENTICATION DISABLED: development only, do not expose this service"

# Reasons that are routine (a client without a token, a slow clock) rather than a sign of tampering.
ROUTINE_REASONS = frozenset({"missing-token", "not-bearer", "expired"})


class AuthFailure(Exception):
    """A rejected call. `reason` is a short code for the log; it is never sent to the caller."""

    def __init__(self, reason: str, iss: str | None = None, kid: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.iss = iss
        self.kid = kid


@dataclass(frozen=True)
class VerifiedClient:
    """The authenticated caller: a trusted EHR (and, when it says so, its tenant and client id)."""

    iss: str
    tenant: str | None
    sub: str | None
    jti: str
    kid: str
    expires_at: int


def _is_number(value: Any) -> bool:
    # json.loads accepts NaN and Infinity, and PyJWT's own exp check accepts numeric strings.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class TokenVerifier:
    """Synchronous core: checks one Authorization header value against one expected audience.

    Thread-safe; it may fetch a JWK Set (bounded by the fetch timeout), so call it off the event loop.
    """

    def __init__(
        self,
        settings: AuthSettings,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._keys = KeyRegistry(
            settings.trusted_clients,
            ttl=settings.jwks_cache_ttl_seconds,
            refresh_interval=settings.jwks_refresh_interval_seconds,
            failure_backoff=settings.jwks_failure_backoff_seconds,
            fetch_timeout=settings.jwks_fetch_timeout_seconds,
            clock=clock,
            session=session,
        )
        self._replay = ReplayCache(settings.replay_cache_max_entries)
        self._wall_clock = wall_clock

    def verify(self, authorization: str | None, audience: str) -> VerifiedClient:
        token = _bearer_token(authorization)
        header = _checked_header(token)
        kid = header["kid"]
        claimed = _unverified_claims(token)
        iss = claimed.get("iss")
        if not isinstance(iss, str) or not iss:
            raise AuthFailure("missing-iss", kid=kid)
        client = self._settings.client_for(iss)
        issuer_keys = self._keys.for_issuer(iss)
        if client is None or issuer_keys is None:
            raise AuthFailure("untrusted-iss", iss, kid)

        jku = header.get("jku")
        if jku is not None and (not isinstance(jku, str) or jku not in client.jku_allowlist):
            raise AuthFailure("jku-not-allowed", iss, kid)
        try:
            key = issuer_keys.find(kid, jku)
        except KeySetUnavailable:
            raise AuthFailure("jwks-unavailable", iss, kid) from None
        if key is None:
            raise AuthFailure("unknown-kid", iss, kid)
        if key.algorithm != header["alg"]:
            raise AuthFailure("key-mismatch", iss, kid)

        payload = self._verified_payload(token, key.key, header["alg"], iss, kid)
        return self._checked_claims(payload, client, audience, kid)

    def _verified_payload(self, token: str, key: Any, alg: str, iss: str, kid: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[alg],
                leeway=self._settings.leeway_seconds,
                options={
                    "require": ["iss", "aud", "exp", "iat", "jti"],
                    # Checked below with our own reason codes (aud needs URL normalisation).
                    "verify_aud": False,
                    "verify_iat": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise AuthFailure("bad-signature", iss, kid) from None
        except jwt.MissingRequiredClaimError as error:
            raise AuthFailure(f"missing-{error.claim}", iss, kid) from None
        except jwt.ExpiredSignatureError:
            raise AuthFailure("expired", iss, kid) from None
        except jwt.ImmatureSignatureError:
            raise AuthFailure("not-yet-valid", iss, kid) from None
        except jwt.InvalidAlgorithmError:
            raise AuthFailure("bad-alg", iss, kid) from None
        except jwt.DecodeError:
            raise AuthFailure("malformed", iss, kid) from None
        except jwt.InvalidTokenError:
            raise AuthFailure("invalid-claim", iss, kid) from None

    def _checked_claims(
        self, payload: dict[str, Any], client: TrustedClient, audience: str, kid: str
    ) -> VerifiedClient:
        iss = client.iss
        settings = self._settings
        now = self._wall_clock()
        if payload.get("iss") != iss:  # cannot differ (same bytes, now signed), but never trust "cannot"
            raise AuthFailure("untrusted-iss", iss, kid)
        iat, exp = payload["iat"], payload["exp"]
        if not (_is_number(iat) and _is_number(exp)):
            raise AuthFailure("invalid-claim", iss, kid)
        if iat > now + settings.leeway_seconds:
            raise AuthFailure("iat-in-future", iss, kid)
        if exp - iat > settings.max_token_lifetime_seconds:
            raise AuthFailure("lifetime-too-long", iss, kid)
        tenant = payload.get("tenant")
        if client.tenant is not None and tenant != client.tenant:
            raise AuthFailure("tenant-mismatch", iss, kid)
        if not _audience_matches(payload["aud"], audience):
            raise AuthFailure("aud-mismatch", iss, kid)
        jti = payload["jti"]
        if not isinstance(jti, str) or not jti:
            raise AuthFailure("missing-jti", iss, kid)
        if not self._replay.first_use(iss, jti, remember_until=exp + settings.leeway_seconds, now=now):
            raise AuthFailure("replay", iss, kid)
        sub = payload.get("sub")
        return VerifiedClient(
            iss=iss,
            tenant=tenant if isinstance(tenant, str) else None,
            sub=sub if isinstance(sub, str) else None,
            jti=jti,
            kid=kid,
            expires_at=int(exp),
        )


def _bearer_token(authorization: str | None) -> str:
    if authorization is None or not authorization.strip():
        raise AuthFailure("missing-token")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthFailure("not-bearer")
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthFailure("malformed")
    return token


def _checked_header(token: str) -> dict[str, Any]:
    """The JOSE header, checked before any key is looked up or any signature computed."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise AuthFailure("malformed") from None
    alg = header.get("alg")
    kid = header.get("kid")
    safe_kid = kid if isinstance(kid, str) else None
    if alg not in ALLOWED_ALGORITHMS:
        raise AuthFailure("bad-alg", kid=safe_kid)
    if header.get("typ") != "JWT":
        raise AuthFailure("bad-typ", kid=safe_kid)
    if not isinstance(kid, str) or not kid:
        raise AuthFailure("missing-kid")
    if "crit" in header or "b64" in header:
        # No extension is understood here, and RFC 7515 says to reject what is critical but not understood.
        raise AuthFailure("malformed", kid=kid)
    return header


def _unverified_claims(token: str) -> dict[str, Any]:
    """The payload before the signature is checked: only to pick the issuer's keys, never trusted as such."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise AuthFailure("malformed") from None
    return claims


def normalize_url(url: str) -> str | None:
    """Scheme and host lower-cased, default port and trailing slash dropped; None when not an http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path.rstrip("/"), parts.query, ""))


def _audience_matches(aud: Any, expected: str) -> bool:
    wanted = normalize_url(expected)
    if wanted is None:
        return False
    candidates = aud if isinstance(aud, list) else [aud]
    return any(isinstance(item, str) and normalize_url(item) == wanted for item in candidates)


def _first_header_value(request: Request, name: str) -> str | None:
    value = request.headers.get(name)
    if value is None:
        return None
    return value.split(",")[0].strip() or None


def expected_audience(request: Request, settings: AuthSettings) -> str:
    """The URL the caller called, as the JWT `aud` must name it.

    With external_base_url: that base plus the endpoint path below the app's root. Without it: the
    request's own scheme and Host (X-Forwarded-Proto/-Host only when trust_proxy_headers is on, since
    any client can send those headers).
    """
    if settings.external_base_url is not None:
        path = request.scope.get("path", "")
        root_path = request.scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        return settings.external_base_url + path
    scheme = request.url.scheme
    host = request.headers.get("host") or request.url.netloc
    if settings.trust_proxy_headers:
        scheme = _first_header_value(request, "x-forwarded-proto") or scheme
        host = _first_header_value(request, "x-forwarded-host") or host
    return f"{scheme}://{host}{request.url.path}"


def _for_log(value: str | None) -> str:
    """Claimed values are attacker-chosen: bounded and escaped so they cannot forge log lines."""
    if value is None:
        return "-"
    return value[:200].encode("unicode_escape").decode("ascii")


def warn_if_disabled(logger: logging.Logger, settings: AuthSettings) -> bool:
    """Log the start-up warning when authentication is switched off; True when it is."""
    if settings.auth_enabled:
        return False
    logger.warning(DISABLED_WARNING)
    return True


class ClientAuthenticator:
    """FastAPI dependency: the VerifiedClient of the call, None when auth is disabled, else 401.

    Build one per app at start-up (it loads static key files and owns the key and replay caches).
    """

    def __init__(
        self,
        settings: AuthSettings,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        logger: logging.Logger = log,
    ) -> None:
        self.settings = settings
        self._log = logger
        self._verifier: TokenVerifier | None = None
        if not warn_if_disabled(logger, settings):
            self._verifier = TokenVerifier(settings, session=session, clock=clock, wall_clock=wall_clock)
            if not settings.trusted_clients:
                logger.error(
                    "no trusted CDS Clients configured (SPINECDS_TRUSTED_CLIENTS_FILE): "
                    "every call will be rejected with 401"
                )

    def warn_if_disabled(self, logger: logging.Logger | None = None) -> bool:
        return warn_if_disabled(logger or self._log, self.settings)

    async def __call__(self, request: Request) -> VerifiedClient | None:
        if self._verifier is None:
            return None
        log_fields = request.scope.setdefault("state", {}).setdefault("log_fields", {})
        authorizations = request.headers.getlist("authorization")
        audience = expected_audience(request, self.settings)
        try:
            if len(authorizations) > 1:
                raise AuthFailure("not-bearer")
            client = await run_in_threadpool(
                self._verifier.verify,
                authorizations[0] if authorizations else None,
                audience,
            )
        except AuthFailure as failure:
            level = logging.INFO if failure.reason in ROUTINE_REASONS else logging.WARNING
            self._log.log(
                level,
                "client authentication failed: reason=%s iss=%s kid=%s path=%s",
                failure.reason,
                _for_log(failure.iss),
                _for_log(failure.kid),
                request.url.path,
                extra={"auth_reason": failure.reason},
            )
            log_fields["auth"] = failure.reason
            raise HTTPException(401, detail="Unauthorized", headers={"WWW-Authenticate": "Bearer"}) from None
        log_fields["auth"] = "ok"
        log_fields["client_iss"] = client.iss
        return client
