"""POST /train/step: the gradients it shows are the loss's (finite differences agree), the update
is the one applied, and stepping through an epoch trains what /train trains."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from app.training.datasets import load_dataset
from app.training.nn import Network, cross_entropy
from app.training.runner import full_config, train
from app.training.stepper import StepError, take_step

from .test_playground_data import GOOD

SMALL = {"dataset": "xor", "hidden_layers": [3, 4], "epochs": 1, "batch_size": 50}


def batch_of(config: dict, answer: dict, step: int) -> tuple[np.ndarray, np.ndarray]:
    """The mini-batch a step trained, found again from the dataset (float64)."""
    data = load_dataset(config["dataset"], seed=config["seed"], noise=config["noise"],
                        data=config.get("data"), dtype=np.float64)  # fmt: skip
    n, size = len(data.y_train), answer["batch_size"]
    x, y = data.x_train, data.y_train
    if min(config["batch_size"] or n, n) < n:
        shuffle = np.random.default_rng([config["seed"], 1])
        for _ in range(answer["epoch"]):
            order = shuffle.permutation(n)
        x, y = x[order], y[order]
    start = answer["batch_start"]
    return x[start : start + size], y[start : start + size]


def mean_loss(config: dict, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    net = Network(config["layer_sizes"], activation=config["activation"], dtype=np.float64)
    net.params[...] = params
    return cross_entropy(net.logits(x)[-1], y)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_each_weights_gradient_matches_finite_differences_of_the_loss(client, activation):
    body = {"config": {**SMALL, "activation": activation, "seed": 5}}
    first = client.post("/train/step", json=body)
    assert first.status_code == 200, first.text
    # the second step, from the state the first one gave: gradients at trained weights
    answer = client.post("/train/step", json={**body, "state": first.json()["state"]}).json()
    assert answer["step"] == 2
    config = full_config(body["config"])
    x, y = batch_of(config, answer, 1)
    params = np.concatenate(
        [
            np.concatenate([np.ravel(layer["weights"]), layer["biases"]])
            for layer in answer["layers"]
        ]
    )
    assert np.array_equal(params, np.array(first.json()["state"]["params"]))
    shown = np.concatenate(
        [np.concatenate([np.ravel(layer["weight_gradients"]), layer["bias_gradients"]])
         for layer in answer["layers"]]
    )  # fmt: skip
    eps = 1e-6
    numeric = np.empty_like(params)
    kinks = []
    centre = mean_loss(config, params, x, y)
    for k in range(len(params)):
        up, down = params.copy(), params.copy()
        up[k] += eps
        down[k] -= eps
        above, below = mean_loss(config, up, x, y), mean_loss(config, down, x, y)
        numeric[k] = (above - below) / (2 * eps)
        right, left = (above - centre) / eps, (centre - below) / eps
        if abs(right - left) > 1e-3:
            # a ReLU exactly at 0 (a dead unit's bias never moved): the loss has a kink there,
            # and the lesson's derivative (1 where z > 0) takes one side of it
            kinks.append(k)
            assert min(left, right) - 1e-5 <= shown[k] <= max(left, right) + 1e-5
    smooth = np.setdiff1d(np.arange(len(params)), kinks)
    assert len(kinks) <= (2 if activation == "relu" else 0)
    # the server computes in float32, as training does: agreement to float32's precision
    assert np.allclose(shown[smooth], numeric[smooth], rtol=1e-3, atol=1e-5)
    assert np.abs(numeric).max() > 1e-3  # not a vacuous comparison of zeros


def test_the_update_is_minus_the_learning_rate_times_the_gradient(client):
    body = {"config": {**SMALL, "learning_rate": 0.5}}
    answer = client.post("/train/step", json=body).json()
    for layer in answer["layers"]:
        grads = np.array(layer["weight_gradients"])
        assert np.allclose(layer["weight_updates"], -0.5 * grads, rtol=1e-5, atol=1e-7)
        assert np.allclose(layer["bias_updates"], -0.5 * np.array(layer["bias_gradients"]),
                           rtol=1e-5, atol=1e-7)  # fmt: skip
    after = np.concatenate(
        [np.concatenate([np.ravel(np.add(layer["weights"], layer["weight_updates"])),
                         np.add(layer["biases"], layer["bias_updates"])])
         for layer in answer["layers"]]
    )  # fmt: skip
    assert np.allclose(after, answer["state"]["params"], atol=1e-7)


def test_the_activations_shown_are_the_layers_outputs_for_the_batch(client):
    answer = client.post("/train/step", json={"config": SMALL}).json()
    config = full_config(SMALL)
    x, _ = batch_of(config, answer, 0)
    assert np.allclose(answer["inputs"], x[:8], atol=1e-6)
    current = x[:8]
    for i, layer in enumerate(answer["layers"]):
        z = current @ np.array(layer["weights"]) + np.array(layer["biases"])
        if i < len(answer["layers"]) - 1:
            current = np.maximum(z, 0)
        else:
            current = np.exp(z - z.max(axis=1, keepdims=True))
            current /= current.sum(axis=1, keepdims=True)
        assert np.allclose(layer["activations"], current, atol=1e-5)
    assert np.allclose(np.sum(answer["layers"][-1]["activations"], axis=1), 1.0, atol=1e-6)


def test_stepping_through_an_epoch_ends_where_a_one_epoch_run_does(client):
    config = {**SMALL, "momentum": 0.9, "dataset": "custom", "data": GOOD, "batch_size": 3}
    state, answer = None, None
    for _ in range(3):  # 9 training rows of GOOD in batches of 3: one epoch
        answer = client.post("/train/step", json={"config": config, "state": state}).json()
        state = answer["state"]
    assert answer["epoch"] == 1 and answer["batch_start"] == 6
    trained = train(full_config(config), keep_params=True)
    params = np.frombuffer(base64.b64decode(trained["params"]), dtype="<f4")
    assert np.array_equal(np.array(state["params"], dtype=np.float32), params)
    assert answer["test_accuracy"] == trained["test_accuracy"]
    assert answer["classes"] == ["a", "b", "c"] and "decision_boundary" in answer


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"config": {"hidden_layers": [9]}}, "at most 3 hidden layers of at most 8 units"),
        ({"config": {"hidden_layers": [2, 2, 2, 2]}}, "at most 3 hidden layers"),
        ({"config": SMALL, "state": {"step": 0, "params": [0.0] * 5}}, "not 5"),
        ({"config": SMALL, "state": {"step": 10_001, "params": []}}, "state.step"),
        ({"config": {**SMALL, "momentum": 0.5},
          "state": {"step": 1, "params": [0.0] * 35, "velocity": [0.0]}}, "state.velocity"),
        ({"config": {"dataset": "custom",
                     "data": {"x": [[1, "a"], *GOOD["x"][1:]], "y": GOOD["y"]}}}, "row 1: x2"),
    ],
    ids=["too wide", "too deep", "wrong size", "too many steps", "velocity", "bad data"],
)  # fmt: skip
def test_what_cannot_be_stepped_is_a_422_saying_why(client, body, expected):
    response = client.post("/train/step", json=body)
    assert response.status_code == 422, response.text
    assert expected in response.json()["detail"]


def test_a_state_from_a_diverged_step_is_refused_not_a_500():
    config = full_config({**SMALL, "learning_rate": 100})
    state = {"step": 1, "params": [1e38] * 35}
    answer = take_step(config, state)  # overflows to inf within the step: nulls, not NaN
    assert answer["state"]["params"] is None and answer["loss"] is None
    json.dumps(answer, allow_nan=False)


def test_a_client_is_held_to_300_steps_a_minute(client):
    from app.training.takeaway import STEPS_PER_MINUTE

    client.app.state.step_quota = None  # a fresh count for this client
    for _ in range(STEPS_PER_MINUTE):
        assert client.post("/train/step", json={"config": SMALL}).status_code == 200
    refused = client.post("/train/step", json={"config": SMALL})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "300 a minute" in refused.json()["detail"]


def test_a_step_past_the_thousandth_epoch_is_a_422_not_a_replay_of_every_shuffle():
    """Finding a late epoch's batch replays each epoch's shuffle before it: two batches an epoch
    and 10,000 steps would replay 5,000 shuffles (150 ms a step, in the web process)."""
    n_train = load_dataset("xor", seed=0).x_train.shape[0]
    config = full_config({**SMALL, "batch_size": n_train - 1})  # two mini-batches an epoch
    params = [0.1] * len(take_step(config, None)["state"]["params"])
    last = take_step(config, {"step": 1999, "params": params})
    assert last["epoch"] == 1000
    with pytest.raises(StepError, match="1,000 epochs"):
        take_step(config, {"step": 2000, "params": params})
