"""CDS Hooks 2.0 client authentication, end to end through a tiny FastAPI app.

Tokens are minted in-test with PyJWT from keys generated with `cryptography`; key sets come from a
JWKS file in tmp_path or from a JWKS HTTP server on 127.0.0.1 started by this module.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import threading
import time
from collections import Counter
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from cds_hooks.auth import DISABLED_WARNING, AuthSettings, ClientAuthenticator, TrustedClient, VerifiedClient
from cds_hooks.auth_settings import AuthConfigError, load_trusted_clients
from cds_hooks.jwks import parse_jwks
from cds_hooks.replay import ReplayCache
from tests.auth_tokens import (
    AUTH_LOGGER,
    BASE,
    DROP,
    HOOK_AUD,
    HOOK_PATH,
    ISS,
    ISS_JKU,
    ISS_TENANT,
    TENANT,
    SigningKey,
    bearer,
    claims,
    forge,
    mint,
    write_jwks,
)
from tests.auth_tokens import b64 as _b64
from tests.auth_tokens import new_ec_key as _ec_key
from tests.auth_tokens import new_rsa_key as _rsa_key

# ---------------------------------------------------------------- keys, tokens


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return _ec_key("ec-1")


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return _rsa_key("rsa-1")


@pytest.fixture(scope="module")
def other_ec_key() -> SigningKey:
    """Not in any key set; used to forge signatures and for rotation."""
    return _ec_key("ec-2")


# ---------------------------------------------------------------- JWKS server


class JwksServer:
    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.status: dict[str, int] = {}
        self.hits: Counter[str] = Counter()
        self.delay_seconds = 0.0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits[self.path] += 1
                time.sleep(owner.delay_seconds)
                status = owner.status.get(self.path, 200 if self.path in owner.documents else 404)
                body = json.dumps(owner.documents.get(self.path, {})).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def publish(self, path: str, *keys: SigningKey) -> str:
        self.documents[path] = {"keys": [key.jwk() for key in keys]}
        return self.url(path)


@pytest.fixture(scope="module")
def jwks_server():
    server = JwksServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def server(jwks_server: JwksServer) -> JwksServer:
    jwks_server.documents.clear()
    jwks_server.status.clear()
    jwks_server.hits.clear()
    jwks_server.delay_seconds = 0.0
    return jwks_server


# ---------------------------------------------------------------- settings and app


@pytest.fixture(autouse=True)
def _no_spinecds_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """AuthSettings reads SPINECDS_* variables; the developer's shell must not change test outcomes."""
    import os

    for name in list(os.environ):
        if name.startswith("SPINECDS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def jwks_file(tmp_path: Path, ec_key: SigningKey, rsa_key: SigningKey) -> Path:
    return write_jwks(tmp_path / "ehr-jwks.json", ec_key, rsa_key)


@pytest.fixture
def jku_url(server: JwksServer, ec_key: SigningKey) -> str:
    return server.publish("/ehr/jwks.json", ec_key)


@pytest.fixture
def settings(jwks_file: Path, jku_url: str) -> AuthSettings:
    return AuthSettings(
        external_base_url=BASE,
        trusted_clients=(
            TrustedClient(iss=ISS, jwks_file=jwks_file),
            TrustedClient(iss=ISS_JKU, jku_allowlist=(jku_url,)),
            TrustedClient(iss=ISS_TENANT, jwks_file=jwks_file, tenant=TENANT),
        ),
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_client(settings: AuthSettings, **kwargs: Any) -> TestClient:
    authenticate = ClientAuthenticator(settings, **kwargs)
    app = FastAPI()

    def answer(client: VerifiedClient | None) -> dict[str, Any]:
        return {"client": asdict(client) if client else None}

    @app.get("/cds-services")
    async def discovery(client: VerifiedClient | None = Depends(authenticate)) -> dict[str, Any]:
        return answer(client)

    @app.post("/cds-services/{service_id}")
    async def hook(service_id: str, client: VerifiedClient | None = Depends(authenticate)) -> dict[str, Any]:
        return answer(client)

    @app.post("/cds-services/{service_id}/feedback")
    async def feedback(service_id: str, client: VerifiedClient | None = Depends(authenticate)) -> dict[str, Any]:
        return answer(client)

    return TestClient(app)


@pytest.fixture
def client(settings: AuthSettings) -> TestClient:
    return make_client(settings)


@pytest.fixture
def auth_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=AUTH_LOGGER)
    return caplog


def call_hook(client: TestClient, token: str | None = None, **headers: str) -> Any:
    all_headers = dict(headers)
    if token is not None:
        all_headers.update(bearer(token))
    return client.post(HOOK_PATH, json={"hook": "patient-view"}, headers=all_headers)


def reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.auth_reason for record in caplog.records if hasattr(record, "auth_reason")]


