"""/healthz (the process answers) and /readyz (database, content, training: ready to serve)."""

from __future__ import annotations

import os
import signal

import sqlalchemy as sa
from fastapi.testclient import TestClient


def test_healthz_is_liveness_only_and_readyz_says_ready_with_each_check(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    lessons = len(client.app.state.course.lessons)
    assert lessons >= 8  # the bundled course: the seed and the seven lessons after it
    assert ready.json() == {
        "status": "ready",
        "reason": None,
        "checks": {"database": "ok", "content": f"{lessons} lesson(s)", "training": "ok"},
    }


def test_readyz_starts_a_training_process_and_a_killed_one_is_replaced(client):
    assert client.get("/readyz").status_code == 200
    pool = client.app.state.training.pool
    (first,) = [worker.process for worker in pool._all]
    assert first.is_alive()
    assert client.get("/readyz").status_code == 200  # no second process for a second probe
    assert [worker.process for worker in pool._all] == [first]
    os.kill(first.pid, signal.SIGKILL)
    first.join(10)
    assert client.get("/readyz").status_code == 200
    alive = [worker.process for worker in pool._all if worker.alive()]
    assert len(alive) == 1 and alive[0].pid != first.pid
    # and it trains: the next run is served by a live process
    assert client.post("/train", json={"dataset": "xor", "epochs": 1}).status_code == 200


def test_readyz_is_503_with_the_reason_when_no_lesson_is_loaded(make_app, content_dir):
    with TestClient(make_app(content_dir=content_dir)) as client:
        response = client.get("/readyz")
        assert client.get("/healthz").status_code == 200  # alive all the same
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["reason"] == "content: no lessons loaded from CONTENT_DIR"
    assert body["checks"]["database"] == "ok" and body["checks"]["training"] == "ok"
    assert response.headers["cache-control"] == "no-store"


def test_readyz_is_503_when_the_database_is_not_at_the_schema_the_app_expects(client, database_url):
    assert client.get("/readyz").status_code == 200
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:  # e.g. someone ran `backprop db upgrade 0001` meanwhile
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
        response = client.get("/readyz")
        assert response.status_code == 503
        reason = response.json()["reason"]
        assert reason.startswith("database: at schema revision '0001', not ")
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE alembic_version"))
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["reason"].startswith("database: ")
        assert "alembic_version" in response.json()["reason"]
    finally:
        engine.dispose()
