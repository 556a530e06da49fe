"""TRAINING_BACKEND=queue end to end: two web instances and `backprop worker`s on the real
PostgreSQL (TEST_DATABASE_URL), in a schema and queue of this module's own, over loopback."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from app.config import Settings
from app.db import make_engine, upgrade
from app.training.backend import FAILED_IN_WORKER, WORKER_DIED
from app.training.queue import NO_WORKER, QueueBackend
from app.training.runner import full_config, train

from .conftest import SEED, TEST_DATABASE_URL
from .live import LiveServer, events
from .question_types_util import EVERY_TYPE, LESSON
from .queue_live import Queue, Worker, same_run, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not TEST_DATABASE_URL,
        reason="the training queue needs PostgreSQL: set TEST_DATABASE_URL (as .ci/run does)",
    ),
]

SSE = {"Accept": "text/event-stream"}
#: About 0.3 s an epoch: minutes in all, far longer than any wait below.
LONG = {"dataset": "digits", "hidden_layers": [1024, 1024], "epochs": 300}
#: A second or two, in many epochs: long enough to join, stop or kill mid-run.
MEDIUM = {"dataset": "digits", "hidden_layers": [512, 512], "epochs": 40}
#: Small runs of every kind, each with its own seed.
SMALL = [
    {"dataset": name, "hidden_layers": [12, 6], "epochs": 8, "seed": seed}
    for seed, name in enumerate(["xor", "circles", "moons", "spiral", "digits", "moons"] * 2)
]
for _i, _config in enumerate(SMALL):
    if _i % 3 == 1:
        _config.update(batch_size=None, learning_rate=0.5, activation="tanh")


@pytest.fixture(scope="module")
def queue_env(pg_admin, tmp_path_factory) -> Iterator[dict[str, str]]:
    """A schema and a queue of this module's own, migrated; dropped afterwards."""
    name = f"bp_queue_{os.getpid()}_{secrets.token_hex(4)}"
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    url = sa.make_url(TEST_DATABASE_URL).update_query_dict({"options": f"-csearch_path={name}"})
    database_url = url.render_as_string(hide_password=False)
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    yield {
        "CONTENT_DIR": str(SEED),
        "DATA_DIR": str(tmp_path_factory.mktemp("queue-data")),
        "DATABASE_URL": database_url,
        "SECRET_KEY": "live-secret-key-for-tests-0123456789",
        "TRAINING_BACKEND": "queue",
        "TRAIN_QUEUE_NAME": name,
        "TRAIN_WORK_BUDGET": "1e13",
        # one client (loopback) starts every run here; the quota test sets its own limit
        "TRAIN_PER_CLIENT": "1000",
        "TRAIN_PER_MINUTE": "1000",
    }
    with pg_admin.connect() as conn:
        conn.execute(sa.text("SET lock_timeout = '10s'"))
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


@pytest.fixture(scope="module")
def queue_db(queue_env) -> Iterator[Queue]:
    engine = sa.create_engine(queue_env["DATABASE_URL"], poolclass=sa.NullPool)
    yield Queue(engine)
    engine.dispose()


def web_server(env: dict[str, str], folder: Path, **overrides: str) -> LiveServer:
    return LiveServer({**env, **overrides}, log_path=folder / "web.log").start()


