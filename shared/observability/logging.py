"""Structured JSON logs. Only whitelisted, PHI-free fields are ever written: no patient IDs, names or
values. Pass context with `extra={...}`; keys outside SAFE_FIELDS are dropped."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Final

SAFE_FIELDS: Final = frozenset(
    {
        "event_id",
        "topic",
        "partition",
        "offset",
        "rule_id",
        "outcome",
        "error_type",
        "duration_ms",
        "count",
        "url",
        "attempt",
        "group",
        "schema_id",
        "analyte",
        "reason_code",
    }
)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in SAFE_FIELDS:
            if key in record.__dict__:
                doc[key] = record.__dict__[key]
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: messages and tracebacks can quote input values.
            doc["error_type"] = record.exc_info[0].__name__
        return json.dumps(doc, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel("WARNING")
