"""Real servers, real sockets: many learners at once, and a kill -9 in the middle of a burst."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest
import sqlalchemy as sa

from app.content import load_course

from .accounts_util import PASSWORD, SEED, all_attempts, answers, ids_of
from .conftest import SEED as SEED_DIR

pytestmark = pytest.mark.slow
QUIZ = load_course(SEED_DIR).get(SEED).quiz


def sign_up(base: str, name: str) -> dict[str, str]:
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.post(
            "/api/auth/register", json={"username": name, "password": PASSWORD}
        ).status_code == 201  # fmt: skip
        response = client.post("/api/auth/token", data={"username": name, "password": PASSWORD})
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_many_learners_submitting_at_once_lose_nothing_and_see_no_5xx(live_server):
    learners = {f"learner{i}": sign_up(live_server.url, f"learner{i}") for i in range(6)}
    per_thread, threads_per_learner = 20, 2
    statuses: Counter[int] = Counter()
    acknowledged: dict[str, list[int]] = {name: [] for name in learners}
    lock = threading.Lock()

    def work(name: str, right: int) -> None:
        with httpx.Client(base_url=live_server.url, timeout=60) as client:
            ids = ids_of(client, QUIZ, headers=learners[name])
            for _ in range(per_thread):
                response = client.post(
                    f"/api/lessons/{SEED}/quiz/attempts",
                    json={"answers": answers(QUIZ, right=right, ids=ids)},
                    headers=learners[name],
                )
                with lock:
                    statuses[response.status_code] += 1
                    if response.status_code == 200:
                        acknowledged[name].append(response.json()["attempt_id"])

    threads = [
        threading.Thread(target=work, args=(name, (i + k) % 6))
        for i, name in enumerate(learners)
        for k in range(threads_per_learner)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    expected = per_thread * threads_per_learner
    assert statuses == {200: expected * len(learners)}
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        for name, headers in learners.items():
            stored = all_attempts(client, headers)
            assert sorted(a["id"] for a in stored) == sorted(acknowledged[name])
            assert all(len(a["answers"]) == len(QUIZ.questions) for a in stored)
            progress = client.get("/api/me/progress", headers=headers).json()
            entry = next(e for e in progress["lessons"] if e["lesson_id"] == SEED)
            assert entry["attempts"] == expected  # no lost increment on the shared progress row
    all_ids = [i for ids in acknowledged.values() for i in ids]
    assert len(set(all_ids)) == len(all_ids)


def test_every_acknowledged_attempt_survives_kill_9(live_server, database_url):
    learners = [sign_up(live_server.url, f"crash{i}") for i in range(4)]
    acknowledged: list[tuple[int, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def work(index: int) -> None:
        with httpx.Client(base_url=live_server.url, timeout=10) as client:
            ids = ids_of(client, QUIZ, headers=learners[index])
            while not stop.is_set():
                try:
                    response = client.post(
                        f"/api/lessons/{SEED}/quiz/attempts",
                        json={"answers": answers(QUIZ, right=index % 6, ids=ids)},
                        headers=learners[index],
                    )
                except httpx.HTTPError:
                    return  # the server is gone
                assert response.status_code == 200, response.text
                with lock:
                    acknowledged.append((index, response.json()["attempt_id"]))

    threads = [threading.Thread(target=work, args=(i % 4,)) for i in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 150 and time.monotonic() < deadline:
        time.sleep(0.02)
    live_server.kill()  # SIGKILL mid-burst: no shutdown, no flush
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acknowledged) >= 50

    if database_url.startswith("sqlite"):
        engine = sa.create_engine(database_url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        engine.dispose()

    live_server.start()
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        for index, headers in enumerate(learners):
            stored = {a["id"] for a in all_attempts(client, headers)}
            mine = {attempt_id for who, attempt_id in acknowledged if who == index}
            assert mine <= stored, f"lost {sorted(mine - stored)}"
            # progress matches the attempts that are stored, acknowledged or not
            progress = client.get("/api/me/progress", headers=headers).json()
            entry = next(e for e in progress["lessons"] if e["lesson_id"] == SEED)
            assert entry["attempts"] == len(stored)
