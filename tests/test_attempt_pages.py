"""`GET /api/me/attempts` a page at a time: `limit`, an opaque `cursor`, `next_cursor`."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from .accounts_util import SEED, all_attempts, answers, ids_of, learner


def submit(client, headers, lesson_id: str, right: int) -> int:
    quiz = client.app.state.course.get(lesson_id).quiz
    response = client.post(
        f"/api/lessons/{lesson_id}/quiz/attempts",
        json={"answers": answers(quiz, right=right, ids=ids_of(client, quiz, lesson_id, headers))},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response.json()["attempt_id"]


@pytest.fixture
def course_client(make_app, fixture_course):
    with TestClient(make_app(content_dir=fixture_course)) as client:
        yield client


def test_attempts_come_in_pages_of_fifty_newest_first_until_next_cursor_is_null(client):
    ada = learner(client, "ada")
    ids = [submit(client, ada, SEED, right=i % 6) for i in range(120)]
    first = client.get("/api/me/attempts", headers=ada).json()
    assert [a["id"] for a in first["attempts"]] == ids[::-1][:50]
    assert isinstance(first["next_cursor"], str)
    second = client.get(
        "/api/me/attempts", params={"cursor": first["next_cursor"]}, headers=ada
    ).json()
    assert [a["id"] for a in second["attempts"]] == ids[::-1][50:100]
    third = client.get(
        "/api/me/attempts", params={"cursor": second["next_cursor"]}, headers=ada
    ).json()
    assert [a["id"] for a in third["attempts"]] == ids[::-1][100:]
    assert third["next_cursor"] is None
    assert [a["id"] for a in all_attempts(client, ada)] == ids[::-1]


def test_a_page_that_ends_exactly_at_the_last_attempt_has_no_next_cursor(client):
    ada = learner(client, "ada")
    ids = [submit(client, ada, SEED, right=5) for _ in range(4)]
    page = client.get("/api/me/attempts", params={"limit": 4}, headers=ada).json()
    assert [a["id"] for a in page["attempts"]] == ids[::-1] and page["next_cursor"] is None
    page = client.get("/api/me/attempts", params={"limit": 3}, headers=ada).json()
    rest = client.get(
        "/api/me/attempts", params={"limit": 3, "cursor": page["next_cursor"]}, headers=ada
    ).json()
    assert [a["id"] for a in rest["attempts"]] == ids[:1] and rest["next_cursor"] is None


def test_the_lesson_filter_holds_across_pages(course_client):
    client = course_client
    ada = learner(client, "ada")
    mine = []
    for i in range(5):
        mine.append(submit(client, ada, "gradient-descent", right=i % 4))
        submit(client, ada, SEED, right=5)
    pages = all_attempts(client, ada, lesson_id="gradient-descent", limit=2)
    assert [a["id"] for a in pages] == mine[::-1]
    assert {a["lesson_id"] for a in pages} == {"gradient-descent"}


def test_a_cursor_only_pages_through_its_owners_attempts(client):
    ada, bob = learner(client, "ada"), learner(client, "bob")
    ada_ids = [submit(client, ada, SEED, right=5) for _ in range(3)]
    bob_ids = [submit(client, bob, SEED, right=5) for _ in range(3)]
    page = client.get("/api/me/attempts", params={"limit": 1}, headers=bob).json()
    # bob's cursor, shown to ada: her attempts older than it (all of hers), never bob's
    theirs = client.get(
        "/api/me/attempts", params={"cursor": page["next_cursor"]}, headers=ada
    ).json()
    assert [a["id"] for a in theirs["attempts"]] == ada_ids[::-1]
    assert not {a["id"] for a in theirs["attempts"]} & set(bob_ids)


@pytest.mark.parametrize("limit", [0, 101, -1, "ten"])
def test_a_limit_outside_one_to_a_hundred_is_a_422_naming_it(client, limit):
    ada = learner(client, "ada")
    response = client.get("/api/me/attempts", params={"limit": limit}, headers=ada)
    assert response.status_code == 422 and response.json()["detail"].startswith("limit")


@pytest.mark.parametrize(
    "cursor", ["", "!!!", "YTow", "Yjo1", "YTotMQ", "x" * 65, "YTo5OTk5OTk5OTk5"]
)
def test_a_cursor_this_api_never_gave_out_is_a_422_naming_it(client, cursor):
    ada = learner(client, "ada")
    response = client.get("/api/me/attempts", params={"cursor": cursor}, headers=ada)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["detail"].startswith("cursor") and body["errors"][0]["loc"] == ["query", "cursor"]


def test_the_openapi_schema_documents_the_page_and_its_parameters(client):
    operation = client.get("/openapi.json").json()["paths"]["/api/me/attempts"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert params["limit"]["schema"]["minimum"] == 1 and params["limit"]["schema"]["maximum"] == 100
    assert params["limit"]["schema"]["default"] == 50
    assert "cursor" in params and "lesson_id" in params
    page = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert page == "#/components/schemas/AttemptPage"
