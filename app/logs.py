"""Logging for the server and its tools: one stderr handler, text or JSON, and a request line.

Configured from the app factory, so it applies under plain `uvicorn app.main:app` as much as
under `backprop serve`; uvicorn's own loggers are routed to the same handler, and its access
log is switched off because `RequestLog` writes the one line per request (with its duration).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: The extra fields a request line carries; in JSON each becomes a key of its own.
REQUEST_FIELDS = ("method", "path", "status", "duration_ms")

access_log = logging.getLogger("backprop.access")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, a request's fields, a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single line of JSON (ASCII, so no character in it can break a line)."""
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in REQUEST_FIELDS:
            if key in record.__dict__:
                entry[key] = record.__dict__[key]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time, as `logging.lastResort` does: test
    runners swap sys.stderr after the handler is made, and a kept reference would go stale."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr


def configure_logging(level: str = "INFO", fmt: Literal["text", "json"] = "text") -> None:
    """Send backprop's and uvicorn's records to one stderr handler at `level`, in `fmt`.

    Idempotent: calling it again (every app a test builds) reconfigures that one handler rather
    than adding another. Other libraries' records go there too, from WARNING up.
    """
    number = logging.getLevelNamesMapping()[level.upper()]
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, StderrHandler)), None)
    if handler is None:
        handler = StderrHandler()
        root.addHandler(handler)
    handler.setLevel(number)  # a floor for every logger, uvicorn's included
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.setLevel(max(logging.WARNING, number))  # no library INFO or DEBUG chatter
    logging.getLogger("backprop").setLevel(number)
    # uvicorn's default config gives these loggers handlers of their own, in its format; its
    # levels (--log-level) are left as they are.
    uvicorn = logging.getLogger("uvicorn")
    uvicorn.handlers.clear()
    uvicorn.propagate = True
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    # With no handler to reach, uvicorn skips its access line altogether (hasHandlers()).
    uvicorn_access.propagate = False


class RequestLog:
    """ASGI middleware: one line per HTTP request, `METHOD path status duration`.

    The path only, never the query string, which may carry secrets; control characters in the
    (percent-decoded) path are escaped so a request cannot forge log lines.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before it answers

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            method, path = scope["method"], _without_secrets(scope["path"])
            shown = path if path.isprintable() else path.encode("unicode_escape").decode("ascii")
            fields = {"method": method, "path": path, "status": status, "duration_ms": duration_ms}
            access_log.info("%s %s %d %.2f ms", method, shown, status, duration_ms, extra=fields)


#: A reset link's token is a credential until used: the request line keeps only its start.
_RESET = "/reset/"


def _without_secrets(path: str) -> str:
    """The path as logged: a password-reset token is cut to its first four characters."""
    at = path.find(_RESET)
    if at < 0:
        return path
    start = at + len(_RESET)
    return path[: start + 4] + "…" if len(path) > start + 4 else path
