"""JSON logs carrying a correlation id that follows one declaration through all services."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)
causation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "causation_id", default=None
)

# Anything shaped like an 18-character resident ID is masked before a line is written, as a
# last line of defence: code should never log one, but a careless f-string must not leak it.
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[0-9Xx])(?![0-9A-Za-z])")


def mask_resident_ids(text: str) -> str:
    """Replace the middle eight digits of anything shaped like a resident ID."""
    return _RESIDENT_ID.sub(lambda m: m.group(1) + "********" + m.group(3), text)


def mask_resident_ids_in(value: object) -> object:
    """Mask resident IDs in every string of a JSON-like value (free text people type)."""
    if isinstance(value, str):
        return mask_resident_ids(value)
    if isinstance(value, list):
        return [mask_resident_ids_in(item) for item in value]
    if isinstance(value, dict):
        return {key: mask_resident_ids_in(item) for key, item in value.items()}
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with service, correlation and causation ids."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": mask_resident_ids(record.getMessage()),
        }
        cid = correlation_id.get()
        if cid:
            entry["correlation_id"] = cid
        caus = causation_id.get()
        if caus:
            entry["causation_id"] = caus
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update({k: mask_resident_ids(str(v)) for k, v in extra.items()})
        if record.exc_info:
            entry["exc"] = mask_resident_ids(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send JSON lines to stderr for the named service (idempotent)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root.handlers = [handler]
    root.setLevel(level)
    # aiokafka is chatty at INFO about every rebalance; keep its warnings only.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
