"""Shared fixtures: apps built from the factory with a temporary content folder and data dir."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app

from .live import LiveServer

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "content"
FIXTURE_COURSE = Path(__file__).parent / "fixtures" / "course"


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings pointing at temporary folders; keyword arguments override any field."""

    def factory(**overrides) -> Settings:
        values = {
            "content_dir": SEED,
            "data_dir": tmp_path / "data",
            "secret_key": "test-secret-key-not-for-production",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return factory


@pytest.fixture
def make_app(make_settings) -> Callable[..., FastAPI]:
    def factory(**overrides) -> FastAPI:
        return create_app(make_settings(**overrides))

    return factory


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
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A real uvicorn on 127.0.0.1 with a fresh data folder, serving the bundled course."""
    server = LiveServer(
        {
            "CONTENT_DIR": str(SEED),
            "DATA_DIR": str(tmp_path / "live-data"),
            "SECRET_KEY": "live-secret-key-for-tests",
        },
        log_path=tmp_path / "server.log",
    ).start()
    yield server
    server.stop()
