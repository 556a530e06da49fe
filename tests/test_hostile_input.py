"""Input the fuzzer found breaking things: each answered with a 4xx or an empty result, never a
5xx, on SQLite and on PostgreSQL (which refuses NUL in text)."""

from __future__ import annotations

from .accounts_util import SEED, csrf, learner


def test_a_nul_in_a_login_username_is_a_wrong_login_not_a_server_error(client):
    learner(client, "grace")
    response = client.post("/api/auth/token", data={"username": "gr\x00ace", "password": "x" * 9})
    assert response.status_code == 401
    form = {"username": "grace\x00", "password": "x" * 9, "csrf_token": csrf(client)}
    assert client.post("/login", data=form).status_code == 401


def test_a_nul_in_the_attempts_lesson_filter_finds_no_attempts(client):
    headers = learner(client, "linus")
    response = client.get("/api/me/attempts", params={"lesson_id": "\x00"}, headers=headers)
    assert (response.status_code, response.json()) == (200, {"attempts": [], "next_cursor": None})


def test_a_json_body_that_is_not_utf8_is_a_documented_400(client):
    schema = client.get("/openapi.json").json()["paths"]
    for path, template in [
        ("/api/auth/register", "/api/auth/register"),
        ("/train", "/train"),
        (f"/api/lessons/{SEED}/quiz/attempts", "/api/lessons/{lesson_id}/quiz/attempts"),
    ]:
        response = client.post(
            path, content=b"\xff\xfe{", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, path
        assert response.json() == {"detail": "There was an error parsing the body"}
        assert "400" in schema[template]["post"]["responses"], path
