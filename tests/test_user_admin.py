"""`backprop user list/set-role/set-password/delete/reset-link`, and the one-time reset page."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.accounts import admin
from app.models import utcnow

from .accounts_util import PASSWORD, bearer, browser_login, csrf, register, token

ROOT = Path(__file__).resolve().parent.parent
NEW_PASSWORD = "a brand new password"


@pytest.fixture
def site(make_app, tmp_path, database_url):
    """An app, and the environment that points the CLI at the same database."""
    app = make_app()
    env = {"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": database_url}
    with TestClient(app) as client:
        yield client, env


def cli(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "user", *args],
        input=stdin, capture_output=True, text=True, env={**os.environ, **env}, cwd=ROOT,
        timeout=120,
    )  # fmt: skip


def rows(client, table: str, user_id: int) -> int:
    with client.app.state.db.engine.connect() as conn:
        query = sa.text(f"SELECT count(*) FROM {table} WHERE user_id = :id")  # noqa: S608
        return conn.execute(query, {"id": user_id}).scalar()


def test_list_shows_every_account_or_one_roles(site):
    client, env = site
    register(client, "ada")
    register(client, "Grace")
    result = cli("set-role", "grace", "instructor", env=env)
    assert (result.returncode, result.stdout) == (0, "'Grace' is now instructor\n")
    everyone = cli("list", env=env)
    assert everyone.returncode == 0
    lines = everyone.stdout.splitlines()
    assert lines[0].split() == ["id", "username", "role", "created", "(UTC)"]
    assert [line.split()[1:3] for line in lines[1:]] == [
        ["ada", "learner"],
        ["Grace", "instructor"],
    ]
    assert everyone.stderr == "2 user(s)\n"
    instructors = cli("list", "--role", "instructor", env=env)
    assert [line.split()[1] for line in instructors.stdout.splitlines()[1:]] == ["Grace"]


def test_role_changes_take_effect_and_mistakes_get_clear_errors(site, make_app):
    client, env = site
    headers = bearer(token(client, register(client, "ada")["username"]))
    assert client.get("/api/me", headers=headers).json()["role"] == "learner"
    assert cli("set-role", "ADA", "instructor", env=env).returncode == 0
    with TestClient(make_app()) as other:  # another instance on the same database
        assert other.get("/api/me", headers=headers).json()["role"] == "instructor"
    nobody = cli("set-role", "nobody", "learner", env=env)
    assert nobody.returncode == 1 and nobody.stderr == (
        "backprop user: error: no user called 'nobody'\n"
    )
    bad = cli("set-role", "ada", "admin", env=env)
    assert bad.returncode == 2 and "invalid choice: 'admin'" in bad.stderr
    assert "Traceback" not in nobody.stderr + bad.stderr


def test_set_password_replaces_the_password_and_signs_the_user_out_everywhere(site, make_app):
    client, env = site
    user_id = register(client, "ada")["id"]
    old_token = token(client, "ada")
    browser_login(client, "ada")
    assert rows(client, "sessions", user_id) == 1 and rows(client, "api_tokens", user_id) == 1
    result = cli("set-password", "ada", "--password-stdin", env=env, stdin=NEW_PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert "sessions and tokens are revoked" in result.stdout
    assert rows(client, "sessions", user_id) == rows(client, "api_tokens", user_id) == 0
    with TestClient(make_app()) as other:  # another instance: no cached token
        assert other.get("/api/me", headers=bearer(old_token)).status_code == 401
        login = {"username": "ada", "password": PASSWORD}
        assert other.post("/api/auth/token", data=login).status_code == 401
        assert token(other, "ada", NEW_PASSWORD)


def test_set_password_wants_stdin_and_the_registration_rules(site):
    client, env = site
    register(client, "ada")
    missing = cli("set-password", "ada", env=env)
    assert missing.returncode == 2 and "--password-stdin" in missing.stderr
    short = cli("set-password", "ada", "--password-stdin", env=env, stdin="short\n")
    assert short.returncode == 2 and "Passwords are 8 to 256 characters long." in short.stderr
    nobody = cli("set-password", "nobody", "--password-stdin", env=env, stdin=NEW_PASSWORD)
    assert nobody.returncode == 1 and "no user called 'nobody'" in nobody.stderr


def test_delete_asks_first_and_only_yes_deletes(site):
    client, env = site
    register(client, "ada")
    for answer in ("n\n", "", "maybe\n"):
        kept = cli("delete", "ada", env=env, stdin=answer)
        assert kept.returncode == 1 and "nothing deleted" in kept.stderr, answer
        assert "Delete 'ada' and all of their attempts" in kept.stderr
    assert token(client, "ada")
    deleted = cli("delete", "ada", env=env, stdin="y\n")
    assert deleted.returncode == 0 and deleted.stdout.startswith("deleted learner 'ada'")
    assert (
        client.post("/api/auth/token", data={"username": "ada", "password": PASSWORD}).status_code
        == 401
    )
    register(client, "bob")
    assert cli("delete", "bob", "--yes", env=env).returncode == 0
    gone = cli("delete", "bob", "--yes", env=env)
    assert gone.returncode == 1 and "no user called 'bob'" in gone.stderr


# --- reset links ------------------------------------------------------------------------------


def link_token(url: str) -> str:
    return re.fullmatch(r"https?://[^/]+(?:/[^/]+)*/reset/([A-Za-z0-9_-]+)", url).group(1)


def reset(client, token_: str, password: str, **extra: str):
    form = {"csrf_token": csrf(client, "/login"), "password": password, **extra}
    return client.post(f"/reset/{token_}", data=form)


def test_a_reset_link_from_the_cli_sets_a_new_password_once_and_signs_out_everywhere(
    site, make_app
):
    client, env = site
    user_id = register(client, "ada")["id"]
    old_token = token(client, "ada")
    browser_login(client, "ada")
    printed = cli("reset-link", "ada", "--base-url", "https://learn.example.org/", env=env)
    assert printed.returncode == 0, printed.stderr
    url = printed.stdout.strip()
    assert url.startswith("https://learn.example.org/reset/")
    assert "works once, until" in printed.stderr
    secret = link_token(url)

    with TestClient(make_app()) as learner:  # the learner's own browser, signed in nowhere
        page = learner.get(f"/reset/{secret}")
        assert page.status_code == 200 and "Set a new password" in page.text
        assert "<strong>ada</strong>" in page.text
        assert page.headers["cache-control"] == "private, no-store"
        done = reset(learner, secret, NEW_PASSWORD)
        assert done.status_code == 200 and "Your password is set" in done.text
        assert token(learner, "ada", NEW_PASSWORD)
        assert learner.get("/api/me", headers=bearer(old_token)).status_code == 401
        again = learner.get(f"/reset/{secret}")
        assert again.status_code == 404 and "This link does not work" in again.text
        assert reset(learner, secret, "yet another password").status_code == 404
    assert rows(client, "password_resets", user_id) == 0
    assert rows(client, "sessions", user_id) == 0
    assert rows(client, "api_tokens", user_id) == 1  # the one made with the new password


def test_a_reset_link_dies_after_an_hour_and_when_a_newer_one_is_made(site):
    client, _ = site
    register(client, "ada")
    with client.app.state.db.session() as session:
        stale, _ = admin.create_reset_link(
            session, username="ada", now=utcnow() - timedelta(hours=1, seconds=1)
        )
    assert client.get(f"/reset/{stale}").status_code == 404
    with client.app.state.db.session() as session:
        first, expires = admin.create_reset_link(session, username="ada")
        second, _ = admin.create_reset_link(session, username="ada")
    assert timedelta(minutes=59) < expires - utcnow() <= timedelta(hours=1)
    assert client.get(f"/reset/{first}").status_code == 404
    assert client.get(f"/reset/{second}").status_code == 200


def test_the_reset_form_keeps_the_link_alive_after_a_refused_password_or_a_bad_csrf(site):
    client, _ = site
    register(client, "ada")
    with client.app.state.db.session() as session:
        secret, _ = admin.create_reset_link(session, username="ada")
    short = reset(client, secret, "short")
    assert short.status_code == 422 and "Passwords are 8 to 256 characters long." in short.text
    forged = client.post(f"/reset/{secret}", data={"csrf_token": "x", "password": NEW_PASSWORD})
    assert forged.status_code == 403
    assert reset(client, secret, NEW_PASSWORD).status_code == 200


@pytest.mark.parametrize("bogus", ["nope", "x" * 101, "%00", "a" * 43])
def test_a_made_up_reset_link_is_a_404_page_not_an_error(site, bogus):
    client, _ = site
    assert client.get(f"/reset/{bogus}").status_code == 404
    assert reset(client, bogus, NEW_PASSWORD).status_code == 404


def test_reset_link_for_nobody_is_a_clear_error_and_without_a_base_url_says_what_it_assumed(
    site,
):
    client, env = site
    nobody = cli("reset-link", "nobody", env=env)
    assert nobody.returncode == 1 and "no user called 'nobody'" in nobody.stderr
    register(client, "ada")
    plain = cli("reset-link", "ada", env={**env, "ROOT_PATH": "/backprop"})
    assert plain.stdout.startswith("http://127.0.0.1:8000/backprop/reset/")
    assert "set PUBLIC_URL" in plain.stderr
    public = cli("reset-link", "ada", env={**env, "PUBLIC_URL": "https://x.example/bp"})
    assert public.stdout.startswith("https://x.example/bp/reset/")


def test_under_a_root_path_the_reset_form_posts_within_it(make_app):
    with TestClient(make_app(root_path="/backprop"), base_url="http://testserver/backprop") as c:
        register(c, "ada")
        with c.app.state.db.session() as session:
            secret, _ = admin.create_reset_link(session, username="ada")
        assert f'action="/backprop/reset/{secret}"' in c.get(f"/reset/{secret}").text
        assert reset(c, secret, NEW_PASSWORD).status_code == 200


def test_the_access_log_never_shows_a_reset_token(site, caplog):
    client, _ = site
    register(client, "ada")
    with client.app.state.db.session() as session:
        secret, _ = admin.create_reset_link(session, username="ada")
    with caplog.at_level(logging.INFO, logger="backprop.access"):
        client.get(f"/reset/{secret}")
    lines = [r.getMessage() for r in caplog.records if r.name == "backprop.access"]
    assert any(f"/reset/{secret[:4]}…" in line for line in lines), lines
    assert not any(secret in line for line in lines)
    assert not any(secret in str(r.__dict__.get("path")) for r in caplog.records)


def test_two_requests_using_one_link_at_once_set_one_password(site):
    client, _ = site
    register(client, "ada")
    db = client.app.state.db
    with db.session() as session:
        secret, _ = admin.create_reset_link(session, username="ada")
    outcomes: list[str] = []
    start = threading.Barrier(4)

    def use(password: str) -> None:
        with db.session() as session:
            start.wait(10)
            try:
                admin.use_reset_link(session, token=secret, password=password)
                outcomes.append(password)
            except admin.InvalidResetLink:
                outcomes.append("refused")

    threads = [threading.Thread(target=use, args=(f"password number {i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    winners = [o for o in outcomes if o != "refused"]
    assert len(outcomes) == 4 and len(winners) == 1, outcomes
    assert token(client, "ada", winners[0])
