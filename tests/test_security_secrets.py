"""The secret key and DATA_DIR: weak secrets refuse to start, the generated key is never written
through a planted link, and the folder and the files in it are the owner's alone."""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings, SettingsError
from app.content import load_course

from .accounts_util import SEED, answers, ids_of, learner
from .conftest import SEED as SEED_DIR
from .live import ROOT, server_env

STRONG = "k" * 32


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def umask_022():
    """The usual umask, whatever the test run's: without our modes files would be 0644."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.parametrize("weak", ["x", "s" * 31, "live-secret-key-for-tests"])
def test_a_secret_key_shorter_than_32_characters_is_refused_naming_secret_key(make_app, weak):
    with pytest.raises(SettingsError, match=r"^SECRET_KEY is \d+ character\(s\) long"):
        make_app(secret_key=weak)


@pytest.mark.parametrize("empty", ["", " " * 40])
def test_an_empty_secret_key_is_refused_not_taken_for_unset(make_settings, monkeypatch, empty):
    # `SECRET_KEY=` in the environment (or a .env) is a slip: the key file must not stand in
    monkeypatch.setenv("SECRET_KEY", empty)
    settings = make_settings()
    settings = Settings(_env_file=None, data_dir=settings.data_dir)
    assert settings.secret_key == empty
    with pytest.raises(SettingsError, match=r"^SECRET_KEY is set but empty"):
        settings.resolved_secret_key()
    assert not (settings.data_dir / "secret_key").exists()


def test_a_32_character_secret_key_is_taken(make_app):
    assert make_app(secret_key=STRONG).state.secret == STRONG


@pytest.mark.parametrize("content", ["", "\n", "short-key\n", "s" * 31])
def test_an_empty_or_short_key_file_is_refused_naming_secret_key(make_settings, make_app, content):
    data = make_settings().data_dir
    data.mkdir(parents=True, exist_ok=True)
    (data / "secret_key").write_text(content)
    with pytest.raises(
        SettingsError, match=r"^SECRET_KEY: the key in \S+/secret_key is \d+ character\(s\) long"
    ):
        make_app(secret_key=None)


def test_the_generated_key_is_strong_owner_only_and_kept(make_app, make_settings, umask_022):
    first = make_app(secret_key=None).state.secret
    path = make_settings().data_dir / "secret_key"
    assert len(first) >= 32 and path.read_text() == first
    assert mode(path) == 0o600
    assert make_app(secret_key=None).state.secret == first
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".secret_key")] == []


def test_a_link_planted_where_the_key_is_written_is_never_written_through(
    make_settings, tmp_path, monkeypatch
):
    settings = make_settings(secret_key=None)
    settings.data_dir.mkdir(parents=True)
    target = tmp_path / "attacker-readable"
    # The temporary name ends in a random part no one can guess; fixed here so that a link can
    # be planted exactly where the key would be written first.
    monkeypatch.setattr(secrets, "token_hex", lambda nbytes=None: "0badc0de")
    planted = settings.data_dir / f".secret_key.{os.getpid()}.0badc0de"
    planted.symlink_to(target)
    with pytest.raises(FileExistsError):
        settings.resolved_secret_key()
    assert not target.exists()
    assert not (settings.data_dir / "secret_key").exists()
    assert planted.is_symlink()  # left alone, not followed or replaced


@pytest.mark.parametrize("points_at", ["a strong key", "nothing"])
def test_a_link_planted_as_the_key_file_is_refused_not_followed(make_settings, tmp_path, points_at):
    settings = make_settings(secret_key=None)
    settings.data_dir.mkdir(parents=True)
    target = tmp_path / "someone-elses-key"
    if points_at == "a strong key":  # a key the attacker knows, and long enough to be taken
        target.write_text("attacker-known-key-" + "k" * 40)
    (settings.data_dir / "secret_key").symlink_to(target)
    with pytest.raises(
        SettingsError, match=r"secret_key is a symbolic link, which is never followed"
    ):
        settings.resolved_secret_key()
    assert target.exists() == (points_at == "a strong key")  # nothing written through it


def test_data_dir_is_0700_and_every_file_in_it_0600(make_app, tmp_path, umask_022):
    data = tmp_path / "data"
    app = make_app(
        secret_key=None,
        database_url=f"sqlite:///{(data / 'backprop.db').as_posix()}",
    )
    quiz = load_course(SEED_DIR).get(SEED).quiz
    with TestClient(app) as client:
        headers = learner(client, "ada")
        assert client.get(f"/lessons/{SEED}").status_code == 200  # renders into the cache
        response = client.post(
            f"/api/lessons/{SEED}/quiz/attempts",
            json={"answers": answers(quiz, right=3, ids=ids_of(client, quiz, headers=headers))},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        while_serving = {p.relative_to(data).as_posix(): mode(p) for p in data.rglob("*")}
    after = {p.relative_to(data).as_posix(): mode(p) for p in data.rglob("*")}
    assert mode(data) == 0o700
    for name in ("secret_key", "backprop.db", "backprop.db-wal", "backprop.db-shm"):
        assert while_serving[name] == 0o600, name
    assert any(name.endswith(".json") for name in while_serving)
    for files in (while_serving, after):
        loose = {n: oct(m) for n, m in files.items() if m != 0o600 and not (data / n).is_dir()}
        assert loose == {}


def tree_modes(root: Path) -> dict[str, str]:
    """Every folder and file under `root` (itself included, as "."), with its mode in octal."""
    return {
        (p.relative_to(root).as_posix() if p != root else "."): oct(mode(p))
        for p in [root, *root.rglob("*")]
    }


def test_backprop_check_run_first_leaves_data_dir_owner_only_and_the_server_keeps_it(
    make_app, tmp_path, umask_022
):
    # the README's deploy warm-up: `backprop check` fills the render cache before the server
    # ever ran, under the usual umask (inherited by the command)
    data = tmp_path / "srv" / "data"
    finished = subprocess.run(
        [sys.executable, "-m", "app.cli", "check", "content"],
        cwd=ROOT, env={**os.environ, "DATA_DIR": str(data), "CONTENT_DIR": "content"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stdout + finished.stderr
    after_check = tree_modes(data)
    folders = {".": "0o700", "cache": "0o700", "cache/lessons": "0o700"}
    assert {n: m for n, m in after_check.items() if (data / n).is_dir()} == folders
    assert mode(data.parent) == 0o700  # a missing parent is made owner-only too
    entries = [n for n in after_check if n.endswith(".json")]
    assert entries and {after_check[n] for n in entries} == {"0o600"}
    make_app(secret_key=None, data_dir=data, database_url=f"sqlite:///{data / 'backprop.db'}")
    served = tree_modes(data)
    assert {n: m for n, m in served.items() if (data / n).is_dir()} == folders
    assert {m for n, m in served.items() if not (data / n).is_dir()} == {"0o600"}


def test_a_data_dir_left_readable_by_others_is_tightened_to_0700_at_start(make_app, tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    make_app(secret_key=None, data_dir=data)
    assert mode(data) == 0o700


WEAK = "SECRET_KEY is 1 character(s) long; it must be at least 32: set it to a random string"
EMPTY = "SECRET_KEY is set but empty: set it to a random string of at least 32 characters"
UVICORN = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", "0"]
SERVE = [sys.executable, "-m", "app.cli", "serve", "--port", "0"]


@pytest.mark.parametrize(
    ("command", "secret", "words"),
    [
        # uvicorn's own line, in the app's log format: "<time> ERROR uvicorn.error: Error ..."
        (UVICORN, "x", f"ERROR uvicorn.error: Error loading ASGI app. backprop: {WEAK}"),
        (UVICORN, "", f"ERROR uvicorn.error: Error loading ASGI app. backprop: {EMPTY}"),
        (SERVE, "x", f"backprop: {WEAK}"),
        (SERVE, "", f"backprop: {EMPTY}"),
    ],
    ids=["uvicorn-weak", "uvicorn-empty", "serve-weak", "serve-empty"],
)
def test_the_server_refuses_a_weak_or_empty_secret_key_in_one_line(
    tmp_path, command, secret, words
):
    env = {**os.environ, **server_env(tmp_path / "data"), "SECRET_KEY": secret}
    finished = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert finished.returncode != 0
    assert "Traceback" not in finished.stderr
    (line,) = finished.stderr.splitlines()  # nothing else: no lessons loaded, no traceback
    timestamp = "" if command is SERVE else r"\d{4}-\d\d-\d\d [\d:,]+ "
    assert re.match(timestamp + re.escape(words), line), line
    assert not (tmp_path / "data" / "backprop.db").exists()  # refused before the database
