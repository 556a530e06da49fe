"""The NumPy network, the datasets and the runner, without any web server."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from app.training import playground_query
from app.training.datasets import DATASETS, dataset_sizes, load_dataset
from app.training.nn import Network, cross_entropy, softmax
from app.training.query import parse_playground_query
from app.training.runner import estimate_work, train


def small_problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((9, 5)), rng.integers(0, 3, 9)


def numerical_gradient(net: Network, x: np.ndarray, y: np.ndarray, eps: float = 1e-6):
    """Central differences of the mean cross-entropy with respect to every parameter."""
    grad = np.zeros_like(net.params)
    for i in range(net.n_params):
        saved = net.params[i]
        net.params[i] = saved + eps
        plus = net.loss(x, y)
        net.params[i] = saved - eps
        minus = net.loss(x, y)
        net.params[i] = saved
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_backward_matches_finite_differences_in_float64(activation):
    x, y = small_problem()
    net = Network([5, 7, 6, 3], activation=activation, init="xavier", seed=1, dtype=np.float64)
    expected = numerical_gradient(net, x, y)
    net.forward(x)
    analytic = net.backward(y).copy()
    assert relative_error(analytic, expected) < 1e-6


def lesson_style_update(net: Network, x: np.ndarray, y: np.ndarray, lr: float) -> None:
    """The lesson's backward: update weights[i] first, then propagate the error through it."""
    p = net.forward(x)
    m = len(y)
    delta = p.copy()
    delta[np.arange(m), y] -= 1
    delta /= m
    acts = [x] + [a.copy() for a in net.logits(x)[:-1]]
    for i in range(len(net.weights) - 1, -1, -1):
        dw = acts[i].T @ delta
        db = delta.sum(axis=0)
        net.weights[i] -= lr * dw
        net.biases[i] -= lr * db
        if i > 0:
            delta = (delta @ net.weights[i].T) * (acts[i] > 0)


def step_matches_gradient_at_old_weights(update) -> bool:
    """After one full-batch step, are the weights `old - lr * (gradient at the old weights)`?"""
    x, y = small_problem(3)
    net = Network([5, 8, 8, 3], activation="relu", seed=2, dtype=np.float64)
    lr = 0.5
    expected = net.params - lr * numerical_gradient(net, x, y)
    update(net, x, y, lr)
    return bool(np.allclose(net.params, expected, rtol=0, atol=1e-7))


def test_every_gradient_uses_the_weights_from_before_the_update():
    assert step_matches_gradient_at_old_weights(lambda net, x, y, lr: net.train_batch(x, y, lr))
    # The same check catches the lesson's update-before-propagate order.
    assert not step_matches_gradient_at_old_weights(lesson_style_update)


def test_momentum_accumulates_velocity():
    x, y = small_problem()
    net = Network([5, 4, 3], seed=0, dtype=np.float64)
    start = net.params.copy()
    net.forward(x)
    g1 = net.backward(y).copy()
    net.step(0.1, momentum=0.9)
    net.forward(x)
    g2 = net.backward(y).copy()
    net.step(0.1, momentum=0.9)
    assert np.allclose(net.params, start - 0.1 * g1 - (0.9 * 0.1 * g1 + 0.1 * g2))


def test_the_loss_recorded_while_training_is_the_cross_entropy():
    config = {"dataset": "spiral", "hidden_layers": [6], "epochs": 1, "batch_size": None}
    data = load_dataset("spiral")
    fresh = Network([2, 6, 3], seed=0)
    row = train(config)["history"][0]  # one full batch: recorded before its only step
    assert row["loss"] == pytest.approx(fresh.loss(data.x_train, data.y_train), rel=1e-5)
    predicted = fresh.predict(data.x_train)
    assert row["train_accuracy"] == pytest.approx(np.mean(predicted == data.y_train))


def test_softmax_cross_entropy_stays_finite_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4]], dtype=np.float32)
    assert math.isfinite(cross_entropy(logits, np.array([2])))
    # and the loss training records, from the fused softmax and its gradient
    assert math.isfinite(softmax(logits.copy(), np.array([2]))[1])


def test_the_same_request_gives_a_bit_identical_history():
    config = {"dataset": "moons", "hidden_layers": [16, 8], "epochs": 6, "momentum": 0.5}
    first, second = train(config), train(config)
    assert first["history"] == second["history"]
    assert first["confusion_matrix"] == second["confusion_matrix"]
    assert train({**config, "seed": 1})["history"] != first["history"]


def test_the_lessons_network_reaches_the_quality_bar_on_digits():
    result = train(
        {
            "dataset": "digits",
            "hidden_layers": [128, 64],
            "activation": "relu",
            "epochs": 30,
            "learning_rate": 0.1,
            "batch_size": 64,
            "seed": 0,
        }
    )
    assert result["status"] == "completed"
    assert result["test_accuracy"] >= 0.96
    assert sum(map(sum, result["confusion_matrix"])) == 359


