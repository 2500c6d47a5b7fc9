"""Public keys of the trusted CDS Clients: JWK Sets from a file or from an allowlisted `jku` URL.

Only two kinds of key are kept: EC P-384 (for ES384) and RSA >= 2048 bits (for RS384). Everything
else in a JWK Set (symmetric keys, other curves, encryption keys) is skipped, so a token can never
be checked against a key its algorithm was not meant for.

Fetched sets are cached (TTL), refreshed when a token names an unknown kid (at most once per
interval per issuer), and kept when a refresh fails (a JWKS endpoint outage should not take clinical
decision support down with it; a rotated-out key stays valid only until the next successful fetch).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.exceptions import InvalidKeyError

from .auth_settings import AuthConfigError, TrustedClient
from .outbound import outbound_session

log = logging.getLogger("spinecds.auth")

MAX_JWKS_BYTES = 256 * 1024
MIN_RSA_BITS = 2048

# The algorithm each usable key serves; the token's `alg` must match it.
ALGORITHM_FOR_KEY_TYPE = {"EC": "ES384", "RSA": "RS384"}


class KeySetUnavailable(Exception):
    """No usable key set could be read or fetched (the message is safe to log)."""


@dataclass(frozen=True)
class PublicKey:
    kid: str
    algorithm: str  # "ES384" or "RS384"
    key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def parse_jwks(document: Any, origin: str) -> dict[str, PublicKey]:
    """kid -> key for every usable signing key; unusable keys are skipped with a log line."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeySetUnavailable(f"{origin}: not a JWK Set (expected an object with a 'keys' array)")
    keys: dict[str, PublicKey] = {}
    for index, jwk in enumerate(document["keys"]):
        problem = _unusable_reason(jwk)
        if problem is None:
            try:
                key = _public_key(jwk)
            except (InvalidKeyError, ValueError, KeyError, TypeError):  # a bad key must not hide the good ones
                problem = "malformed key material"
        if problem is not None:
            log.info("JWK Set %s: key %d skipped: %s", origin, index, problem)
            continue
        kid = jwk["kid"]
        if kid in keys:
            log.warning("JWK Set %s: duplicate kid %r; keeping the first", origin, kid[:80])
            continue
        keys[kid] = PublicKey(kid=kid, algorithm=ALGORITHM_FOR_KEY_TYPE[jwk["kty"]], key=key)
    return keys


def _unusable_reason(jwk: Any) -> str | None:
    if not isinstance(jwk, dict):
        return "not an object"
    if not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
        return "no kid"
    kty = jwk.get("kty")
    if kty not in ALGORITHM_FOR_KEY_TYPE:
        return f"key type {str(kty)[:20]!r} is not EC or RSA"
    if jwk.get("use", "sig") != "sig":
        return "not a signing key (use != sig)"
    declared = jwk.get("alg")
    if declared is not None and declared != ALGORITHM_FOR_KEY_TYPE[kty]:
        return f"alg {str(declared)[:20]!r} is not {ALGORITHM_FOR_KEY_TYPE[kty]}"
    if kty == "EC" and jwk.get("crv") != "P-384":
        return "EC key is not on curve P-384"
    return None


def _public_key(jwk: dict[str, Any]) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    # A set that wrongly includes private parts ("d") still only ever yields the public key.
    text = json.dumps(jwk)
    if jwk["kty"] == "EC":
        ec_key = ECAlgorithm.from_jwk(text)
        ec_public = ec_key.public_key() if isinstance(ec_key, ec.EllipticCurvePrivateKey) else ec_key
        if not isinstance(ec_public.curve, ec.SECP384R1):
            raise ValueError("curve")
        return ec_public
    rsa_key = RSAAlgorithm.from_jwk(text)
    rsa_public = rsa_key.public_key() if isinstance(rsa_key, rsa.RSAPrivateKey) else rsa_key
    if rsa_public.key_size < MIN_RSA_BITS:
        raise ValueError("RSA key too small")
    return rsa_public


@dataclass
class _CachedSet:
    keys: dict[str, PublicKey] = field(default_factory=dict)
    loaded_at: float | None = None  # monotonic time of the last successful load
    failed_at: float | None = None  # monotonic time of the last failed load


class KeySource:
    """One JWK Set: a file or a URL. `load()` reads it afresh; callers decide when."""

    def __init__(self, origin: str, loader: Callable[[], Any]) -> None:
        self.origin = origin
        self._loader = loader
        self.cache = _CachedSet()

    @classmethod
    def from_file(cls, path: Path) -> KeySource:
        def load() -> Any:
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except OSError as error:
                raise KeySetUnavailable(f"{path}: cannot read JWK Set: {error.strerror}") from None
            except json.JSONDecodeError as error:
                raise KeySetUnavailable(
                    f"{path}: JWK Set is not valid JSON: line {error.lineno}: {error.msg}"
                ) from None

        return cls(str(path), load)

    @classmethod
    def from_url(cls, url: str, timeout: float, session: requests.Session) -> KeySource:
        def load() -> Any:
            try:
                # No redirects: the allowlist names the exact URL, a redirect would fetch something else.
                with session.get(
                    url, timeout=timeout, allow_redirects=False, stream=True, headers={"Accept": "application/json"}
                ) as response:
                    if response.status_code != 200:
                        raise KeySetUnavailable(f"{url}: HTTP {response.status_code}")
                    body = response.raw.read(MAX_JWKS_BYTES + 1, decode_content=True)
            except requests.RequestException as error:
                raise KeySetUnavailable(f"{url}: fetch failed: {type(error).__name__}") from None
            if len(body) > MAX_JWKS_BYTES:
                raise KeySetUnavailable(f"{url}: JWK Set larger than {MAX_JWKS_BYTES} bytes")
            try:
                return json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise KeySetUnavailable(f"{url}: JWK Set is not valid JSON") from None

        return cls(url, load)

    def load(self, now: float) -> None:
        try:
            keys = parse_jwks(self._loader(), self.origin)
        except KeySetUnavailable:
            self.cache.failed_at = now
            raise
        self.cache = _CachedSet(keys=keys, loaded_at=now)


