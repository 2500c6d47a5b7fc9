"""Engine card dicts -> spec-valid card JSON (uuids filled, links absolute, validated, no empties)."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any
from urllib.parse import urljoin

from pydantic import ValidationError

from .card_models import Card
from .json_clean import strip_empty

log = logging.getLogger("spinecds.cards")


def _absolute(url: Any, base_url: str) -> Any:
    if isinstance(url, str) and url and "://" not in url:
        return urljoin(base_url.rstrip("/") + "/", url.lstrip("/"))
    return url


# What the engine issues (engine.cards.random_uuid): a canonical random uuid is kept without parsing.
_CANONICAL_V4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _random_uuid(value: Any) -> str:
    if isinstance(value, str) and _CANONICAL_V4.fullmatch(value):
        return value
    try:
        if uuid.UUID(str(value)).version == 4:
            return str(value)
    except ValueError:
        pass
    return str(uuid.uuid4())


def prepare_card(raw: dict[str, Any], base_url: str) -> dict[str, Any]:
    card = dict(raw)
    # Feedback and feedback memory name cards by uuid, so no other client may be able to compute one:
    # the engine issues random (version 4) uuids, and anything else is replaced here.
    card["uuid"] = _random_uuid(card.get("uuid"))
    card["suggestions"] = [
        {**s, "uuid": _random_uuid(s.get("uuid"))} if isinstance(s, dict) else s for s in card.get("suggestions") or []
    ] or None
    if isinstance(card.get("source"), dict):
        source = dict(card["source"])
        for key in ("url", "icon"):
            if key in source:
                source[key] = _absolute(source[key], base_url)
        card["source"] = source
    card["links"] = [
        {**link, "url": _absolute(link.get("url"), base_url)} if isinstance(link, dict) else link
        for link in card.get("links") or []
    ] or None
    return strip_empty(card)


def build_cards(raw_cards: list[dict[str, Any]], base_url: str) -> list[dict[str, Any]]:
    """Validate each card. A card that breaks the CDS Hooks spec is a bug in a rule or the engine: it is logged
    and left out, so one broken template never suppresses the other (possibly critical) cards."""
    cards = []
    for raw in raw_cards:
        if not isinstance(raw, dict):
            log.error("engine returned a card that is not a JSON object; dropped", extra={"type": type(raw).__name__})
            continue
        try:
            card = Card.model_validate(prepare_card(raw, base_url))
        except ValidationError as exc:
            extension = (raw.get("extension") or {}).get("spinecds") or {}
            if not isinstance(extension, dict):
                extension = {}
            log.error(
                "engine card violates the CDS Hooks card spec; dropped",
                extra={
                    "ruleId": extension.get("ruleId"),
                    "errors": [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)],
                },
            )
            continue
        # prepare_card stripped the input and Card's optional fields default to None, so the dump
        # without None has nothing empty left (a second strip_empty cost ~0.05 ms per answer).
        cards.append(card.model_dump(mode="json", exclude_none=True))
    return cards
