"""HTTP plumbing shared by `load` and `fire`: timeouts on every call and errors that say what to do."""

from __future__ import annotations

import os
import re
from typing import Any

import requests

FHIR_JSON = "application/fhir+json"
# (connect, read) seconds: a sandbox that does not answer within these is treated as down.
TIMEOUT = (5.0, 60.0)


class SandboxError(Exception):
    """A failure the CLI reports in one line; `exit_code` 2 = cannot reach / usage, 1 = server said no."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def resolve_secret(value: str | None, default_env: str) -> str | None:
    """A token given literally, as `env:NAME`, or (when not given) from the environment variable."""
    if value is None:
        return os.environ.get(default_env) or None
    if value.startswith("env:"):
        name = value[4:]
        found = os.environ.get(name)
        if not found:
            raise SandboxError(f"environment variable {name} (from --token env:{name}) is not set")
        return found
    return value


def session(token: str | None, accept: str = FHIR_JSON) -> requests.Session:
    s = requests.Session()
    s.headers["Accept"] = accept
    s.headers["User-Agent"] = "spinecds-sandbox"
    if token:
        s.headers["Authorization"] = f"Bearer {token}"
    return s


def call(s: requests.Session, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
    """One request with the standard timeout; network failures become a SandboxError (exit 2)."""
    kwargs.setdefault("timeout", TIMEOUT)
    try:
        return s.request(method, url, **kwargs)
    except requests.exceptions.Timeout:
        raise SandboxError(f"{what}: no answer from {url} within {TIMEOUT[1]:.0f} s") from None
    except requests.exceptions.ConnectionError as exc:
        text = str(exc)
        # urllib3 nests the useful part ("[Errno 111] Connection refused") deep in its message.
        errno = re.search(r"\[Errno -?\d+\][^'\")]*", text)
        reason = errno.group(0).strip() if errno else text[:200]
        raise SandboxError(
            f"{what}: cannot connect to {url} - is the server running and the URL right? ({reason})"
        ) from None
    except requests.exceptions.RequestException as exc:
        raise SandboxError(f"{what}: request to {url} failed: {exc}") from None


def json_body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def describe_failure(response: requests.Response) -> str:
    """One line: status plus the OperationOutcome issues (or the start of the body) of a failed call."""
    body = json_body(response)
    head = f"HTTP {response.status_code} {response.reason or ''}".strip()
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        issues = [
            " ".join(
                str(part)
                for part in (
                    issue.get("severity", "?"),
                    f"{issue.get('code', '?')}:",
                    issue.get("diagnostics") or (issue.get("details") or {}).get("text") or "",
                )
                if part
            )
            for issue in body.get("issue") or []
        ]
        return f"{head}: OperationOutcome: " + "; ".join(issues)
    text = " ".join(response.text.split())
    return head + (f": {text[:300]}" if text else "")
