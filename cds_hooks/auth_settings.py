"""Who may call the service: the trusted CDS Clients (EHRs) and how their JWTs are checked.

Read from the environment (prefix SPINECDS_) plus a trusted-clients file named by
SPINECDS_TRUSTED_CLIENTS_FILE (JSON or YAML). See docs/security.md for an example file.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .fhir_server_policy import ServerUrl, parse_allowlist


class AuthConfigError(ValueError):
    """The authentication configuration cannot be used; the message names the file and the field."""


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TrustedClient(BaseModel):
    """One EHR we accept calls from, identified by the `iss` claim of its JWTs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1, description="Exact `iss` claim value the EHR puts in its JWTs.")
    jku_allowlist: tuple[str, ...] = Field(
        (),
        description="JWK Set URLs this EHR may name in the JWT header `jku`; nothing else is ever fetched.",
    )
    jwks_file: Path | None = Field(
        None,
        description="JWK Set file exchanged out of band; used for tokens without a `jku` header.",
    )
    tenant: str | None = Field(
        None,
        description="When set, the JWT `tenant` claim must equal this value.",
    )
    fhir_server_allowlist: tuple[str, ...] = Field(
        (),
        description="FHIR server base URLs this EHR may name as `fhirServer` (exact scheme, host and port; "
        "path prefix). Anything else is refused with 400 before any connection. Empty: prefetch only.",
    )

    @field_validator("fhir_server_allowlist")
    @classmethod
    def _exact_fhir_servers(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        # Exact ports only: a trusted client names its servers, it does not get a whole host.
        parse_allowlist(urls, allow_any_port=False)
        return urls

    def fhir_servers(self) -> tuple[ServerUrl, ...]:
        return parse_allowlist(self.fhir_server_allowlist, allow_any_port=False)

    @field_validator("jku_allowlist")
    @classmethod
    def _https_only(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        for url in urls:
            parts = urlsplit(url)
            # Plain http would let anyone on the path swap the keys; loopback is allowed for local test rigs.
            if not parts.netloc or not (
                parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname))
            ):
                raise ValueError(f"jku_allowlist entry {url!r} must be an absolute https:// URL")
        return urls

    @model_validator(mode="after")
    def _has_key_source(self) -> TrustedClient:
        if self.jwks_file is None and not self.jku_allowlist:
            raise ValueError(f"trusted client {self.iss!r} needs a jwks_file or at least one jku_allowlist URL")
        return self


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPINECDS_", extra="ignore")

    auth_enabled: bool = Field(
        True,
        description="Development only: SPINECDS_AUTH_ENABLED=false accepts every call without a token.",
    )
    trusted_clients_file: Path | None = Field(
        None,
        description="JSON or YAML file listing the trusted clients (SPINECDS_TRUSTED_CLIENTS_FILE).",
    )
    trusted_clients: tuple[TrustedClient, ...] = Field(
        (),
        description="Filled from trusted_clients_file when that is set; tests pass it directly.",
    )
    external_base_url: str | None = Field(
        None,
        description="Public base URL of the service, e.g. https://cds.example.org; the JWT `aud` must be this "
        "plus the endpoint path. Unset: derived from the request.",
    )
    trust_proxy_headers: bool = Field(
        False,
        description="Derive the expected `aud` from X-Forwarded-Proto/X-Forwarded-Host (behind a proxy).",
    )
    leeway_seconds: int = Field(60, ge=0, le=300, description="Clock skew tolerated on exp, iat and nbf.")
    max_token_lifetime_seconds: int = Field(
        300,
        ge=60,
        description="Tokens with exp - iat above this are refused, so the replay cache need not remember them long "
        "(CDS Hooks recommends five minutes).",
    )
    jwks_cache_ttl_seconds: float = Field(
        3600, gt=0, description="How long a fetched JWK Set is used before re-fetching."
    )
    jwks_refresh_interval_seconds: float = Field(
        60,
        ge=0,
        description="At most one key refresh per issuer per this interval when a token names an unknown kid.",
    )
    jwks_fetch_timeout_seconds: float = Field(2, gt=0, le=30, description="Timeout of one JWK Set fetch.")
    jwks_failure_backoff_seconds: float = Field(
        10,
        ge=0,
        description="After a failed fetch, that URL is not tried again for this long.",
    )
    replay_cache_max_entries: int = Field(100_000, ge=100, description="Most remembered `jti` values per process.")

    @field_validator("external_base_url")
    @classmethod
    def _absolute_base_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"external_base_url {value!r} must look like https://host[:port][/prefix]")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _load_trusted_clients_file(self) -> AuthSettings:
        if self.trusted_clients_file is not None and not self.trusted_clients:
            self.trusted_clients = load_trusted_clients(self.trusted_clients_file)
        issuers = [client.iss for client in self.trusted_clients]
        duplicates = sorted({iss for iss in issuers if issuers.count(iss) > 1})
        if duplicates:
            raise ValueError(f"trusted client iss listed more than once: {duplicates}")
        return self

    def client_for(self, iss: str) -> TrustedClient | None:
        for client in self.trusted_clients:
            if client.iss == iss:
                return client
        return None


def load_trusted_clients(path: Path) -> tuple[TrustedClient, ...]:
    """Read a trusted-clients file: a list of clients, or a mapping with key `trusted_clients`.

    Relative `jwks_file` paths are taken relative to the file itself, so the file and its key sets
    can be deployed together.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise AuthConfigError(f"{path}: cannot read trusted-clients file: {error.strerror}") from error
    try:
        data: Any = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise AuthConfigError(
            f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {error}"
        ) from error
    if isinstance(data, dict):
        unknown = set(data) - {"trusted_clients"}
        if unknown:
            raise AuthConfigError(f"{path}: unknown top-level keys {sorted(unknown)}; expected 'trusted_clients'")
        data = data.get("trusted_clients")
    if not isinstance(data, list):
        raise AuthConfigError(f"{path}: expected a list of trusted clients (or a mapping with 'trusted_clients')")
    clients = []
    for index, entry in enumerate(data):
        try:
            client = TrustedClient.model_validate(entry)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in item['loc']) or 'entry'}: {item['msg']}" for item in error.errors()
            )
            raise AuthConfigError(f"{path}: trusted_clients[{index}]: {problems}") from None
        if client.jwks_file is not None and not client.jwks_file.is_absolute():
            client = client.model_copy(update={"jwks_file": (path.parent / client.jwks_file).resolve()})
        clients.append(client)
    return tuple(clients)
