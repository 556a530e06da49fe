"""/metrics: Prometheus text, labelled by route template (bounded), the app's own counters and
gauges, METRICS_TOKEN, and multiprocess mode under `backprop serve --workers 2`.

The metrics are process-wide (every app a test builds adds to them), so each test compares the
values before and after what it does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from .accounts_util import SEED, answers, ids_of, learner
from .conftest import ROOT
from .conftest import SEED as SEED_DIR
from .live import LiveServer, events, free_port, server_env
from .test_training_live import LONG, SSE

Samples = dict[tuple[str, frozenset], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client, headers: dict[str, str] | None = None) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (sample, labels) in samples if sample == name]


REQUESTS = "backprop_http_requests_total"


def test_requests_are_counted_by_route_template_and_status(client):
    before = scrape(client)
    for _ in range(3):
        assert client.get(f"/lessons/{SEED}").status_code == 200
    assert client.get("/lessons/no-such-lesson").status_code == 404
    after = scrape(client)
    lesson = {"method": "GET", "route": "/lessons/{lesson_id}"}
    assert (
        value(after, REQUESTS, **lesson, status="200")
        - value(before, REQUESTS, **lesson, status="200")
        == 3
    )
    assert (
        value(after, REQUESTS, **lesson, status="404")
        - value(before, REQUESTS, **lesson, status="404")
        == 1
    )
    count = "backprop_http_request_duration_seconds_count"
    assert value(after, count, **lesson) - value(before, count, **lesson) == 4
    fast = "backprop_http_request_duration_seconds_bucket"
    assert value(after, fast, **lesson, le="+Inf") == value(after, count, **lesson)


def test_paths_no_route_matches_share_one_label_and_odd_methods_another(client):
    before = scrape(client)
    for index in range(20):
        assert client.get(f"/no/such/page/{index}").status_code == 404
    assert client.request("BREW", "/").status_code == 405
    after = scrape(client)
    routes = {labels["route"] for labels in series(after, REQUESTS)}
    assert not any("no/such" in route for route in routes)
    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert value(after, REQUESTS, **unmatched) - value(before, REQUESTS, **unmatched) == 20
    assert {labels["method"] for labels in series(after, REQUESTS)} <= {
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER",
    }  # fmt: skip
    odd = {"method": "OTHER", "route": "/", "status": "405"}
    assert value(after, REQUESTS, **odd) - value(before, REQUESTS, **odd) == 1


def test_static_files_count_under_their_mount(client):
    before = scrape(client)
    assert client.get("/static/css/site.css").status_code == 200
    assert client.get("/static/nope.css").status_code == 404
    after = scrape(client)
    for status in ("200", "404"):
        labels = {"method": "GET", "route": "/static", "status": status}
        assert value(after, REQUESTS, **labels) - value(before, REQUESTS, **labels) == 1


def test_stored_quiz_attempts_are_counted_and_guests_are_not(client):
    stored = "backprop_quiz_attempts_stored_total"
    quiz = client.app.state.course.get(SEED).quiz
    body = {"answers": answers(quiz, right=3, ids=ids_of(client, quiz))}
    before = value(scrape(client), stored)
    assert client.post(f"/api/lessons/{SEED}/quiz/attempts", json=body).status_code == 200
    assert value(scrape(client), stored) == before  # a guest's attempt is graded, not stored
    ada = learner(client, "ada")
    for _ in range(2):
        body = {"answers": answers(quiz, right=3, ids=ids_of(client, quiz, headers=ada))}
        response = client.post(f"/api/lessons/{SEED}/quiz/attempts", json=body, headers=ada)
        assert response.json()["attempt_id"]
    assert value(scrape(client), stored) == before + 2


def test_the_content_gauges_say_how_many_lessons_are_served_and_how_many_files_failed(
    make_app, content_dir
):
    (content_dir / "broken.md").write_text("---\ntitle: [unclosed\n---\nbody\n")
    (content_dir / "ok.md").write_text(
        "---\nid: ok\ntitle: OK\ntype: theory\nsection: s\norder: 1\nduration: 5\n---\n# OK\n"
    )
    with TestClient(make_app(content_dir=content_dir)) as client:
        samples = scrape(client)
    assert value(samples, "backprop_lessons_served") == len(client.app.state.course.lessons)
    assert value(samples, "backprop_content_files_with_errors") == 1


def test_with_a_metrics_token_only_its_bearer_may_scrape(make_app):
    with TestClient(make_app(metrics_token="scrape-me-0123456789")) as client:
        anonymous = client.get("/metrics")
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
        assert "METRICS_TOKEN" in anonymous.json()["detail"]
        wrong = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-01234567890"})
        assert wrong.status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Basic x"}).status_code == 401
        right = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"})
        assert right.status_code == 200 and REQUESTS in right.text


def test_with_metrics_disabled_requests_are_not_counted(make_app):
    with TestClient(make_app(metrics_enabled=False)) as client:
        before = scrape(client)
        client.get(f"/lessons/{SEED}")
        after = scrape(client)
    labels = {"method": "GET", "route": "/lessons/{lesson_id}", "status": "200"}
    assert value(after, REQUESTS, **labels) == value(before, REQUESTS, **labels)


def test_bulk_observations_give_the_histogram_that_one_observe_per_value_gives():
    from prometheus_client import CollectorRegistry, Histogram

    from app.metrics import BUCKETS, add_observations

    values = [0.0, 0.0004, 0.001, 0.0011, 0.3, 0.3, 7.5, 29.9, 30.0, 31.0, 1e9]
    counts = [0] * (len(BUCKETS) + 1)
    for v in values:
        counts[next((i for i, bound in enumerate(BUCKETS) if v <= bound), len(BUCKETS))] += 1
    registry = CollectorRegistry()
    one = Histogram("one_seconds", "x", ["k"], buckets=BUCKETS, registry=registry)
    bulk = Histogram("bulk_seconds", "x", ["k"], buckets=BUCKETS, registry=registry)
    for v in values:
        one.labels("a").observe(v)
    add_observations(bulk.labels("a"), counts, sum(values))
    text = parse(generate_latest(registry).decode())

    def named(prefix: str) -> dict:
        return {
            (name.removeprefix(prefix), labels): v
            for (name, labels), v in text.items()
            if name.startswith(prefix) and not name.endswith("_created")
        }

    assert named("one_seconds") == named("bulk_seconds")
    assert value(text, "bulk_seconds_count", k="a") == len(values)


def test_the_metrics_middleware_costs_a_few_microseconds_per_request():
    """The in-process cost (the wrk comparison is bench/metrics.py): well under 1 % of the
    cheapest real request, /healthz, whatever the machine's speed."""
    import asyncio

    from app.metrics import RequestMetrics

    class Route:
        path = "/healthz"

    async def bare(scope, receive, send):
        scope["route"] = Route
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive():
        return {}

    async def send(message):
        pass

    async def per_request(app, n: int = 2000) -> float:
        scope = {"type": "http", "method": "GET", "path": "/healthz"}
        started = time.perf_counter()
        for _ in range(n):
            await app(scope, receive, send)
        return (time.perf_counter() - started) / n

    async def compare() -> tuple[float, float]:
        wrapped = RequestMetrics(bare)
        runs = [(await per_request(bare), await per_request(wrapped)) for _ in range(9)]
        return min(b for b, _ in runs), min(w for _, w in runs)

    # in a thread of its own: another test may have left an event loop running in this one
    measured: list[tuple[float, float]] = []
    worker = threading.Thread(target=lambda: measured.append(asyncio.run(compare())))
    worker.start()
    worker.join(60)
    ((bare_s, wrapped_s),) = measured
    assert wrapped_s - bare_s < 10e-6, (bare_s, wrapped_s)


