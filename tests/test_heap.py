"""gc.freeze() after start-up (cds_hooks.heap): start-up objects leave the collector's scans, and
garbage made afterwards is still collected, so memory stays flat."""

from __future__ import annotations

import gc
import weakref

from fastapi.testclient import TestClient

from cds_hooks.app import create_app
from cds_hooks.auth_settings import AuthSettings
from cds_hooks.heap import settle_heap
from cds_hooks.settings import Settings


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_settle_heap_freezes_what_is_alive_and_still_collects_later_cycles() -> None:
    frozen = settle_heap()
    # Live server threads left by other tests may free a few frozen objects in between.
    assert frozen > 1000 and frozen - 1000 <= gc.get_freeze_count() <= frozen
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # a reference cycle: only the cyclic collector frees it
    watch = weakref.ref(a)
    del a, b
    gc.collect()
    assert watch() is None, "a cycle made after the freeze must still be collected"


def test_settle_heap_again_frees_cycles_frozen_earlier() -> None:
    # A rule reload replaces the engine after the freeze: settling again must let its cycles go.
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    watch = weakref.ref(a)
    settle_heap()
    del a, b
    gc.collect()
    assert watch() is not None, "frozen objects are not collected (what freeze is for)"
    settle_heap()
    assert watch() is None


def test_service_start_up_freezes_the_heap(tmp_path) -> None:  # type: ignore[no-untyped-def]
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    app = create_app(Settings(database_path=tmp_path / "a.sqlite3"), auth_settings=AuthSettings(auth_enabled=False))
    with TestClient(app):
        assert gc.get_freeze_count() > 1000
