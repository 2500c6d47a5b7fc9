"""Feedback memory: a card a clinician set aside is not shown to them again while nothing changed.

Per calling client (verified JWT `iss` and `tenant`; the development client with authentication
off), user (the hook context's `userId`) and patient. Two EHRs, or two tenants of one EHR, may both
have a `Patient/123` and a `Practitioner/dr-1`: those are different people, so the client is part of
the patient and user keys, and one EHR's overrides never hide another EHR's cards:
- an overridden non-critical card stays hidden while its identity is unchanged (rule, outcome - the
  MRI tier included -, indicator, and the decisive resources with their versions; see
  engine.card_merge.RuleCard.identity), for `feedback_memory_days` (default 7) and never past the
  card's own due time;
- an overridden critical card is hidden only when the override gives a reason (a coded reason or a
  comment), and then until the earlier of its due time and 24 h;
- an accepted suggestion hides nothing;
- any change of identity (an escalation, a new tier, an edited or new decisive resource) is a
  different card: it shows again at once. So does a card past its due time.
Feedback on a card applies to every rule merged into it.

Only keyed hashes (cds_hooks/pseudonyms.py) of patient, user and the identity are stored; every
time a suppression holds a card back, a memory_hidden row says so (the audit trail). If the
database cannot be read the cards are shown: forgetting is the safe direction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.api import EvaluationResult
from engine.card_merge import RuleCard, flatten_merged

from .pseudonyms import pseudonym
from .store import ClientId, Store

log = logging.getLogger("spinecds.feedback_memory")

CRITICAL_LONGEST = timedelta(hours=24)


def _instant(moment: datetime) -> str:
    """Stored instants are UTC ISO strings, so they compare as text in both databases."""
    return moment.astimezone(UTC).isoformat()


# json.dumps(..., sort_keys=True, separators=(",", ":")) builds this encoder at every call; one
# shared encoder gives the same text (it keeps no state between calls) for less.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def identity_text(identity: dict[str, Any]) -> str:
    return _CANONICAL.encode(identity)


def identity_key(identity: dict[str, Any]) -> str:
    return pseudonym("identity|" + identity_text(identity))


def person_key(kind: str, client: ClientId, person_id: str) -> str:
    """The keyed hash of a patient or user id *as known to one client* (JSON, so no separator in
    an id can make two different (client, id) pairs collide)."""
    return pseudonym(_COMPACT.encode([kind, client.iss, client.tenant, person_id]))


def due_by(card: dict[str, Any], now: datetime) -> datetime | None:
    """The card's own deadline: `dueBy`, else now + `hoursLeft` (the MESCC clock), else now +
    `deadlineHours` (the deadline the card states). An unreadable `dueBy` counts as now: whatever
    was set aside on it is shown again at once (the safe direction)."""
    spinecds = (card.get("extension") or {}).get("spinecds") or {}
    if isinstance(spinecds.get("dueBy"), str):
        try:
            return datetime.fromisoformat(spinecds["dueBy"].replace("Z", "+00:00"))
        except ValueError:
            return now
    for key in ("hoursLeft", "deadlineHours"):
        hours = spinecds.get(key)
        if isinstance(hours, (int, float)) and not isinstance(hours, bool):
            return now + timedelta(hours=hours)
    return None


def has_reason(item: dict[str, Any]) -> bool:
    override = item.get("overrideReason") or {}
    return bool(override.get("reason")) or bool(str(override.get("userComment") or "").strip())


@dataclass
class Recall:
    """What one user set aside for one patient, read once per hook call."""

    memory: FeedbackMemory
    patient_key: str
    user_key: str
    now: datetime
    active: dict[str, int] = field(default_factory=dict)  # identity key -> suppression id
    held_back: list[tuple[int, str]] = field(default_factory=list)  # (suppression id, rule id)
    # The identity keys hides() computed, by canonical identity text: rows() needs the same cards'
    # keys again, and an HMAC per card twice per call showed in profiles. Lives as long as the call.
    _identity_keys: dict[str, str] = field(default_factory=dict, repr=False)

    def identity_key(self, identity: dict[str, Any]) -> str:
        text = identity_text(identity)
        key = self._identity_keys.get(text)
        if key is None:
            key = self._identity_keys[text] = pseudonym("identity|" + text)
        return key

    def hides(self, identity: dict[str, Any]) -> bool:
        suppression = self.active.get(self.identity_key(identity))
        if suppression is None:
            return False
        self.held_back.append((suppression, str(identity.get("ruleId"))))
        return True

    def rows(self, hook_instance: str, result: EvaluationResult) -> dict[str, list[tuple[Any, ...]]]:
        """What to store (MEMORY_WRITES statement -> rows): what each returned card was (for later
        feedback) and the audit of what was held back. The caller writes them in the transaction
        of the call's audit row (Store.record_evaluation), so neither is stored without the other."""
        rows: dict[str, list[tuple[Any, ...]]] = {}
        evaluated = _instant(self.now)
        cards = [
            self._card_row(str(host.card["uuid"]), item, evaluated)
            for host in result.shown
            for item in _with_merged(host)
        ]
        if cards:
            rows["card"] = cards
        if self.held_back:
            rows["hidden"] = [(evaluated, hook_instance, sid, rule) for sid, rule in self.held_back]
        return rows

    def _card_row(self, uuid: str, item: RuleCard, evaluated: str) -> tuple[Any, ...]:
        due = due_by(item.card, self.now)
        return (
            uuid,
            item.rule_id,
            self.patient_key,
            self.user_key,
            self.identity_key(item.identity()),
            item.indicator,
            _instant(due) if due else None,
            evaluated,
        )


