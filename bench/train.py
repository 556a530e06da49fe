"""Training throughput: Backprop's NumPy network vs scikit-learn's MLPClassifier vs PyTorch CPU.

Same architecture, data, batch size, learning rate and epochs for each; prints samples/s, final
test accuracy and the ratios, then POST /train end to end (a real uvicorn, per-epoch evaluation
and HTTP included) against PyTorch's bare training loop. One BLAS/torch thread everywhere.

    .venv/bin/pip install -e '.[bench]'        # scikit-learn and PyTorch, the baselines
    .venv/bin/python bench/train.py            # a baseline not installed shows as such
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import httpx
import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.training.datasets import Dataset, dataset_sizes, load_dataset  # noqa: E402
from app.training.nn import Network  # noqa: E402
from bench.load import server_env  # noqa: E402
from tests.live import LiveServer  # noqa: E402

EPOCHS, BATCH, LR, SEED = 30, 64, 0.1, 0


def synthetic_784(n: int = 6000, seed: int = 0) -> Dataset:
    """MNIST-shaped data: 784 features, 10 Gaussian classes, learnable but not trivially."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((10, 784)) * 0.15
    y = rng.integers(0, 10, n)
    x = (centres[y] + rng.standard_normal((n, 784))).astype(np.float32)
    cut = int(n * 0.8)
    return Dataset("synthetic-784", x[:cut], y[:cut], x[cut:], y[cut:], 10, None)


def bench_backprop(data: Dataset, hidden: list[int]) -> tuple[float, float]:
    """Backprop's training loop exactly as the runner does it (shuffle, mini-batches, step)."""
    net = Network([data.n_features, *hidden, data.n_classes], seed=SEED)
    rng = np.random.default_rng([SEED, 1])
    n = len(data.y_train)
    started = time.perf_counter()
    for _ in range(EPOCHS):
        order = rng.permutation(n)
        xs, ys = data.x_train[order], data.y_train[order]
        for s in range(0, n, BATCH):
            net.train_batch(xs[s : s + BATCH], ys[s : s + BATCH], LR)
    seconds = time.perf_counter() - started
    accuracy = float(np.mean(net.predict(data.x_test) == data.y_test))
    return EPOCHS * n / seconds, accuracy


def bench_sklearn(data: Dataset, hidden: list[int]) -> tuple[float, float] | None:
    """MLPClassifier with plain mini-batch SGD, no regularisation, no early stopping."""
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
    except ImportError:  # the `bench` extra, not a dependency of the server
        return None

    model = MLPClassifier(
        hidden_layer_sizes=tuple(hidden),
        solver="sgd",
        batch_size=BATCH,
        learning_rate_init=LR,
        momentum=0.0,
        nesterovs_momentum=False,
        alpha=0.0,
        max_iter=EPOCHS,
        tol=0.0,
        n_iter_no_change=EPOCHS + 1,
        shuffle=True,
        random_state=SEED,
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(data.x_train, data.y_train)
    seconds = time.perf_counter() - started
    return EPOCHS * len(data.y_train) / seconds, float(model.score(data.x_test, data.y_test))


def bench_torch(data: Dataset, hidden: list[int]) -> tuple[float, float] | None:
    """Idiomatic PyTorch eager: nn.Sequential, CrossEntropyLoss, optim.SGD, randperm batches."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    sizes = [data.n_features, *hidden, data.n_classes]
    layers: list = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    optimiser = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    n = len(y)
    started = time.perf_counter()
    for _ in range(EPOCHS):
        order = torch.randperm(n)
        for s in range(0, n, BATCH):
            idx = order[s : s + BATCH]
            optimiser.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            optimiser.step()
    seconds = time.perf_counter() - started
    with torch.no_grad():
        predicted = model(torch.from_numpy(data.x_test)).argmax(dim=1).numpy()
    return EPOCHS * n / seconds, float(np.mean(predicted == data.y_test))


def bench_http(hidden: list[int]) -> tuple[float, float]:
    """POST /train to a real uvicorn, timed by the client: samples/s end to end, accuracy."""
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        folder = Path(tmp)
        env = {**server_env(folder), "SECRET_KEY": "b" * 32}
        server = LiveServer(env, log_path=folder / "server.log").start()
        try:
            return _timed_runs(server.url, hidden)
        finally:
            server.stop()


def _timed_runs(base: str, hidden: list[int]) -> tuple[float, float]:
    """Best samples/s of three timed runs after a warm-up, and the last run's accuracy."""
    n_train = dataset_sizes("digits")[0]
    body = {"hidden_layers": hidden, "epochs": EPOCHS, "batch_size": BATCH}
    httpx.post(base + "/train", json={**body, "epochs": 1}, timeout=60)  # warm worker
    best, accuracy = 0.0, 0.0
    for _ in range(3):
        started = time.perf_counter()
        result = httpx.post(base + "/train", json=body, timeout=60).json()
        seconds = time.perf_counter() - started
        n = len(result["history"]) * n_train
        best, accuracy = max(best, n / seconds), result["test_accuracy"]
    return best, accuracy


def best_of(fn, *args, repeats: int = 3):
    """The fastest of a few runs (the machine is shared), with that run's accuracy."""
    results = [r for r in (fn(*args) for _ in range(repeats)) if r is not None]
    return max(results) if results else None


def main() -> None:
    with threadpool_limits(limits=1, user_api="blas"):
        print(f"{EPOCHS} epochs, batch {BATCH}, lr {LR}, plain SGD; one thread; best of 3")
        print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
        digits = load_dataset("digits")
        rows = {}
        for label, data, hidden in [
            ("digits [64, 128, 64, 10]", digits, [128, 64]),
            ("synthetic [784, 128, 64, 10]", synthetic_784(), [128, 64]),
        ]:
            ours = best_of(bench_backprop, data, hidden)
            sk = best_of(bench_sklearn, data, hidden, repeats=1 if data.n_features > 64 else 3)
            pt = best_of(bench_torch, data, hidden)
            rows[label] = (ours, sk, pt)
            print(f"\n{label}")
            print(f"  {'':14}{'samples/s':>12}{'test acc':>10}{'Backprop is':>14}")
            for name, r in [("Backprop", ours), ("scikit-learn", sk), ("PyTorch", pt)]:
                if r is None:
                    print(f"  {name:14}{'not installed':>12}")
                    continue
                ratio = "" if name == "Backprop" else f"{ours[0] / r[0]:.2f}x"
                print(f"  {name:14}{r[0]:>12,.0f}{r[1]:>10.3f}{ratio:>14}")
        http = bench_http([128, 64])
        torch_digits = rows["digits [64, 128, 64, 10]"][2]
        print("\nPOST /train end to end (digits, per-epoch evaluation and HTTP included)")
        print(f"  {'POST /train':14}{http[0]:>12,.0f}{http[1]:>10.3f}", end="")
        if torch_digits:
            print(f"{http[0] / torch_digits[0]:>13.2f}x PyTorch's bare loop")
        else:
            print()


if __name__ == "__main__":
    main()
