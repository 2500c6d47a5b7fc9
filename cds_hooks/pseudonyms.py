"""Keyed hashes of patient, user and resource ids: what the store keeps instead of the ids.

`pseudonym(value)` is HMAC-SHA256 (hex) with the secret setting SPINECDS_PSEUDONYM_KEY. The same id
always gives the same pseudonym (so the store can find its rows again), but without the key the id
cannot be recovered or guessed by hashing candidate ids. Without a configured key a development key
is used and a warning is logged once: never run production like that.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os

log = logging.getLogger("spinecds.pseudonyms")

DEVELOPMENT_KEY = "spinecds-development-pseudonym-key-not-secret"
_warned = False


def _key() -> bytes:
    global _warned
    key = os.environ.get("SPINECDS_PSEUDONYM_KEY", "")
    if not key:
        if not _warned:
            log.warning("SPINECDS_PSEUDONYM_KEY is not set: using the development key (never in production)")
            _warned = True
        key = DEVELOPMENT_KEY
    return key.encode("utf-8")


def pseudonym(value: str, key: bytes | None = None) -> str:
    """HMAC-SHA256 hex of `value` under the configured key (or `key`)."""
    return hmac.new(key if key is not None else _key(), value.encode("utf-8"), hashlib.sha256).hexdigest()