def assert_rejected(response: Any, caplog: pytest.LogCaptureFixture, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert reason not in response.text, "the reason is for the log, never for the caller"
    assert reasons(caplog)[-1] == reason


def assert_accepted(response: Any, iss: str = ISS) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    verified = response.json()["client"]
    assert verified["iss"] == iss
    return verified


# ---------------------------------------------------------------- valid tokens


@pytest.mark.parametrize("key_name", ["ec_key", "rsa_key"])
def test_valid_token_passes(request: pytest.FixtureRequest, client: TestClient, key_name: str) -> None:
    key: SigningKey = request.getfixturevalue(key_name)
    verified = assert_accepted(call_hook(client, mint(key)))
    assert verified["kid"] == key.kid


def test_every_endpoint_needs_its_own_url_as_audience(
    client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    discovery = client.get("/cds-services", headers=bearer(mint(ec_key, claims(aud=BASE + "/cds-services"))))
    assert_accepted(discovery)
    feedback_aud = HOOK_AUD + "/feedback"
    assert_accepted(
        client.post(HOOK_PATH + "/feedback", json={}, headers=bearer(mint(ec_key, claims(aud=feedback_aud))))
    )
    # A token minted for the hook endpoint does not open discovery.
    assert_rejected(client.get("/cds-services", headers=bearer(mint(ec_key))), auth_log, "aud-mismatch")


def test_extra_claims_sub_and_nbf_are_accepted(client: TestClient, ec_key: SigningKey) -> None:
    now = int(time.time())
    verified = assert_accepted(call_hook(client, mint(ec_key, claims(sub="epic-client-id", nbf=now - 5))))
    assert verified["sub"] == "epic-client-id"


def test_nbf_within_leeway_passes_and_beyond_is_rejected(
    client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    now = int(time.time())
    assert_accepted(call_hook(client, mint(ec_key, claims(nbf=now + 30))))
    assert_rejected(call_hook(client, mint(ec_key, claims(nbf=now + 120))), auth_log, "not-yet-valid")


# ---------------------------------------------------------------- the Authorization header


def test_no_authorization_header(client: TestClient, auth_log: pytest.LogCaptureFixture) -> None:
    assert_rejected(call_hook(client), auth_log, "missing-token")


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc.def.ghi", "Bearer a b"])
def test_not_a_bearer_token(client: TestClient, auth_log: pytest.LogCaptureFixture, value: str) -> None:
    response = client.post(HOOK_PATH, json={}, headers={"Authorization": value})
    assert_rejected(response, auth_log, "not-bearer")


def test_two_authorization_headers_are_rejected(
    client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    token = mint(ec_key)
    response = client.post(
        HOOK_PATH, json={}, headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    )
    assert_rejected(response, auth_log, "not-bearer")


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "eyJhbGciOiJFUzM4NCJ9.%%%.abc", "x" * 20000])
def test_malformed_token(client: TestClient, auth_log: pytest.LogCaptureFixture, token: str) -> None:
    assert_rejected(call_hook(client, token), auth_log, "malformed")


# ---------------------------------------------------------------- the JOSE header


def test_alg_none_is_rejected(client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture) -> None:
    token = jwt.encode(claims(), None, algorithm="none", headers={"kid": ec_key.kid})
    assert_rejected(call_hook(client, token), auth_log, "bad-alg")


def test_hs256_signed_with_the_public_key_is_rejected(
    client: TestClient, rsa_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    """The classic key-confusion attack: an HMAC keyed with the (public) verification key."""
    secret = rsa_key.public_pem()
    token = forge(
        {"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid},
        claims(),
        lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
    )
    assert_rejected(call_hook(client, token), auth_log, "bad-alg")


def test_rs256_is_rejected(client: TestClient, rsa_key: SigningKey, auth_log: pytest.LogCaptureFixture) -> None:
    assert_rejected(call_hook(client, mint(rsa_key, alg="RS256")), auth_log, "bad-alg")


@pytest.mark.parametrize("typ", ["JWS", "at+jwt", ""])
def test_wrong_typ(client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture, typ: str) -> None:
    # PyJWT drops an empty typ, so "" covers the missing-typ case.
    assert_rejected(call_hook(client, mint(ec_key, headers={"typ": typ})), auth_log, "bad-typ")


def test_missing_kid(client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture) -> None:
    assert_rejected(call_hook(client, mint(ec_key, headers={"kid": DROP})), auth_log, "missing-kid")


def test_crit_header_is_rejected(client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture) -> None:
    token = mint(ec_key, headers={"crit": ["exp-extension"], "exp-extension": 1})
    assert_rejected(call_hook(client, token), auth_log, "malformed")


def test_es384_token_naming_an_rsa_key_is_rejected(
    client: TestClient, ec_key: SigningKey, rsa_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    assert_rejected(call_hook(client, mint(ec_key, headers={"kid": rsa_key.kid})), auth_log, "key-mismatch")


# ---------------------------------------------------------------- issuer, tenant, audience


def test_untrusted_issuer(client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture) -> None:
    token = mint(ec_key, claims(iss="https://evil.example.org"))
    assert_rejected(call_hook(client, token), auth_log, "untrusted-iss")
    assert "https://evil.example.org" in auth_log.text  # the claimed issuer is logged for the operator


def test_missing_issuer(client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture) -> None:
    assert_rejected(call_hook(client, mint(ec_key, claims(iss=DROP))), auth_log, "missing-iss")


def test_tenant_must_match_when_configured(
    client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    verified = assert_accepted(call_hook(client, mint(ec_key, claims(iss=ISS_TENANT, tenant=TENANT))), ISS_TENANT)
    assert verified["tenant"] == TENANT
    assert_rejected(
        call_hook(client, mint(ec_key, claims(iss=ISS_TENANT, tenant="hospital-2"))), auth_log, "tenant-mismatch"
    )
    assert_rejected(call_hook(client, mint(ec_key, claims(iss=ISS_TENANT))), auth_log, "tenant-mismatch")


@pytest.mark.parametrize(
    "aud",
    [
        "https://cds.example.org/cds-services/other-service",
        "https://other.example.org/cds-services/spinecds-patient-view",
        "http://cds.example.org/cds-services/spinecds-patient-view",
        "https://cds.example.org",
        ["https://cds.example.org/cds-services"],
        42,
    ],
)
def test_audience_mismatch(
    client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture, aud: Any
) -> None:
    assert_rejected(call_hook(client, mint(ec_key, claims(aud=aud))), auth_log, "aud-mismatch")


def test_audience_list_containing_the_url_passes(client: TestClient, ec_key: SigningKey) -> None:
    token = mint(ec_key, claims(aud=["https://elsewhere.example.org", HOOK_AUD]))
    assert_accepted(call_hook(client, token))


def test_audience_comparison_ignores_default_port_case_and_trailing_slash(
    client: TestClient, ec_key: SigningKey
) -> None:
    token = mint(ec_key, claims(aud="HTTPS://CDS.example.org:443/cds-services/spinecds-patient-view/"))
    assert_accepted(call_hook(client, token))


# ---------------------------------------------------------------- time and replay


def test_expired_beyond_leeway(client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture) -> None:
    now = int(time.time())
    assert_rejected(call_hook(client, mint(ec_key, claims(iat=now - 400, exp=now - 90))), auth_log, "expired")


def test_expired_within_leeway_passes(client: TestClient, ec_key: SigningKey) -> None:
    now = int(time.time())
    assert_accepted(call_hook(client, mint(ec_key, claims(iat=now - 330, exp=now - 30))))


def test_iat_in_the_future(client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture) -> None:
    now = int(time.time())
    assert_rejected(call_hook(client, mint(ec_key, claims(iat=now + 300, exp=now + 600))), auth_log, "iat-in-future")


def test_iat_slightly_ahead_within_leeway_passes(client: TestClient, ec_key: SigningKey) -> None:
    now = int(time.time())
    assert_accepted(call_hook(client, mint(ec_key, claims(iat=now + 30, exp=now + 330))))


@pytest.mark.parametrize("claim", ["jti", "exp", "iat", "aud"])
def test_missing_required_claim(
    client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture, claim: str
) -> None:
    assert_rejected(call_hook(client, mint(ec_key, claims(**{claim: DROP}))), auth_log, f"missing-{claim}")


def test_empty_jti_counts_as_missing(
    client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    assert_rejected(call_hook(client, mint(ec_key, claims(jti=""))), auth_log, "missing-jti")


@pytest.mark.parametrize("exp", ["9999999999", True, float("inf")])
def test_non_numeric_exp_is_rejected(
    client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture, exp: Any
) -> None:
    response = call_hook(client, mint(ec_key, claims(exp=exp)))
    assert response.status_code == 401
    assert reasons(auth_log)[-1] in {"invalid-claim", "malformed", "expired"}


def test_token_lifetime_above_the_maximum_is_rejected(
    client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    now = int(time.time())
    token = mint(ec_key, claims(exp=now + 10 * 24 * 3600))
    assert_rejected(call_hook(client, token), auth_log, "lifetime-too-long")


def test_replayed_jti(client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture) -> None:
    token = mint(ec_key)
    assert_accepted(call_hook(client, token))
    assert_rejected(call_hook(client, token), auth_log, "replay")
    # Same jti in a fresh token is a replay as well: the jti, not the token bytes, is the nonce.
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert_rejected(call_hook(client, mint(ec_key, claims(jti=jti))), auth_log, "replay")


def test_rejected_token_does_not_use_up_its_jti(
    client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    bad = mint(ec_key, claims(jti="once", aud=BASE + "/cds-services/other"))
    assert_rejected(call_hook(client, bad), auth_log, "aud-mismatch")
    assert_accepted(call_hook(client, mint(ec_key, claims(jti="once"))))


def test_bad_signature(
    client: TestClient, ec_key: SigningKey, other_ec_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    forged = mint(other_ec_key, headers={"kid": ec_key.kid})  # right kid, wrong private key
    assert_rejected(call_hook(client, forged), auth_log, "bad-signature")


def test_tampered_payload_fails_the_signature(
    client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    header, _, signature = mint(ec_key, claims(iss=ISS)).split(".")
    tampered_payload = _b64(json.dumps(claims(sub="admin")).encode())
    assert_rejected(call_hook(client, f"{header}.{tampered_payload}.{signature}"), auth_log, "bad-signature")


# ---------------------------------------------------------------- key sets: file and jku


def test_unknown_kid_in_file_after_one_reread(
    client: TestClient, ec_key: SigningKey, other_ec_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    assert_rejected(call_hook(client, mint(other_ec_key)), auth_log, "unknown-kid")
    assert "refreshing its key sets" in auth_log.text


def test_jwks_file_reread_on_unknown_kid_picks_up_rotation(
    settings: AuthSettings, jwks_file: Path, ec_key: SigningKey, other_ec_key: SigningKey
) -> None:
    client = make_client(settings)
    assert_accepted(call_hook(client, mint(ec_key)))
    write_jwks(jwks_file, ec_key, other_ec_key)
    assert_accepted(call_hook(client, mint(other_ec_key)))


def test_unknown_kid_from_jku_refreshes_once_then_throttles(
    settings: AuthSettings,
    server: JwksServer,
    jku_url: str,
    ec_key: SigningKey,
    other_ec_key: SigningKey,
    auth_log: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    client = make_client(settings, clock=clock)

    def unknown_kid_call() -> Any:
        return call_hook(client, mint(other_ec_key, claims(iss=ISS_JKU), headers={"jku": jku_url}))

    assert_accepted(call_hook(client, mint(ec_key, claims(iss=ISS_JKU), headers={"jku": jku_url})), ISS_JKU)
    assert server.hits["/ehr/jwks.json"] == 1
    clock.now += 5
    assert_rejected(unknown_kid_call(), auth_log, "unknown-kid")
    assert server.hits["/ehr/jwks.json"] == 2  # one refresh, then rejected

    clock.now += 30
    assert_rejected(unknown_kid_call(), auth_log, "unknown-kid")
    assert server.hits["/ehr/jwks.json"] == 2  # within 60 s: no fetch, a flood of bad kids cannot hammer the EHR

    clock.now += 31
    assert_rejected(unknown_kid_call(), auth_log, "unknown-kid")
    assert server.hits["/ehr/jwks.json"] == 3


def test_unknown_kid_on_first_contact_fetches_once(
    settings: AuthSettings,
    server: JwksServer,
    jku_url: str,
    other_ec_key: SigningKey,
    auth_log: pytest.LogCaptureFixture,
) -> None:
    client = make_client(settings)
    token = mint(other_ec_key, claims(iss=ISS_JKU), headers={"jku": jku_url})
    assert_rejected(call_hook(client, token), auth_log, "unknown-kid")
    assert server.hits["/ehr/jwks.json"] == 1  # the set was fetched just now: fetching it again is pointless


def test_jku_not_in_allowlist_is_rejected_without_fetching(
    client: TestClient, server: JwksServer, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    evil_url = server.publish("/attacker/jwks.json", ec_key)
    token = mint(ec_key, claims(iss=ISS_JKU), headers={"jku": evil_url})
    assert_rejected(call_hook(client, token), auth_log, "jku-not-allowed")
    # Also for an issuer whose keys come from a file: a jku header must still be allowlisted.
    assert_rejected(call_hook(client, mint(ec_key, headers={"jku": evil_url})), auth_log, "jku-not-allowed")
    assert server.hits["/attacker/jwks.json"] == 0


def test_jku_in_allowlist_is_fetched_once_and_cached(
    client: TestClient, server: JwksServer, jku_url: str, ec_key: SigningKey
) -> None:
    for _ in range(2):
        token = mint(ec_key, claims(iss=ISS_JKU), headers={"jku": jku_url})
        assert_accepted(call_hook(client, token), ISS_JKU)
    assert server.hits["/ehr/jwks.json"] == 1


def test_token_without_jku_uses_the_allowlisted_set(client: TestClient, server: JwksServer, ec_key: SigningKey) -> None:
    assert_accepted(call_hook(client, mint(ec_key, claims(iss=ISS_JKU))), ISS_JKU)
    assert server.hits["/ehr/jwks.json"] == 1


def test_key_rotation_new_kid_triggers_one_refresh(
    settings: AuthSettings, server: JwksServer, jku_url: str, ec_key: SigningKey, other_ec_key: SigningKey
) -> None:
    client = make_client(settings)
    assert_accepted(call_hook(client, mint(ec_key, claims(iss=ISS_JKU), headers={"jku": jku_url})), ISS_JKU)
    server.publish("/ehr/jwks.json", ec_key, other_ec_key)
    for _ in range(2):
        token = mint(other_ec_key, claims(iss=ISS_JKU), headers={"jku": jku_url})
        assert_accepted(call_hook(client, token), ISS_JKU)
    assert server.hits["/ehr/jwks.json"] == 2


def test_cached_set_is_refetched_after_its_ttl(
    settings: AuthSettings, server: JwksServer, jku_url: str, ec_key: SigningKey
) -> None:
    clock = FakeClock()
    client = make_client(settings, clock=clock)
    assert_accepted(call_hook(client, mint(ec_key, claims(iss=ISS_JKU))), ISS_JKU)
    clock.now += settings.jwks_cache_ttl_seconds + 1
    assert_accepted(call_hook(client, mint(ec_key, claims(iss=ISS_JKU))), ISS_JKU)
    assert server.hits["/ehr/jwks.json"] == 2


def test_unreachable_key_set_rejects_and_backs_off(
    settings: AuthSettings, server: JwksServer, jku_url: str, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    client = make_client(settings, clock=clock)
    server.status["/ehr/jwks.json"] = 500
    assert_rejected(call_hook(client, mint(ec_key, claims(iss=ISS_JKU))), auth_log, "jwks-unavailable")
    assert_rejected(call_hook(client, mint(ec_key, claims(iss=ISS_JKU))), auth_log, "jwks-unavailable")
    assert server.hits["/ehr/jwks.json"] == 1  # backed off, not one fetch per request
    server.status.clear()
    clock.now += settings.jwks_failure_backoff_seconds
    assert_accepted(call_hook(client, mint(ec_key, claims(iss=ISS_JKU))), ISS_JKU)


def test_cached_keys_survive_a_failed_refetch(
    settings: AuthSettings, server: JwksServer, jku_url: str, ec_key: SigningKey
) -> None:
    clock = FakeClock()
    client = make_client(settings, clock=clock)
    assert_accepted(call_hook(client, mint(ec_key, claims(iss=ISS_JKU))), ISS_JKU)
    server.status["/ehr/jwks.json"] = 503
    clock.now += settings.jwks_cache_ttl_seconds + 1
    assert_accepted(call_hook(client, mint(ec_key, claims(iss=ISS_JKU))), ISS_JKU)
    assert server.hits["/ehr/jwks.json"] == 2


def test_redirects_are_not_followed(
    settings: AuthSettings, server: JwksServer, jku_url: str, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    server.status["/ehr/jwks.json"] = 302
    client = make_client(settings)
    assert_rejected(call_hook(client, mint(ec_key, claims(iss=ISS_JKU))), auth_log, "jwks-unavailable")


def test_key_fetch_does_not_block_the_event_loop(
    settings: AuthSettings, server: JwksServer, jku_url: str, ec_key: SigningKey
) -> None:
    from starlette.requests import Request

    server.delay_seconds = 0.4
    authenticate = ClientAuthenticator(settings)
    token = mint(ec_key, claims(iss=ISS_JKU), headers={"jku": jku_url})
    request = Request(
        {
            "type": "http",
            "method": "POST",
            "scheme": "http",
            "server": ("testserver", 80),
            "root_path": "",
            "path": HOOK_PATH,
            "raw_path": HOOK_PATH.encode(),
            "query_string": b"",
            "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode())],
        }
    )
    tick_times: list[float] = []

    async def heartbeat() -> None:
        for _ in range(6):
            await asyncio.sleep(0.05)
            tick_times.append(time.monotonic())

    async def verify() -> tuple[VerifiedClient | None, float]:
        verified = await authenticate(request)
        return verified, time.monotonic()

    async def both() -> tuple[VerifiedClient | None, float]:
        (verified, done_at), _ = await asyncio.gather(verify(), heartbeat())
        return verified, done_at

    verified, done_at = asyncio.run(both())
    assert verified is not None and verified.iss == ISS_JKU
    # The loop kept ticking while the JWK Set was being fetched (blocking it would push every tick after done_at).
    assert len([t for t in tick_times if t < done_at]) >= 4
    assert server.hits["/ehr/jwks.json"] == 1


def test_unusable_keys_in_a_jwk_set_are_skipped(ec_key: SigningKey, rsa_key: SigningKey) -> None:
    small_rsa = SigningKey("rsa-small", "RS384", rsa.generate_private_key(public_exponent=65537, key_size=1024))
    p256 = SigningKey("p256", "ES256", ec.generate_private_key(ec.SECP256R1()))
    document = {
        "keys": [
            ec_key.jwk(),
            rsa_key.jwk(),
            {"kty": "oct", "kid": "hmac", "k": _b64(b"secret")},
            {**small_rsa.jwk(), "alg": "RS384"},
            p256.jwk(),
            {**rsa_key.jwk(), "kid": "enc", "use": "enc"},
            {**rsa_key.jwk(), "kid": "rs256", "alg": "RS256"},
            {**ec_key.jwk(), "kid": None},
            {"kty": "EC", "crv": "P-384", "kid": "broken", "x": "AA", "y": "AA"},
            "not a key",
        ]
    }
    keys = parse_jwks(document, "test")
    assert sorted(keys) == ["ec-1", "rsa-1"]
    assert keys["ec-1"].algorithm == "ES384" and keys["rsa-1"].algorithm == "RS384"


# ---------------------------------------------------------------- audience behind a proxy

PROXY_HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "cds.example.org"}


def _proxy_settings(settings: AuthSettings, trust: bool) -> AuthSettings:
    return settings.model_copy(update={"external_base_url": None, "trust_proxy_headers": trust})


def test_proxy_headers_trusted_when_switched_on(
    settings: AuthSettings, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    client = make_client(_proxy_settings(settings, trust=True))
    assert_accepted(call_hook(client, mint(ec_key), **PROXY_HEADERS))
    # Without the headers the service is reached as http://testserver.
    assert_rejected(call_hook(client, mint(ec_key)), auth_log, "aud-mismatch")


def test_proxy_headers_ignored_when_switched_off(
    settings: AuthSettings, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    client = make_client(_proxy_settings(settings, trust=False))
    assert_rejected(call_hook(client, mint(ec_key), **PROXY_HEADERS), auth_log, "aud-mismatch")
    direct = mint(ec_key, claims(aud="http://testserver" + HOOK_PATH))
    assert_accepted(call_hook(client, direct, **PROXY_HEADERS))


def test_external_base_url_wins_over_proxy_headers(
    settings: AuthSettings, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    client = make_client(settings.model_copy(update={"trust_proxy_headers": True}))
    spoofed = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "other.example.org"}
    token = mint(ec_key, claims(aud="https://other.example.org" + HOOK_PATH))
    assert_rejected(call_hook(client, token, **spoofed), auth_log, "aud-mismatch")
    assert_accepted(call_hook(client, mint(ec_key), **spoofed))


# ---------------------------------------------------------------- switched off, logging


def test_auth_disabled_lets_everything_through_and_warns(
    settings: AuthSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=AUTH_LOGGER)
    client = make_client(settings.model_copy(update={"auth_enabled": False}))
    assert DISABLED_WARNING in [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    response = call_hook(client)
    assert response.status_code == 200 and response.json() == {"client": None}
    assert client.post(HOOK_PATH, json={}, headers={"Authorization": "Bearer garbage"}).status_code == 200


def test_enabled_auth_does_not_warn(settings: AuthSettings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=AUTH_LOGGER)
    make_client(settings)
    assert DISABLED_WARNING not in caplog.text


def test_token_never_appears_in_logs(
    client: TestClient,
    server: JwksServer,
    ec_key: SigningKey,
    other_ec_key: SigningKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    now = int(time.time())
    tokens = [
        mint(ec_key),  # accepted
        mint(other_ec_key, headers={"kid": ec_key.kid}),  # bad signature
        mint(ec_key, claims(iss="https://evil.example.org")),  # untrusted
        mint(ec_key, claims(exp=now - 600, iat=now - 900)),  # expired
        mint(ec_key, claims(aud="https://x.example.org")),  # aud
        mint(ec_key, headers={"typ": "JWS"}),  # typ
        mint(other_ec_key),  # unknown kid
        mint(ec_key, claims(iss=ISS_JKU), headers={"jku": server.url("/nope")}),
    ]
    replayed = tokens[0]
    for token in [*tokens, replayed]:
        call_hook(client, token)
    call_hook(client, "not-a-jwt-but-secret-looking")
    assert reasons(caplog) == [
        "bad-signature",
        "untrusted-iss",
        "expired",
        "aud-mismatch",
        "bad-typ",
        "unknown-kid",
        "jku-not-allowed",
        "replay",
        "malformed",
    ]
    for token in tokens:
        for part in [token, *token.split(".")]:
            assert part not in caplog.text
    assert "not-a-jwt-but-secret-looking" not in caplog.text


def test_claimed_issuer_cannot_forge_log_lines(
    client: TestClient, ec_key: SigningKey, auth_log: pytest.LogCaptureFixture
) -> None:
    call_hook(client, mint(ec_key, claims(iss="https://x\nINFO forged line")))
    assert "\nINFO forged line" not in auth_log.text


# ---------------------------------------------------------------- settings


def test_settings_from_environment_and_yaml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ec_key: SigningKey
) -> None:
    (tmp_path / "keys").mkdir()
    write_jwks(tmp_path / "keys" / "ehr.json", ec_key)
    clients_file = tmp_path / "trusted-clients.yaml"
    clients_file.write_text(
        "trusted_clients:\n"
        "  - iss: https://ehr.example.org\n"
        "    jwks_file: keys/ehr.json\n"
        "    tenant: hospital-1\n"
        "  - iss: https://fhir.epic.com/interconnect-fhir-oauth/oauth2/token\n"
        "    jku_allowlist: [https://fhir.epic.com/interconnect-fhir-oauth/api/epic/2019/Security/Open/PublicKeys/jwks]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SPINECDS_TRUSTED_CLIENTS_FILE", str(clients_file))
    monkeypatch.setenv("SPINECDS_EXTERNAL_BASE_URL", "https://cds.example.org/")
    monkeypatch.setenv("SPINECDS_TRUST_PROXY_HEADERS", "true")
    loaded = AuthSettings()
    assert loaded.auth_enabled is True
    assert loaded.external_base_url == "https://cds.example.org"
    assert loaded.trust_proxy_headers is True
    first = loaded.client_for("https://ehr.example.org")
    assert first is not None and first.jwks_file == (tmp_path / "keys" / "ehr.json").resolve()
    assert first.tenant == "hospital-1"
    assert loaded.client_for("https://fhir.epic.com/interconnect-fhir-oauth/oauth2/token").jku_allowlist


def test_settings_json_file_as_plain_list(tmp_path: Path, ec_key: SigningKey) -> None:
    write_jwks(tmp_path / "ehr.json", ec_key)
    clients_file = tmp_path / "clients.json"
    clients_file.write_text(json.dumps([{"iss": ISS, "jwks_file": "ehr.json"}]), encoding="utf-8")
    clients = load_trusted_clients(clients_file)
    assert [client.iss for client in clients] == [ISS]


@pytest.mark.parametrize("value, enabled", [("false", False), ("0", False), ("true", True), ("1", True)])
def test_auth_enabled_switch(monkeypatch: pytest.MonkeyPatch, value: str, enabled: bool) -> None:
    monkeypatch.setenv("SPINECDS_AUTH_ENABLED", value)
    assert AuthSettings().auth_enabled is enabled


def test_auth_enabled_switch_rejects_typos(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINECDS_AUTH_ENABLED", "flase")
    with pytest.raises(ValidationError):
        AuthSettings()


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"iss": ISS}, "needs a jwks_file or at least one jku_allowlist URL"),
        ({"iss": ISS, "jku_allowlist": ["http://ehr.example.org/jwks"]}, "must be an absolute https:// URL"),
        ({"iss": ISS, "jku_allowlist": ["https://ehr.example.org/jwks"], "jwks_url": "x"}, "jwks_url"),
    ],
)
def test_bad_trusted_clients_file_names_file_and_entry(tmp_path: Path, entry: dict[str, Any], message: str) -> None:
    clients_file = tmp_path / "clients.yaml"
    clients_file.write_text(json.dumps({"trusted_clients": [entry]}), encoding="utf-8")
    with pytest.raises(AuthConfigError) as error:
        load_trusted_clients(clients_file)
    assert str(clients_file) in str(error.value) and "trusted_clients[0]" in str(error.value)
    assert message in str(error.value)


def test_unreadable_jwks_file_fails_at_start_up(tmp_path: Path) -> None:
    missing = AuthSettings(trusted_clients=(TrustedClient(iss=ISS, jwks_file=tmp_path / "absent.json"),))
    with pytest.raises(AuthConfigError, match=r"absent\.json"):
        ClientAuthenticator(missing)


def test_no_trusted_clients_rejects_everything_and_says_so(
    ec_key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=AUTH_LOGGER)
    client = make_client(AuthSettings(external_base_url=BASE))
    assert "no trusted CDS Clients configured" in caplog.text
    assert_rejected(call_hook(client, mint(ec_key)), caplog, "untrusted-iss")


# ---------------------------------------------------------------- replay cache


def test_replay_cache_forgets_expired_and_stays_bounded() -> None:
    cache = ReplayCache(max_entries=100)
    assert cache.first_use(ISS, "a", remember_until=110, now=100)
    assert not cache.first_use(ISS, "a", remember_until=110, now=105)
    assert cache.first_use(ISS_JKU, "a", remember_until=110, now=105)  # jti is per issuer
    assert cache.first_use(ISS, "a", remember_until=130, now=111)  # expired, then fresh
    for index in range(500):
        assert cache.first_use(ISS, f"bulk-{index}", remember_until=1000 + index, now=120)
    assert len(cache) == 100
    assert not cache.first_use(ISS, "bulk-499", remember_until=2000, now=120)


def test_replay_cache_is_thread_safe() -> None:
    cache = ReplayCache(max_entries=10_000)
    wins: list[bool] = []
    lock = threading.Lock()

    def race() -> None:
        for index in range(200):
            won = cache.first_use(ISS, f"jti-{index}", remember_until=10_000, now=1)
            with lock:
                wins.append(won)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins.count(True) == 200