@pytest.fixture(scope="module")
def webs(queue_env, tmp_path_factory) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two web instances on the same database and queue."""
    a = web_server(queue_env, tmp_path_factory.mktemp("web-a"))
    b = web_server(queue_env, tmp_path_factory.mktemp("web-b"))
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
def workers(queue_env, queue_db, tmp_path) -> Iterator[Callable[..., Worker]]:
    """Starts `backprop worker`s (each registered before it is returned); stops them after the
    test, and leaves the queue empty for the next one."""
    started: list[Worker] = []

    def start(processes: int = 1) -> Worker:
        before = queue_db.live_workers()
        worker = Worker(queue_env, processes, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        wait_until(lambda: queue_db.live_workers() >= before + processes, 60, "workers to start")
        return worker

    yield start
    for worker in started:
        worker.stop()
    queue_db.clear()


def running(queue_db: Queue) -> int:
    return queue_db.scalar("SELECT count(*) FROM training_runs WHERE status = 'running'")


def post(server: LiveServer, config: dict, timeout: float = 120) -> httpx.Response:
    return httpx.post(server.url + "/train", json=config, timeout=timeout)


def stream(server: LiveServer, config: dict) -> list[tuple[str, dict]]:
    """Every event of one SSE run, to its end."""
    with httpx.stream("POST", server.url + "/train", json=config, headers=SSE, timeout=120) as r:
        assert r.status_code == 200, r.read()
        return list(events(r))


def results_of(collected: list[tuple[str, dict]]) -> dict:
    kinds = [kind for kind, _ in collected]
    assert kinds.count("result") == 1 and kinds[-1] == "result", kinds
    return collected[-1][1]


def test_twelve_concurrent_runs_through_two_instances_match_local_runs_bit_for_bit(
    webs, workers, queue_db, make_app
):
    from fastapi.testclient import TestClient

    with TestClient(make_app(train_workers=1)) as local:  # TRAINING_BACKEND=local
        expected = [same_run(local.post("/train", json=c).json()) for c in SMALL]
    workers()
    workers()

    def one(i: int) -> dict:
        server = webs[i % 2]
        if i % 4 < 2:
            response = post(server, SMALL[i])
            assert response.status_code == 200, response.text
            return response.json()
        collected = stream(server, SMALL[i])
        result = results_of(collected)
        rows = [data for kind, data in collected if kind == "epoch"]
        assert rows == result["history"]
        return result

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(one, range(12)))
    assert [same_run(r) for r in results] == expected
    trained_by = {queue_db.run(r["run_id"])["worker"] for r in results}
    assert len(trained_by) == 2  # both workers took runs


def test_back_to_back_runs_each_start_at_once_on_an_idle_worker(queue_env, workers):
    """procrastinate's worker clears its "new job" flag after each fetch, so a run announced
    while the worker's fetch after its previous run was under way waited for the next poll
    (FETCH_POLL_SECONDS, 2 s) before app.training.worker._JobManager fetched again instead. The
    next run is queued the moment the previous result is in, as a learner's second click would
    be; how often that lands in the window depends on the machine's load."""
    workers()
    settings = Settings(
        _env_file=None,
        database_url=queue_env["DATABASE_URL"],
        training_backend="queue",
        train_queue_name=queue_env["TRAIN_QUEUE_NAME"],
    )

    async def back_to_back() -> list[float]:
        backend = QueueBackend(settings)
        seconds = []
        try:
            for seed in range(40):
                started = time.monotonic()
                await backend.has_room()  # as POST /train does
                await backend.run(full_config({**SMALL[0], "epochs": 2, "seed": seed}))
                seconds.append(time.monotonic() - started)
        finally:
            await backend.aclose()
        return seconds

    # in a thread of its own: another test may leave an event loop running in this one
    found: list[list[float]] = []
    worker = threading.Thread(target=lambda: found.append(asyncio.run(back_to_back())))
    worker.start()
    worker.join(timeout=120)
    (seconds,) = found
    assert max(seconds) < 1.5, [round(s, 2) for s in seconds]


def test_a_run_streams_through_an_instance_that_did_not_queue_it_and_resumes_after_an_epoch(
    webs, workers
):
    a, b = webs
    workers()
    with httpx.stream("POST", a.url + "/train", json=MEDIUM, headers=SSE, timeout=120) as r:
        seen = events(r)
        kind, queued = next(seen)
        assert kind == "queued" and queued["position"] >= 0
        run_id = queued["run_id"]
        for kind, _ in seen:
            if kind == "epoch":
                break  # joined mid-run: epoch 1 is stored, the rest are coming
        url = f"{b.url}/train/runs/{run_id}/events"
        with httpx.stream("GET", url, timeout=120) as other:
            assert other.status_code == 200
            followed = list(events(other))
        rest = list(seen)
    result = results_of(rest)
    assert results_of(followed) == result
    rows = [data for kind, data in followed if kind == "epoch"]
    assert rows == result["history"] and len(rows) == MEDIUM["epochs"]
    resumed = httpx.get(url, headers={"Last-Event-ID": "37"}, timeout=30)
    resumed_rows = [data for kind, data in events(resumed) if kind == "epoch"]
    assert [row["epoch"] for row in resumed_rows] == [38, 39, 40]
    missing = httpx.get(f"{b.url}/train/runs/{'0' * 32}/events", timeout=10)
    assert missing.status_code == 404


