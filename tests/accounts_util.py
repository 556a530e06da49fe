"""Helpers for the accounts tests: register, log in, answer a quiz, scrape or tamper with a
CSRF token."""

from __future__ import annotations

import re

SEED = "dl-intro-neural-networks"
PASSWORD = "correct horse battery"


def register(client, username: str, password: str = PASSWORD) -> dict:
    response = client.post("/api/auth/register", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    return response.json()


def token(client, username: str, password: str = PASSWORD) -> str:
    response = client.post("/api/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def learner(client, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Register and return bearer headers for a new learner."""
    register(client, username, password)
    return bearer(token(client, username, password))


def csrf(client, path: str = "/login") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def browser_login(client, username: str, password: str = PASSWORD):
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf(client)},
        follow_redirects=False,
    )


def ids_of(client, quiz, lesson_id: str = SEED, headers: dict | None = None) -> dict[str, str]:
    """Content option and item id → this learner's id, matched by text through the quiz API (a
    guest's are keyed to the client's visitor cookie, which this sets if it has none)."""
    served = client.get(f"/api/lessons/{lesson_id}/quiz", headers=headers).json()
    mapping = {}
    for question, shown in zip(quiz.questions, served["questions"], strict=True):
        by_text = {o["text"]: o["id"] for o in shown["options"] + shown["items"]}
        mapping.update({o.id: by_text[o.html] for o in (*question.options, *question.items)})
    return mapping


def answers(quiz, *, right: int, ids: dict[str, str] | None = None) -> dict[str, str]:
    """The first `right` questions answered right, the rest with a wrong option: in a learner's
    `ids` (see ids_of), or in the content's own (which the quiz API does not accept)."""
    chosen = {}
    for i, question in enumerate(quiz.questions):
        option = (
            question.correct_option
            if i < right
            else next(o for o in question.options if not o.correct)
        )
        chosen[question.id] = ids[option.id] if ids is not None else option.id
    return chosen


def tampered(value: str, at: int = -1) -> str:
    """`value` with the character at `at` changed to a different one (a "0" becomes "1")."""
    chars = list(value)
    chars[at] = "1" if chars[at] == "0" else "0"
    changed = "".join(chars)
    assert changed != value and len(changed) == len(value), (value, changed)
    return changed


def all_attempts(client, headers: dict[str, str] | None = None, **params) -> list[dict]:
    """Every attempt `GET /api/me/attempts` lists, following `next_cursor` page by page."""
    found, query = [], {"limit": 100, **params}
    for _ in range(1000):
        page = client.get("/api/me/attempts", params=query, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        found += body["attempts"]
        if body["next_cursor"] is None:
            return found
        query["cursor"] = body["next_cursor"]
    raise AssertionError("more than 1000 pages of attempts")