@pytest.mark.parametrize(
    ("dataset", "hidden", "epochs", "threshold"),
    [
        ("xor", [16], 100, 0.95),
        ("circles", [16], 100, 0.95),
        ("moons", [16], 100, 0.95),
        ("spiral", [32, 32], 150, 0.90),
    ],
)
def test_each_2d_set_is_learnable_at_its_default_noise(dataset, hidden, epochs, threshold):
    result = train({"dataset": dataset, "hidden_layers": hidden, "epochs": epochs})
    assert result["test_accuracy"] >= threshold
    boundary = result["decision_boundary"]
    assert len(boundary["grid"]) == len(boundary["grid"][0]) == 48
    classes = 3 if dataset == "spiral" else 2
    assert {c for row in boundary["grid"] for c in row} == set(range(classes))


@pytest.mark.parametrize("name", DATASETS)
def test_datasets_split_80_20_stratified_and_sized_as_advertised(name):
    data = load_dataset(name, seed=4)
    n_train, n_features, n_classes = dataset_sizes(name)
    assert len(data.y_train) == n_train and data.n_features == n_features
    assert data.n_classes == n_classes and data.x_train.dtype == np.float32
    total = len(data.y_train) + len(data.y_test)
    assert abs(len(data.y_test) / total - 0.2) < 0.01
    train_share = np.bincount(data.y_train) / len(data.y_train)
    test_share = np.bincount(data.y_test) / len(data.y_test)
    assert np.abs(train_share - test_share).max() < 0.02
    assert load_dataset(name, seed=4).x_test.tobytes() == data.x_test.tobytes()


def test_digits_are_standardised_on_the_training_pixels():
    data = load_dataset("digits")
    assert len(data.y_train) + len(data.y_test) == 1797
    assert abs(float(data.x_train.mean())) < 1e-5 and abs(float(data.x_train.std()) - 1) < 1e-4


def test_noise_changes_the_2d_points():
    quiet, loud = load_dataset("circles", noise=0.0), load_dataset("circles", noise=0.3)
    radii = np.linalg.norm(quiet.x_train, axis=1)
    assert np.allclose(np.sort(np.unique(radii.round(4))), [0.5, 1.0])
    assert not np.allclose(np.linalg.norm(loud.x_train, axis=1), radii)


def test_a_huge_learning_rate_diverges_into_strict_json():
    result = train({"learning_rate": 100, "epochs": 20, "init": "xavier"})
    assert result["status"] == "diverged"
    assert result["history"][-1]["loss"] is None
    assert len(result["history"]) < 20
    json.dumps(result, allow_nan=False)  # raises on NaN or Infinity


def test_a_stop_request_ends_the_run_within_an_epoch():
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    result = train({"epochs": 50, "batch_size": 8}, should_stop=should_stop)
    assert result["status"] == "stopped" and len(result["history"]) <= 1


def test_work_estimate_grows_with_epochs_layers_and_small_batches():
    base = estimate_work({})
    assert estimate_work({"epochs": 60}) == pytest.approx(2 * base)
    assert estimate_work({"hidden_layers": [1024, 1024]}) > 20 * base
    assert estimate_work({"batch_size": 1, "hidden_layers": [1]}) > estimate_work({})


def test_playground_query_round_trips_through_the_page_parser():
    preset = {"dataset": "spiral", "hidden_layers": [32, 16], "batch_size": None, "noise": 0.2}
    query = playground_query(preset)
    assert query == "dataset=spiral&hidden_layers=32,16&batch_size=full&noise=0.2"
    params = dict(pair.split("=") for pair in query.split("&"))
    values, problems = parse_playground_query(params)
    assert problems == []
    assert {k: values[k] for k in preset} == preset
    assert playground_query({"hidden_layers": [128, 64], "learning_rate": 0.1}) == (
        "hidden_layers=128,64&learning_rate=0.1"
    )


def test_bad_playground_query_values_fall_back_to_defaults_with_a_reason():
    values, problems = parse_playground_query({"epochs": "0", "hidden_layers": "3,x", "seed": "7"})
    assert values["epochs"] == 30 and values["hidden_layers"] == [128, 64] and values["seed"] == 7
    assert any(p.startswith("epochs:") for p in problems)
    assert any(p.startswith("hidden_layers") for p in problems)


def test_backprop_train_shows_progress_and_a_summary(capsys):
    from app.cli import main

    code = main(["train", "--dataset", "moons", "--hidden-layers", "16", "--epochs", "5"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "epoch 5/5 [" in err and "completed: moons, layers [2, 16, 2]" in out
    assert main(["train", "--epochs", "0"]) == 2
    assert "epochs:" in capsys.readouterr().err


def test_backprop_train_has_an_option_for_every_train_field_with_its_bounds(capsys):
    from app.cli import main
    from app.training.schemas import TrainRequest

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    shown = capsys.readouterr().out
    for name in TrainRequest.model_fields:
        assert f"--{name.replace('_', '-')}" in shown, name
    assert "from 1 to 1,000" in shown and "N|full" in shown  # epochs' bounds, batch size's form
    assert main(["train", "--noise", "0.1", "--dataset", "xor", "--epochs", "1"]) == 0
