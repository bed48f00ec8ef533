"""Structured JSON logs, one object per line, with every configured secret masked.

Event-outcome lines carry `message_id`, `entity` and `outcome` as fields (pass them in `extra=`);
trait values are never logged at info level. The secret mask is defence in depth: code should
not put a secret in a message in the first place.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

import orjson

from cmrelay.masking import Masker, secret_values
from cmrelay.settings import Settings

# Attributes every LogRecord has; anything else came from `extra=` and is emitted as a field.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


# uvicorn's copy of the message with ANSI colour codes: noise in a JSON line.
_DROPPED = frozenset({"color_message"})
# Per-request and per-task chatter (httpx logs every request, Celery every task received and
# done): about six lines per event at info. Kept at debug level only.
_CHATTY = ("httpx", "httpcore", "celery.app.trace", "celery.worker.strategy")


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object: ts, level, logger, msg, and the `extra` fields."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._masker = Masker(secrets)

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line for this record."""
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key not in _DROPPED and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        line = orjson.dumps(payload, default=str).decode()
        return self._masker.text(line)


def configure_logging(
    settings: Settings, *, stream: Any = None, extra_secrets: Iterable[str] = ()
) -> None:
    """Send every log record to stderr (or `stream`) as masked JSON at settings.log_level.

    Every other handler goes, including uvicorn's and Celery's own: their loggers propagate to
    the root, so their lines come out as JSON and masked too.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter([*secret_values(settings), *extra_secrets]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    logging.captureWarnings(True)  # warnings (e.g. Celery's running-as-root one) as JSON too
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "celery.task"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    for name in _CHATTY:
        quiet = logging.WARNING if root.level > logging.DEBUG else logging.NOTSET
        logging.getLogger(name).setLevel(quiet)
