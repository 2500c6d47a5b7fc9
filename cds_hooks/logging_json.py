"""JSON-lines logging with the request id on every line.

Only identifiers the service itself makes (request id, hookInstance, service id), counts and timings
are logged: never resource content, names, patient ids or tokens.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            line["requestId"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # Type and location only: exception messages can quote request content.
            line["exception"] = record.exc_info[0].__name__
            tb = record.exc_info[2]
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            if tb is not None:
                line["where"] = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        return json.dumps(line, default=str)


class TextFormatter(JsonLinesFormatter):
    """The same fields as the JSON lines, readable in a terminal (`SPINECDS_LOG_FORMAT=text`)."""

    def format(self, record: logging.LogRecord) -> str:
        line = json.loads(super().format(record))
        head = f"{line.pop('time')} {line.pop('level'):7s} {line.pop('logger')}: {line.pop('message')}"
        return head + "".join(f" {key}={value}" for key, value in line.items())


def configure_logging(level: str = "INFO", log_format: str = "json") -> None:
    """Install our handler on the `spinecds` logger once (idempotent across app instances)."""
    logger = logging.getLogger("spinecds")
    logger.setLevel(level.upper())
    formatter: logging.Formatter = TextFormatter() if log_format == "text" else JsonLinesFormatter()
    ours = [h for h in logger.handlers if isinstance(h.formatter, JsonLinesFormatter)]
    if ours:
        for handler in ours:
            handler.setFormatter(formatter)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    logger.propagate = True  # let pytest's caplog see the records
