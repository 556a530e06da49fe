"""GET /train/{run_id}/export: the zip's network.py, run on its own, prints the run's accuracy."""

from __future__ import annotations

import gc
import io
import json
import re
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from app.training.archive import RunArchive
from app.training.datasets import load_dataset
from app.training.runner import full_config
from app.training.schemas import TrainRequest

from .test_playground_data import X, Y


def export(client, body: dict) -> tuple[dict, bytes]:
    run = client.post("/train", json=body)
    assert run.status_code == 200, run.text[:300]
    result = run.json()
    assert "params" not in result  # the weights stay on the server
    assert result["exportable"] is True
    response = client.get(f"/train/{result['run_id']}/export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    return result, response.content


def run_script(archive: bytes, folder: Path) -> str:
    zipfile.ZipFile(io.BytesIO(archive)).extractall(folder)
    # a fresh interpreter with NumPy and nothing of ours: -I ignores the repository's path
    done = subprocess.run(
        [sys.executable, "-I", "network.py"], cwd=folder, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    "body",
    [
        {"dataset": "custom", "data": {"x": X, "y": Y}, "hidden_layers": [8, 8], "epochs": 30},
        {"dataset": "moons", "hidden_layers": [16], "activation": "sigmoid", "epochs": 15},
        {"dataset": "spiral", "hidden_layers": [12, 12], "activation": "tanh", "epochs": 20},
        {"dataset": "digits", "hidden_layers": [32], "epochs": 3},
    ],
    ids=["custom", "moons-sigmoid", "spiral-tanh", "digits"],
)
def test_the_exported_script_prints_exactly_the_test_accuracy_the_run_reported(
    client, tmp_path, body
):
    result, archive = export(client, body)
    assert sorted(zipfile.ZipFile(io.BytesIO(archive)).namelist()) == [
        "data.csv",
        "network.py",
        "weights.npz",
    ]
    printed = run_script(archive, tmp_path)
    accuracy = re.search(r"test accuracy: (\S+) \((\d+) of (\d+) test rows", printed)
    assert accuracy, printed
    assert float(accuracy.group(1)) == result["test_accuracy"]
    assert accuracy.group(1) == repr(result["test_accuracy"])
    assert int(accuracy.group(3)) == sum(map(sum, result["confusion_matrix"]))


def test_the_export_holds_the_lessons_forward_readable_and_numpy_only(client, tmp_path):
    result, archive = export(
        client, {"dataset": "custom", "data": {"x": X, "y": Y}, "hidden_layers": [8], "epochs": 5}
    )
    files = zipfile.ZipFile(io.BytesIO(archive))
    script = files.read("network.py").decode()
    imports = {
        line.split()[1] for line in script.splitlines() if line.startswith(("import", "from"))
    }
    assert imports == {"csv", "pathlib", "numpy"}
    assert "def forward(" in script and "def softmax(" in script and 'ACTIVATION = "relu"' in script
    with np.load(io.BytesIO(files.read("weights.npz")), allow_pickle=False) as saved:
        assert saved["W1"].shape == (2, 8) and saved["b1"].shape == (8,)
        assert saved["W2"].shape == (8, 2) and saved["W1"].dtype == np.float32
        assert list(saved["classes"]) == ["inner", "outer"]
    rows = files.read("data.csv").decode().splitlines()
    assert rows[0] == "x1,x2,label,split" and len(rows) == len(X) + 1
    assert sum(row.endswith(",test") for row in rows) == 24
    # the learner's own coordinates, to the last digit
    first = {tuple(map(float, row.split(",")[:2])) for row in rows[1:]}
    assert first == {tuple(p) for p in X}


def test_an_unknown_or_malformed_run_id_is_a_404_or_422(client):
    assert client.get(f"/train/{'0' * 32}/export").status_code == 404
    assert "in the last hour" in client.get(f"/train/{'0' * 32}/export").json()["detail"]
    assert client.get("/train/not-a-run/export").status_code == 422


def test_a_diverged_run_and_a_network_too_large_to_keep_are_409s(client):
    diverged = client.post(
        "/train",
        json={"dataset": "xor", "hidden_layers": [16, 16], "learning_rate": 100,
              "batch_size": 8, "epochs": 5},
    ).json()  # fmt: skip
    assert diverged["status"] == "diverged" and diverged["exportable"] is False
    response = client.get(f"/train/{diverged['run_id']}/export")
    assert response.status_code == 409 and "diverged" in response.json()["detail"]
    large = client.post(
        "/train", json={"dataset": "xor", "hidden_layers": [400, 300], "epochs": 1}
    ).json()
    assert large["parameters"] > 100_000 and large["exportable"] is False
    response = client.get(f"/train/{large['run_id']}/export")
    assert response.status_code == 409 and "100,000 parameters" in response.json()["detail"]


def test_a_streamed_run_is_kept_for_export_too(client, tmp_path):
    with client.stream(
        "POST",
        "/train",
        json={"dataset": "xor", "hidden_layers": [8], "epochs": 5},
        headers={"Accept": "text/event-stream"},
    ) as response:
        text = "".join(response.iter_text())
    assert '"params"' not in text
    run_id = re.search(r'"run_id":"([0-9a-f]{32})"', text).group(1)
    assert client.get(f"/train/{run_id}/export").status_code == 200


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def kept(run_id: str, size: int = 40) -> dict:
    return {"run_id": run_id, "status": "completed", "test_accuracy": 1.0, "params": "AAAA" * size}


def test_runs_are_kept_for_an_hour_within_a_bounded_memory():
    clock = Clock()
    archive = RunArchive(clock=clock, max_runs=3, max_bytes=10_000)
    archive.keep(config={}, result=kept("a"))
    clock.now = 3599.0
    assert archive.get("a") is not None
    clock.now = 3600.0
    assert archive.get("a") is None and len(archive) == 0
    for name in "bcde":
        archive.keep(config={}, result=kept(name))
    assert [archive.get(n) is not None for n in "bcde"] == [False, True, True, True]
    archive.keep(config={}, result=kept("big", size=2000))  # 6 KB: the older ones make room
    assert archive.get("big") is not None and archive._bytes <= 10_000
    archive.keep(config={}, result=kept("huge", size=4000))  # more than the whole archive
    assert archive.get("huge") is None and archive.get("big") is not None


def test_a_kept_run_of_own_points_takes_no_more_memory_than_the_archive_counts():
    """2,000 rows of long labels, as /train's schema hands them over, then kept: what stays
    allocated once the request is gone is within the bytes the archive's bound counts."""
    rows = [[i * 0.001 + 0.123456789, -i * 0.002] for i in range(2000)]
    body = json.dumps({"dataset": "custom", "hidden_layers": [4], "data": {
        "x": rows, "y": [f"é{i % 10}" + "x" * 38 for i in range(2000)],
    }})  # fmt: skip
    archive = RunArchive()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        config = full_config(TrainRequest.model_validate_json(body).model_dump())
        assert archive.keep(config=config, result=kept("mine")) is True
        del config
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held <= archive._bytes, (held, archive._bytes)
    # and it still exports: the points as trained, their labels as given
    run = archive.get("mine")
    assert run is not None
    assert load_dataset("custom", seed=0, data=run.config["data"]).classes[0] == "é0" + "x" * 38
