"""The data the playground trains on: the 8x8 digits shipped in data/ and four 2-D NumPy sets.

Every set is split 80/20 into train and test, stratified by class and shuffled by `seed`, and
comes back as float arrays `x` (m, n_features) with integer labels `y` (m,).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .custom import encode

#: The 2-D sets, each with the noise level at which a small MLP learns it cleanly.
DEFAULT_NOISE: dict[str, float] = {"xor": 0.1, "circles": 0.08, "moons": 0.1, "spiral": 0.05}
DATASETS: tuple[str, ...] = ("digits", *DEFAULT_NOISE)
#: Points generated for each 2-D set (before the split).
POINTS_2D = 1000
TEST_FRACTION = 0.2
#: The 1,797 digits as uint8 `pixels` (1797, 64) and `labels` (1797,); see data/README.md.
DIGITS_FILE = Path(__file__).resolve().parent / "data" / "digits.npz"


@dataclass(frozen=True)
class Dataset:
    """A train/test split: x_* (m, n_features) floats, y_* (m,) integer labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    noise: float | None
    #: What the inputs were standardised with, x = (raw - shift) / scale (0 and 1: as they are).
    shift: Any = 0.0
    scale: Any = 1.0
    #: Custom data: the class names, and the points as the learner gave them (for the plot).
    classes: tuple[str, ...] | None = None
    raw_train: np.ndarray | None = None
    raw_test: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        """Inputs per sample (64 for digits, 2 for the 2-D sets)."""
        return self.x_train.shape[1]


def dataset_sizes(name: str, data: dict[str, Any] | None = None) -> tuple[int, int, int]:
    """(training samples, features, classes) of a set without loading it (for the work budget)."""
    if name == "custom":
        labels = list((data or {}).get("y") or [])
        counts = [labels.count(c) for c in dict.fromkeys(labels)]
        return sum(n - round(n * TEST_FRACTION) for n in counts), 2, len(counts)
    if name == "digits":
        return 1438, 64, 10
    classes = 3 if name == "spiral" else 2
    # as stratified_split holds out a rounded 20% of each class (labels are index % classes)
    sizes = [len(range(label, POINTS_2D, classes)) for label in range(classes)]
    return sum(size - round(size * TEST_FRACTION) for size in sizes), 2, classes


def stratified_split(
    x: np.ndarray, y: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle each class with `seed` and hold out 20% of it: x_train, y_train, x_test, y_test."""
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for label in range(int(y.max()) + 1):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(len(idx) * TEST_FRACTION))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    train = rng.permutation(np.concatenate(train_idx))
    test = rng.permutation(np.concatenate(test_idx))
    return x[train], y[train], x[test], y[test]


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8x8 digit images (64 pixels, 0-16) and labels, read from DIGITS_FILE."""
    # NumPy alone: importing scikit-learn for this table cost every worker most of a second
    with np.load(DIGITS_FILE, allow_pickle=False) as data:
        return data["pixels"].astype(np.float64), data["labels"].astype(np.int64)


def make_2d(name: str, noise: float, rng: np.random.Generator, n: int = POINTS_2D):
    """Points x (n, 2) in roughly [-1.5, 1.5]^2 and labels y (n,) for one of the 2-D sets."""
    if name == "xor":
        # Points in the four quadrants, kept a little away from the axes; class = signs differ.
        x = rng.uniform(0.1, 1.0, size=(n, 2)) * rng.choice([-1.0, 1.0], size=(n, 2))
        y = (x[:, 0] * x[:, 1] < 0).astype(np.int64)
    elif name == "circles":
        y = np.arange(n) % 2  # 0: outer ring of radius 1, 1: inner ring of radius 0.5
        angle = rng.uniform(0, 2 * np.pi, n)
        radius = np.where(y == 0, 1.0, 0.5)
        x = np.column_stack([np.cos(angle), np.sin(angle)]) * radius[:, None]
    elif name == "moons":
        y = np.arange(n) % 2
        t = rng.uniform(0, np.pi, n)
        upper = np.column_stack([np.cos(t), np.sin(t)])
        lower = np.column_stack([1 - np.cos(t), 0.5 - np.sin(t)])
        x = np.where((y == 0)[:, None], upper, lower) - [0.5, 0.25]
    elif name == "spiral":
        y = np.arange(n) % 3
        r = rng.uniform(0.05, 1.0, n)
        angle = y * (2 * np.pi / 3) + r * 4.0
        x = np.column_stack([r * np.sin(angle), r * np.cos(angle)])
    else:
        raise ValueError(f"unknown 2-D dataset {name!r}")
    x = x + rng.normal(0.0, noise, size=x.shape)
    return x, y


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    noise: float | None = None,
    data: dict[str, Any] | None = None,
    dtype: type | np.dtype = np.float32,
) -> Dataset:
    """The named set split by `seed`; digits standardised with the training pixels' mean and std,
    custom `data` ({"x", "y"}, checked by the schema) per feature with the training rows'."""
    if name == "custom":
        if data is None:
            raise ValueError("the custom dataset needs its data")
        x, y, classes = encode(data["x"], data["y"])
        raw_train, y_train, raw_test, y_test = stratified_split(x, y, seed)
        # Learners' units are anything (pixels, metres, 0-1000): scaled, one learning rate suits
        # every upload as it suits the built-in sets. A constant column keeps its scale of 1.
        mean, std = raw_train.mean(axis=0), raw_train.std(axis=0)
        std[std == 0] = 1.0
        x_train, x_test = (raw_train - mean) / std, (raw_test - mean) / std
        dtype = np.dtype(dtype)
        return Dataset(
            name=name,
            x_train=np.ascontiguousarray(x_train, dtype=dtype),
            y_train=y_train,
            x_test=np.ascontiguousarray(x_test, dtype=dtype),
            y_test=y_test,
            n_classes=len(classes),
            noise=None,
            shift=mean,
            scale=std,
            classes=tuple(classes),
            raw_train=raw_train,
            raw_test=raw_test,
        )
    shift: Any = 0.0
    scale: Any = 1.0
    if name == "digits":
        x, y = _digits()
        x_train, y_train, x_test, y_test = stratified_split(x, y, seed)
        # One mean and one standard deviation over all training pixels: the images stay images
        # (per-pixel scaling would blow rarely-inked border pixels up to 30 sigma, and over ten
        # splits it tests about half a point worse).
        mean, std = x_train.mean(), x_train.std()
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
        n_classes, noise, shift, scale = 10, None, mean, std
    elif name in DEFAULT_NOISE:
        noise = DEFAULT_NOISE[name] if noise is None else float(noise)
        x, y = make_2d(name, noise, np.random.default_rng(seed))
        x_train, y_train, x_test, y_test = stratified_split(x, y, seed)
        n_classes = 3 if name == "spiral" else 2
    else:
        raise ValueError(f"unknown dataset {name!r}")
    dtype = np.dtype(dtype)
    return Dataset(
        name=name,
        x_train=np.ascontiguousarray(x_train, dtype=dtype),
        y_train=y_train,
        x_test=np.ascontiguousarray(x_test, dtype=dtype),
        y_test=y_test,
        n_classes=n_classes,
        noise=noise,
        shift=shift,
        scale=scale,
    )