def test_queue_positions_decrease_until_the_run_starts(webs, workers):
    a, _ = webs
    config = {"dataset": "digits", "hidden_layers": [256, 256], "epochs": 60}
    seen: list[list[tuple[str, dict]]] = [[], [], []]
    queued = [threading.Event() for _ in seen]

    def read(i: int) -> None:
        body = {**config, "seed": i}
        with httpx.stream("POST", a.url + "/train", json=body, headers=SSE, timeout=120) as r:
            for event in events(r):
                seen[i].append(event)
                queued[i].set()

    with ThreadPoolExecutor(3) as pool:
        futures = []
        for i in range(3):  # one after the other, so that they queue in this order
            futures.append(pool.submit(read, i))
            assert queued[i].wait(30)
        workers()  # nothing has trained until now
        for future in futures:
            future.result(timeout=120)
    positions = [data["position"] for kind, data in seen[2] if kind == "queued"]
    assert positions[0] == 3 and positions[-1] == 1, positions
    assert positions == sorted(set(positions), reverse=True), positions
    kinds = [kind for kind, _ in seen[2]]
    first_epoch = kinds.index("epoch")
    assert "queued" not in kinds[first_epoch:] and kinds[-1] == "result"


def test_a_client_that_leaves_while_waiting_removes_its_job(webs, workers, queue_db):
    a, _ = webs
    with httpx.stream("POST", a.url + "/train", json=SMALL[0], headers=SSE, timeout=30) as r:
        kind, data = next(events(r))
        assert kind == "queued" and data["position"] == 1
        run_id = data["run_id"]
    job_id = queue_db.run(run_id)["job_id"]
    wait_until(lambda: queue_db.run(run_id)["status"] == "cancelled", 10, "the run cancelled")
    wait_until(lambda: not queue_db.job_exists(job_id), 10, "its job removed")
    # a JSON client that gives up is the same
    with pytest.raises(httpx.ReadTimeout):
        post(a, {**SMALL[1], "seed": 99}, timeout=1.5)
    last = queue_db.scalar("SELECT id FROM training_runs ORDER BY created_at DESC LIMIT 1")
    wait_until(lambda: queue_db.run(last)["status"] == "cancelled", 10, "the JSON run cancelled")
    wait_until(
        lambda: queue_db.scalar("SELECT count(*) FROM procrastinate_jobs") == 0, 10, "no job left"
    )


def test_a_client_that_leaves_mid_run_stops_its_worker_within_an_epoch(webs, workers, queue_db):
    a, b = webs
    workers()
    with httpx.stream("POST", a.url + "/train", json=LONG, headers=SSE, timeout=60) as r:
        seen = events(r)
        run_id = next(seen)[1]["run_id"]
        for kind, _ in seen:
            if kind == "epoch":
                break
    wait_until(lambda: queue_db.run(run_id)["status"] == "cancelled", 10, "the run cancelled")
    job_id = queue_db.run(run_id)["job_id"]
    wait_until(lambda: not queue_db.job_exists(job_id), 10, "the worker to stop the run")
    stored = queue_db.epochs(run_id)
    time.sleep(1.0)
    assert queue_db.epochs(run_id) == stored < LONG["epochs"]
    started = time.monotonic()
    assert post(b, SMALL[2]).status_code == 200  # the worker is free again
    assert time.monotonic() - started < 10


def test_a_worker_killed_mid_run_ends_both_requests_within_30_s_and_fails_the_runs(
    webs, workers, queue_db
):
    a, b = webs
    worker = workers(processes=2)
    outcome: dict[str, object] = {}

    def json_request() -> None:
        started = time.monotonic()
        response = post(a, {**LONG, "seed": 1})
        outcome["json"] = (response.status_code, response.json(), time.monotonic() - started)

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(json_request)
        with httpx.stream("POST", b.url + "/train", json=LONG, headers=SSE, timeout=60) as r:
            seen = events(r)
            run_id = next(seen)[1]["run_id"]
            for kind, _ in seen:
                if kind == "epoch":
                    break
            wait_until(lambda: running(queue_db) == 2, 30, "both runs to start")
            victims = worker.children()
            assert len(victims) == 2
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            rest = list(seen)
            sse_seconds = time.monotonic() - killed
        pending.result(timeout=60)
    assert rest[-1][0] == "error", rest[-3:]
    assert rest[-1][1] == {"detail": WORKER_DIED, "status": 503}
    assert sse_seconds < 30
    status, body, _ = outcome["json"]
    assert status == 503 and body == {"detail": WORKER_DIED}
    assert queue_db.run(run_id)["status"] == "failed"
    assert running(queue_db) == 0
    # the supervisor replaced both processes: the next run trains
    assert post(a, SMALL[3]).status_code == 200


