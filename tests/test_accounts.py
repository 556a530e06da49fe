"""Accounts: registration, tokens, sessions, CSRF, throttling, export and deletion."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.accounts import service
from app.models import ApiToken, WebSession, utcnow

from .accounts_util import (
    PASSWORD,
    all_attempts,
    bearer,
    browser_login,
    csrf,
    learner,
    register,
    token,
)


def test_register_then_token_then_me(client):
    created = register(client, "ada")
    assert set(created) == {"id", "username"} and created["username"] == "ada"
    response = client.post("/api/auth/token", data={"username": "ada", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and len(body["access_token"]) >= 32
    me = client.get("/api/me", headers=bearer(body["access_token"])).json()
    assert me["id"] == created["id"] and me["username"] == "ada" and me["role"] == "learner"


@pytest.mark.parametrize(
    "body",
    [
        {"username": "ab", "password": PASSWORD},
        {"username": "x" * 33, "password": PASSWORD},
        {"username": "bad name", "password": PASSWORD},
        {"username": "émile", "password": PASSWORD},
        {"username": "ada", "password": "short"},
        {"username": "ada", "password": "p" * 257},
        {"username": "ada"},
        {"username": 5, "password": PASSWORD},
    ],
)
def test_register_refuses_bad_usernames_and_passwords_with_422(client, body):
    response = client.post("/api/auth/register", json=body)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str) and response.json()["errors"]


def test_register_accepts_the_limits_and_refuses_a_taken_name_in_any_case(client):
    register(client, "a.b", "p" * 8)
    register(client, "x" * 32, "p" * 256)
    response = client.post("/api/auth/register", json={"username": "A.B", "password": PASSWORD})
    assert response.status_code == 409
    assert response.json() == {"detail": "that username is taken"}


def test_wrong_password_and_unknown_user_are_the_same_401(client):
    register(client, "ada")
    wrong = client.post("/api/auth/token", data={"username": "ada", "password": "nope" * 3})
    unknown = client.post("/api/auth/token", data={"username": "bob", "password": "nope" * 3})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "incorrect username or password"}
    assert wrong.headers["www-authenticate"] == "Bearer"


def test_an_unknown_user_costs_about_what_a_wrong_password_costs(client):
    register(client, "ada")

    def timed(name: str) -> float:
        start = time.perf_counter()
        client.post("/api/auth/token", data={"username": name, "password": "wrong-pass"})
        return time.perf_counter() - start

    # interleaved, so a busy machine slows both alike; the fastest of each is its real cost
    pairs = [(timed("ada"), timed("nobody-here")) for _ in range(4)]
    known, unknown = min(k for k, _ in pairs), min(u for _, u in pairs)
    assert unknown > 0.5 * known, (known, unknown)  # an argon2 verify either way
    assert known > 0.02  # and that verify is a real argon2id one


def test_no_token_or_a_bad_one_is_401(client):
    for path in ("/api/me", "/api/me/progress", "/api/me/attempts", "/api/me/export"):
        assert client.get(path).status_code == 401
        response = client.get(path, headers=bearer("not-a-token"))
        assert response.status_code == 401
        assert response.json() == {"detail": "invalid or expired token"}
    assert client.delete("/api/me").status_code == 401
    assert client.post("/api/auth/logout").status_code == 401


def test_logout_revokes_the_token_only(client):
    headers = learner(client, "ada")
    other = bearer(token(client, "ada"))
    assert client.post("/api/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/me", headers=headers).status_code == 401
    assert client.get("/api/me", headers=other).status_code == 200


def test_tokens_expire(client):
    headers = learner(client, "ada")
    db = client.app.state.db
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE api_tokens SET expires_at = :t"), {"t": "2000-01-01 00:00:00"})
    assert client.get("/api/me", headers=headers).status_code == 401


def test_tokens_expire_after_the_configured_days(make_app):
    with TestClient(make_app(token_days=3)) as client:
        register(client, "ada")
        body = client.post("/api/auth/token", data={"username": "ada", "password": PASSWORD}).json()
    from datetime import UTC, datetime, timedelta

    expires = datetime.fromisoformat(body["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=3))) < timedelta(minutes=1)


def test_tokens_and_sessions_are_stored_hashed_and_passwords_as_argon2id(client, tmp_path):
    headers = learner(client, "ada", "plaintext-password-123")
    access = headers["Authorization"].split()[1]
    browser_login(client, "ada", "plaintext-password-123")
    cookie = client.cookies["bp_session"]
    with client.app.state.db.engine.connect() as conn:
        hashes = conn.execute(sa.text("SELECT password_hash FROM users")).scalars().all()
        tokens = conn.execute(sa.text("SELECT token_hash FROM api_tokens")).scalars().all()
        sessions = conn.execute(sa.text("SELECT token_hash FROM sessions")).scalars().all()
    assert hashes[0].startswith("$argon2id$")
    assert access not in tokens and cookie not in sessions and len(tokens) == len(sessions) == 1
    if client.app.state.db.engine.dialect.name == "sqlite":
        client.app.state.db.engine.dispose()  # checkpoint the WAL into the file
        raw = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("backprop.db*"))
        assert b"plaintext-password-123" not in raw
        assert access.encode() not in raw and cookie.encode() not in raw
        assert b"$argon2id$" in raw


# --- browser sessions -------------------------------------------------------------------------


def test_login_sets_a_strict_session_cookie_and_logout_ends_it_on_the_server(client):
    register(client, "ada")
    response = browser_login(client, "ada")
    assert response.status_code == 303 and response.headers["location"] == "/"
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith("bp_session=")
    assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie.replace("Lax", "lax")
    assert "Secure" not in set_cookie  # plain http here; see the https test
    stolen = client.cookies["bp_session"]
    assert client.get("/api/me").json()["username"] == "ada"
    assert 'action="/logout"' in client.get("/").text
    form = {"csrf_token": csrf(client, "/")}
    response = client.post("/logout", data=form, follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/api/me").status_code == 401
    with TestClient(client.app, cookies={"bp_session": stolen}) as replay:
        assert replay.get("/api/me").status_code == 401  # invalidated on the server


def test_the_session_cookie_is_secure_over_https(make_app):
    with TestClient(make_app(), base_url="https://testserver") as client:
        register(client, "ada")
        response = browser_login(client, "ada")
        assert "Secure" in response.headers["set-cookie"]
        assert "HttpOnly" in response.headers["set-cookie"]


def test_login_issues_a_new_session_id_every_time(client):
    register(client, "ada")
    client.cookies.set("bp_session", "attacker-chosen-value", domain="testserver.local")
    response = browser_login(client, "ada")
    first = client.cookies["bp_session"]
    assert response.headers["set-cookie"].startswith(f"bp_session={first};")
    assert first != "attacker-chosen-value"
    browser_login(client, "ada")
    second = client.cookies["bp_session"]
    assert second != first
    with TestClient(client.app, cookies={"bp_session": first}) as old:
        assert old.get("/api/me").status_code == 401  # the replaced session is gone


@pytest.mark.parametrize("path", ["/login", "/register", "/logout"])
def test_forms_without_a_valid_csrf_token_are_403(client, path):
    register(client, "ada")
    form = {"username": "ada", "password": PASSWORD}
    assert client.post(path, data=form).status_code == 403
    assert client.post(path, data={**form, "csrf_token": "0" * 32}).status_code == 403
    token_value = csrf(client)
    with TestClient(client.app) as stranger:  # someone else's cookie with this visitor's token
        assert stranger.post(path, data={**form, "csrf_token": token_value}).status_code == 403
    assert "bp_session" not in client.cookies


def test_register_form_signs_in_and_redirects_only_within_the_site(client):
    form = {"username": "ada", "password": PASSWORD, "csrf_token": csrf(client, "/register")}
    response = client.post(
        "/register", data={**form, "next": "//evil.example/x"}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert client.get("/api/me").json()["username"] == "ada"
    page = client.get("/")
    assert "ada" in page.text and "Log out" in page.text


def test_register_form_explains_problems(client):
    token_value = csrf(client, "/register")
    bad = client.post("/register", data={"username": "a", "password": PASSWORD,
                                         "csrf_token": token_value})  # fmt: skip
    assert bad.status_code == 422 and "3–32 letters" in bad.text
    register(client, "ada")
    taken = client.post("/register", data={"username": "ADA", "password": PASSWORD,
                                           "csrf_token": token_value})  # fmt: skip
    assert taken.status_code == 409 and "taken" in taken.text


def test_a_wrong_password_on_the_login_form_is_a_401_page(client):
    register(client, "ada")
    response = browser_login(client, "ada", "wrong-password")
    assert response.status_code == 401
    assert "Incorrect username or password." in response.text
    assert "bp_session" not in client.cookies


# --- my data ----------------------------------------------------------------------------------


def test_export_has_all_of_my_data_and_nothing_secret(client):
    from .accounts_util import SEED, answers, ids_of

    headers = learner(client, "ada")
    quiz = client.app.state.course.get(SEED).quiz
    chosen = answers(quiz, right=5, ids=ids_of(client, quiz, headers=headers))
    client.post(f"/api/lessons/{SEED}/quiz/attempts", json={"answers": chosen}, headers=headers)
    data = client.get("/api/me/export", headers=headers).json()
    assert data["user"]["username"] == "ada"
    assert len(data["attempts"]) == 1 and len(data["attempts"][0]["answers"]) == 5
    assert data["progress"][0]["status"] == "completed"
    assert len(data["api_tokens"]) == 1
    text = str(data)
    assert "argon2" not in text and headers["Authorization"].split()[1] not in text


def test_delete_me_removes_everything_of_mine_and_nothing_else(client):
    from .accounts_util import SEED, answers, ids_of

    quiz = client.app.state.course.get(SEED).quiz
    ada, bob = learner(client, "ada"), learner(client, "bob")
    for headers in (ada, bob):
        chosen = answers(quiz, right=2, ids=ids_of(client, quiz, headers=headers))
        client.post(f"/api/lessons/{SEED}/quiz/attempts", json={"answers": chosen}, headers=headers)
    mine = {"password": PASSWORD}
    assert client.request("DELETE", "/api/me", json=mine, headers=ada).status_code == 204
    assert client.get("/api/me", headers=ada).status_code == 401
    with client.app.state.db.engine.connect() as conn:
        count = lambda table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()  # noqa: E731
        assert count("users") == 1 and count("api_tokens") == 1
        assert count("quiz_attempts") == 1 and count("attempt_answers") == 5
        assert count("lesson_progress") == 1
    assert all_attempts(client, bob)[0]["lesson_id"] == SEED
    assert client.post("/api/auth/token", data={"username": "ada", "password": PASSWORD}
                       ).status_code == 401  # fmt: skip
    register(client, "ada")  # the name is free again


@pytest.mark.parametrize(
    ("issue", "table"),
    [
        (lambda s, uid, days: service.create_session(s, user_id=uid, days=days), "sessions"),
        (lambda s, uid, days: service.create_token(s, user_id=uid, days=days), "api_tokens"),
    ],
)
def test_issuing_a_session_or_token_drops_that_users_expired_ones(client, issue, table):
    user_id = register(client, "purgee")["id"]
    db = client.app.state.db
    with db.session() as session:
        issue(session, user_id, -1)  # already expired
        issue(session, user_id, -1)
    with db.session() as session:
        issue(session, user_id, 1)
        rows = session.execute(
            sa.text(f"SELECT expires_at FROM {table} WHERE user_id = :u"), {"u": user_id}
        )
        assert len(rows.all()) == 1
        # ...and the one left is the live one, not an expired one kept by mistake
        model = {"sessions": WebSession, "api_tokens": ApiToken}[table]
        [expires_at] = session.scalars(sa.select(model.expires_at).where(model.user_id == user_id))
        assert expires_at > utcnow()
