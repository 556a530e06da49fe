"""The digits ship inside the package as NumPy data: same arrays, same splits, no scikit-learn."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from app.training.datasets import DIGITS_FILE, _digits, dataset_sizes, load_dataset

ROOT = Path(__file__).resolve().parent.parent

#: app/training/data/digits.npz as written by scripts/extract_digits.py
FILE_SHA256 = "089d33176bf6819a5c6ebd6746c5293713f4e81c2c8fc52b672e6e15faa78f41"
#: sklearn.datasets.load_digits() as the loader used it (data as float64, target as int64)
SKLEARN_DATA_SHA256 = "20def7f70a702f0af9732fbba4375e147a7d54fe70d8c45569b8e7c1c7010c10"
SKLEARN_TARGET_SHA256 = "a3c91c262eddcf7ba8f0e37507c30284493c9b20412ffe4af30d536401f7ba21"
#: load_dataset("digits", seed=...) before the change: x_train, y_train, x_test, y_test
SPLITS = {
    0: (
        "84944148bcf13ede561049eb0bcf182a8c7c9ad66b11c6631cb5bd2bead3ecbd",
        "b480879ce9d6cc61dcd64219ac9b7f4756d3ee3d7be40b4d4cd44186abfff683",
        "62fd17d81dd6a0955b7bd34b03290028cbb38aa8163b8b03b01d621cea54d72c",
        "cba74db6541eec858b4dd7b2c17878ea8151c217a81a3984e08e90127edab720",
    ),
    7: (
        "322059a7ee43b68eb3691aafe083dd0af53efe88f51323b6e536fb7ce9c5acd8",
        "eeff44bcda2cb32d60ebc1c17625f8543f21d8e273a25b4dae75a2188912ce7c",
        "e3832b33155a3193123bfbf980cdefb9e28264a7cf3d4350e370c70b89cadf87",
        "91a601b7c7d6c39f2b2bfd13d2471f1dbd1c4aabbd8640d0bef2b010f986826f",
    ),
}


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def test_the_shipped_digits_file_is_the_one_extracted():
    assert hashlib.sha256(DIGITS_FILE.read_bytes()).hexdigest() == FILE_SHA256


def test_the_file_holds_1797_images_of_64_pixels_0_to_16_as_uint8():
    with np.load(DIGITS_FILE, allow_pickle=False) as data:
        assert sorted(data.files) == ["labels", "pixels"]
        pixels, labels = data["pixels"], data["labels"]
    assert pixels.shape == (1797, 64) and pixels.dtype == np.uint8
    assert labels.shape == (1797,) and labels.dtype == np.uint8
    assert pixels.min() == 0 and pixels.max() == 16
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_the_loaded_arrays_are_what_scikit_learns_loader_returned():
    x, y = _digits()
    assert x.dtype == np.float64 and y.dtype == np.int64
    assert digest(x) == SKLEARN_DATA_SHA256
    assert digest(y) == SKLEARN_TARGET_SHA256


def test_the_digits_splits_and_scaling_are_unchanged():
    for seed, expected in SPLITS.items():
        data = load_dataset("digits", seed=seed)
        got = (data.x_train, data.y_train, data.x_test, data.y_test)
        assert tuple(digest(a) for a in got) == expected, seed
    assert dataset_sizes("digits") == (len(data.y_train), 64, 10)


def test_a_worker_trains_on_the_digits_without_importing_scikit_learn_or_scipy():
    # What a training process imports (app/training/pool.py's worker), in a fresh interpreter.
    script = (
        "import json, sys\n"
        "from app.training.pool import _worker_main\n"
        "from app.training.datasets import load_dataset\n"
        "from app.training.runner import train\n"
        "load_dataset('digits')\n"
        "result = train({'dataset': 'digits', 'hidden_layers': [8], 'epochs': 1})\n"
        "print(json.dumps({'status': result['status'],"
        " 'modules': sorted({m.split('.')[0] for m in sys.modules})}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["status"] == "completed"
    assert "numpy" in report["modules"]
    assert {"sklearn", "scipy"} & set(report["modules"]) == set()
