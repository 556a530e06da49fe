"""Security on every response: headers, a body-size cap, a signed visitor cookie and CSRF tokens.

Written as plain ASGI middleware rather than BaseHTTPMiddleware: it runs on every request, and
plain ASGI costs a fraction as much and streams responses (SSE) untouched.
"""

from __future__ import annotations

import hmac
import json
import secrets

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..hashing import keyed_hasher
from ..root_path import app_root, route_path

VISITOR_COOKIE = "bp_visitor"
SESSION_COOKIE = "bp_session"
CSRF_FIELD = "csrf_token"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


#: Credentials and a learner's own data: never stored by a browser or a shared cache (RFC 6749
#: section 5.1 asks it of the token endpoint). Responses made for one user or one visitor are
#: added per request (see SecurityMiddleware).
PRIVATE_PATHS = ("/api/auth/token", "/api/me", "/me", "/reset", "/review")
#: The Cache-Control of every response above: `private` for caches that ignore `no-store`.
NO_STORE = b"private, no-store"


def is_private_path(path: str) -> bool:
    """True for the paths in PRIVATE_PATHS and everything under them."""
    return any(path == p or path.startswith(p + "/") for p in PRIVATE_PATHS)


def sign(secret: str, value: str, purpose: str) -> str:
    """A MAC of `value` for one purpose, 32 hex digits; purposes never share signatures.

    Keyed BLAKE2b rather than HMAC: one C call on a pre-keyed copy, and lesson pages sign twice
    per request (the visitor cookie and its CSRF token).
    """
    digest = keyed_hasher("signing", secret, 16).copy()
    digest.update(f"{purpose}|{value}".encode())
    return digest.hexdigest()


def raw_header(scope: Scope, name: bytes) -> str | None:
    """The first header called `name` (lower case), read from the raw list: no Headers object."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def read_cookie(scope: Scope, name: str) -> str | None:
    """One cookie's value from the raw headers, without building a Request.

    A plain split, as browsers send `a=1; b=2`: http.cookies parses the whole jar with a
    regular expression and costs more than the rest of a lesson page's work.
    """
    prefix = name.encode() + b"="
    for key, value in scope["headers"]:
        if key == b"cookie":
            for part in value.split(b";"):
                part = part.strip()
                if part.startswith(prefix):
                    return part[len(prefix) :].strip(b'"').decode("latin-1")
    return None


def same_text(given: str, expected: str) -> bool:
    """A constant-time comparison of two strings, any characters in either.

    hmac.compare_digest refuses str with non-ASCII characters (TypeError), and a cookie or
    header decoded as latin-1 may hold any of them: both sides are compared as UTF-8 bytes.
    """
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def visitor_id(secret: str, cookie: str | None) -> str | None:
    """The visitor id inside a signed cookie, or None if absent or forged."""
    if not cookie or "." not in cookie:
        return None
    value, _, signature = cookie.partition(".")
    if len(value) != 22 or not same_text(signature, sign(secret, value, "visitor")):
        return None
    return value


def csrf_token_for(secret: str, subject: str) -> str:
    """The CSRF token bound to a cookie (see VisitorState's csrf_subject): a page's forms carry
    it, the cookie proves it."""
    return sign(secret, subject, "csrf")


def csrf_ok(secret: str, subject: str | None, token: object) -> bool:
    """True when the submitted token matches the one derived from the request's cookie."""
    return (
        subject is not None
        and isinstance(token, str)
        and same_text(token, csrf_token_for(secret, subject))
    )


class VisitorState(dict):
    """The request state, where `visitor` and `csrf_token` are worked out on first use.

    Only responses that use them (pages with forms, the quiz) read or issue the visitor
    cookie: /healthz, static files and most of the API never pay for it or set a cookie.
    """

    def __init__(self, initial: dict, *, scope: Scope, secret: str) -> None:
        super().__init__(initial)
        self.scope = scope
        self.secret = secret
        self.new_cookie: str | None = None

    @property
    def personal(self) -> bool:
        """Whether the response may hold something of this visitor's: a new visitor cookie, or
        the visitor id or the CSRF token (a form's hidden field) was read while making it."""
        return self.new_cookie is not None or "visitor" in self or "csrf_token" in self

    def __missing__(self, key: str) -> str:
        if key == "visitor":
            visitor = visitor_id(self.secret, read_cookie(self.scope, VISITOR_COOKIE))
            if visitor is None:
                visitor = secrets.token_urlsafe(16)[:22]
                self.new_cookie = f"{visitor}.{sign(self.secret, visitor, 'visitor')}"
            self[key] = visitor
            return visitor
        if key == "csrf_subject":
            # Signed in, a form is bound to the session: logging out, or ending the session
            # from /me, voids its tokens. A guest's are bound to the year-long visitor cookie.
            session = read_cookie(self.scope, SESSION_COOKIE)
            subject = f"session:{session}" if session else self["visitor"]
            self[key] = subject
            return subject
        if key == "csrf_token":
            token = csrf_token_for(self.secret, self["csrf_subject"])
            self[key] = token
            return token
        raise KeyError(key)


class SecurityMiddleware:
    """Adds security headers (no-store on private and personal responses), refuses bodies over
    `max_body_bytes` (or the path's own limit in `body_limits`) with 413, and issues the signed
    visitor cookie that keys guests' quiz order and CSRF tokens."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret: str,
        max_body_bytes: int,
        hsts_seconds: int = 0,
        body_limits: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.secret = secret
        self.max_body_bytes = max_body_bytes
        #: paths (without ROOT_PATH) that take larger bodies than the rest: /train's own data
        self.body_limits = dict(body_limits or {})
        self.hsts = f"max-age={hsts_seconds}".encode() if hsts_seconds > 0 else None

    def _fixed_headers(self, secure: bool) -> list[tuple[bytes, bytes]]:
        """The headers every response gets; HSTS only over https, where browsers heed it."""
        if secure and self.hsts:
            return [*HEADERS, (b"strict-transport-security", self.hsts)]
        return HEADERS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secure = scope.get("scheme") == "https"
        fixed = self._fixed_headers(secure)
        limit = self.body_limits.get(route_path(scope), self.max_body_bytes)
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = True
                if too_big:
                    await self._too_large(send, fixed, limit)
                    return

        state = VisitorState(scope.get("state") or {}, scope=scope, secret=self.secret)
        scope["state"] = state
        private = is_private_path(route_path(scope))

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k for k, _ in headers}
                headers.extend((k, v) for k, v in fixed if k not in names)
                # `user` is on the state once anything looked the user up (user_of, the nav).
                # A guest's page with a form carries their CSRF token, and a first visit sets
                # their cookie: a shared cache must pass neither on to the next visitor.
                if private or state.get("user") or state.personal:
                    headers = [(k, v) for k, v in headers if k != b"cache-control"]
                    headers.append((b"cache-control", NO_STORE))
                if state.new_cookie:
                    cookie = f"{VISITOR_COOKIE}={state.new_cookie}; Path={app_root(scope)}/; "
                    cookie += "Max-Age=31536000; "
                    cookie += "HttpOnly; "
                    cookie += "SameSite=Lax" + ("; Secure" if secure else "")
                    headers.append((b"set-cookie", cookie.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, limited_receive, send_with_headers)

    async def _too_large(self, send: Send, fixed: list[tuple[bytes, bytes]], limit: int) -> None:
        body = json.dumps({"detail": f"request body is larger than {limit} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *fixed,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(HTTPException):
    """Raised inside receive() when a chunked body passes the limit; an HTTPException so that
    FastAPI's body parsing re-raises it as a 413 instead of turning it into a 400."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="request body is too large")
