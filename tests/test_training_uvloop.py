"""/train on a real uvicorn running uvloop, with results of tens of KiB: each arrives whole.

uvloop leaves a descriptor it watched non-blocking, so a result the worker was still writing
used to be read halfway, taken for a dead worker, and answered with a 500 (and a reset
connection for the next request on it). These runs are the ones from the report (issue #10).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .live import LiveServer, events
from .test_training_live import SSE, start_server

#: About half a second each; its JSON answer is over 50 KB, its pickled result over 16 KiB (what
#: multiprocessing writes as a header and then a separate body).
RUN = {
    "dataset": "spiral",
    "hidden_layers": [64, 64],
    "activation": "relu",
    "epochs": 400,
    "learning_rate": 0.1,
    "batch_size": 32,
    "seed": 1,
}
RUNS = 20

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def uvloop_server(tmp_path_factory) -> Iterator[LiveServer]:
    """One training process, under uvicorn told to use uvloop (it refuses to start without it)."""
    server = start_server(
        tmp_path_factory, "uvloop", UVICORN_LOOP="uvloop", TRAIN_WORKERS="1", TRAIN_QUEUE="1"
    )
    yield server
    server.stop()


def assert_on_uvloop_and_quiet(server: LiveServer) -> None:
    assert server.process is not None
    maps = Path(f"/proc/{server.process.pid}/maps").read_text()
    assert "/uvloop/loop." in maps, "the server is not running uvloop"
    log = server.log_path.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log


def test_twenty_large_json_results_on_one_connection_are_all_answered_under_uvloop(
    uvloop_server,
):
    statuses, sizes = [], []
    with httpx.Client(base_url=uvloop_server.url, timeout=30) as client:  # one keep-alive
        for _ in range(RUNS):
            try:
                response = client.post("/train", json=RUN)
            except httpx.TransportError as exc:  # the connection a 500 left behind was reset
                statuses.append(type(exc).__name__)
                continue
            statuses.append(response.status_code)
            sizes.append(len(response.content))
            if response.status_code == 200:
                assert len(response.json()["history"]) == RUN["epochs"]
    assert statuses == [200] * RUNS
    assert min(sizes) > 50_000
    assert_on_uvloop_and_quiet(uvloop_server)


def test_twenty_large_streamed_results_on_one_connection_all_end_in_their_result_under_uvloop(
    uvloop_server,
):
    outcomes = []
    with httpx.Client(base_url=uvloop_server.url, timeout=30) as client:
        for _ in range(RUNS):
            with client.stream("POST", "/train", json=RUN, headers=SSE) as response:
                assert response.status_code == 200
                received = list(events(response))
            name, data = received[-1]
            outcomes.append(name)
            if name == "result":
                rows = [row for kind, row in received if kind == "epoch"]
                assert data["history"] == rows and len(rows) == RUN["epochs"]
                assert len(json.dumps(data)) > 50_000
    assert outcomes == ["result"] * RUNS
    assert_on_uvloop_and_quiet(uvloop_server)
