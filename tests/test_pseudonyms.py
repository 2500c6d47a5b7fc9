"""cds_hooks.pseudonyms: HMAC-SHA256 under the configured key, the keyed state reused but never past
a change of key."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator

import pytest

from cds_hooks import pseudonyms


@pytest.fixture(autouse=True)
def restore_key() -> Iterator[None]:
    before = pseudonyms._key
    yield
    pseudonyms._key, pseudonyms._keyed = before, None


def _expected(key: str, value: str) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def test_a_pseudonym_is_the_hmac_of_the_value_under_the_key() -> None:
    pseudonyms.configure("k" * 40)
    assert pseudonyms.pseudonym("Patient/123") == _expected("k" * 40, "Patient/123")
    assert pseudonyms.pseudonym("Patient/123") == _expected("k" * 40, "Patient/123")  # from the reused state


def test_a_new_key_is_used_at_once() -> None:
    pseudonyms.configure("a" * 40)
    pseudonyms.pseudonym("x")
    pseudonyms.configure("b" * 40)
    assert pseudonyms.pseudonym("x") == _expected("b" * 40, "x")


def test_an_hmac_keyed_just_before_a_new_key_is_not_kept() -> None:
    """The race the review found: a request reads the old key, configure() runs, then the request
    stores its HMAC. Every later pseudonym must still use the new key."""
    pseudonyms.configure("a" * 40)
    stale = (b"a" * 40, hmac.new(b"a" * 40, digestmod=hashlib.sha256))
    pseudonyms.configure("b" * 40)
    pseudonyms._keyed = stale  # stored after the reset, as the racing request would
    assert pseudonyms.pseudonym("x") == _expected("b" * 40, "x")
