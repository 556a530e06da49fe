"""app.channel on real sockets, under uvloop and asyncio's own loop: messages arrive whole however
the bytes are split, a cancelled wait loses nothing, and a sender gone mid-message is an EOF."""

from __future__ import annotations

import asyncio
import pickle
import struct
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from app.channel import Sender, channel

RUNNERS: dict[str, Callable[[Coroutine[Any, Any, Any]], Any]] = {
    "uvloop": uvloop.run,
    "asyncio": asyncio.run,
}
LOOPS = RUNNERS.keys()


def on_loop(name: str, main: Coroutine[Any, Any, Any]) -> Any:
    """`main` run to its end by a new loop of that kind, in a thread of its own (another test may
    have left a loop running in this one)."""
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(RUNNERS[name](main)))
    thread.start()
    thread.join(30)
    assert outcome, "the coroutine raised or did not finish (see the thread's traceback)"
    return outcome[0]


def frame(message: Any) -> bytes:
    """What Sender writes for `message`, built by hand to write it in parts."""
    data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    return struct.pack("!Q", len(data)) + data


@pytest.mark.parametrize("loop", LOOPS)
def test_messages_larger_than_the_socket_buffer_arrive_whole_and_in_order(loop):
    big = bytes(range(256)) * 16_384  # 4 MiB: the sender can only ever get part of it in
    messages = [big, ("epoch", {"loss": 0.5}, None), {"result": big[::-1]}]
    receiver, theirs = channel()
    sender = Sender(theirs)

    def send_all() -> None:
        for message in messages:
            sender.send(message)
        theirs.close()

    async def receive() -> list[Any]:
        thread = threading.Thread(target=send_all)
        thread.start()
        received = [await receiver.recv() for _ in messages]
        with pytest.raises(EOFError):
            await receiver.recv()
        thread.join(10)
        return received

    assert on_loop(loop, receive()) == messages
    receiver.close()


@pytest.mark.parametrize("loop", LOOPS)
def test_a_wait_cancelled_halfway_through_a_message_loses_none_of_it(loop):
    message = ("result", list(range(10_000)))
    data = frame(message)
    receiver, theirs = channel()

    async def receive() -> Any:
        theirs.sendall(data[:5])  # not even the whole length yet
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(receiver.recv(), 0.2)
        theirs.sendall(data[5 : len(data) // 2])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(receiver.recv(), 0.2)
        theirs.sendall(data[len(data) // 2 :] + frame("next"))
        return await receiver.recv(), await receiver.recv()

    assert on_loop(loop, receive()) == (message, "next")
    receiver.close()
    theirs.close()


@pytest.mark.parametrize("loop", LOOPS)
def test_a_sender_gone_mid_message_is_an_eof_after_the_whole_messages_before_it(loop):
    receiver, theirs = channel()

    async def receive() -> tuple[Any, Any]:
        theirs.sendall(frame("whole") + frame("cut short")[:-3])
        first = await receiver.recv()
        with pytest.raises(TimeoutError):  # the rest of the second one may still come
            await asyncio.wait_for(receiver.recv(), 0.2)
        theirs.close()
        with pytest.raises(EOFError) as gone:
            await asyncio.wait_for(receiver.recv(), 5)
        return first, str(gone.value)

    assert on_loop(loop, receive()) == ("whole", "the sending process closed its end")
    receiver.close()


def test_sending_to_a_closed_receiver_fails():
    receiver, theirs = channel()
    receiver.close()
    with pytest.raises(OSError):
        Sender(theirs).send("nobody listens")
    theirs.close()
