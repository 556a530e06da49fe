"""One training run from a configuration dict to a result dict: used by /train, the CLI and bench.

No web framework here. `train` runs in whatever process calls it; the web app calls it inside
its worker processes (see `pool.py`).
"""

from __future__ import annotations

import base64
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from .datasets import DEFAULT_NOISE, Dataset, dataset_sizes, load_dataset
from .nn import Network, parameter_count
from .schemas import TrainRequest

#: The request's fields and their defaults (the lesson's network on digits), from the one schema.
DEFAULTS: dict[str, Any] = TrainRequest().model_dump()
#: Cells per side of the decision-boundary grid sent for 2-D sets.
GRID = 48
#: A step's fixed Python and NumPy call cost per layer, in units of one sample x one parameter.
LAYER_STEP_COST = 100_000
#: Below this many rows a step costs like this many: it is bound by reading the weights.
MIN_BATCH_COST = 32
#: Mini-batches between checks for a stop request inside an epoch.
STOP_CHECK_EVERY = 16
#: Networks up to this many parameters keep their trained weights for export (a run's weights
#: travel back from its worker as base64 float32, about 5.3 bytes a parameter).
MAX_EXPORT_PARAMS = 100_000

EpochCallback = Callable[[dict[str, Any], "dict[str, Any] | None"], None]


def full_config(config: dict[str, Any]) -> dict[str, Any]:
    """The request with defaults filled in, 2-D noise resolved, and `layer_sizes` added."""
    merged = {**DEFAULTS, **{k: v for k, v in config.items() if k in DEFAULTS}}
    merged["hidden_layers"] = [int(n) for n in merged["hidden_layers"]]
    name = merged["dataset"]
    if name in DEFAULT_NOISE and merged["noise"] is None:
        merged["noise"] = DEFAULT_NOISE[name]
    if merged.get("data") is None:
        # built-in sets have none, and their configurations (and run keys) stay as they were
        merged.pop("data", None)
    _, n_features, n_classes = dataset_sizes(name, merged.get("data"))
    merged["layer_sizes"] = [n_features, *merged["hidden_layers"], n_classes]
    return merged


def estimate_work(config: dict[str, Any]) -> float:
    """Roughly epochs x samples x parameters, the unit the budget caps (~1e-10 s each here).

    Refined so that every configuration costs about its running time: a mini-batch smaller
    than MIN_BATCH_COST costs as much as one of that size, each step pays a fixed cost per
    layer, and each epoch ends with a forward pass over the test set.
    """
    cfg = full_config(config)
    n_train = dataset_sizes(cfg["dataset"], cfg.get("data"))[0]
    batch = min(cfg["batch_size"] or n_train, n_train)
    steps = math.ceil(n_train / batch)
    params = parameter_count(cfg["layer_sizes"])
    layers = len(cfg["layer_sizes"]) - 1
    per_epoch = (
        steps * max(batch, MIN_BATCH_COST) * params
        + 0.1 * n_train * params
        + steps * layers * LAYER_STEP_COST
    )
    return cfg["epochs"] * per_epoch


def decision_boundary(net: Network, data: Dataset, *, points: bool = True) -> dict[str, Any]:
    """Predicted class on a GRID x GRID lattice over the data, and the test points on top.

    `grid[r][c]` is the class at x = x_range[0] + c * dx, y = y_range[0] + r * dy (row 0 at the
    bottom); `points` are the test set as [x, y, class]. Custom data is drawn in the learner's
    own coordinates with every one of their points.
    """
    custom = data.raw_train is not None and data.raw_test is not None
    if custom:
        shown = np.concatenate([data.raw_train, data.raw_test])
        labels = np.concatenate([data.y_train, data.y_test])
    else:
        shown, labels = np.concatenate([data.x_train, data.x_test]), data.y_test
    lo, hi = shown.min(axis=0), shown.max(axis=0)
    pad = np.where(hi > lo, (hi - lo) * 0.08, 1.0)
    lo, hi = lo - pad, hi + pad
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], GRID), np.linspace(lo[1], hi[1], GRID))
    lattice = np.column_stack([gx.ravel(), gy.ravel()])
    lattice = ((lattice - data.shift) / data.scale).astype(data.x_train.dtype)
    boundary: dict[str, Any] = {
        "x_range": [float(lo[0]), float(hi[0])],
        "y_range": [float(lo[1]), float(hi[1])],
        "grid": net.predict(lattice).reshape(GRID, GRID).tolist(),
    }
    if points:
        xy = shown if custom else data.x_test
        # as many digits as tell the points apart at the plot's scale, whatever the units
        digits = max(3, 3 - int(np.floor(np.log10(max(float((hi - lo).max()), 1e-12)))))
        rows = np.column_stack([np.asarray(xy, dtype=np.float64).round(digits), labels]).tolist()
        boundary["points"] = [[x, y, int(c)] for x, y, c in rows]
    return boundary


