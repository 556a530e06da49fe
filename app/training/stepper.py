"""One mini-batch at a time, every number shown: POST /train/step for small networks.

The client holds the state (how many mini-batches are done, the flat parameters, the momentum
velocity) and sends it back with each step, so any web process can take the next one and nothing
is kept on the server. The mini-batch is the one `runner.train` would take at that point (the
same seeded shuffle per epoch), and the numbers are those of the lesson's network (nn.Network:
forward, backward, step): stepping through an epoch ends at the weights a one-epoch run trains.
A step of a network this small costs a few milliseconds (the data set's load and the boundary
included: 3 ms for XOR, 9 ms for 2,000 own points full-batch), so it runs in the web process.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from .datasets import load_dataset
from .nn import Network, parameter_count
from .runner import decision_boundary

#: Step by step is for networks small enough to read: this many hidden layers of this many units.
MAX_LAYERS, MAX_UNITS = 3, 8
#: Samples of the batch whose activations are sent (the gradients are over the whole batch).
SHOWN_SAMPLES = 8
#: Steps one state may reach, and epochs (the most /train trains): a batch is found by replaying
#: every epoch's shuffle before it, so the epochs bound what one step costs (measured in
#: docs/benchmarks.md).
MAX_STEPS, MAX_EPOCHS = 10_000, 1000


class StepError(ValueError):
    """The configuration or state cannot be stepped; the message says why."""


def check_small(config: dict[str, Any]) -> None:
    """StepError unless the network is small enough to be shown step by step."""
    hidden = config["hidden_layers"]
    if len(hidden) > MAX_LAYERS or max(hidden) > MAX_UNITS:
        raise StepError(
            f"hidden_layers: step by step takes at most {MAX_LAYERS} hidden layers of at most "
            f"{MAX_UNITS} units (this network has {hidden})"
        )


def _batch(config: dict[str, Any], x: np.ndarray, y: np.ndarray, step: int):
    """The `step`-th mini-batch (0-based) runner.train takes, and its epoch and start (0-based)."""
    n = len(y)
    batch = min(config["batch_size"] or n, n)
    per_epoch = math.ceil(n / batch)
    epoch, index = divmod(step, per_epoch)
    if epoch >= MAX_EPOCHS:
        raise StepError(
            f"state.step: step by step goes up to {MAX_EPOCHS:,} epochs "
            f"({MAX_EPOCHS * per_epoch:,} mini-batches of this size); train longer runs with "
            "Start training"
        )
    if batch < n:
        shuffle = np.random.default_rng([config["seed"], 1])
        for _ in range(epoch + 1):
            order = shuffle.permutation(n)
        x, y = x[order], y[order]
    start = index * batch
    return x[start : start + batch], y[start : start + batch], epoch, start


def _layer_values(flat: np.ndarray, sizes: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    views, offset = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        w = flat[offset : offset + n_in * n_out].reshape(n_in, n_out)
        offset += n_in * n_out
        views.append((w, flat[offset : offset + n_out]))
        offset += n_out
    return views


def _floats(values: np.ndarray) -> list:
    """Nested lists of floats, null where a value is not finite (JSON has no NaN)."""
    array = np.asarray(values, dtype=np.float64)
    if np.all(np.isfinite(array)):
        return array.tolist()
    return _nulls(array)


def _nulls(array: np.ndarray) -> list:
    if array.ndim == 1:
        return [float(v) if math.isfinite(v) else None for v in array]
    return [_nulls(row) for row in array]


def take_step(
    config: dict[str, Any],
    state: dict[str, Any] | None,
    *,
    dtype: type | np.dtype = np.float32,
) -> dict[str, Any]:
    """Train one mini-batch from `state` (None: the seeded initial network) and show it all.

    `config` is runner.full_config's; `state` is {"step", "params", "velocity"} as a previous
    answer gave it. The answer has the batch's loss, and per layer the activations (the first
    SHOWN_SAMPLES samples), weights and biases before the step, the gradient of the mean
    cross-entropy for each, and the update applied; then the new state.
    """
    check_small(config)
    sizes = config["layer_sizes"]
    n_params = parameter_count(sizes)
    step = 0 if state is None else int(state["step"])
    if not 0 <= step < MAX_STEPS:
        raise StepError(f"state.step: step by step goes up to {MAX_STEPS:,} mini-batches")
    with threadpool_limits(limits=1, user_api="blas"), np.errstate(all="ignore"):
        data = load_dataset(
            config["dataset"],
            seed=config["seed"],
            noise=config["noise"],
            data=config.get("data"),
            dtype=dtype,
        )
        net = Network(
            sizes,
            activation=config["activation"],
            init=config["init"],
            seed=config["seed"],
            dtype=dtype,
        )
        momentum = float(config["momentum"])
        if state is not None:
            params = np.asarray(state["params"], dtype=np.float64)
            if params.shape != (n_params,):
                raise StepError(
                    f"state.params: this network has {n_params} parameters, not {params.size}"
                )
            net.params[...] = params
            if momentum and state.get("velocity") is not None:
                velocity = np.asarray(state["velocity"], dtype=np.float64)
                if velocity.shape != (n_params,):
                    raise StepError(f"state.velocity: give {n_params} values, or null")
                net.velocity = velocity.astype(net.dtype)
        if not np.all(np.isfinite(net.params)):
            raise StepError("state.params: the weights are no longer finite; start again")

        x, y, epoch, start = _batch(config, data.x_train, data.y_train, step)
        before = net.params.copy()
        probabilities = net.forward(x, y)
        outputs = [a[:SHOWN_SAMPLES].copy() for a in net._buffers_for(len(y))[0]]
        outputs[-1] = probabilities[:SHOWN_SAMPLES].copy()
        loss, correct = net.batch_loss / len(y), net.batch_correct
        grads = net.backward(y).copy()
        net.step(float(config["learning_rate"]), momentum)
        after = net.params.copy()
        update = after.astype(np.float64) - before.astype(np.float64)

        layers = []
        kinds = [config["activation"]] * (len(sizes) - 2) + ["softmax"]
        for i, ((w, b), (gw, gb), (uw, ub)) in enumerate(
            zip(
                _layer_values(before, sizes),
                _layer_values(grads, sizes),
                _layer_values(update, sizes),
                strict=True,
            )
        ):
            layers.append(
                {
                    "layer": i + 1,
                    "inputs": sizes[i],
                    "units": sizes[i + 1],
                    "activation": kinds[i],
                    "activations": _floats(outputs[i]),
                    "weights": _floats(w),
                    "biases": _floats(b),
                    "weight_gradients": _floats(gw),
                    "bias_gradients": _floats(gb),
                    "weight_updates": _floats(uw),
                    "bias_updates": _floats(ub),
                }
            )
        finite = bool(np.all(np.isfinite(after)))
        answer: dict[str, Any] = {
            "step": step + 1,
            "epoch": epoch + 1,
            "batch_start": start,
            "batch_size": len(y),
            "inputs": _floats(x[:SHOWN_SAMPLES]),
            "labels": [int(v) for v in y[:SHOWN_SAMPLES]],
            "loss": loss if math.isfinite(loss) else None,
            "batch_accuracy": correct / len(y),
            "test_accuracy": float(np.mean(net.predict(data.x_test) == data.y_test)),
            "layers": layers,
            "state": {
                "step": step + 1,
                "params": _floats(after) if finite else None,
                "velocity": _floats(net.velocity) if net.velocity is not None else None,
            },
        }
        if data.n_features == 2 and finite:
            answer["decision_boundary"] = decision_boundary(net, data)
        if data.classes is not None:
            answer["classes"] = list(data.classes)
    return answer
