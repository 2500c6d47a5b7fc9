"""Keyed hashes of patient, user and resource ids, so stored rows never hold the ids themselves.

`pseudonym(value)` is HMAC-SHA256 (hex) with the secret SPINECDS_PSEUDONYM_KEY. Without the key
the value is hashed with a development key that is written in this file, i.e. known to anyone:
fine for a laptop, not for real patients: patient and user ids are guessable, so hashes under a known
key are reversed by trying ids. With authentication on, the service therefore refuses to start unless
the key is set and at least MIN_KEY_BYTES long (docs/deployment.md). Rotating the key makes every
stored pseudonym unmatchable: feedback memory then starts empty, which is the safe direction.

There is deliberately no cache of value -> pseudonym: it would keep plaintext patient and user ids
in memory past their request, next to what they hash to, to save ~1 us per hash.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os

log = logging.getLogger("spinecds.pseudonyms")

KEY_VARIABLE = "SPINECDS_PSEUDONYM_KEY"
DEVELOPMENT_KEY = "spinecds-development-pseudonym-key-not-secret"
MIN_KEY_BYTES = 32

_key: bytes | None = None
# The keyed HMAC state of _key (the key already mixed in): each pseudonym copies it instead of
# keying a new HMAC (measured 1.3 -> 0.9 us). It holds the key, as _key does; never any id.
_keyed: tuple[bytes, hmac.HMAC] | None = None  # (the key it was keyed with, the HMAC)


def configure(key: str | None) -> None:
    """Use `key` from now on (the service passes its setting; None falls back to the environment,
    read now or, when it has no key yet, at the first pseudonym: a key set in the environment
    before the first request is used either way)."""
    global _key, _keyed
    chosen = key or os.environ.get(KEY_VARIABLE) or ""
    _key = chosen.encode("utf-8") if chosen else None
    _keyed = None


def uses_development_key() -> bool:
    return _current_key() == DEVELOPMENT_KEY.encode("utf-8")


def production_key_problem() -> str | None:
    """Why the configured key is not fit for real patients, or None when it is."""
    if uses_development_key():
        return f"{KEY_VARIABLE} is not set"
    if len(_current_key()) < MIN_KEY_BYTES:
        return f"{KEY_VARIABLE} is shorter than {MIN_KEY_BYTES} bytes"
    return None


def _current_key() -> bytes:
    if _key is None:
        configure(None)
    return _key or DEVELOPMENT_KEY.encode("utf-8")


def _keyed_hmac() -> hmac.HMAC:
    global _keyed
    keyed = _keyed
    # Resolved once, not per pseudonym: without a configured key, resolving reads the environment
    # each time (measured: 0.8 % of a hook call in development mode). Kept with its key, so an HMAC
    # keyed just before a configure() cannot outlive the key it was made with.
    if keyed is None or (_key is not None and keyed[0] != _key):
        key = _current_key()
        keyed = _keyed = (key, hmac.new(key, digestmod=hashlib.sha256))
    return keyed[1]


def pseudonym(value: str) -> str:
    digest = _keyed_hmac().copy()
    digest.update(value.encode("utf-8"))
    return digest.hexdigest()
