"""The abuse limits against real servers over real sockets: a forged X-Forwarded-For through
plain uvicorn, a burst of wrong passwords, the password-hashing cap, training quotas, and what
`backprop serve` tells uvicorn (proxies, keep-alive, concurrency)."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from app.accounts import limits

from .accounts_util import PASSWORD
from .conftest import SEED
from .live import BACKPROP_SERVE, LiveServer, events, server_env
from .test_training_live import LONG, SMALL, SSE

pytestmark = pytest.mark.slow


def start(tmp_path: Path, database_url: str | None = None, command=None, **env: str) -> LiveServer:
    values = {
        **server_env(tmp_path / "data", SEED),
        "SECRET_KEY": "live-secret-key-for-tests-0123456789",
        **env,
    }
    if database_url:
        values["DATABASE_URL"] = database_url
    extra = {"command": command} if command else {}
    return LiveServer(values, log_path=tmp_path / "server.log", **extra).start()


@contextmanager
def serving(tmp_path: Path, database_url: str | None = None, command=None, **env: str):
    server = start(tmp_path, database_url, command, **env)
    try:
        yield server
    finally:
        server.stop()


def client_from(server: LiveServer, address: str = "127.0.0.1", **kwargs) -> httpx.Client:
    """A client whose connections leave from `address` (any of 127.0.0.0/8 is this machine)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, transport=transport, timeout=60, **kwargs)


def burst(count: int, send: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """`count` requests let go at the same moment, each from its own thread and connection."""
    barrier = threading.Barrier(count)
    responses: list[httpx.Response] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        barrier.wait(30)
        response = send(i)
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(responses) == count
    return responses


def login_failures(database_url: str) -> list[tuple[str, str]]:
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT username_key, address FROM login_failures")
            return [tuple(row) for row in conn.execute(query)]
    finally:
        engine.dispose()


def register(server: LiveServer, name: str) -> None:
    with client_from(server) as client:
        body = {"username": name, "password": PASSWORD}
        assert client.post("/api/auth/register", json=body).status_code == 201


# --- logins -----------------------------------------------------------------------------------


def test_rotating_x_forwarded_for_through_plain_uvicorn_gets_no_extra_guesses(live_server):
    # uvicorn trusts 127.0.0.1 by default and rewrites the peer from the header; the app does not
    with client_from(live_server) as client:
        statuses = []
        for i in range(limits.ADDRESS_LIMIT + 3):
            forged = {"X-Forwarded-For": f"198.51.100.{i}"}
            wrong = {"username": f"guess{i}", "password": "wrong-password"}
            statuses.append(client.post("/api/auth/token", data=wrong, headers=forged).status_code)
    assert statuses == [401] * limits.ADDRESS_LIMIT + [429] * 3


def test_a_burst_of_wrong_passwords_reaches_verification_at_most_the_limit(
    live_server, database_url
):
    register(live_server, "alice")
    wrong = {"username": "alice", "password": "wrong-password"}

    def guess(_: int) -> httpx.Response:
        with client_from(live_server) as client:
            return client.post("/api/auth/token", data=wrong)

    responses = burst(20, guess)
    statuses = Counter(r.status_code for r in responses)
    # a 401 is a verified guess: no more than the limit got one, all at once or not
    assert set(statuses) <= {401, 429} and statuses[401] <= limits.PAIR_LIMIT, statuses
    assert statuses[429] >= 20 - limits.PAIR_LIMIT
    assert all(int(r.headers["retry-after"]) > 0 for r in responses if r.status_code == 429)
    assert len(login_failures(database_url)) == statuses[401]
    # alice herself, from an address that has not failed, still signs in
    with client_from(live_server, "127.0.0.2") as client:
        right = {"username": "alice", "password": PASSWORD}
        assert client.post("/api/auth/token", data=right).status_code == 200


def test_sign_ups_past_the_hashing_slots_wait_briefly_then_get_503(tmp_path, database_url):
    with serving(tmp_path, database_url, REGISTER_PER_HOUR="1000") as server:

        def sign_up(i: int) -> httpx.Response:
            with client_from(server) as client:
                body = {"username": f"learner{i}", "password": PASSWORD}
                return client.post("/api/auth/register", json=body)

        responses = burst(30, sign_up)
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) == {201, 503}, statuses
    # more were hashed than there are cores: those beyond waited for a slot instead of failing
    assert statuses[201] > limits.CORES
    assert all(r.headers["retry-after"] == "1" for r in responses if r.status_code == 503)
    assert "busy" in next(r for r in responses if r.status_code == 503).json()["detail"]


