"""`$now-3d` style instants in example cases, so clinical clocks stay meaningful whenever they run."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

_RELATIVE = re.compile(r"^\$now(?:(?P<sign>[+-])(?P<amount>\d+(?:\.\d+)?)(?P<unit>[mhdw]))?$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def resolve(value: Any, now: datetime) -> Any:
    """Replace every `$now[+-]N(m|h|d|w)` string, anywhere in a JSON value, by an ISO instant."""
    if isinstance(value, str):
        match = _RELATIVE.match(value)
        if not match:
            return value
        moment = now
        if match["sign"]:
            delta = timedelta(**{_UNITS[match["unit"]]: float(match["amount"])})
            moment = now + delta if match["sign"] == "+" else now - delta
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, dict):
        return {key: resolve(item, now) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, now) for item in value]
    return value
