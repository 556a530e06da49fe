"""`backprop check --run`: claims trained through the real engine, held or not, and stored."""

from __future__ import annotations

import json
import os
import platform
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_info

from app.content import load_course
from app.training.figures import (
    FIGURES,
    RunStore,
    engine_fingerprint,
    run_key,
    run_validator,
    runs_cache_dir,
    summary,
)
from app.training.runner import train
from app.training.verify import auto_workers

from .question_types_util import EVERY_TYPE, LESSON, post

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "claims"
VALIDATE = run_validator(1.0e11)
FRONT = "---\nid: {id}\ntitle: Claims\nduration: 5 min\nsection: s\n---\n"


#: The BLAS settings of this process: its kernels are part of the engine (figures.py), so the
#: commands run here must train as this process does for their figures to be compared.
BLAS_ENV = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_", "MKL_"))}


def backprop(*args: str, data_dir: Path, env: dict | None = None, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "DATA_DIR": str(data_dir),
            **BLAS_ENV,
            **(env or {}),
        },
        **kwargs,
    )


def stored(data_dir: Path) -> dict[str, dict]:
    folder = runs_cache_dir(data_dir)
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def fixture_configs() -> list[dict]:
    course = load_course(FIXTURE, validate_run=VALIDATE)
    return [claim.config for claim in course.get("claims-demo").claims]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "lessons"
    shutil.copytree(FIXTURE, path)
    return path


def test_claims_that_hold_pass_and_their_figures_are_stored(folder, tmp_path):
    data = tmp_path / "data"
    result = backprop("check", "--run", str(folder), data_dir=data)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"1 lesson(s) OK, 0 error(s), 0 warning(s) in {folder.as_posix()}"
    assert lines[1].startswith("2 run(s) checked, 2 hold, 0 do not; 2 trained, 0 from the cache, ")
    assert len(lines) == 2
    assert result.stderr == ""  # not a terminal: no progress bar
    keys = {run_key(config) for config in fixture_configs()}
    assert set(stored(data)) == keys

    again = backprop("check", "--run", str(folder), data_dir=data)
    assert again.returncode == 0
    assert "2 hold, 0 do not; 0 trained, 2 from the cache" in again.stdout.splitlines()[1]


def test_a_claim_that_does_not_hold_is_reported_at_its_line_with_exit_1(folder, tmp_path):
    run = "{dataset: xor, hidden_layers: [8], learning_rate: 0.5, epochs: 3}"
    (folder / "wrong.md").write_text(
        FRONT.format(id="wrong")
        + "Text.\n\n```claim\n"
        + f"run: {run}\nexpect: test_accuracy >= 0.99 and parameters < 100\n```\n"
    )
    measured = train({"dataset": "xor", "hidden_layers": [8], "learning_rate": 0.5, "epochs": 3})
    assert measured["test_accuracy"] < 0.99
    result = backprop("check", "--run", str(folder), data_dir=tmp_path / "data")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == (
        f"{folder.as_posix()}/wrong.md:9: error: claim does not hold: "
        f"test_accuracy {measured['test_accuracy']:.4g} < 0.99"
    )
    assert lines[2].startswith("3 run(s) checked, 2 hold, 1 do not; 3 trained, 0 from the cache")
    assert "Traceback" not in result.stderr


def test_a_bad_goal_is_a_check_error_with_its_line(folder, tmp_path):
    (folder / "bad.md").write_text(
        FRONT.format(id="bad") + "```claim\nrun: {dataset: xor}\nexpect: accuracy > 0.5\n```\n"
    )
    result = backprop("check", str(folder), data_dir=tmp_path / "data")
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        f"{folder.as_posix()}/bad.md:9: error: claim expectation: unknown metric 'accuracy' "
        "(at column 1) (hint: did you mean test_accuracy?)"
    )
    assert not runs_cache_dir(tmp_path / "data").exists()  # nothing is trained without --run