# --- training -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trainer(tmp_path_factory) -> Iterator[LiveServer]:
    """Two training processes and two places to wait: room for four runs in all."""
    folder = tmp_path_factory.mktemp("quota")
    server = start(folder, TRAIN_WORKERS="2", TRAIN_QUEUE="2", TRAIN_WORK_BUDGET="1e13")
    yield server
    server.stop()


@contextmanager
def streaming(
    client: httpx.Client, config: dict, headers: dict | None = None
) -> Iterator[httpx.Response]:
    """A streamed run that has trained an epoch; leaving the block disconnects."""
    with client.stream(
        "POST", "/train", json=config, headers={**SSE, **(headers or {})}
    ) as response:
        assert response.status_code == 200
        stream = events(response)  # kept: closing it would close the connection too
        next(name for name, _ in stream if name == "epoch")
        yield response


def admitted_within(client: httpx.Client, seconds: float) -> float:
    """Seconds until a small run is admitted and answered (429s retried)."""
    started = time.monotonic()
    while True:
        response = client.post("/train", json=SMALL)
        if response.status_code == 200:
            return time.monotonic() - started
        assert response.status_code == 429
        assert time.monotonic() - started < seconds, response.json()
        time.sleep(0.1)


def test_one_guest_cannot_fill_the_pool_but_others_still_train(trainer):
    with client_from(trainer) as guest, streaming(guest, LONG):
        refused = guest.post("/train", json=SMALL)
        assert refused.status_code == 429
        assert "TRAIN_PER_CLIENT" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) >= 1
        assert guest.post("/train", json=SMALL, headers=SSE).status_code == 429
        # another client trains meanwhile
        with client_from(trainer, "127.0.0.2") as other:
            assert other.post("/train", json=SMALL).status_code == 200
    with client_from(trainer) as guest:
        assert admitted_within(guest, 10) < 10  # the place came back with the stopped run


def test_a_learners_quota_follows_the_account_not_the_address(trainer):
    with client_from(trainer, "127.0.0.3") as client:
        body = {"username": "runner", "password": PASSWORD}
        assert client.post("/api/auth/register", json=body).status_code == 201
        access = client.post("/api/auth/token", data=body).json()["access_token"]
    token = {"Authorization": f"Bearer {access}"}
    with client_from(trainer, "127.0.0.3") as here, streaming(here, LONG, headers=token):
        with client_from(trainer, "127.0.0.4") as there:
            refused = there.post("/train", json=SMALL, headers=token)
            assert refused.status_code == 429 and "TRAIN_PER_CLIENT" in refused.json()["detail"]
            assert there.post("/train", json=SMALL).status_code == 200  # as a guest it may


# --- what `backprop serve` tells uvicorn ---------------------------------------------------


def raw_request(sock: socket.socket, path: str = "/healthz") -> bytes:
    """One HTTP/1.1 request on a raw socket; the status line and headers of its response."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "closed before a response"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(4096)
    return head


def test_backprop_serve_closes_idle_keep_alive_connections_after_the_timeout(tmp_path):
    with serving(tmp_path, command=[*BACKPROP_SERVE, "--timeout-keep-alive", "1"]) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            assert raw_request(sock).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            assert sock.recv(1) == b""  # closed by the server
            assert time.monotonic() - started < 5


def test_backprop_serve_answers_503_past_limit_concurrency(tmp_path):
    command = [*BACKPROP_SERVE, "--limit-concurrency", "3"]
    with serving(tmp_path, command=command) as server:
        address = ("127.0.0.1", server.port)
        with socket.create_connection(address, timeout=10) as sock:
            assert raw_request(sock).startswith(b"HTTP/1.1 200")
        idle = [socket.create_connection(address, timeout=10) for _ in range(2)]
        try:
            time.sleep(0.2)  # let the server accept them
            with socket.create_connection(address, timeout=10) as sock:
                assert raw_request(sock).startswith(b"HTTP/1.1 503")
        finally:
            for sock in idle:
                sock.close()


@pytest.mark.parametrize(
    ("env", "stored"),
    [({}, "127.0.0.1"), ({"FORWARDED_ALLOW_IPS": "127.0.0.1"}, "203.0.113.9")],
)
def test_backprop_serve_believes_x_forwarded_for_only_from_forwarded_allow_ips(
    tmp_path, monkeypatch, env, stored
):
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)  # unset: uvicorn's own default
    with serving(tmp_path, command=BACKPROP_SERVE, **env) as server:
        with client_from(server) as client:
            wrong = {"username": "ada", "password": "wrong-password"}
            headers = {"X-Forwarded-For": "203.0.113.9"}
            assert client.post("/api/auth/token", data=wrong, headers=headers).status_code == 401
    database_url = f"sqlite:///{(tmp_path / 'data' / 'backprop.db').as_posix()}"
    assert login_failures(database_url) == [("ada", stored)]
