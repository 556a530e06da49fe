"""Shared fixtures: apps built from the factory with a temporary content folder and data dir."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app

from .live import LiveServer

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "content"
FIXTURE_COURSE = Path(__file__).parent / "fixtures" / "course"


TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine | None]:
    """An engine on TEST_DATABASE_URL for creating and dropping per-test schemas (else None)."""
    if not TEST_DATABASE_URL:
        yield None
        return
    engine = sa.create_engine(
        TEST_DATABASE_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    yield engine
    engine.dispose()


@pytest.fixture
def database_url(pg_admin, tmp_path: Path) -> Iterator[str]:
    """This test's own empty database: a SQLite file under tmp_path, or a fresh PostgreSQL schema
    (created here, dropped afterwards; nothing else in the database is touched)."""
    if pg_admin is None:
        yield f"sqlite:///{(tmp_path / 'data' / 'backprop.db').as_posix()}"
        return
    schema = f"bp_test_{os.getpid()}_{secrets.token_hex(6)}"
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(TEST_DATABASE_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with pg_admin.connect() as conn:
        conn.execute(sa.text("SET lock_timeout = '10s'"))
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str) -> Callable[..., Settings]:
    """Settings pointing at temporary folders and this test's database; keyword arguments
    override any field."""

    def factory(**overrides) -> Settings:
        values = {
            "content_dir": SEED,
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "secret_key": "test-secret-key-not-for-production",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return factory


@pytest.fixture
def make_app(make_settings) -> Iterator[Callable[..., FastAPI]]:
    """Apps on this test's database; their connection pools are closed after the test."""
    apps: list[FastAPI] = []

    def factory(**overrides) -> FastAPI:
        app = create_app(make_settings(**overrides))
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.state.db.close()


@pytest.fixture
def client(make_app) -> Iterator[TestClient]:
    with TestClient(make_app()) as test_client:
        yield test_client


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    """An empty content folder to write lessons into."""
    path = tmp_path / "content"
    path.mkdir()
    return path


@pytest.fixture
def fixture_course(tmp_path: Path) -> Path:
    """A copy of the multi-section fixture course plus the seed lesson."""
    path = tmp_path / "course"
    shutil.copytree(FIXTURE_COURSE, path)
    shutil.copy(SEED / "dl-intro-neural-networks.md", path / "dl-intro-neural-networks.md")
    return path


@pytest.fixture
def live_server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    """A real uvicorn on 127.0.0.1 with a fresh data folder and database, serving the course."""
    server = LiveServer(
        {
            "CONTENT_DIR": str(SEED),
            "DATA_DIR": str(tmp_path / "live-data"),
            "DATABASE_URL": database_url,
            "SECRET_KEY": "live-secret-key-for-tests-0123456789",
        },
        log_path=tmp_path / "server.log",
    ).start()
    yield server
    server.stop()
