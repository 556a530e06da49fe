"""Messages from a helper process to the event loop, read whole whatever the loop does to the fd.

`multiprocessing.Connection.recv` reads one message assuming its descriptor blocks until the rest
arrives. uvloop's `add_reader` switches a descriptor to non-blocking mode and leaves it so, and a
message the helper is still writing (anything over 16 KiB goes out as a header write and then a
body write) then made `recv` raise BlockingIOError halfway, which looked like the helper dying.

So the helper's answers come over a socket whose receiving end is non-blocking by our own choice:
each read takes whatever has arrived into a buffer, and a message is unpickled only once its
length-prefixed frame is complete. A partly written message just waits for the next read, under
asyncio's loop or uvloop alike. The helper's end blocks and writes whole frames.
Messages the other way (to the helper) stay on a one-way `multiprocessing.Pipe` that no loop
watches, so its descriptor stays blocking as Connection needs.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
from collections import deque
from typing import Any

_HEADER = struct.Struct("!Q")  # the pickled message's length in bytes
_CHUNK = 1 << 16


def channel() -> tuple[Receiver, socket.socket]:
    """A Receiver for this process, and the socket to pass to the helper (it wraps it in Sender)."""
    ours, theirs = socket.socketpair()
    return Receiver(ours), theirs


class Sender:
    """The helper's end: each message goes out as one whole frame."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        self._sock = sock

    def send(self, message: Any) -> None:
        """Write one message; blocks while the receiver's buffer is full (OSError once it left)."""
        data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        self._sock.sendall(_HEADER.pack(len(data)) + data)


class Receiver:
    """This process's end: reads never block, and only complete frames become messages."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._buffer = bytearray()
        self._messages: deque[Any] = deque()
        self._eof = False

    def fileno(self) -> int:
        """The socket's descriptor, for the event loop's add_reader."""
        return self._sock.fileno()

    def _read(self) -> None:
        """One non-blocking read into the buffer, then every frame it completed into messages."""
        if self._eof:
            return
        try:
            chunk = self._sock.recv(_CHUNK)
        except BlockingIOError:
            return
        if not chunk:
            self._eof = True
        self._buffer += chunk
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            end = _HEADER.size + size
            if len(self._buffer) < end:
                break
            self._messages.append(pickle.loads(bytes(self._buffer[_HEADER.size : end])))
            del self._buffer[:end]

    async def recv(self) -> Any:
        """The next message, awaited without blocking; a cancelled wait keeps what it read."""
        while not self._messages:
            self._read()
            if self._messages:
                break
            if self._eof:
                raise EOFError("the sending process closed its end")
            await _readable(self._sock.fileno())
        return self._messages.popleft()

    def close(self) -> None:
        """Close this end; the sender's next write fails."""
        self._sock.close()


def _set_once(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


async def _readable(fd: int) -> None:
    """Wait until `fd` has something to read (or its end of file); reads nothing."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(fd, _set_once, ready)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
