"""A tiny reverse proxy on 127.0.0.1 that serves an upstream under a prefix, as nginx's

    location /backprop/ { proxy_pass http://127.0.0.1:8000/; }

does: `/backprop/x` goes upstream as `/x`, everything else is a 404 the proxy answers itself and
records (a page that asks for a URL outside the prefix is a bug). One request per upstream
connection (`Connection: close`), bytes piped both ways unchanged, so streamed responses (SSE)
arrive as they are sent. Runs its own event loop in a thread; `stop()` ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from .live import free_port

MAX_HEAD = 64 * 1024


class PrefixProxy:
    """Serves `upstream_port` under `prefix` on a port of its own; `outside` lists the stray
    request targets it refused."""

    def __init__(self, upstream_port: int, prefix: str) -> None:
        self.upstream_port = upstream_port
        self.prefix = prefix.rstrip("/")
        self.port = free_port()
        self.outside: list[str] = []
        self.forwarded = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="prefix-proxy", daemon=True)
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None

    @property
    def url(self) -> str:
        """The site's address through the proxy, prefix included (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def start(self) -> PrefixProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the proxy did not start")
        return self

    def stop(self) -> None:
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self._ready.set()
        async with server:
            await self._stopping.wait()
            server.close()
            # connections the browser kept open: end them here, each closing its sockets,
            # rather than leave them to be destroyed with the loop
            # One turn first: a connection accepted just now has a task that has not started,
            # and cancelled before its first step it would never close its socket.
            await asyncio.sleep(0)
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            # and the transports' connection_lost (which closes each socket) runs in a later turn
            for _ in range(3):
                await asyncio.sleep(0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._one_request(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, OSError):
                writer.close()
                await writer.wait_closed()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        if len(head) > MAX_HEAD:
            return
        request_line, _, rest = head.partition(b"\r\n")
        method, target, version = request_line.decode("latin-1").split(" ", 2)
        if not (target == self.prefix or target.startswith(self.prefix + "/")):
            self.outside.append(f"{method} {target}")
            body = f"outside {self.prefix}: {target}\n".encode()
            writer.write(
                b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            return
        inside = target[len(self.prefix) :] or "/"
        headers = [
            line
            for line in rest.split(b"\r\n")
            if line and not line.lower().startswith((b"connection:", b"keep-alive:"))
        ]
        upstream_head = b"\r\n".join(
            [f"{method} {inside} {version}".encode("latin-1"), *headers, b"Connection: close"]
        )
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.forwarded += 1
        up_writer.write(upstream_head + b"\r\n\r\n")
        await up_writer.drain()

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while chunk := await source.read(65536):
                    sink.write(chunk)
                    await sink.drain()

        to_upstream = asyncio.ensure_future(pipe(reader, up_writer))
        try:
            await asyncio.wait_for(pipe(up_reader, writer), 120)  # until upstream closes
        finally:
            to_upstream.cancel()
            with contextlib.suppress(ConnectionError, OSError):
                up_writer.close()
