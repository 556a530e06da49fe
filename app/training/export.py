"""A finished run as a zip a learner takes away: network.py, weights.npz and data.csv.

`network.py` is NumPy only and reads like the lesson: the activations, softmax and the forward
pass, the trained weights loaded from weights.npz, and a last block that classifies the test
rows of data.csv and prints the test accuracy. It computes in float32 in the order the server's
network does (app/training/nn.py), so it prints the accuracy the playground reported.
"""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

import numpy as np

from .datasets import DEFAULT_NOISE, _digits, load_dataset, make_2d, stratified_split

NETWORK_PY = '''"""A network trained in the Backprop playground: {summary}.

Run `python network.py` in this folder, beside weights.npz and data.csv. It loads the trained
weights, classifies the test rows of data.csv and prints the test accuracy; the playground
reported {reported!r}. Only NumPy is needed.
"""

import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
#: The hidden layers' activation; the output layer is softmax.
ACTIVATION = "{activation}"


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def relu(z):
    return np.maximum(z, 0)


def tanh(z):
    return np.tanh(z)


def softmax(z):
    """Row-wise softmax of scores z (m, classes): probabilities that sum to 1 in each row."""
    exp_z = np.exp(z - np.max(z, axis=1, keepdims=True))  # numerical stability
    return exp_z / exp_z.sum(axis=1, keepdims=True)


def load_weights(path=HERE / "weights.npz"):
    """Weights W1, W2, ... (n_in, n_out) and biases b1, b2, ... (n_out,), and the input scaling."""
    with np.load(path, allow_pickle=False) as saved:
        layers = sum(1 for name in saved.files if name.startswith("W"))
        weights = [saved[f"W{{i}}"] for i in range(1, layers + 1)]
        biases = [saved[f"b{{i}}"] for i in range(1, layers + 1)]
        scaling = (saved["input_shift"], saved["input_scale"])
        classes = [str(name) for name in saved["classes"]]
    return weights, biases, scaling, classes


def scores(x, weights, biases):
    """Forward propagation up to the output layer's scores (before softmax), layer by layer."""
    activation = {{"sigmoid": sigmoid, "relu": relu, "tanh": tanh}}[ACTIVATION]
    current = x
    for i, (W, b) in enumerate(zip(weights, biases)):
        z = current @ W + b
        current = activation(z) if i < len(weights) - 1 else z
    return current


def forward(x, weights, biases):
    """The network's class probabilities (m, classes) for inputs x (m, features)."""
    return softmax(scores(x, weights, biases))


def predict(x, weights, biases):
    """The most probable class of each row: softmax keeps the order of the scores, so it is the
    highest score (taken before softmax, where two classes cannot round to a tie)."""
    return np.argmax(scores(x, weights, biases), axis=1)


def read_data(path=HERE / "data.csv"):
    """The rows of data.csv: inputs (m, features) as float64, labels, and train/test split."""
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    features = [name for name in rows[0] if name not in ("label", "split")]
    x = np.array([[float(row[name]) for name in features] for row in rows])
    labels = [row["label"] for row in rows]
    split = np.array([row["split"] for row in rows])
    return x, labels, split


if __name__ == "__main__":
    weights, biases, (shift, scale), classes = load_weights()
    x, labels, split = read_data()
    # the inputs are scaled as they were for training, then computed in float32 as there
    inputs = ((x - shift) / scale).astype(np.float32)
    y = np.array([classes.index(label) for label in labels])
    test = split == "test"
    predicted = predict(inputs[test], weights, biases)
    accuracy = float(np.mean(predicted == y[test]))
    print(f"test accuracy: {{accuracy!r}} ({{int(np.sum(predicted == y[test]))}} of "
          f"{{int(test.sum())}} test rows right)")
'''


def _raw_split(config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The run's train and test rows as they were before scaling (float64), and their labels."""
    name, seed = config["dataset"], config["seed"]
    if name == "digits":
        x, y = _digits()
    elif name in DEFAULT_NOISE:
        x, y = make_2d(name, config["noise"], np.random.default_rng(seed))
    else:
        data = load_dataset(name, seed=seed, data=config.get("data"))
        return data.raw_train, data.y_train, data.raw_test, data.y_test  # type: ignore[return-value]
    return stratified_split(x, y, seed)


def _cell(value: float, whole: bool) -> str:
    return str(int(value)) if whole else repr(float(value))


def data_csv(config: dict[str, Any], classes: list[str]) -> str:
    """Every row of the run's data: inputs, label and `train` or `test`, as it was split."""
    x_train, y_train, x_test, y_test = _raw_split(config)
    features = x_train.shape[1]
    names = ["x1", "x2"] if features == 2 else [f"pixel{i}" for i in range(1, features + 1)]
    whole = config["dataset"] == "digits"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*names, "label", "split"])
    for split, xs, ys in (("train", x_train, y_train), ("test", x_test, y_test)):
        for row, label in zip(xs, ys, strict=True):
            writer.writerow([*(_cell(v, whole) for v in row), classes[int(label)], split])
    return out.getvalue()


def weights_npz(
    config: dict[str, Any], params: bytes, shift: Any, scale: Any, classes: list[str]
) -> bytes:
    """W1, b1, W2, b2, ... from the flat float32 parameters, and the input scaling."""
    flat = np.frombuffer(params, dtype="<f4").astype(np.float32)
    sizes = config["layer_sizes"]
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), 1):
        arrays[f"W{i}"] = flat[offset : offset + n_in * n_out].reshape(n_in, n_out)
        offset += n_in * n_out
        arrays[f"b{i}"] = flat[offset : offset + n_out]
        offset += n_out
    if offset != len(flat):
        raise ValueError("the stored parameters do not fit the network's layer sizes")
    arrays["input_shift"] = np.asarray(shift, dtype=np.float64)
    arrays["input_scale"] = np.asarray(scale, dtype=np.float64)
    arrays["classes"] = np.array(classes, dtype=str)
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def export_zip(config: dict[str, Any], params: bytes, test_accuracy: float) -> bytes:
    """The zip of network.py, weights.npz and data.csv for a completed run."""
    data = load_dataset(
        config["dataset"], seed=config["seed"], noise=config["noise"], data=config.get("data")
    )
    classes = list(data.classes or (str(k) for k in range(data.n_classes)))
    sizes = " → ".join(str(n) for n in config["layer_sizes"])
    summary = f"{config['dataset']} data, layers {sizes}, {config['activation']} hidden layers"
    script = NETWORK_PY.format(
        summary=summary, reported=test_accuracy, activation=config["activation"]
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("network.py", script)
        archive.writestr(
            "weights.npz", weights_npz(config, params, data.shift, data.scale, classes)
        )
        archive.writestr("data.csv", data_csv(config, classes))
    return out.getvalue()
