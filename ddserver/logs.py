"""Log lines: plain text or one JSON object a line, the request context they carry (request id, client, host,
result), request ids for the HTTP components, and the scrubbing that keeps secrets out of every line."""

from __future__ import annotations

import contextvars
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

#: The header a request id comes in and goes back out in.
REQUEST_ID_HEADER = "X-Request-Id"
#: An incoming request id is kept when it is this (a UUID, a hex string, a load balancer's id), else replaced.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
#: The fields of the request context, in the order JSON lines give them.
FIELDS = ("request_id", "client", "host", "result")

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("ddserver_log_context", default=None)

# What a log line must never carry. Messages are written by ddserver's code, which never logs a secret on
# purpose; these catch what could slip in with text from outside (a URL, a header, an exception's message).
_SCRUBS = (
    # Basic/Bearer credentials of an Authorization header, with the header's name or without.
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)\S+(\s+[^\s'\"]+)?"), r"\1(secret)"),
    (re.compile(r"\b(Basic|Bearer) [A-Za-z0-9+/=._~-]{8,}"), r"\1 (secret)"),
    # Parameters that hold secrets, in query strings, forms and key=value text.
    (
        re.compile(
            r"(?i)\b(password|passwd|pass|pwd|secret|token|csrf_token|api_key|apikey|key|tsig_secret|"
            r"current|password2)=([^&\s;,'\"]+)"
        ),
        r"\1=(secret)",
    ),
    # Credentials in a URL (https://user:secret@host/, as routers send them, or a database URL).
    (re.compile(r"(://[^/\s:@]*):([^/\s@]+)@"), r"\1:(secret)@"),
)


def scrub(text: str) -> str:
    """``text`` with anything that looks like a credential replaced by ``(secret)``."""
    for pattern, replacement in _SCRUBS:
        text = pattern.sub(replacement, text)
    return text


# -- the request context -----------------------------------------------------------------------------------


def request_id(incoming: str | None) -> str:
    """The id of a request: the incoming ``X-Request-Id`` when it is sane (at most 128 letters, digits and
    ``.:@_-``), else a new random one (16 hex digits)."""
    if incoming and _SANE_ID.fullmatch(incoming):
        return incoming
    # Unique enough to find a request's lines, and no secret: the fast generator, not the system's (a syscall).
    return f"{random.getrandbits(64):016x}"


def context() -> dict[str, str]:
    """The fields of the request being handled (empty outside a request)."""
    return dict(_context.get() or {})


def set_fields(**fields: str | None) -> None:
    """Add fields (client, host, result) to the context of the request being handled, for every line it logs
    from now on; does nothing outside a request. None or "" leaves a field out."""
    current = _context.get()
    if current is None:
        return
    current.update({name: str(value) for name, value in fields.items() if value})


def serve_with_request_id(
    app: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]],
    environ: dict[str, Any],
    start_response: Callable[..., Any],
) -> Iterable[bytes]:
    """Call the WSGI ``app`` for one request with a request id: in the log context while it runs, in
    ``environ["ddserver.request_id"]``, and in the answer's ``X-Request-Id`` header."""
    rid = request_id(environ.get("HTTP_X_REQUEST_ID"))
    environ["ddserver.request_id"] = rid

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        # ddserver's apps never set the header themselves: appended, not searched for.
        headers.append((REQUEST_ID_HEADER, rid))
        return start_response(status, headers, exc_info) if exc_info is not None else start_response(status, headers)

    token = _context.set({"request_id": rid})
    try:
        return app(environ, start)
    finally:
        _context.reset(token)


class ErrorStream:
    """A WSGI ``wsgi.errors`` stream that logs what is written to it (Bottle writes a failed route's traceback
    there), so that it becomes log entries in the configured format instead of raw lines on stderr."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._pending: list[str] = []

    def write(self, text: str) -> int:
        self._pending.append(text)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        self._pending.extend(lines)

    def flush(self) -> None:
        text = "".join(self._pending).rstrip("\n")
        self._pending.clear()
        if text:
            self.logger.error("%s", text)


# -- formats ---------------------------------------------------------------------------------------------------


class TextFormatter(logging.Formatter):
    """``time component[pid] LEVEL logger: message``, with the request id when there is one; scrubbed."""

    def __init__(self, component: str) -> None:
        super().__init__(f"%(asctime)s {component}[%(process)d] %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        rid = getattr(record, "request_id", None) or (_context.get() or {}).get("request_id")
        if rid:
            first, sep, rest = text.partition("\n")
            text = f"{first} [{rid}]{sep}{rest}"
        return scrub(text)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts (UTC, ISO 8601), level, component, logger, pid, message, and where known
    request_id, client, host, result (from the request context or the call's ``extra``); an exception's
    traceback in ``exception``. Every text is scrubbed."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, Any] = {
            "ts": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "pid": record.process,
            "message": scrub(record.getMessage()),
        }
        fields = _context.get() or {}
        for name in FIELDS:
            value = getattr(record, name, None) or fields.get(name)
            if value:
                line[name] = scrub(str(value))
        for name in ("method", "route", "status", "duration_ms"):
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value if isinstance(value, int | float) else scrub(str(value))
        if record.exc_info:
            line["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def formatter(kind: str, component: str) -> logging.Formatter:
    """The formatter of ``[logging] format`` (``text`` or ``json``) for one process."""
    return JsonFormatter(component) if kind == "json" else TextFormatter(component)
