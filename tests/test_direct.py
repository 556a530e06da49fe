"""The quiz submission route reads its body by hand (app/direct.py); for every input a client can
send it must answer exactly as the FastAPI route it replaced, kept here as the reference."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.deps import LessonDep, OptionalUser, SettingsDep
from app.quizzes.routes import grade_or_422, require_quiz
from app.quizzes.schemas import AttemptIn, AttemptOut

SEED = "dl-intro-neural-networks"


async def reference_submit(
    lesson: LessonDep, body: AttemptIn, settings: SettingsDep, user: OptionalUser
) -> AttemptOut:
    """The route as it was: FastAPI resolves the lesson, the body and the user."""
    require_quiz(lesson)
    return AttemptOut.of(grade_or_422(lesson, body.answers, settings), attempt_id=None)


@pytest.fixture
def both(make_app):
    app = make_app()
    app.router.add_api_route(
        "/api/reference/{lesson_id}/quiz/attempts",
        reference_submit,
        methods=["POST"],
        response_model=AttemptOut,
    )
    with TestClient(app) as client:
        yield client


def _answers(client) -> dict[str, str]:
    quiz = client.get(f"/api/lessons/{SEED}/quiz").json()
    return {q["id"]: q["options"][-1]["id"] for q in quiz["questions"]}


JSON = "application/json"
CASES = [
    # (lesson id, body, content type)
    (SEED, "ANSWERS", JSON),
    (SEED, '{"answers": {}}', JSON),
    (SEED, '{"answers": {}}', "application/vnd.api+json"),
    (SEED, '{"answers": {}}', "application/json; charset=utf-8"),
    (SEED, '{"answers": {}}', "text/plain"),
    (SEED, '{"answers": {}}', None),
    (SEED, "", JSON),
    (SEED, "{", JSON),
    (SEED, "[1, 2]", JSON),
    (SEED, "null", JSON),
    (SEED, '{"answers": null}', JSON),
    (SEED, '{"answers": {"q": 3}}', JSON),
    (SEED, '{"answers": {"q": "o"}, "extra": 1}', JSON),
    (SEED, '{"answers": {"nope": "o123"}}', JSON),
    (SEED, json.dumps({"answers": {f"q{n}": None for n in range(501)}}), JSON),
    (SEED, b"\xff\xfe{", JSON),
    (SEED, "[" * 3000, JSON),  # deeper than json.loads recurses: FastAPI answers 400
    ("no-such-lesson", '{"answers": {}}', JSON),
    ("no-such-lesson", "", JSON),
    ("no-such-lesson", "{", JSON),
    ("x" * 300, '{"answers": {}}', JSON),
]


@pytest.mark.parametrize(("lesson_id", "body", "content_type"), CASES)
def test_the_direct_route_answers_exactly_as_the_fastapi_route_did(
    both, lesson_id, body, content_type
):
    if body == "ANSWERS":
        body = json.dumps({"answers": _answers(both)})
    headers = {"content-type": content_type} if content_type else {}
    content = body.encode() if isinstance(body, str) else body
    new = both.post(f"/api/lessons/{lesson_id}/quiz/attempts", content=content, headers=headers)
    old = both.post(f"/api/reference/{lesson_id}/quiz/attempts", content=content, headers=headers)
    assert (new.status_code, new.json()) == (old.status_code, old.json())
    assert new.headers["content-type"] == old.headers["content-type"]


def test_the_direct_route_is_documented_as_its_fastapi_twin(both):
    paths = both.get("/openapi.json").json()["paths"]
    new = paths["/api/lessons/{lesson_id}/quiz/attempts"]["post"]
    old = paths["/api/reference/{lesson_id}/quiz/attempts"]["post"]
    assert new["requestBody"] == old["requestBody"]
    assert new["parameters"] == old["parameters"]
    assert new["security"] == old["security"] == [{"OAuth2PasswordBearer": []}]
    assert new["responses"]["200"] == old["responses"]["200"]
    assert new["responses"]["422"] == old["responses"]["422"]
