"""Start-up heap settling: keep Python's cyclic garbage collector off the long-lived start-up objects.

After start-up a worker holds ~100k long-lived container objects (compiled rules, fhir.resources and
pydantic schemas, terminology, profiles). Every full (generation-2) collection re-scans all of them;
under load that cost ~0.6 ms of CPU per request on average (bench/request_profile.py). `gc.freeze()`
moves everything alive at that moment into a permanent generation the collector never scans: the
objects stay alive (they would anyway), and request garbage is collected as before, so memory stays
flat (the soak in docs/performance.md).
"""

from __future__ import annotations

import gc


def settle_heap() -> int:
    """Collect start-up garbage once, then freeze the survivors; returns how many objects are frozen.
    Called again after a rule reload: unfreezing first lets the collector free the replaced engine."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