def test_metrics_are_not_in_the_api_schema(client):
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


# --- training, over a real uvicorn ------------------------------------------------------------


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory) -> Iterator[LiveServer]:
    """One training process, no waiting line: a second run is refused while one trains."""
    folder = tmp_path_factory.mktemp("metrics-train")
    env = {
        **server_env(folder / "data", SEED_DIR),
        "SECRET_KEY": "metrics-secret-key-for-tests-0123456789",
        "TRAIN_WORKERS": "1",
        "TRAIN_QUEUE": "0",
        "TRAIN_WORK_BUDGET": "1e13",
        # the per-client quotas out of the way: the refusals counted here are a busy pool's
        "TRAIN_PER_CLIENT": "5",
        "TRAIN_PER_MINUTE": "1000",
    }
    server = LiveServer(env, log_path=folder / "server.log").start()
    yield server
    server.stop()


def test_training_runs_admitted_refused_and_diverged_and_the_gauges_while_one_trains(busy_server):
    with httpx.Client(base_url=busy_server.url, timeout=60) as client:
        before = scrape(client)
        with client.stream("POST", "/train", json=LONG, headers=SSE) as running:
            # kept: a generator dropped after next() is closed, and httpx closes the stream
            # with it, so the run would be stopping (or stopped) before the scrape below
            received = events(running)
            assert next(received)[0] == "epoch"
            refused = client.post("/train", json={"dataset": "xor", "epochs": 1})
            assert refused.status_code == 429
            during = scrape(client)
        # the stopped run frees its process within an epoch: until then, 429s (counted too)
        refusals, deadline = 1, time.monotonic() + 15
        while True:
            diverged = client.post(
                "/train",
                json={"learning_rate": 100, "epochs": 20, "init": "xavier", "batch_size": None},
            )
            if diverged.status_code != 429 or time.monotonic() > deadline:
                break
            refusals += 1
            time.sleep(0.1)
        assert diverged.json()["status"] == "diverged"
        after = scrape(client)

    def delta(name: str) -> float:
        return value(after, name) - value(before, name)

    assert value(during, "backprop_training_runs_active") == 1
    assert value(during, "backprop_training_queue_length") == 0
    assert delta("backprop_training_runs_admitted_total") == 2
    assert delta("backprop_training_runs_refused_total") == refusals
    assert delta("backprop_training_runs_diverged_total") == 1


