"""Which FHIR servers the service may call with a client's `fhirAuthorization` token.

A hook request names its `fhirServer`; the service would fetch from it with the bearer token the
request carries. Without a limit an authenticated caller (or a stolen token) could aim those fetches
at any host the service can reach: other ports on loopback, private ranges, cloud metadata endpoints.
So every `fhirServer` must fall under an allowlisted base URL of the calling client, matched exactly on
scheme, host and port and as a path prefix on whole segments, before any connection is made:

- trusted clients list theirs in the trusted-clients file (`fhir_server_allowlist`);
- with authentication off (development) the list is `SPINECDS_FHIR_SERVER_ALLOWLIST`, loopback only
  by default; only there may an entry use the port `*` (any port).

`https://` only; `http://` only to a loopback host and only with SPINECDS_FHIR_ALLOW_HTTP_LOOPBACK
(development). URLs with user info, a query, a fragment, dot segments, percent-escapes, backslashes,
whitespace or control characters are refused outright: each of those is a way to make a URL mean one
thing to this check and another to the HTTP library. A refusal is one neutral message; the reason
code goes to the log only, so the answer never helps map what is behind the service.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .operation_outcome import ApiError

ANY_PORT = "*"
DEFAULT_PORTS = {"http": 80, "https": 443}
# Development default: the local FHIR server on any port of this machine.
LOOPBACK_ALLOWLIST = tuple(
    f"{scheme}://{host}:{ANY_PORT}" for scheme in ("https", "http") for host in ("127.0.0.1", "localhost", "[::1]")
)
REFUSED = "fhirServer is not a FHIR server this service may call for this client"
MAX_URL_CHARS = 2048
# Characters never needed in a FHIR base URL that parsers disagree about.
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\%@?#]")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerUrl:
    """A parsed absolute http(s) URL: scheme and host lower-cased, port explicit, path without a trailing /."""

    scheme: str
    host: str
    port: int | None  # None only for an allowlist entry with port `*`
    path: str

    def within(self, base: ServerUrl) -> bool:
        """True when this URL is `base` or below it (same origin, path prefix on whole segments)."""
        if (self.scheme, self.host) != (base.scheme, base.host):
            return False
        if base.port is not None and self.port != base.port:
            return False
        return self.path == base.path or self.path.startswith(base.path + "/")


class UrlRefused(ValueError):
    """`reason` is a short code for logs and configuration errors; never sent to a caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_server_url(url: str, *, allow_any_port: bool = False) -> ServerUrl:
    """Parse strictly; raises UrlRefused with the reason. Queries and fragments are refused here."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise UrlRefused("not-a-url")
    if _UNSAFE.search(url):
        raise UrlRefused("unsafe-characters")  # user info (@), query (?), fragment (#), escapes (%), spaces
    port_text = None
    if allow_any_port and re.search(r":\*(/|$)", url):
        url = re.sub(r":\*(/|$)", r"\1", url, count=1)
        port_text = ANY_PORT
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("bad-port") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.netloc or not parts.hostname:
        raise UrlRefused("not-http")
    segments = parts.path.split("/")
    if any(segment in (".", "..") for segment in segments):
        raise UrlRefused("dot-segment")
    return ServerUrl(
        scheme=scheme,
        host=parts.hostname.lower(),
        port=None if port_text == ANY_PORT else (port if port is not None else DEFAULT_PORTS[scheme]),
        path=parts.path.rstrip("/"),
    )


def parse_allowlist(entries: Iterable[str], *, allow_any_port: bool) -> tuple[ServerUrl, ...]:
    """Allowlist entries, each checked like a fhirServer; raises ValueError naming the bad entry."""
    parsed = []
    for entry in entries:
        try:
            base = parse_server_url(entry, allow_any_port=allow_any_port)
        except UrlRefused as refused:
            raise ValueError(
                f"fhir server allowlist entry {entry!r} is not a plain https://host[:port][/path] URL "
                f"({refused.reason})"
            ) from None
        if base.scheme == "http" and not is_loopback(base.host):
            raise ValueError(f"fhir server allowlist entry {entry!r} must be https:// (http only for loopback)")
        parsed.append(base)
    return tuple(parsed)


@dataclass(frozen=True)
class FhirServerPolicy:
    """The FHIR servers one caller may send us to."""

    allowed: tuple[ServerUrl, ...]
    allow_http_loopback: bool = False

    def reason_to_refuse(self, url: str) -> str | None:
        """None when `url` may be called; else a reason code (for the log, never for the caller)."""
        try:
            target = parse_server_url(url)
        except UrlRefused as refused:
            return refused.reason
        if target.scheme == "http" and not (self.allow_http_loopback and is_loopback(target.host)):
            return "http-not-allowed"
        if not any(target.within(base) for base in self.allowed):
            return "not-in-allowlist"
        return None

    def check(self, url: str) -> None:
        reason = self.reason_to_refuse(url)
        if reason is not None:
            raise FhirServerRefused(reason)


class FhirServerRefused(ApiError):
    """400 with the one neutral message; `reason` for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(400, "invalid", REFUSED, expression=["fhirServer"])
        self.reason = reason


def same_server(base_url: str, url: str) -> bool:
    """A Bundle `next` link may be followed with the token only when it stays on the server the request
    named: same scheme, host and port, path under the base path, no user info or fragment. Unlike a
    base URL it may carry a query (servers page with `?_getpages=...`)."""
    if not isinstance(url, str) or "@" in url or "#" in url or "\\" in url or re.search(r"[\x00-\x20\x7f]", url):
        return False
    path_and_more = url.split("?", 1)
    try:
        base = parse_server_url(base_url)
        target = parse_server_url(path_and_more[0])
    except UrlRefused:
        return False
    return target.within(base)
