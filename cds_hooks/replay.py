"""Remembers the `jti` of every accepted token until it expires, so a captured token cannot be replayed.

Per process: with several worker processes a replay to another worker is not detected (the tokens
are short-lived and every call also needs TLS; see docs/security.md).
"""

from __future__ import annotations

import heapq
import logging
import threading

log = logging.getLogger("spinecds.auth")


class ReplayCache:
    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._expiry: dict[tuple[str, str], float] = {}
        self._by_expiry: list[tuple[float, tuple[str, str]]] = []  # heap; may hold stale entries
        self._lock = threading.Lock()
        self._warned_full = False

    def __len__(self) -> int:
        return len(self._expiry)

    def first_use(self, iss: str, jti: str, remember_until: float, now: float) -> bool:
        """True when (iss, jti) was not seen before (and remember it until `remember_until`, epoch seconds)."""
        key = (iss, jti)
        with self._lock:
            self._forget_expired(now)
            if key in self._expiry:
                return False
            if len(self._expiry) >= self._max_entries:
                # Only signed tokens of trusted issuers get here, so filling the cache means a trusted
                # EHR sends more than max_entries calls per token lifetime: drop the soonest to expire.
                if not self._warned_full:
                    log.warning(
                        "replay cache full (%d entries): evicting the soonest-expiring jti; "
                        "raise SPINECDS_REPLAY_CACHE_MAX_ENTRIES",
                        self._max_entries,
                    )
                    self._warned_full = True
                self._evict_one()
            self._expiry[key] = remember_until
            heapq.heappush(self._by_expiry, (remember_until, key))
            return True

    def _forget_expired(self, now: float) -> None:
        while self._by_expiry and self._by_expiry[0][0] <= now:
            expiry, key = heapq.heappop(self._by_expiry)
            if self._expiry.get(key) == expiry:
                del self._expiry[key]

    def _evict_one(self) -> None:
        while self._by_expiry:
            expiry, key = heapq.heappop(self._by_expiry)
            if self._expiry.get(key) == expiry:
                del self._expiry[key]
                return
