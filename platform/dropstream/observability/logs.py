"""Log records as JSON lines (``DROPSTREAM_LOG_FORMAT=json``) or readable text, each carrying the
tenant and job it concerns. Configured once per process, only if the host application has not
configured logging itself (a library must not fight its embedder)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from dropstream.observability.context import current

#: LogRecord attributes that are not extra fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class ContextFilter(logging.Filter):
    """Copies the current tenant/job/request context onto every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in current().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = " ".join(f"{k}={v}" for k, v in vars(record).items()
                         if k not in _STANDARD and not k.startswith("_"))
        return f"{text} [{extra}]" if extra else text


def configure(level: int, json_lines: bool) -> None:
    root = logging.getLogger()
    dropstream = logging.getLogger("dropstream")
    dropstream.setLevel(level)
    if any(isinstance(f, ContextFilter) for h in root.handlers for f in h.filters):
        return  # configured already (a second app in this process)
    if root.handlers:
        # The embedding application owns logging: only add our context to its records.
        for handler in root.handlers:
            handler.addFilter(ContextFilter())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if json_lines else
                         TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
