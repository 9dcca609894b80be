"""Logging for every Hub process: plain lines for a terminal, or one JSON object per line.

`HUB_LOG_FORMAT=json` is for production: each line carries the time, level, logger, process,
the request id of the HTTP request it happened in, and the ids a log call names with
`extra={"delivery_id": ...}`. Whatever the format, the values of the configured secrets are
replaced by `***` before a line is written, so a password in an exception message or a
provider's error text never reaches the log.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.settings import Settings

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Ids a log call may attach with `extra=`; a JSON line carries them as fields.
FIELDS = (
    "method",
    "route",
    "status",
    "duration_ms",
    "delivery_id",
    "notification_id",
    "campaign_id",
    "channel",
    "deliveries",
)
_TEXT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"


class Redacting(logging.Formatter):
    def __init__(self, secrets: Iterable[str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        # Short values would redact ordinary words; every real secret is longer.
        self._secrets = sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class Json(Redacting):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
        }
        if (current := request_id.get()) is not None:
            line["request_id"] = current
        for name in FIELDS:
            if (value := getattr(record, name, None)) is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(line, ensure_ascii=False, default=str))


def configure(level: str, fmt: str, secrets: Iterable[str]) -> None:
    """Send every logger (uvicorn's and Dramatiq's too) through one redacting handler."""
    handler = logging.StreamHandler()
    handler.setFormatter(Json(secrets) if fmt == "json" else Redacting(secrets, _TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "dramatiq"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # flufl.bounce says "Running detector: ..." at INFO, sixteen lines for every bounce read.
    logging.getLogger("flufl.bounce").setLevel(logging.WARNING)


def setup(settings: Settings) -> None:
    """Configure this process from its settings: their secrets and the channels' are redacted."""
    from pydantic import SecretStr

    from hub.channel_config import channel_options

    secrets = settings.secret_values()
    for options in channel_options(settings).values():
        values = (getattr(options, name) for name in type(options).model_fields)
        secrets += [v.get_secret_value() for v in values if isinstance(v, SecretStr)]
    configure(settings.log_level, settings.log_format, secrets)
