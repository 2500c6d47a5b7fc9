"""Service settings, read from the environment with the prefix SPINECDS_ (e.g. SPINECDS_PORT=8080)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .fhir_server_policy import LOOPBACK_ALLOWLIST, FhirServerPolicy, parse_allowlist

_HTTPS_ORIGIN = re.compile(r"https://[a-z0-9.-]+(:[0-9]{1,5})?", re.IGNORECASE)


class Settings(BaseSettings):
    # hide_input_in_errors: a bad SPINECDS_DATABASE_URL must not print its password at start-up.
    model_config = SettingsConfigDict(env_prefix="SPINECDS_", extra="ignore", hide_input_in_errors=True)

    host: str = Field("127.0.0.1", description="Interface uvicorn binds to (SPINECDS_HOST).")
    port: int = Field(8000, ge=1, le=65535, description="TCP port uvicorn listens on (SPINECDS_PORT).")
    database_path: Path = Field(
        Path("./var/spinecds.sqlite3"),
        description="SQLite file for feedback and the evaluation audit trail; its folder is created on first use.",
    )
    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL instead of SQLite: a libpq URL `postgresql://user:password@host:5432/dbname` "
        "(needs the `postgres` extra). Secret: never logged or shown in reprs.",
    )
    fhir_timeout_seconds: float = Field(
        2.5,
        gt=0,
        le=60,
        description="Total time budget for all FHIR server calls of one hook request (fallback when prefetch "
        "is absent). Past it the service answers 412.",
    )
    fhir_connect_timeout_seconds: float = Field(
        1.0,
        gt=0,
        le=30,
        description="TCP connect timeout per FHIR call (capped by what is left of the budget).",
    )
    fhir_max_pages: int = Field(
        10,
        ge=1,
        le=100,
        description="Most Bundle pages followed (link relation `next`) per prefetch key.",
    )
    fhir_server_allowlist: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(LOOPBACK_ALLOWLIST),
        description="Only with authentication off (development): the FHIR server base URLs a request may name "
        "as `fhirServer` (comma-separated or JSON array; the port may be `*`). Default: loopback hosts, any "
        "port. With authentication on, each trusted client's `fhir_server_allowlist` applies instead.",
    )
    fhir_allow_http_loopback: bool = Field(
        False,
        description="Development only: accept `http://` (no TLS) fhirServer URLs whose host is a loopback "
        "address. Off: https only.",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed by CORS: comma-separated list or JSON array; `*` allows any origin. "
        "Empty (the default): no CORS headers at all, so browsers on other origins cannot read answers.",
    )
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1"],
        description="Only with SPINECDS_TRUST_PROXY_HEADERS=true: the proxy addresses whose X-Forwarded-Proto/"
        "-For/-Host the service believes (comma-separated; `*` = any); from other peers they are dropped.",
    )
    api_docs: bool = Field(
        False,
        description="Serve the OpenAPI document at /openapi.json (for integrators and API tests). The HTML "
        "viewers /docs and /redoc are never served: they load their scripts from a CDN.",
    )
    external_base_url: AnyHttpUrl | None = Field(
        None,
        description="Public base URL of this service (behind a reverse proxy) used to make relative card "
        "links absolute; default: the URL the request came in on.",
    )
    allow_trace: bool = Field(
        False,
        description="Development only: honour the `X-SpineCDS-Trace: true` request header and return the "
        "engine's rule trace in the response's extension.spinecds.trace.",
    )
    try_page: bool = Field(
        False,
        description="Development and demos: serve the try-it page at `/` and its synthetic-patient endpoints "
        "`/try/...` (no authentication, synthetic data only). `make serve` turns it on; keep it off "
        "in production.",
    )
    model_cache_size: int = Field(
        2048,
        ge=0,
        description="Most validated FHIR resources kept for reuse when the same resource JSON arrives again "
        "(engine/model_cache.py); 0 turns the cache off.",
    )
    evaluation_threads: int | None = Field(
        None,
        ge=0,
        le=64,
        description="Where hook evaluations run (rules, card checks, the audit write): 0 on the event loop, N on "
        "N threads of their own. Unset: on the event loop with SQLite, 4 threads with PostgreSQL "
        "(cds_hooks/evaluation_threads.py).",
    )
    smart_app: bool = Field(
        False,
        description="Serve the SMART on FHIR assessment app under `/smart/` and its stateless engine preview "
        "`POST /smart/api/assess`, and add a `smart` link to every card that lacks data. `make serve` turns "
        "it on.",
    )
    smart_frame_ancestors: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins of EHR pages allowed to show the SMART app in a frame (comma-separated, e.g. "
        "`https://ehr.example.org`; https only, no paths or wildcards). Empty (the default): the app opens "
        "in its own window or tab and no page may frame it.",
    )
    smart_client_id: str = Field(
        "spinecds-assessment",
        min_length=1,
        description="OAuth client id the SMART app presents to the EHR's authorisation server (public client, PKCE).",
    )
    max_body_bytes: int = Field(
        5 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted; larger bodies get 413.",
    )
    rules_watch: bool = Field(
        False,
        description="Watch rules/ and hot-reload after an edit (the new rules must pass every case first); "
        "`kill -HUP <pid>` reloads on demand either way.",
    )
    rules_watch_interval_seconds: float = Field(2.0, gt=0, description="How often the rules watcher looks.")
    rules_dir: Path | None = Field(
        None,
        description="Folder with the rule files (default: the packaged rules/); point at a mounted folder "
        "to change rules without a new image. They are proven on their own cases before serving.",
    )
    log_level: str = Field("INFO", description="stdlib logging level of the log on stderr.")
    log_format: Literal["json", "text"] = Field(
        "json", description="json: one object per line, for log collectors; text: readable lines for a terminal."
    )
    timezone: str = Field(
        "UTC",
        description="IANA time zone (e.g. Europe/Amsterdam) for date-only clinical dates and for the due times "
        "cards show; the zone is named on the card.",
    )
    lookback_days: float | None = Field(
        None,
        gt=0,
        description="Symptoms presented longer ago than this (with no spine MRI since) take part in the MRI rule "
        "only as a 'reassess or resolve' card; default: rules/definitions.yaml (30 days).",
    )
    max_json_depth: int = Field(
        64,
        ge=8,
        le=1000,
        description="Deepest nesting of JSON arrays/objects accepted in a request body; deeper bodies get 400 "
        "(CDS Hooks requests with FHIR resources need about 15).",
    )

    pseudonym_key: SecretStr | None = Field(
        None,
        description="Secret for the keyed hashes (HMAC-SHA256) of patient, user and resource ids that feedback "
        "memory stores instead of the ids. Required when authentication is on: the service refuses to start "
        "without it or with one shorter than 32 bytes; "
        "without it a development key written in the source is used. Changing it forgets all feedback memory.",
    )
    feedback_memory_days: float = Field(
        7.0,
        ge=0,
        le=90,
        description="How long a card a user overrode stays hidden from that user for that patient while nothing "
        "about it changes (non-critical cards; a critical card overridden with a reason: until its due time, at "
        "most 24 h). 0 turns feedback memory off.",
    )

    @field_validator("timezone", mode="after")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from engine.localtime import zone

        zone(value)  # ValueError names the bad zone: start-up stops with a clear message
        return value

    @field_validator("database_url", mode="after")
    @classmethod
    def _postgres_only(cls, value: SecretStr | None) -> SecretStr | None:
        # After SecretStr wrapping, so the error shows '**********', never the password.
        if value is None or not value.get_secret_value().strip():
            return None  # SPINECDS_DATABASE_URL= (empty) means SQLite
        if not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// (or postgres://) URL")
        return value

    @field_validator("fhir_server_allowlist", mode="after")
    @classmethod
    def _valid_allowlist(cls, value: list[str]) -> list[str]:
        parse_allowlist(value, allow_any_port=True)
        return value

    def development_fhir_servers(self) -> FhirServerPolicy:
        """The policy when authentication is off (no trusted client to take the allowlist from)."""
        return FhirServerPolicy(
            parse_allowlist(self.fhir_server_allowlist, allow_any_port=True), self.fhir_allow_http_loopback
        )

    @field_validator("smart_frame_ancestors", mode="after")
    @classmethod
    def _https_origins(cls, value: list[str]) -> list[str]:
        # Each goes into a Content-Security-Policy header: only a bare https origin may pass.
        for origin in value:
            if not _HTTPS_ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an https origin such as https://ehr.example.org")
        return [origin.lower() for origin in value]

    @field_validator(
        "allowed_origins", "fhir_server_allowlist", "forwarded_allow_ips", "smart_frame_ancestors", mode="before"
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value
