"""The uvicorn options both production entry points use (cds_hooks/serving.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cds_hooks.auth_settings import AuthSettings
from cds_hooks.serving import production_options
from cds_hooks.settings import Settings
from tests.auth_tokens import ISS, bearer, claims, mint, new_ec_key, write_jwks


def test_no_proxy_trust_no_access_log_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPINECDS_TRUST_PROXY_HEADERS", raising=False)
    options = production_options()
    assert options == {"proxy_headers": False, "forwarded_allow_ips": [], "access_log": False, "server_header": False}


def test_uvicorn_never_applies_proxy_headers_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    # The app does (cds_hooks/proxy_headers.py): uvicorn would rewrite the client address before the
    # app could check that the peer is an allowed proxy. Changed on purpose: uvicorn used to get
    # proxy_headers=True and the allowlist when trust was on, and X-Forwarded-Host slipped past it.
    monkeypatch.setenv("SPINECDS_TRUST_PROXY_HEADERS", "true")
    monkeypatch.setenv("SPINECDS_FORWARDED_ALLOW_IPS", "10.0.0.5, 10.0.0.6")
    options = production_options()
    assert options["proxy_headers"] is False and options["forwarded_allow_ips"] == []
    assert options["access_log"] is False
    assert Settings().forwarded_allow_ips == ["10.0.0.5", "10.0.0.6"]  # read by the app instead


def _app_behind_proxy(tmp_path: Path, jwks: Path) -> Any:
    from cds_hooks.app import create_app
    from cds_hooks.auth_settings import TrustedClient

    auth = AuthSettings(trust_proxy_headers=True, trusted_clients=(TrustedClient(iss=ISS, jwks_file=jwks),))
    settings = Settings(database_path=tmp_path / "db.sqlite3", forwarded_allow_ips=["10.0.0.5"])
    return create_app(settings, auth_settings=auth)


def test_forwarded_host_and_proto_only_from_an_allowed_proxy(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    key = new_ec_key("k")
    app = _app_behind_proxy(tmp_path, write_jwks(tmp_path / "jwks.json", key))
    audience = "https://cds.example.org/cds-services"
    forwarded = {"X-Forwarded-Host": "cds.example.org", "X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
    try:
        for peer, status in (("10.0.0.5", 200), ("203.0.113.9", 401), ("127.0.0.1", 401)):
            client = TestClient(app, client=(peer, 40000))
            headers = {**forwarded, **bearer(mint(key, claims(aud=audience)))}
            assert client.get("/cds-services", headers=headers).status_code == status, peer
        # A direct caller (not the proxy) is answered for the URL it really called.
        direct = TestClient(app, client=("203.0.113.9", 40000))
        token = mint(key, claims(aud="http://testserver/cds-services"))
        assert direct.get("/cds-services", headers={**forwarded, **bearer(token)}).status_code == 200
    finally:
        app.state.store.close()
