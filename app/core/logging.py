"""Structured logging (structlog) with a processor that scrubs anything secret-looking."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"(secret|token|password|authorization|key|credential)", re.IGNORECASE)
_BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@/\s]+@")


def scrub_text(text: str) -> str:
    """Removes bearer tokens and URL passwords from free text."""
    return _URL_PASSWORD.sub(r"\1***@", _BEARER.sub("Bearer ***", text))


def _scrub(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if key != "event" and _SECRET_KEYS.search(key) and key not in ("key_id", "key_ids"):
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = scrub_text(value)
    return event


# Requests not written to the access log: health probes and scrapes arrive every few seconds
# from orchestrators and Prometheus, and would drown the lines an operator looks for.
QUIET_PATHS = ("/livez", "/readyz", "/metrics")


class QuietProbes(logging.Filter):
    """Drops uvicorn access-log records of probe and scrape requests."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = args[2].split("?", 1)[0]
            return path not in QUIET_PATHS
        return True


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Routes stdlib and structlog records through one JSON (or console) renderer."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Tracebacks become text before the scrubber runs, so they are kept and scrubbed too.
        structlog.processors.format_exc_info,
        _scrub,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; keep it quiet, our client logs what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # APScheduler logs every job run at INFO; the scheduler logs what matters itself.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, QuietProbes) for f in access.filters):
        access.addFilter(QuietProbes())


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A module logger."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
