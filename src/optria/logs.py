"""Structured (JSON-lines) logging with a last line of defence against leaked secrets.

Code never logs secrets on purpose; the redacting filter replaces any configured secret
value that still reaches a record (say, inside an exception text from a driver) with
``[redacted]`` before it is written.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable

_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_secrets: set[str] = set()


def register_secrets(values: Iterable[str | None]) -> None:
    """Values that must never appear in a log line (passwords, keys, DSN passwords)."""
    for v in values:
        if v and len(v) >= 4:
            _secrets.add(v)


def redact(text: str) -> str:
    for s in _secrets:
        if s in text:
            text = text.replace(s, "[redacted]")
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(payload, default=str, ensure_ascii=False))


def setup_logging(level: str = "INFO", stream=None) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_optria", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._optria = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("asyncua", "psycopg.pool", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def settings_secrets(settings) -> list[str]:
    """Every secret value in Settings, plus the password inside a DSN."""
    out = []
    for name in ("session_secret", "openai_api_key", "opcua_password", "pgpassword", "database_url", "database_read_url"):
        v = getattr(settings, name, None)
        if v is not None:
            out.append(v.get_secret_value())
    for dsn_field in ("database_url", "database_read_url"):
        v = getattr(settings, dsn_field, None)
        if v is not None:
            out.append(_dsn_password(v.get_secret_value()))
    return [s for s in out if s]


def _dsn_password(dsn: str) -> str | None:
    try:
        import psycopg

        return psycopg.conninfo.conninfo_to_dict(dsn).get("password")  # type: ignore[return-value]
    except Exception:
        return None
