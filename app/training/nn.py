"""The lesson's `SimpleNeuralNetwork`, done right: a fully connected classifier in NumPy.

Shapes follow the lesson: a batch `x` is `(m, n_in)` (one sample per row), `weights[l]` is
`(n_l, n_{l+1})`, `biases[l]` is `(n_{l+1},)`, and the output is `(m, n_classes)` softmax
probabilities. Hidden layers share one activation; the output layer is softmax with
cross-entropy loss, whose gradient with respect to the output pre-activation is `p - y`.

Two things differ from the lesson's code on purpose:

* `backward` computes *every* gradient from the weights used in `forward`, and only then does
  `step` update them. The lesson's loop updates `weights[i]` before propagating the error through
  it, so the lower layers get the gradient of a network that never ran.
* All parameters live in one flat buffer (`params`), and `weights[l]` / `biases[l]` are views into
  it; the gradients likewise. An update is then one vectorised operation, whatever the depth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ACTIVATIONS: tuple[str, ...] = ("relu", "sigmoid", "tanh")
INITS: tuple[str, ...] = ("he", "xavier", "lesson")


def softmax(
    z: np.ndarray, y: np.ndarray | None = None, rows: np.ndarray | None = None
) -> tuple[np.ndarray, float, int]:
    """Row-wise softmax of `z` (m, k), in place: subtract the row max, exponentiate, normalise.

    With labels `y` (m,) it also returns, nearly for free, the summed cross-entropy
    `sum(log(sum(exp(z))) - z[y])` and how many rows rank their label first.
    """
    z -= z.max(axis=1, keepdims=True)
    if y is not None and rows is None:
        rows = np.arange(len(y))
    true = z[rows, y] if y is not None else None  # 0 where the label scores highest
    np.exp(z, out=z)
    total = z.sum(axis=1, keepdims=True)
    z /= total
    if true is None:
        return z, 0.0, 0
    loss = float(np.log(total).sum(dtype=np.float64) - true.sum(dtype=np.float64))
    return z, loss, int(np.count_nonzero(true == 0))


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of integer labels `y` (m,) under `logits` (m, k), via log-sum-exp."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    return float(np.mean(log_norm - shifted[np.arange(len(y)), y], dtype=np.float64))


def _activate(kind: str, z: np.ndarray) -> None:
    """Apply the hidden activation to `z` in place."""
    if kind == "relu":
        np.maximum(z, 0, out=z)
    elif kind == "sigmoid":
        np.negative(z, out=z)
        np.exp(z, out=z)
        z += 1
        np.reciprocal(z, out=z)
    else:
        np.tanh(z, out=z)


def _times_derivative(kind: str, delta: np.ndarray, a: np.ndarray) -> None:
    """delta *= f'(z), written with the activation's output a = f(z); overwrites a (now unused)."""
    if kind == "relu":  # f' = 1 where a > 0
        np.greater(a, 0, out=a)
    elif kind == "sigmoid":  # f' = a (1 - a)
        delta *= a
        np.subtract(1, a, out=a)
    else:  # tanh: f' = 1 - a^2
        np.multiply(a, a, out=a)
        np.subtract(1, a, out=a)
    delta *= a


def parameter_count(layer_sizes: list[int]) -> int:
    """Weights plus biases of a fully connected network with these layer sizes."""
    return sum(a * b + b for a, b in zip(layer_sizes[:-1], layer_sizes[1:], strict=False))


class Network:
    """A multi-layer perceptron: layer_sizes[0] inputs, hidden layers, layer_sizes[-1] classes."""

    def __init__(
        self,
        layer_sizes: Sequence[int],
        *,
        activation: str = "relu",
        init: str = "he",
        seed: int = 0,
        dtype: type | np.dtype = np.float32,
    ) -> None:
        """Weights drawn from a seeded `np.random.default_rng`, biases zero."""
        if len(layer_sizes) < 2 or min(layer_sizes) < 1:
            raise ValueError("need at least an input and an output layer, each of size >= 1")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}")
        self.layer_sizes = [int(n) for n in layer_sizes]
        self.activation = activation
        self.dtype = np.dtype(dtype)
        self.rng = np.random.default_rng(seed)

        shapes = list(zip(self.layer_sizes[:-1], self.layer_sizes[1:], strict=True))
        self.n_params = parameter_count(self.layer_sizes)
        self.params = np.zeros(self.n_params, dtype=self.dtype)
        self.grads = np.zeros(self.n_params, dtype=self.dtype)
        self.weights, self.biases = self._views(self.params, shapes)
        self.d_weights, self.d_biases = self._views(self.grads, shapes)
        self.velocity: np.ndarray | None = None
        for w, (n_in, n_out) in zip(self.weights, shapes, strict=True):
            # Drawn in float64 then cast, so float32 and float64 networks start identical.
            if init == "he":
                scale = np.sqrt(2.0 / n_in)
            elif init == "xavier":
                scale = np.sqrt(2.0 / (n_in + n_out))
            else:  # the lesson's `np.random.randn(n_in, n_out) * 0.01`
                scale = 0.01
            w[...] = self.rng.standard_normal((n_in, n_out)) * scale
        self._buffers: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        # Per batch size: row indices (for picking each row's label) and a ones vector (bias
        # gradients as one BLAS call): small allocations that cost more than they compute.
        self._rows: dict[int, np.ndarray] = {}
        self._ones: dict[int, np.ndarray] = {}

    @staticmethod
    def _views(flat: np.ndarray, shapes: list[tuple[int, int]]):
        """Split a flat vector into per-layer (n_in, n_out) weight and (n_out,) bias views."""
        weights, biases, offset = [], [], 0
        for n_in, n_out in shapes:
            weights.append(flat[offset : offset + n_in * n_out].reshape(n_in, n_out))
            offset += n_in * n_out
            biases.append(flat[offset : offset + n_out])
            offset += n_out
        return weights, biases

    def _buffers_for(self, m: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Preallocated activations (m, n_l) per layer and deltas (m, n_l) for a batch of m."""
        if m not in self._buffers:
            if len(self._buffers) > 4:  # odd sizes (last batch, evaluation) come and go
                self._buffers.clear()
                self._rows.clear()
                self._ones.clear()
            self._rows[m] = np.arange(m)
            self._ones[m] = np.ones(m, dtype=self.dtype)
            sizes = self.layer_sizes[1:]
            acts = [np.empty((m, n), dtype=self.dtype) for n in sizes]
            deltas = [np.empty((m, n), dtype=self.dtype) for n in sizes]
            self._buffers[m] = (acts, deltas)
        return self._buffers[m]

    def logits(self, x: np.ndarray) -> list[np.ndarray]:
        """Run x (m, n_in) through the network; the list of layer outputs, last = raw logits."""
        acts, _ = self._buffers_for(x.shape[0])
        current = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = acts[i]
            np.matmul(current, w, out=z)
            z += b
            if i < last:
                _activate(self.activation, z)
            current = z
        return acts

    def forward(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities (m, n_classes) for x (m, n_in); keeps activations for backward.

        Given the labels y (m,), also sets `batch_loss` (summed cross-entropy) and
        `batch_correct` (rows whose label scores highest) for this batch.
        """
        acts = self.logits(x)
        self._x = x
        rows = self._rows[x.shape[0]]
        probabilities, self.batch_loss, self.batch_correct = softmax(acts[-1], y, rows)
        return probabilities

    def backward(self, y: np.ndarray) -> np.ndarray:
        """Gradients of the mean cross-entropy for labels y (m,) into `self.grads`, after `forward`.

        Nothing is updated here: every layer's gradient uses the same weights `forward` used.
        """
        x = self._x
        m = x.shape[0]
        acts, deltas = self._buffers_for(m)
        delta = acts[-1]  # softmax probabilities p, (m, n_classes): dL/dz = (p - onehot(y)) / m
        delta[self._rows[m], y] -= 1
        delta /= m
        for i in range(len(self.weights) - 1, -1, -1):
            a_prev = acts[i - 1] if i > 0 else x  # (m, n_i)
            np.matmul(a_prev.T, delta, out=self.d_weights[i])  # (n_i, n_{i+1})
            np.matmul(self._ones[m], delta, out=self.d_biases[i])  # column sums, (n_{i+1},)
            if i > 0:
                below = deltas[i - 1]
                np.matmul(delta, self.weights[i].T, out=below)  # (m, n_i), pre-update weights
                _times_derivative(self.activation, below, a_prev)
                delta = below
        return self.grads

    def step(self, learning_rate: float, momentum: float = 0.0) -> None:
        """Update every parameter at once: w -= lr * g, or with momentum v = m v - lr g; w += v."""
        if momentum:
            if self.velocity is None:
                self.velocity = np.zeros_like(self.params)
            self.velocity *= momentum
            self.grads *= learning_rate
            self.velocity -= self.grads
            self.params += self.velocity
        else:
            self.grads *= learning_rate
            self.params -= self.grads

    def train_batch(
        self, x: np.ndarray, y: np.ndarray, learning_rate: float, momentum: float = 0.0
    ) -> None:
        """One step of (mini-batch) gradient descent on x (m, n_in), labels y (m,)."""
        self.forward(x, y)
        self.backward(y)
        self.step(learning_rate, momentum)

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy on x (m, n_in) with labels y (m,)."""
        return cross_entropy(self.logits(x)[-1], y)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The most probable class (m,) for each row of x (m, n_in)."""
        return self.logits(x)[-1].argmax(axis=1)
