"""/train over a real uvicorn: the SSE stream, cancel on disconnect, the 429 limit, and pages
answered promptly while every training process is busy."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app.training.routes import TRAINING_FAILED
from app.training.runner import train

from .conftest import SEED
from .live import LiveServer, events, server_env

#: About 0.2 s an epoch and a minute in all: far longer than any wait below.
LONG = {"dataset": "digits", "hidden_layers": [1024, 1024], "epochs": 300}
SMALL = {"dataset": "circles", "hidden_layers": [8], "epochs": 4}
SSE = {"Accept": "text/event-stream"}


def start_server(tmp_path_factory, name: str, **env: str) -> LiveServer:
    folder = tmp_path_factory.mktemp(name)
    values = {
        **server_env(folder / "data", SEED),
        "SECRET_KEY": "live-secret-key-for-tests-0123456789",
        "TRAIN_WORK_BUDGET": "1e13",
        # one client starts several runs here, to fill the pool (tests/test_limits_live.py
        # has the per-client limits)
        "TRAIN_PER_CLIENT": "8",
        "TRAIN_PER_MINUTE": "1000",
        **env,
    }
    return LiveServer(values, log_path=folder / "server.log").start()


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory) -> Iterator[LiveServer]:
    """One training process and room for one run to wait."""
    server = start_server(tmp_path_factory, "one", TRAIN_WORKERS="1", TRAIN_QUEUE="1")
    yield server
    server.stop()


@contextmanager
def running(server: LiveServer, config: dict, epochs_seen: int = 1):
    """A streamed run that has trained `epochs_seen` epochs; leaving the block disconnects."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        with client.stream("POST", "/train", json=config, headers=SSE) as response:
            assert response.status_code == 200
            stream = events(response)
            seen = 0
            while seen < epochs_seen:
                name, _ = next(stream)
                seen += name == "epoch"
            yield response


def wait_until_accepted(server: LiveServer, deadline: float) -> float:
    """Seconds until a small JSON run is admitted and answered (429s retried)."""
    started = time.monotonic()
    while True:
        response = httpx.post(server.url + "/train", json=SMALL, timeout=deadline)
        if response.status_code == 200:
            return time.monotonic() - started
        assert response.status_code == 429
        assert time.monotonic() - started < deadline, "the slot never came free"
        time.sleep(0.1)


def test_sse_streams_every_epoch_then_the_result(one_worker):
    with httpx.Client(base_url=one_worker.url, timeout=30) as client:
        with client.stream("POST", "/train", json=SMALL, headers=SSE) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            received = list(events(response))
    names = [name for name, _ in received]
    assert names[-1] == "result" and names.count("epoch") == 4 and "boundary" in names
    rows = [data for name, data in received if name == "epoch"]
    result = received[-1][1]
    assert result["history"] == rows
    # The worker process computes exactly what training here does: bit-identical history.
    assert train(SMALL)["history"] == rows


def test_a_client_that_disconnects_stops_its_training(one_worker):
    with running(one_worker, LONG, epochs_seen=2):
        pass  # leaving the block closes the connection mid-run
    # The run had a minute left; its worker must be free again within a few epochs.
    assert wait_until_accepted(one_worker, deadline=8) < 8


def test_a_json_client_that_gives_up_stops_its_training_too(one_worker):
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(one_worker.url + "/train", json=LONG, timeout=2.5)
    assert wait_until_accepted(one_worker, deadline=8) < 8
    # The abandoned request ends quietly (499), not as an unhandled error in the log.
    assert "unhandled error" not in one_worker.log_path.read_text()


def test_runs_beyond_the_workers_and_the_queue_get_429_with_retry_after(one_worker):
    with running(one_worker, LONG), httpx.Client(base_url=one_worker.url, timeout=30) as client:
        with client.stream("POST", "/train", json=LONG, headers=SSE) as waiting:
            assert waiting.status_code == 200
            time.sleep(0.5)  # it is now in the waiting line
            refused = client.post("/train", json=SMALL)
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) > 0
            assert "busy" in refused.json()["detail"]
            assert client.post("/train", json=SMALL, headers=SSE).status_code == 429
    assert wait_until_accepted(one_worker, deadline=8) < 8


def test_pages_are_answered_promptly_while_every_worker_trains(tmp_path_factory):
    server = start_server(tmp_path_factory, "two", TRAIN_WORKERS="2", TRAIN_QUEUE="0")
    try:
        with running(server, LONG), running(server, {**LONG, "seed": 1}):
            slowest = 0.0
            with httpx.Client(base_url=server.url, timeout=10) as client:
                for path in ["/", "/lessons/dl-intro-neural-networks", "/playground"] * 3:
                    started = time.monotonic()
                    assert client.get(path).status_code == 200
                    slowest = max(slowest, time.monotonic() - started)
            assert slowest < 1.0, f"a page took {slowest:.2f}s while two runs trained"
    finally:
        server.stop()


def training_processes(server: LiveServer) -> list[int]:
    """PIDs of the server's training processes (spawned children running app's worker)."""
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    found = []
    for child in map(int, children):
        with contextlib.suppress(FileNotFoundError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
    return found


#: CPU time a training process has spent on a LONG run by the time it is killed (~2 epochs).
TRAINED_CPU_SECONDS = 0.4


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_training_process_killed_mid_run_is_a_clear_503_and_the_next_run_works(
    tmp_path_factory, stream
):
    server = start_server(tmp_path_factory, f"killed-{stream}", TRAIN_WORKERS="1")
    try:
        with ThreadPoolExecutor(1) as pool:
            if stream:
                with httpx.Client(base_url=server.url, timeout=60) as client:
                    with client.stream("POST", "/train", json=LONG, headers=SSE) as response:
                        stream_events = events(response)
                        assert next(stream_events)[0] == "epoch"
                        (victim,) = training_processes(server)
                        os.kill(victim, signal.SIGKILL)
                        rest = list(stream_events)
                assert rest[-1] == ("error", {"detail": TRAINING_FAILED, "status": 503})
            else:
                # a small run first starts the process and leaves it idle, its start-up paid
                assert httpx.post(server.url + "/train", json=SMALL, timeout=60).status_code == 200
                (victim,) = training_processes(server)
                idle = cpu_seconds(victim)
                answer = pool.submit(httpx.post, server.url + "/train", json=LONG, timeout=60)
                deadline = time.monotonic() + 30
                # the only thing that can use its CPU now is this run: a few epochs in, kill it
                while cpu_seconds(victim) < idle + TRAINED_CPU_SECONDS:
                    assert time.monotonic() < deadline, "the run never started training"
                    time.sleep(0.02)
                os.kill(victim, signal.SIGKILL)
                response = answer.result(timeout=60)
                assert response.status_code == 503
                assert response.json() == {"detail": TRAINING_FAILED}
        assert wait_until_accepted(server, deadline=60) < 60
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "a training process stopped mid-run" in log
    assert "Traceback" not in log and "Exception in ASGI application" not in log