# --- several workers: multiprocess mode -------------------------------------------------------


@contextmanager
def serve_workers(data: Path, log: Path, workers: int = 2) -> Iterator[str]:
    """`backprop serve --workers N` on a free port; stopped by its PID."""
    port = free_port()
    env = {
        **os.environ,
        **server_env(data, SEED_DIR),
        "SECRET_KEY": "metrics-secret-key-for-tests-0123456789",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    url = f"http://127.0.0.1:{port}"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers",
             str(workers), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "no answer from /healthz within 60 s"
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def lesson_count(url: str) -> float:
    labels = {"method": "GET", "route": "/lessons/{lesson_id}", "status": "200"}
    return value(parse(httpx.get(url + "/metrics", timeout=10).text), REQUESTS, **labels)


@pytest.mark.slow
def test_several_workers_add_up_their_counts_and_a_restart_starts_from_zero(tmp_path):
    data = tmp_path / "data"
    for round_ in range(2):
        with serve_workers(data, tmp_path / "serve.log") as url:
            # a fresh connection each: whichever worker accepts it answers
            for _ in range(40):
                assert httpx.get(f"{url}/lessons/{SEED}", timeout=10).status_code == 200
            # each worker flushes its counts to the shared files within a second; then every
            # scrape, whichever worker answers it, adds up both workers' files. The second
            # round starts from zero (the folder is emptied at start).
            deadline = time.monotonic() + 10
            while lesson_count(url) != 40 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert [lesson_count(url) for _ in range(6)] == [40] * 6, f"round {round_}"
            workers = {path.name for path in (data / "metrics").glob("counter_*.db")}
            assert len(workers) >= 2, workers