class IssuerKeys:
    """The key sources of one trusted issuer, with the per-issuer refresh throttle."""

    def __init__(
        self,
        iss: str,
        jwks_file: KeySource | None,
        jku_sources: dict[str, KeySource],
        *,
        ttl: float,
        refresh_interval: float,
        failure_backoff: float,
        clock: Callable[[], float],
    ) -> None:
        self.iss = iss
        self.jwks_file = jwks_file
        self.jku_sources = jku_sources
        self._ttl = ttl
        self._refresh_interval = refresh_interval
        self._failure_backoff = failure_backoff
        self._clock = clock
        self._lock = threading.Lock()
        self._last_unknown_kid_refresh: float | None = None

    def sources_for(self, jku: str | None) -> list[KeySource]:
        """Where to look for a token's key: its jku (already allowlisted), else the file, else every allowlisted URL."""
        if jku is not None:
            return [self.jku_sources[jku]]
        if self.jwks_file is not None:
            return [self.jwks_file]
        return list(self.jku_sources.values())

    def find(self, kid: str, jku: str | None) -> PublicKey | None:
        """The key with this kid, loading or refreshing the relevant sets as the cache rules allow.

        Raises KeySetUnavailable when no set could be loaded at all.
        """
        sources = self.sources_for(jku)
        with self._lock:  # one fetch per issuer at a time; waiting callers then see the fresh keys
            now = self._clock()
            loaded_now: set[str] = set()
            for source in sources:
                if self._is_stale(source, now) and self._may_try(source, now):
                    self._load_keeping_old(source, now)
                    loaded_now.add(source.origin)
            key = _lookup(sources, kid)
            if key is not None:
                return key
            if self._may_refresh_for_unknown_kid(now):
                self._last_unknown_kid_refresh = now
                log.info("unknown kid for issuer %s: refreshing its key sets", self.iss[:200])
                for source in sources:
                    if source.origin not in loaded_now and self._may_try(source, now):
                        self._load_keeping_old(source, now)
                key = _lookup(sources, kid)
            if key is None and all(source.cache.loaded_at is None for source in sources):
                raise KeySetUnavailable(f"no key set could be loaded for issuer {self.iss[:200]}")
            return key

    def _is_stale(self, source: KeySource, now: float) -> bool:
        loaded_at = source.cache.loaded_at
        if loaded_at is None:
            return True
        # A file is exchanged out of band and changes rarely: re-read only on an unknown kid.
        return source is not self.jwks_file and now - loaded_at >= self._ttl

    def _may_try(self, source: KeySource, now: float) -> bool:
        failed_at = source.cache.failed_at
        return failed_at is None or now - failed_at >= self._failure_backoff

    def _may_refresh_for_unknown_kid(self, now: float) -> bool:
        last = self._last_unknown_kid_refresh
        return last is None or now - last >= self._refresh_interval

    @staticmethod
    def _load_keeping_old(source: KeySource, now: float) -> None:
        try:
            source.load(now)
        except KeySetUnavailable as error:
            kept = len(source.cache.keys)
            log.warning("key set unavailable: %s%s", error, f" (keeping {kept} cached keys)" if kept else "")


def _lookup(sources: Iterable[KeySource], kid: str) -> PublicKey | None:
    for source in sources:
        key = source.cache.keys.get(kid)
        if key is not None:
            return key
    return None


class KeyRegistry:
    """IssuerKeys for every trusted client; the only place that fetches anything over the network."""

    def __init__(
        self,
        clients: Iterable[TrustedClient],
        *,
        ttl: float,
        refresh_interval: float,
        failure_backoff: float,
        fetch_timeout: float,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
    ) -> None:
        self._session = session or outbound_session()
        self._issuers: dict[str, IssuerKeys] = {}
        for client in clients:
            jwks_file = KeySource.from_file(client.jwks_file) if client.jwks_file is not None else None
            if jwks_file is not None:
                # Fail at start-up, not on the first clinical request, when the file is unusable.
                try:
                    jwks_file.load(clock())
                except KeySetUnavailable as error:
                    raise AuthConfigError(f"trusted client {client.iss!r}: {error}") from None
            jku_sources = {url: KeySource.from_url(url, fetch_timeout, self._session) for url in client.jku_allowlist}
            self._issuers[client.iss] = IssuerKeys(
                client.iss,
                jwks_file,
                jku_sources,
                ttl=ttl,
                refresh_interval=refresh_interval,
                failure_backoff=failure_backoff,
                clock=clock,
            )

    def for_issuer(self, iss: str) -> IssuerKeys | None:
        return self._issuers.get(iss)