def test_train_queue_max_turns_runs_away_with_429_and_retry_after(
    queue_env, workers, queue_db, tmp_path
):
    server = web_server(queue_env, tmp_path, TRAIN_QUEUE_MAX="2")  # and no worker running
    try:
        with (
            httpx.stream("POST", server.url + "/train", json=SMALL[0], headers=SSE) as one,
            httpx.stream("POST", server.url + "/train", json=SMALL[1], headers=SSE) as two,
        ):
            # (each reader kept: a dropped generator would close its connection, and so cancel)
            readers = [events(one), events(two)]
            assert [next(reader)[0] for reader in readers] == ["queued", "queued"]
            refused = post(server, SMALL[2])
            assert refused.status_code == 429, refused.text
            assert int(refused.headers["Retry-After"]) > 0
            refused_sse = httpx.post(server.url + "/train", json=SMALL[2], headers=SSE)
            assert refused_sse.status_code == 429
            assert queue_db.scalar("SELECT count(*) FROM procrastinate_jobs") == 2
        wait_until(
            lambda: queue_db.scalar("SELECT count(*) FROM procrastinate_jobs") == 0,
            10,
            "the waiting runs to be removed",
        )
        with httpx.stream("POST", server.url + "/train", json=SMALL[2], headers=SSE) as three:
            assert next(events(three))[0] == "queued"  # room again
    finally:
        server.stop()


def test_sigterm_lets_a_worker_give_its_run_back_and_another_worker_finishes_it(
    webs, workers, queue_db
):
    a, _ = webs
    config = {**MEDIUM, "epochs": 400}  # far longer than the 3 s grace, however fast the machine
    first = workers()
    with httpx.stream("POST", a.url + "/train", json=config, headers=SSE, timeout=120) as r:
        seen = events(r)
        run_id = next(seen)[1]["run_id"]
        collected = [next(e for e in seen if e[0] == "epoch")]
        second = workers()
        assert queue_db.run(run_id)["worker"].endswith(f":{first.children()[0]}")
        stopping = time.monotonic()
        first.terminate()
        first.process.wait(15)
        stopped_after = time.monotonic() - stopping
        collected += list(seen)
    assert first.process.returncode == 0 and stopped_after < 10  # a 3 s grace, then given back
    result = results_of(collected)
    row = queue_db.run(run_id)
    assert row["attempts"] == 2 and row["worker"].endswith(f":{second.children()[0]}")
    rows = [data for kind, data in collected if kind == "epoch"]
    epochs = [data["epoch"] for data in rows]
    assert epochs == list(range(1, config["epochs"] + 1))  # none twice, none missing
    # the first worker's epochs (streamed before it stopped) and the second's are one history
    assert rows == result["history"]


def test_a_run_waiting_with_no_worker_at_all_fails_instead_of_hanging(webs, queue_db):
    """(NO_WORKER_SECONDS is 30: this test waits that long.)"""
    a, _ = webs
    queue_db.clear()
    started = time.monotonic()
    response = post(a, SMALL[4], timeout=60)
    assert response.status_code == 503 and response.json() == {"detail": NO_WORKER}
    assert 25 < time.monotonic() - started < 45
    assert queue_db.scalar("SELECT count(*) FROM procrastinate_jobs") == 0


def test_the_stream_of_an_unknown_or_malformed_run_id_is_a_404_or_422(webs):
    a, _ = webs
    assert httpx.get(f"{a.url}/train/runs/{'f' * 32}/events").status_code == 404
    assert httpx.get(f"{a.url}/train/runs/not-a-run/events").status_code == 422
    assert json.loads(httpx.get(f"{a.url}/train/runs/{'f' * 32}/events").text)["detail"]


@pytest.mark.parametrize("resume", ["²", "٣", "-1", "1e3", "9" * 40, ""])
def test_a_resume_point_that_is_not_a_small_ascii_number_is_ignored_not_a_500(webs, resume):
    a, _ = webs
    url = f"{a.url}/train/runs/{'f' * 32}/events"
    by_header = httpx.get(url, headers={"Last-Event-ID": resume.encode("latin-1", "ignore")})
    by_query = httpx.get(url, params={"after": resume})
    assert by_header.status_code == by_query.status_code == 404


