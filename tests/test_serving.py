"""The uvicorn options both production entry points use (cds_hooks/serving.py)."""

from __future__ import annotations

import pytest

from cds_hooks.auth_settings import AuthSettings
from cds_hooks.serving import production_options, uvicorn_options
from cds_hooks.settings import Settings


def test_no_proxy_trust_no_access_log_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPINECDS_TRUST_PROXY_HEADERS", raising=False)
    options = production_options()
    assert options == {"proxy_headers": False, "forwarded_allow_ips": [], "access_log": False, "server_header": False}


def test_proxy_headers_only_when_trusted_and_only_from_the_named_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINECDS_TRUST_PROXY_HEADERS", "true")
    monkeypatch.setenv("SPINECDS_FORWARDED_ALLOW_IPS", "10.0.0.5, 10.0.0.6")
    options = production_options()
    assert options["proxy_headers"] is True and options["forwarded_allow_ips"] == ["10.0.0.5", "10.0.0.6"]
    assert options["access_log"] is False
    monkeypatch.delenv("SPINECDS_FORWARDED_ALLOW_IPS")
    trusted = uvicorn_options(Settings(), AuthSettings(trust_proxy_headers=True, auth_enabled=False))
    assert trusted["forwarded_allow_ips"] == ["127.0.0.1"]
