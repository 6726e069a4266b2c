"""The benchmark workloads: identical data, sizes and initial weights for every peer.

=====  =================================  ====================  =====  =====  ======
name   data                               network               batch  lr     epochs
=====  =================================  ====================  =====  =====  ======
W1     digits 1437 train / 360 test       64-128-64-10 ReLU      32    0.05      50
W2     60000 x 784 synthetic, 10 classes  784-512-512-10 ReLU   128    0.05       1
W4     32 seeds of W1                     64-128-64-10 ReLU      32    0.05      20
W5     256 XOR-like points (+256 test)    2-8-1 sigmoid           8    0.5      200
=====  =================================  ====================  =====  =====  ======

Every peer trains with plain SGD (no momentum), the mean loss of each minibatch
(softmax or sigmoid cross-entropy), a fresh reshuffle every epoch, and the short
last batch kept and averaged over its real examples. Initial weights come from
:func:`nnjax.init` and are copied into every library, so all start from the same point.

Example:
  >>> w = build("w5", quick=True)
  >>> w.sizes, w.x_train.dtype, len(w.init_params)
  ((2, 8, 1), dtype('float32'), 1)
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import nnjax
from nnjax.training import split_run_key

__all__ = ["NAMES", "Workload", "build", "member_keys", "train_flops"]

NAMES = ("w1", "w2", "w4", "w5")


@dataclasses.dataclass(frozen=True, eq=False)
class Workload:
    """One benchmark problem, the same for every peer.

    Attributes:
      key: short name ("w1", ...); title: what the table calls it.
      sizes, activation: the MLP (hidden activation; the output is softmax for
        several classes, sigmoid for one).
      loss: "softmax_cross_entropy" (integer labels) or "binary_cross_entropy" (0/1 labels).
      batch_size, learning_rate, epochs: plain minibatch SGD.
      x_train, y_train, x_test, y_test: float32 features, int32 labels.
      init_params: one nnjax parameter list per member (population workloads have several).
      seeds: the run key seed of each member (``jax.random.key(seed)``), for peers that draw from keys.
    """

    key: str
    title: str
    sizes: tuple[int, ...]
    activation: str
    loss: str
    batch_size: int
    learning_rate: float
    epochs: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    init_params: tuple
    seeds: tuple[int, ...]

    @property
    def members(self) -> int:
        """Models trained per run (1, or the population size)."""
        return len(self.init_params)

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def steps_per_epoch(self) -> int:
        """Minibatches per epoch, the short last one included."""
        return -(-self.n_train // self.batch_size)

    @property
    def net(self) -> nnjax.MLP:
        return nnjax.MLP(self.sizes, activation=self.activation, output="softmax" if self.sizes[-1] > 1 else "sigmoid")

    def describe(self) -> dict:
        """The workload's settings, for the JSON file."""
        return {
            "title": self.title, "sizes": list(self.sizes), "activation": self.activation, "loss": self.loss,
            "batch_size": self.batch_size, "learning_rate": self.learning_rate, "epochs": self.epochs,
            "n_train": self.n_train, "n_test": int(self.x_test.shape[0]), "members": self.members,
            "steps_per_epoch": self.steps_per_epoch, "train_gflop_per_epoch": train_flops(self) / 1e9,
        }


def train_flops(w: Workload) -> float:
    """Floating-point operations of the matrix products of one epoch of one member.

    Per example and dense layer ``(n_in, n_out)``: ``2 n_in n_out`` forward,
    as much again for the weight gradient, and as much again for the input
    gradient except at the first layer (no gradient for the data).
    """
    pairs = list(zip(w.sizes[:-1], w.sizes[1:]))
    per_example = sum(2 * a * b * (2 if i == 0 else 3) for i, (a, b) in enumerate(pairs))
    return float(per_example) * w.n_train


def member_keys(count: int) -> list[int]:
    """Seeds of the population's members: member ``i`` is ``jax.random.key(i)``."""
    return list(range(count))


def _init_params(sizes, activation, seeds) -> tuple:
    """The weights :func:`nnjax.fit` would draw from ``jax.random.key(seed)``, as NumPy arrays."""
    net = nnjax.MLP(sizes, activation=activation)
    out = []
    for seed in seeds:
        params = nnjax.init(split_run_key(jax.random.key(seed))[0], net)
        out.append(tuple({k: np.asarray(v, np.float32) for k, v in layer.items()} for layer in params))
    return tuple(out)


def _digits(n_train: int | None = None):
    bunch = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        bunch.data, bunch.target, test_size=0.2, random_state=0, stratify=bunch.target
    )
    scaler = StandardScaler().fit(x_tr)  # fitted on the training part only
    x_tr, x_te = scaler.transform(x_tr).astype(np.float32), scaler.transform(x_te).astype(np.float32)
    if n_train is not None:
        x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    return x_tr, y_tr.astype(np.int32), x_te, y_te.astype(np.int32)


def _mnist_shaped(n_train: int, n_test: int):
    """Gaussian pixels labelled by a random linear teacher: learnable, same shapes as MNIST."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n_train + n_test, 784), dtype=np.float32)
    teacher = rng.standard_normal((784, 10), dtype=np.float32)
    y = np.argmax(x @ teacher, axis=1).astype(np.int32)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def _xor_like(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(n, 2)).astype(np.float32)
    return x, ((x[:, 0] > 0) != (x[:, 1] > 0)).astype(np.int32)


def build(name: str, *, quick: bool = False) -> Workload:
    """The workload ``name`` ("w1", "w2", "w4", "w5"); ``quick`` shrinks epochs and data for a smoke test.

    Raises:
      ValueError: for an unknown name.
    """
    if name == "w1":
        data, sizes, act, loss, batch, lr = _digits(), (64, 128, 64, 10), "relu", "softmax_cross_entropy", 32, 0.05
        title, epochs, seeds = "W1 digits 64-128-64-10", 3 if quick else 50, [0]
    elif name == "w4":
        data, sizes, act, loss, batch, lr = _digits(), (64, 128, 64, 10), "relu", "softmax_cross_entropy", 32, 0.05
        members = 4 if quick else 32
        title, epochs, seeds = f"W4 population {members} x digits", 1 if quick else 20, member_keys(members)
    elif name == "w2":
        data = _mnist_shaped(*((1280, 256) if quick else (60000, 2000)))
        sizes, act, loss, batch, lr = (784, 512, 512, 10), "relu", "softmax_cross_entropy", 128, 0.05
        title, epochs, seeds = "W2 MNIST-shaped 784-512-512-10", 1, [0]
    elif name == "w5":
        x, y = _xor_like(256, seed=1)
        x_test, y_test = _xor_like(256, seed=2)
        data, sizes, act, loss, batch, lr = (x, y, x_test, y_test), (2, 8, 1), "sigmoid", "binary_cross_entropy", 8, 0.5
        title, epochs, seeds = "W5 tiny 2-8-1 sigmoid", 10 if quick else 200, [0]
    else:
        raise ValueError(f"name: expected one of {', '.join(NAMES)}, got {name!r}")
    return Workload(
        key=name, title=title, sizes=sizes, activation=act, loss=loss, batch_size=batch, learning_rate=lr,
        epochs=epochs, x_train=data[0], y_train=data[1], x_test=data[2], y_test=data[3],
        init_params=_init_params(sizes, act, seeds), seeds=tuple(seeds),
    )