def test_a_run_over_the_work_budget_is_a_check_error(folder, tmp_path):
    result = backprop(
        "check", str(folder), data_dir=tmp_path / "data", env={"TRAIN_WORK_BUDGET": "1000"}
    )
    assert result.returncode == 1
    assert f"{folder.as_posix()}/claims.md:10: error: claim run: too much work:" in result.stdout


def test_every_figure_is_the_same_on_every_run_and_in_this_process(folder, tmp_path):
    data = tmp_path / "data"
    first = backprop("check", "--run", "--jobs", "2", str(folder), data_dir=data)
    assert first.returncode == 0, first.stdout + first.stderr
    before = stored(data)
    again = backprop("check", "--run", "--fresh", "--jobs", "1", str(folder), data_dir=data)
    assert again.returncode == 0 and "2 trained, 0 from the cache" in again.stdout
    after = stored(data)
    assert set(before) == set(after)
    for key, figures in before.items():
        assert {f: figures[f] for f in FIGURES} == {f: after[key][f] for f in FIGURES}
    for config in fixture_configs():
        here = summary(train(config))
        there = after[run_key(config)]
        assert {f: here[f] for f in FIGURES} == {f: there[f] for f in FIGURES}
    statuses = sorted(figures["status"] for figures in after.values())
    assert statuses == ["completed", "diverged"]


def test_the_page_shows_what_check_run_measured(folder, tmp_path, make_app):
    data = tmp_path / "data"
    with TestClient(make_app(content_dir=folder, data_dir=data)) as client:
        assert client.get("/lessons/claims-demo").text.count("Not yet verified") == 2
        assert backprop("check", "--run", str(folder), data_dir=data).returncode == 0
        page = client.get("/lessons/claims-demo").text
    assert "Not yet verified" not in page
    assert page.count('<div class="claim claim-holds"') == 2
    assert "<code>status diverged == diverged</code>; holds. Verified <time" in page


def test_checking_the_served_folder_prunes_figures_no_claim_uses(folder, tmp_path):
    data = tmp_path / "data"
    store = RunStore(runs_cache_dir(data))
    store.put("0" * 64, summary(train({"dataset": "xor", "epochs": 1})))
    other = backprop("check", "--run", str(FIXTURE), data_dir=data)
    assert other.returncode == 0 and ("0" * 64) in stored(data)  # not the served folder: kept
    served = backprop("check", "--run", data_dir=data, env={"CONTENT_DIR": str(folder)})
    assert served.returncode == 0, served.stdout + served.stderr
    assert set(stored(data)) == {run_key(config) for config in fixture_configs()}


def test_check_run_measures_train_blocks_and_the_review_shows_what_it_stored(tmp_path, make_app):
    folder = tmp_path / "lessons"
    folder.mkdir()
    shutil.copy(EVERY_TYPE, folder / EVERY_TYPE.name)
    # the predict-then-run question's network as a claim, written otherwise (noise spelled
    # out): one configuration, one entry, trained once
    run = "{seed: 3, batch_size: 32, learning_rate: 0.5, epochs: 40, hidden_layers: [8], "
    (folder / "same.md").write_text(
        FRONT.format(id="same")
        + f"```claim\nrun: {run}dataset: xor, noise: 0.1}}\nexpect: test_accuracy > 0.9\n```\n"
    )
    data = tmp_path / "data"
    result = backprop("check", "--run", str(folder), data_dir=data)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[1].startswith(
        "2 run(s) checked, 2 hold, 0 do not; 1 trained, 0 from the cache"
    )
    question = load_course(folder, validate_run=VALIDATE).get(LESSON).quiz.questions[6]
    key = run_key(question.run)
    figures = stored(data)
    assert list(figures) == [key]
    here = summary(train(question.run))
    assert {f: here[f] for f in FIGURES} == {f: figures[key][f] for f in FIGURES}
    served = backprop("check", "--run", data_dir=data, env={"CONTENT_DIR": str(folder)})
    assert "0 trained, 1 from the cache" in served.stdout and list(stored(data)) == [key]
    # the review reads that entry (marked here), not a run of its own
    entry = runs_cache_dir(data) / f"{key}.json"
    entry.write_text(json.dumps({**figures[key], "test_accuracy": 0.125}))
    with TestClient(make_app(content_dir=folder, data_dir=data, train_workers=1)) as client:
        shown = post(client, {}).json()["results"][6]["run"]
    assert shown["test_accuracy"] == 0.125 and shown["history"] == figures[key]["history"]


