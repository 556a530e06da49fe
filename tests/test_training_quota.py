"""/train takes JSON only, and each client gets TRAIN_PER_CLIENT runs at once and
TRAIN_PER_MINUTE a minute (the quota itself, then through the app with real workers)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from fastapi.testclient import TestClient

from app.training.pool import TrainingPool
from app.training.quota import QuotaExceeded, TrainingQuota
from app.training.runner import full_config

from .accounts_util import learner

TINY = {"dataset": "xor", "hidden_layers": [4], "epochs": 1}


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"", {"Content-Type": "application/x-www-form-urlencoded"}),  # an empty <form> post
        (b"epochs=1", {"Content-Type": "application/x-www-form-urlencoded"}),
        (b"", {"Content-Type": "multipart/form-data; boundary=x"}),
        (b'{"epochs": 1}', {"Content-Type": "text/plain"}),  # fetch() with a string body
        (b'{"epochs": 1}', {}),  # fetch() with an untyped Blob: no Content-Type at all
        (b"", {}),  # a bodiless fetch(..., {method: "POST", mode: "no-cors"})
    ],
)
def test_train_refuses_what_another_site_can_send_without_a_preflight(client, content, headers):
    response = client.post("/train", content=content, headers=headers)
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]
    assert "415" in client.get("/openapi.json").json()["paths"]["/train"]["post"]["responses"]


def test_json_with_a_charset_or_an_empty_json_body_is_accepted(make_app):
    with TestClient(make_app(train_per_minute=5)) as client:
        typed = {"Content-Type": "application/json; charset=utf-8"}
        assert client.post("/train", json=TINY, headers=typed).status_code == 200
        empty = client.post("/train", content=b"", headers={"Content-Type": "application/json"})
        assert empty.status_code == 200  # no body: the lesson's network, as before
        assert empty.json()["config"]["layer_sizes"] == [64, 128, 64, 10]


def test_runs_beyond_train_per_minute_get_429_naming_that_limit(make_app):
    with TestClient(make_app(train_per_minute=3)) as client:
        for _ in range(3):
            assert client.post("/train", json=TINY).status_code == 200
        refused = client.post("/train", json=TINY)
        assert refused.status_code == 429
        assert "TRAIN_PER_MINUTE" in refused.json()["detail"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # a signed-in learner is a client of their own
        headers = learner(client, "ada")
        assert client.post("/train", json=TINY, headers=headers).status_code == 200
        # ...and so is another address
        other = TestClient(client.app, client=("10.0.0.8", 5000))
        assert other.post("/train", json=TINY).status_code == 200


def test_runs_refused_for_too_much_work_do_not_count_towards_the_minute(make_app):
    with TestClient(make_app(train_per_minute=2, train_work_budget=1e7)) as client:
        too_big = {"dataset": "digits", "hidden_layers": [64], "epochs": 50}
        for _ in range(3):
            assert client.post("/train", json=too_big).status_code == 422
        for _ in range(2):
            assert client.post("/train", json=TINY).status_code == 200


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_has_at_most_per_client_runs_at_once():
    quota = TrainingQuota(per_client=2, per_minute=100, clock=Clock())
    first, second = quota.admit(["address:a"]), quota.admit(["address:a"])
    with pytest.raises(QuotaExceeded, match="TRAIN_PER_CLIENT") as refused:
        quota.admit(["address:a"])
    assert refused.value.retry_after == 1
    quota.admit(["address:b"])  # another client is not affected
    first.release()
    first.release()  # idempotent: it does not free a second place
    third = quota.admit(["address:a"])
    with pytest.raises(QuotaExceeded):
        quota.admit(["address:a"])
    second.release(), third.release()


def test_a_guest_is_limited_by_address_and_by_visitor_cookie_each():
    quota = TrainingQuota(per_client=1, per_minute=100, clock=Clock())
    quota.admit(["address:a", "visitor:v"])
    with pytest.raises(QuotaExceeded):  # a new cookie from the same address
        quota.admit(["address:a", "visitor:w"])
    with pytest.raises(QuotaExceeded):  # the same cookie from a new address
        quota.admit(["address:b", "visitor:v"])
    quota.admit(["address:b", "visitor:w"])


def test_per_minute_counts_starts_in_a_sliding_minute_and_says_when_to_retry():
    clock = Clock()
    quota = TrainingQuota(per_client=10, per_minute=3, clock=clock)
    for _ in range(3):
        quota.admit(["user:1"]).release()
        clock.now += 10
    with pytest.raises(QuotaExceeded, match="TRAIN_PER_MINUTE") as refused:
        quota.admit(["user:1"])
    assert refused.value.retry_after == 30  # the first start leaves the minute at 1060
    clock.now += 30
    quota.admit(["user:1"])


def test_a_run_the_pool_turned_away_is_not_counted():
    quota = TrainingQuota(per_client=1, per_minute=1, clock=Clock())
    quota.admit(["user:1"]).cancel()
    quota.admit(["user:1"])


def test_idle_clients_are_swept_out():
    clock = Clock()
    quota = TrainingQuota(per_client=1, per_minute=5, clock=clock, sweep_at=10)
    for i in range(20):
        quota.admit([f"address:{i}"]).release()
    clock.now += 61
    quota.admit(["address:last"])
    assert list(quota.starts) == ["address:last"]


def test_a_stopped_runs_place_is_given_back_only_once_its_worker_is_free():
    """A client that disconnects and starts again at once must not get a second run going while
    its first still occupies a training process (until the end of the current epoch)."""
    # full-batch epochs on a wide network: the worker notices the stop only between epochs
    config = full_config({"hidden_layers": [1024] * 4, "epochs": 30, "batch_size": None})

    async def scenario() -> tuple[bool, bool]:
        released = asyncio.Event()
        pool = TrainingPool(1, 0)
        try:
            stream = pool.stream(config, on_release=released.set)
            async for message in stream:
                if message[0] == "epoch":
                    break
            await stream.aclose()  # the caller has gone; its worker is still in an epoch
            held = not released.is_set() and not pool.has_room()
            await asyncio.wait_for(released.wait(), 60)
            return held, pool.has_room()
        finally:
            pool.close()

    # in a thread of its own: the browser tests' Playwright keeps a loop running in this one
    outcome: list[tuple[bool, bool]] = []
    thread = threading.Thread(target=lambda: outcome.append(asyncio.run(scenario())))
    thread.start()
    thread.join(120)
    assert outcome == [(True, True)]