def _with_merged(host: RuleCard) -> list[RuleCard]:
    return [host, *flatten_merged(host)]


class FeedbackMemory:
    def __init__(self, store: Store, days: float) -> None:
        self.store = store
        self.period = timedelta(days=days)

    @property
    def enabled(self) -> bool:
        return self.period > timedelta(0)

    def recall(self, client: ClientId, user_id: str | None, patient_id: str, now: datetime) -> Recall | None:
        """This client's user's suppressions for this patient; None when memory is off, the user is
        unknown, or the database cannot say (then every card is shown)."""
        if not self.enabled or not user_id:
            return None
        recall = Recall(self, person_key("patient", client, patient_id), person_key("user", client, user_id), now)
        try:
            rows = self.store.memory_read("active", (recall.patient_key, recall.user_key, _instant(now)))
        except Exception as error:  # noqa: BLE001 - unreadable memory must never hide a card
            log.error("feedback memory unavailable: showing every card", extra={"error": type(error).__name__})
            return None
        recall.active = {row["identity_key"]: int(row["id"]) for row in rows}
        return recall

    def learn(self, items: Iterable[dict[str, Any]], now: datetime) -> int:
        """Suppressions from spec-shaped feedback items; returns how many were created."""
        rows = []
        for item in items:
            if item.get("outcome") != "overridden":
                continue  # an accepted suggestion hides nothing by itself
            for card in self.store.memory_read("cards", (str(item["card"]),)):
                row = self._suppression(card, item, now)
                if row is not None:
                    rows.append(row)
        return self.store.memory_write("suppression", rows) if rows else 0

    def _suppression(self, card: dict[str, Any], item: dict[str, Any], now: datetime) -> tuple[Any, ...] | None:
        due = datetime.fromisoformat(card["due_by"]) if card.get("due_by") else None
        if card["indicator"] == "critical":
            if not has_reason(item):
                return None  # a critical card is never hidden on an override without a reason
            until = now + CRITICAL_LONGEST
        else:
            until = now + self.period
        if due is not None:
            until = min(until, due)
        if until <= now:
            return None
        override = item.get("overrideReason") or {}
        reason = {key: override[key] for key in ("reason", "userComment") if override.get(key)}
        return (
            card["patient_key"],
            card["user_key"],
            card["rule_id"],
            card["identity_key"],
            card["card_uuid"],
            card["indicator"],
            _instant(now),
            _instant(until),
            json.dumps(reason) if reason else None,
        )