def test_every_claim_and_train_block_of_the_bundled_course_holds(tmp_path):
    result = backprop("check", "--run", "content/", data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = re.match(
        r"(\d+) run\(s\) checked, (\d+) hold, 0 do not; (\d+) trained, 0 from the cache",
        result.stdout.splitlines()[-1],
    )
    assert summary, result.stdout
    checked, held, trained = map(int, summary.groups())
    # a claim per lesson after the seed, 4 predict-then-run blocks, 3 experiment solutions
    assert checked == held >= 7 + 4 + 3
    assert 0 < trained <= checked  # runs of one configuration are trained once


def test_a_terminal_gets_a_progress_bar(folder, tmp_path):
    controller, terminal = pty.openpty()
    try:
        with subprocess.Popen(
            [sys.executable, "-m", "app.cli", "check", "--run", str(folder)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=terminal,
            env={
                "PATH": "/usr/bin:/bin",
                "PYTHONPATH": str(ROOT),
                "DATA_DIR": str(tmp_path),
                **BLAS_ENV,
            },
        ) as proc:
            os.close(terminal)
            terminal = -1
            seen, deadline = b"", time.monotonic() + 60
            while time.monotonic() < deadline:
                ready, _, _ = select.select([controller], [], [], 1)
                if not ready:
                    if proc.poll() is not None:
                        break
                    continue
                try:
                    chunk = os.read(controller, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            assert proc.wait(timeout=60) == 0
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)
    text = seen.decode()
    assert "\rtraining [" + "." * 30 + "] 0/2 runs, " in text
    assert "\rtraining [" + "#" * 30 + "] 2/2 runs, " in text


def test_the_engine_fingerprint_names_numpys_blas_and_the_kernels_it_picked():
    # The kernels OpenBLAS picks (OPENBLAS_CORETYPE, else the CPU) change the last bits of a
    # float32 run: a server whose BLAS differs from the check's must not show its figures.
    fingerprint = engine_fingerprint()
    assert f"numpy={np.__version__} " in fingerprint
    loaded = [i for i in threadpool_info() if i["user_api"] == "blas"]
    assert any(
        f"{i['internal_api']}-{i['version']}-{i['architecture']}" in fingerprint for i in loaded
    )


def test_runs_train_in_this_process_unless_the_work_is_worth_starting_workers():
    small = [VALIDATE({"dataset": "xor", "epochs": 5})] * 3
    assert auto_workers(small, cores=8) == 1
    big = VALIDATE({"dataset": "spiral", "hidden_layers": [256, 256], "epochs": 500})
    assert auto_workers([big] * 6, cores=2) == 2
    assert auto_workers([big] * 6, cores=1) == 1


def _has_avx2() -> bool:
    try:
        return " avx2 " in Path("/proc/cpuinfo").read_text().replace("\n", " ")
    except OSError:
        return False


@pytest.mark.skipif(
    platform.machine() != "x86_64" or not _has_avx2(),
    reason="picks OpenBLAS's Prescott and Haswell kernels, which need an x86-64 CPU with AVX2",
)
def test_figures_measured_with_other_blas_kernels_are_kept_apart(folder, tmp_path):
    data = tmp_path / "data"
    figures = {}
    for kernel in ("Prescott", "Haswell"):
        result = backprop(
            "check", "--run", str(folder), data_dir=data, env={"OPENBLAS_CORETYPE": kernel}
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2 trained, 0 from the cache" in result.stdout  # the other kernel's are no use
        figures[kernel] = stored(data)
    assert len(figures["Haswell"]) == 4  # two claims under each kernel
    losses = {
        figures["Haswell"][key]["final_loss"]
        for key in figures["Haswell"]
        if figures["Haswell"][key]["status"] == "completed"
    }
    assert len(losses) == 2  # the same xor run ends a few float32 bits apart
