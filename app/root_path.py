"""Serving under a sub-path such as `/backprop` behind a reverse proxy (ROOT_PATH).

The ASGI convention (uvicorn's `--root-path`, Starlette >= 0.33): `scope["root_path"]` is the
prefix and `scope["path"]` is the full path, prefix included; routing matches what follows the
prefix. `RootPath` applies ROOT_PATH that way when the server has not, so the setting works under
any ASGI server. Everything the app links to, redirects to or fetches is then built from the
scope's root path, never from an absolute "/...".
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class RootPath:
    """ASGI middleware: give every request the root path `root` unless the server already did.

    A proxy that strips the prefix (nginx `proxy_pass http://127.0.0.1:8000/;`) sends `/me`,
    which becomes `/backprop/me`; one that keeps it sends `/backprop/me`, which is left alone.
    """

    def __init__(self, app: ASGIApp, root: str) -> None:
        self.app = app
        self.root = root
        self.raw_root = root.encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not scope.get("root_path"):
            scope["root_path"] = self.root
            path: str = scope["path"]
            if not (path == self.root or path.startswith(self.root + "/")):
                scope["path"] = self.root + path
                raw = scope.get("raw_path")
                if raw is not None:
                    scope["raw_path"] = self.raw_root + raw
        await self.app(scope, receive, send)


def app_root(scope: Scope) -> str:
    """The site's prefix ("" at the top of the host): a mount (/static) keeps the app's own in
    `app_root_path` while its `root_path` grows by the mount's path."""
    return (scope.get("app_root_path") or scope.get("root_path") or "").rstrip("/")


def route_path(scope: Scope) -> str:
    """The path inside the site, prefix removed: what routes and path rules are written for."""
    path: str = scope["path"]
    root = app_root(scope)
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :] or "/"
    return path


def site_url(scope: Scope, path: str) -> str:
    """A path within the site (e.g. "/login?next=%2Fme") as the browser must ask for it."""
    return app_root(scope) + path
