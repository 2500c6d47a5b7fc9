"""Keys and tokens for the client-authentication tests (shared by several test modules).

Tokens are minted with PyJWT from keys generated with `cryptography`.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISS = "https://ehr.example.org"
ISS_JKU = "https://ehr-jku.example.org"
ISS_TENANT = "https://tenant-ehr.example.org"
TENANT = "hospital-1"
BASE = "https://cds.example.org"
HOOK_PATH = "/cds-services/spinecds-patient-view"
HOOK_AUD = BASE + HOOK_PATH
AUTH_LOGGER = "spinecds.auth"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        algorithm = ECAlgorithm if self.alg.startswith("ES") else RSAAlgorithm
        data = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**data, "kid": self.kid, "use": "sig", "alg": self.alg}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )


def new_ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES384", ec.generate_private_key(ec.SECP384R1()))


def new_rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, "RS384", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    payload = {"iss": ISS, "aud": HOOK_AUD, "exp": now + 300, "iat": now, "jti": uuid.uuid4().hex}
    payload.update(overrides)
    return {name: value for name, value in payload.items() if value is not DROP}


DROP = object()


def mint(
    key: SigningKey,
    payload: dict[str, Any] | None = None,
    *,
    alg: str | None = None,
    headers: dict[str, Any] | None = None,
) -> str:
    header = {"kid": key.kid}
    header.update(headers or {})
    header = {name: value for name, value in header.items() if value is not DROP}
    return jwt.encode(payload or claims(), key.private, algorithm=alg or key.alg, headers=header)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: dict[str, Any], payload: dict[str, Any], sign: Any = None) -> str:
    """A token built by hand, for headers and algorithms PyJWT refuses to produce."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def write_jwks(path: Path, *keys: SigningKey) -> Path:
    path.write_text(json.dumps({"keys": [key.jwk() for key in keys]}), encoding="utf-8")
    return path