def train(
    config: dict[str, Any],
    *,
    on_epoch: EpochCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    boundary_every: int = 0,
    dtype: type | np.dtype = np.float32,
    keep_params: bool = False,
) -> dict[str, Any]:
    """Train the configured network; the response body of POST /train (status may be "stopped").

    `on_epoch(row, boundary)` gets each history row, and for 2-D sets every `boundary_every`
    epochs a `decision_boundary` snapshot too (the first one with the test points).
    `should_stop()` is polled during and between epochs. `keep_params` adds the trained
    parameters as `params` (base64 of the flat float32 buffer) when there are at most
    MAX_EXPORT_PARAMS: the server keeps them for export and never sends them on.
    """
    started = time.perf_counter()
    cfg = full_config(config)
    with threadpool_limits(limits=1, user_api="blas"), np.errstate(all="ignore"):
        data = load_dataset(
            cfg["dataset"], seed=cfg["seed"], noise=cfg["noise"], data=cfg.get("data"), dtype=dtype
        )
        net = Network(
            cfg["layer_sizes"],
            activation=cfg["activation"],
            init=cfg["init"],
            seed=cfg["seed"],
            dtype=dtype,
        )
        shuffle = np.random.default_rng([cfg["seed"], 1])
        n = len(data.y_train)
        batch = min(cfg["batch_size"] or n, n)
        lr, momentum = float(cfg["learning_rate"]), float(cfg["momentum"])
        two_d = data.n_features == 2
        frames = 0
        history: list[dict[str, Any]] = []
        status, train_seconds, predictions = "completed", 0.0, np.zeros(0, dtype=np.int64)

        for epoch in range(1, cfg["epochs"] + 1):
            tick = time.perf_counter()
            if batch < n:
                order = shuffle.permutation(n)
                xs, ys = data.x_train[order], data.y_train[order]
            else:
                xs, ys = data.x_train, data.y_train
            loss_sum, correct = 0.0, 0
            for step, start in enumerate(range(0, n, batch)):
                net.train_batch(xs[start : start + batch], ys[start : start + batch], lr, momentum)
                loss_sum += net.batch_loss
                correct += net.batch_correct
                if (
                    should_stop
                    and step % STOP_CHECK_EVERY == STOP_CHECK_EVERY - 1
                    and should_stop()
                ):
                    status = "stopped"
                    break
            train_seconds += time.perf_counter() - tick
            if status == "stopped":
                break
            # Loss and training accuracy are averaged over the epoch's mini-batches as they were
            # trained (as Keras and most PyTorch loops report them): no second pass over the set.
            loss = loss_sum / n
            finite = math.isfinite(loss)
            predictions = net.predict(data.x_test)
            row = {
                "epoch": epoch,
                "loss": loss if finite else None,
                "train_accuracy": correct / n,
                "test_accuracy": float(np.mean(predictions == data.y_test)),
            }
            history.append(row)
            if on_epoch:
                due = two_d and boundary_every and (epoch % boundary_every == 0 or not finite)
                snapshot = decision_boundary(net, data, points=not frames) if due else None
                frames += bool(due)
                on_epoch(row, snapshot)
            if not finite:
                status = "diverged"
                break
            if should_stop and should_stop():
                status = "stopped"
                break

        k = data.n_classes
        confusion = np.zeros((k, k), dtype=np.int64)
        if len(predictions):
            np.add.at(confusion, (data.y_test, predictions), 1)
        last = history[-1] if history else {"train_accuracy": 0.0, "test_accuracy": 0.0}
        samples = n * len(history)
        result: dict[str, Any] = {
            "run_id": uuid.uuid4().hex,
            "status": status,
            # custom points stay out of the answer: the client sent them, and they can be large
            "config": {k: v for k, v in cfg.items() if k != "data"},
            "history": history,
            "train_accuracy": last["train_accuracy"],
            "test_accuracy": last["test_accuracy"],
            "parameters": parameter_count(cfg["layer_sizes"]),
            "duration_seconds": round(time.perf_counter() - started, 4),
            "samples_per_second": round(samples / train_seconds, 1) if train_seconds else 0.0,
            "confusion_matrix": confusion.tolist(),
        }
        if two_d:
            result["decision_boundary"] = decision_boundary(net, data)
        if data.classes is not None:
            result["classes"] = list(data.classes)
        if keep_params and net.n_params <= MAX_EXPORT_PARAMS and status == "completed":
            result["params"] = base64.b64encode(net.params.astype("<f4").tobytes()).decode()
    return result
