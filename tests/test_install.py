"""A normal (not editable) install: the wheel carries everything the app reads, and uv.lock
matches pyproject.toml."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from .live import free_port

ROOT = Path(__file__).resolve().parent.parent
SEED_ID = "dl-intro-neural-networks"


def run(args: list[str], *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with Backprop installed from a wheel built from this checkout (and its
    dependencies from the package index, through pip's cache): the venv's folder."""
    tmp = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    pip = [sys.executable, "-m", "pip"]
    dist = tmp / "dist"
    run([*pip, "wheel", "--no-deps", "-q", str(ROOT), "-w", str(dist)], timeout=300, env=env)
    (wheel,) = dist.glob("backprop-*.whl")
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=120)
    run(
        [*pip, "--python", str(venv / "bin" / "python"), "install", "-q", str(wheel)],
        timeout=600,
        env=env,
    )
    return venv


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_installed_wheel_serves_the_seed_lesson_and_docs_from_an_empty_folder(
    installed, tmp_path
):
    cwd = tmp_path / "empty"
    cwd.mkdir()
    # nothing from this checkout or the shell's settings: only the venv's own site-packages
    env = {"PATH": f"{installed / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    python = str(installed / "bin" / "python")
    where = run([python, "-c", "import app; print(app.__file__)"], cwd=cwd, env=env, timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(installed)
    # scikit-learn and SciPy are not needed at run time, so nothing installs them
    missing = subprocess.run(
        [python, "-c", "import sklearn"], cwd=cwd, env=env, capture_output=True, timeout=60
    )
    assert missing.returncode != 0 and b"No module named 'sklearn'" in missing.stderr

    check = run([str(installed / "bin" / "backprop"), "check"], cwd=cwd, env=env, timeout=120)
    lessons = len(list((ROOT / "content").glob("*.md")))  # the whole bundled course
    assert check.stdout.splitlines()[-1].startswith(f"{lessons} lesson(s) OK, 0 error(s)")

    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [str(installed / "bin" / "backprop"), "serve", "--port", str(port)],
        cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("the installed server did not answer /healthz within 60 s")

        with httpx.Client(base_url=base, timeout=30) as http:
            lesson = http.get(f"/lessons/{SEED_ID}")
            assert lesson.status_code == 200
            assert "<h1" in lesson.text and "Introduction to Neural Networks" in lesson.text
            # the course's last lesson is in the wheel too, its formulas drawn as MathML
            last = http.get("/lessons/dl-handwritten-digits")
            assert last.status_code == 200 and "<math" in last.text
            docs = http.get("/docs")
            assert docs.status_code == 200 and "swagger-ui" in docs.text
            assert http.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
            assert http.get("/openapi.json").json()["info"]["title"] == "Backprop"
            # the digits come from the package's own data file, in a training process
            trained = http.post("/train", json={"hidden_layers": [8], "epochs": 1})
            assert trained.status_code == 200, trained.text
            assert trained.json()["status"] == "completed"
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        log.close()
    # DATA_DIR defaults to ./data of the working directory: the database and the key live there
    assert (cwd / "data" / "backprop.db").is_file()
    assert (cwd / "data" / "secret_key").is_file()


def load_resources_module(at: Path):
    """app/resources.py loaded from a copy at `at` (a package folder of a made-up install)."""
    (at / "resources.py").write_text((ROOT / "app" / "resources.py").read_text())
    spec = importlib.util.spec_from_file_location("resources_copy", at / "resources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_resources_come_from_the_package_data_when_it_has_them(tmp_path):
    package = tmp_path / "site-packages" / "app"
    for folder in ("templates", "static", "migrations", "course"):
        (package / "_data" / folder).mkdir(parents=True)
    # a top-level alembic/ beside the package (the Alembic library) must never be taken
    (tmp_path / "site-packages" / "alembic").mkdir()
    resources = load_resources_module(package)
    assert resources.migrations_dir() == package / "_data" / "migrations"
    assert resources.course_dir() == package / "_data" / "course"


def test_a_package_without_its_data_says_so_instead_of_using_a_neighbouring_folder(tmp_path):
    package = tmp_path / "site-packages" / "app"
    package.mkdir(parents=True)
    (tmp_path / "site-packages" / "alembic").mkdir()  # the Alembic library, not our migrations
    resources = load_resources_module(package)
    with pytest.raises(resources.MissingResource, match="migrations folder is missing"):
        resources.migrations_dir()


def test_a_checkout_uses_its_top_level_folders():
    from app import resources

    assert resources.migrations_dir() == ROOT / "alembic"
    assert resources.templates_dir() == ROOT / "templates"
    assert resources.course_dir() == ROOT / "content"


def requirement_key(req: Requirement, extra: str | None) -> tuple:
    marker = f"extra == '{extra}'" if extra else None
    return canonicalize_name(req.name), tuple(sorted(req.extras)), str(req.specifier), marker


def test_uv_lock_was_made_from_the_dependencies_in_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {requirement_key(Requirement(r), None) for r in project["dependencies"]}
    for extra, reqs in project["optional-dependencies"].items():
        wanted |= {requirement_key(Requirement(r), extra) for r in reqs}
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (ours,) = [p for p in lock["package"] if p["name"] == "backprop"]
    locked = {
        (
            canonicalize_name(r["name"]),
            tuple(sorted(r.get("extras", []))),
            # uv keeps the order written (">=3.10,<4"); packaging sorts ("<4,>=3.10")
            str(SpecifierSet(r.get("specifier", ""))),
            r.get("marker"),
        )
        for r in ours["metadata"]["requires-dist"]
    }
    assert locked == wanted, "pyproject.toml changed: run `uv lock` and commit uv.lock"
