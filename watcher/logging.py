"""structlog setup: JSON lines off a terminal, readable on one; secrets redacted.

The pipeline is small pure processors over the event dict. :class:`SecretRedactor`
replaces every known secret value (registered once resolved) wherever it appears
in a log line, as a last line of defence behind "never log a secret".
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import FilteringBoundLogger

#: What :func:`get_logger` returns: structlog's filtering bound logger (``info``,
#: ``warning``, ``error``, ``exception``, ``bind``...), as configured below.
Logger = FilteringBoundLogger

_SECRETS: set[str] = set()
REDACTED = "[redacted]"


def register_secret(value: str) -> None:
    """Remember a secret so no log line can ever carry it."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """Replace every registered secret in ``text``."""
    for secret in secrets if secrets is not None else _SECRETS:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: scrub registered secrets from every value."""
    if not _SECRETS:
        return event_dict
    for key, value in list(event_dict.items()):
        event_dict[key] = _scrub(value)
    return event_dict


class _LateStreamLogger:
    """Writes each line to the stream current *at write time*.

    ``structlog.PrintLogger`` keeps the file object it was built with; when
    ``sys.stdout`` is swapped (pytest capture, a daemonized process), that object
    may be closed. Looking the stream up per line avoids writing to a dead file.
    """

    def __init__(self, stream: TextIO | None, use_stderr: bool) -> None:
        self._stream = stream
        self._use_stderr = use_stderr

    def _out(self) -> TextIO:
        if self._stream is not None and not self._stream.closed:
            return self._stream
        return sys.stderr if self._use_stderr else sys.stdout

    def msg(self, message: str) -> None:
        out = self._out()
        out.write(message + "\n")
        out.flush()

    log = debug = info = warn = warning = error = critical = exception = failure = fatal = msg


def configure_logging(
    *, level: str = "info", stream: TextIO | None = None, json: bool | None = None
) -> None:
    """Configure structlog once for the process."""
    out = stream or sys.stdout
    use_json = (not out.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=lambda *_args: _LateStreamLogger(
            None if stream in (None, sys.stdout, sys.stderr) else stream,
            use_stderr=stream is sys.stderr,
        ),
        cache_logger_on_first_use=False,
    )
    # httpx logs full URLs at INFO; keep it at WARNING.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> Logger:
    """A logger named ``name``; the process-wide configuration applies to every line."""
    logger: Logger = structlog.get_logger(name) if name else structlog.get_logger()
    return logger
