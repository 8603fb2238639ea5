"""Process logging: one line per event that matters, as text or as JSON lines
(`serve --log-format text|json`), to stderr.

Secrets never go into a log line by construction (events log kinds, codes and sizes, never
bodies or values); the formatters also mask what looks like one — a webhook address's secret, a
bearer token, a `token=` parameter, a secret-named JSON field, and the values given to `hide` —
as a last defence for lines written by code that did not think of it (a traceback, a library).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import urllib.parse
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

FORMATS = ("text", "json")
# The Ray actors (worker processes of a local Ray, which inherit the frontend's environment)
# read their format from here.
FORMAT_ENV = "CALLROUTER_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"

_PATTERNS = (
    (re.compile(r"(/webhooks/uis/)[^/\s?#\"']+"), r"\1" + MASK),
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), r"\1" + MASK),
    (re.compile(r"(?i)((?:access_)?token=)[^&\s\"',;]+"), r"\1" + MASK),
    (
        re.compile(
            r"(?i)([\"']?(?:access_token|api_key|token|password|webhook_secret|secret)[\"']?"
            r"\s*[:=]\s*[\"'])[^\"']*"
        ),
        r"\1" + MASK,
    ),
)
_hidden: set[str] = set()
# Attributes every LogRecord has: the rest of its __dict__ is the caller's `extra`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def hide(secret: str) -> None:
    """Mask this value wherever it appears in a log line (the admin token)."""
    if len(secret) >= 8:  # a short value would mask ordinary words
        _hidden.add(secret)


def redact(text: str) -> str:
    """`text` with every secret-looking part masked."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    for secret in _hidden:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_url(url: str | None) -> str | None:
    """A database or Redis URL fit for a log line: its password masked."""
    if not url:
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:{MASK}@{parts.hostname or ''}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """What the caller passed as `extra=`."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, masked."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `ts` (UTC, ISO 8601), `level`, `logger`, `message`, the
    `extra` fields, and `exception` when there is one; masked."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in extra_fields(record).items():
            doc.setdefault(key, redact(value) if isinstance(value, str) else value)
        if record.exc_info:
            doc["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            doc["stack"] = redact(self.formatStack(record.stack_info))
        return orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def formatter(fmt: str) -> logging.Formatter:
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {FORMATS}, not {fmt!r}")
    return JsonFormatter() if fmt == "json" else TextFormatter()


def setup(fmt: str = "text", *, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Log everything at `level` and above to `stream` (stderr) in `fmt`, this process and the
    Ray actors it starts; Ray's own logger included, so a JSON log stays JSON."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    ray_logger = logging.getLogger("ray")  # Ray gives it a handler of its own, not propagating
    for old in list(ray_logger.handlers):
        ray_logger.removeHandler(old)
    ray_logger.propagate = True
    os.environ[FORMAT_ENV] = fmt


def setup_actor() -> None:
    """In a Ray actor's process: the format the frontend chose (text when unknown)."""
    fmt = os.environ.get(FORMAT_ENV, "text")
    setup(fmt if fmt in FORMATS else "text")