def test_the_per_client_quota_holds_a_queued_run_until_it_ends(queue_env, workers, tmp_path):
    """TRAIN_PER_CLIENT counts runs on the queue too: a second run while the first is going is
    turned away, and the first one's end gives its place back."""
    web = web_server(queue_env, tmp_path, TRAIN_PER_CLIENT="1")
    try:
        workers()
        collected = []
        with httpx.stream("POST", web.url + "/train", json=MEDIUM, headers=SSE, timeout=120) as r:
            assert r.status_code == 200, r.read()
            for kind, data in events(r):
                collected.append((kind, data))
                if kind == "epoch" and data["epoch"] == 1:
                    refused = post(web, SMALL[0])
                    assert refused.status_code == 429 and refused.headers["Retry-After"]
        assert results_of(collected)["status"] == "completed"
        assert post(web, SMALL[0]).status_code == 200
    finally:
        web.stop()


def test_a_predict_then_run_review_trains_its_run_on_a_queue_worker(
    queue_env, workers, queue_db, tmp_path
):
    folder = tmp_path / "content"
    folder.mkdir()
    (folder / EVERY_TYPE.name).write_text(EVERY_TYPE.read_text(encoding="utf-8"))
    web = web_server(queue_env, tmp_path, CONTENT_DIR=str(folder))
    try:
        workers()
        before = queue_db.scalar("SELECT count(*) FROM training_runs WHERE status = 'completed'")
        response = httpx.post(
            f"{web.url}/api/lessons/{LESSON}/quiz/attempts", json={"answers": {}}, timeout=120
        )
        assert response.status_code == 200, response.text
        run = [r["run"] for r in response.json()["results"] if r["run"] is not None]
        assert len(run) == 1 and run[0]["status"] == "completed"
        after = queue_db.scalar("SELECT count(*) FROM training_runs WHERE status = 'completed'")
        assert after == before + 1
        config = queue_db.scalar("SELECT config FROM training_runs ORDER BY created_at DESC")
        expected = train(json.loads(config))
        assert [(row["epoch"], row["loss"]) for row in run[0]["history"]] == [
            (row["epoch"], row["loss"]) for row in expected["history"]
        ]
    finally:
        web.stop()


def test_a_run_that_raised_in_its_worker_ends_in_a_500_and_a_lost_worker_in_a_503(webs, queue_db):
    """As with the local pool: a bug in training is a 500, a process gone is a 503."""
    a, _ = webs
    with queue_db.engine.begin() as conn:
        for run_id, error in (("d" * 32, FAILED_IN_WORKER), ("e" * 32, WORKER_DIED)):
            conn.execute(
                sa.text(
                    "INSERT INTO training_runs (id, status, config, error, attempts, created_at, "
                    "finished_at) VALUES (:id, 'failed', '{}', :error, 1, now(), now())"
                ),
                {"id": run_id, "error": error},
            )
    try:
        for run_id, status, error in (
            ("d" * 32, 500, FAILED_IN_WORKER),
            ("e" * 32, 503, WORKER_DIED),
        ):
            with httpx.stream("GET", f"{a.url}/train/runs/{run_id}/events", timeout=30) as r:
                assert r.status_code == 200
                assert list(events(r)) == [("error", {"detail": error, "status": status})]
    finally:
        with queue_db.engine.begin() as conn:
            conn.execute(
                sa.text("DELETE FROM training_runs WHERE id IN (:d, :e)"),
                {"d": "d" * 32, "e": "e" * 32},
            )


def test_own_points_train_on_a_queue_worker_as_locally_and_export_from_the_instance_asked(
    webs, workers, make_app
):
    from fastapi.testclient import TestClient

    from .test_playground_data import X, Y

    config = {"dataset": "custom", "data": {"x": X, "y": Y}, "hidden_layers": [8], "epochs": 10}
    with TestClient(make_app(train_workers=1)) as local:
        expected = same_run(local.post("/train", json=config).json())
    workers()
    response = post(webs[0], config)
    assert response.status_code == 200, response.text
    result = response.json()
    assert same_run(result) == expected and "params" not in result
    assert result["classes"] == ["inner", "outer"] and result["exportable"] is True
    exported = httpx.get(f"{webs[0].url}/train/{result['run_id']}/export", timeout=30)
    assert exported.status_code == 200 and exported.content[:2] == b"PK"
    # kept in the memory of the instance that answered the run; the other one says so
    elsewhere = httpx.get(f"{webs[1].url}/train/{result['run_id']}/export", timeout=30)
    assert elsewhere.status_code == 404 and "server process" in elsewhere.json()["detail"]
    followed = httpx.get(f"{webs[1].url}/train/runs/{result['run_id']}/events", timeout=30)
    assert '"params"' not in followed.text and '"classes":["inner","outer"]' in followed.text
