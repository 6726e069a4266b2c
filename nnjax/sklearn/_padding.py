"""Shape buckets: nearby problem sizes share one compiled training program.

``nnjax.fit`` compiles one XLA program per static configuration, which includes
the number of examples and the parameter shapes. scikit-learn workflows fit
many small problems of slightly different sizes (cross-validation folds, grid
searches, feature selection, the estimator checks), and on a CPU compiling
costs far more than training them. Two paddings leave training unchanged
(up to float32 summation order) while sharing programs:

* **Rows, for full-batch training** (``batch_size >= n_samples``, the default
  for up to 200 samples): padding to a power of two (at least 64) with weight-0 rows. With a
  single batch per epoch the weighted mean loss, its gradient and the batch-norm
  statistics ignore weight-0 rows. (With several batches per epoch, padding rows
  would change the batches, so minibatch problems are never padded.)
* **Features, for narrow inputs** (fewer than 64): padding to a power of two (at least 16)
  with zero columns whose first-layer weights start at zero. Their gradient is
  ``x_pad^T delta + 2 l2 W_pad = 0``, so they stay zero under SGD, Adam and
  clipping, and the forward pass adds exact zeros. The weights of the real
  features are drawn for the true width (the initialisers' fan-in). Not done
  with ``l1 > 0``: the derivative of ``|w|`` at 0 is 1 in JAX.

A full batch is also put in a canonical form before it is padded, so that
integer sample weights and repeated rows give the same program the same numbers
(scikit-learn's sample-weight equivalence): rows of weight 0 are dropped, rows
with equal features and target are merged into one row carrying the sum of their
weights, and the rows are sorted. The weighted mean loss and its gradient are
the same sums, taken in one order whatever order or repetition the rows came
in. Batch norm (statistics of the rows, unweighted) and dropout (one mask per
row) would see the merged rows differently, so those problems are only padded.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.nn.network import MLP, init
from nnjax.train.loop import split_run_key

__all__ = ["bucket", "canonical_rows", "initial_params", "pad_features", "pad_full_batch", "pad_params",
           "unpad_params"]

_MAX_PADDED_FEATURES = 64
MIN_ROWS = 64  # tiny problems all share the smallest bucket; 64 rows cost nothing to train
_MIN_FEATURES = 16


def bucket(n: int, minimum: int = 8) -> int:
    """The power of two at or above ``n`` (at least ``minimum``)."""
    return max(minimum, 1 << (n - 1).bit_length())


def canonical_rows(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None):
    """The distinct ``(x, y)`` rows of positive weight, sorted, each with the sum of its weights.

    Args:
      x: ``(n, features)``.
      y: ``(n,)`` or ``(n, outputs)``.
      weights: ``(n,)`` non-negative, not all 0; ``None`` for unit weights.

    Returns:
      ``(x, y, weights)`` with float32 weights: a row repeated k times and a row of
      weight k give the same output. The order is that of the rows' bytes (features,
      then target), so it does not depend on the order the rows came in.

    Example:
      >>> x = np.array([[1.0], [0.0], [1.0], [2.0]], np.float32)
      >>> y = np.array([1.0, 0.0, 1.0, 1.0], np.float32)
      >>> cx, cy, cw = canonical_rows(x, y, np.array([1.0, 3.0, 2.0, 0.0], np.float32))
      >>> cx.ravel().tolist(), cy.tolist(), cw.tolist()
      ([0.0, 1.0], [0.0, 1.0], [3.0, 3.0])
    """
    w = np.ones(x.shape[0], np.float64) if weights is None else np.asarray(weights, np.float64)
    keep = w > 0
    x, y, w = x[keep], y[keep], w[keep]
    # one byte string per row: features, then target (big-endian, so the order is the same everywhere)
    row_bytes = np.concatenate([np.ascontiguousarray(x, ">f4").view(np.uint8).reshape(len(x), -1),
                                np.ascontiguousarray(y.reshape(len(y), -1), ">f4").view(np.uint8).reshape(len(y), -1)],
                               axis=1)
    keys = np.ascontiguousarray(row_bytes).view(np.dtype((np.void, row_bytes.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    merged = np.bincount(inverse.ravel(), weights=w, minlength=len(first))
    return x[first], y[first], merged.astype(np.float32)


def pad_full_batch(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None, batch: int, *, merge: bool = False):
    """Pads a full-batch problem to ``bucket(n)`` rows of weight 0; minibatch problems come back as given.

    Args:
      x, y, weights: the training rows (``weights`` ``None`` for unit weights).
      batch: the batch size; below ``len(x)`` the problem is a minibatch one.
      merge: first put a full batch in the form of :func:`canonical_rows` (not with
        batch norm or dropout, which see every row).

    Returns:
      ``(x, y, weights, batch_size)``; the padding targets copy a real one (valid for every loss).
    """
    n = x.shape[0]
    if batch < n:
        return x, y, weights, batch
    if merge:
        x, y, weights = canonical_rows(x, y, weights)
        n = x.shape[0]
    rows = bucket(n, minimum=MIN_ROWS)
    w = np.zeros(rows, np.float32)
    w[:n] = 1.0 if weights is None else weights
    y = np.concatenate([y, np.repeat(y[:1], rows - n, axis=0)])
    return np.pad(x, [(0, rows - n), (0, 0)]), y, w, rows


def pad_features(net: MLP, l1: float) -> MLP:
    """The topology the program is compiled for: ``net`` with its input width bucketed when exact."""
    width = net.sizes[0]
    if l1 > 0 or width >= _MAX_PADDED_FEATURES:
        return net
    return dataclasses.replace(net, sizes=(bucket(width, minimum=_MIN_FEATURES), *net.sizes[1:]))


def pad_inputs(x: np.ndarray, train_net: MLP) -> np.ndarray:
    """``x`` with zero columns up to ``train_net``'s input width."""
    return np.pad(x, [(0, 0), (0, train_net.sizes[0] - x.shape[1])])


def pad_params(params: list, train_net: MLP) -> list:
    """First-layer weights padded with zero rows up to ``train_net``'s input width."""
    first = dict(params[0])
    xp = np if isinstance(first["w"], np.ndarray) else jnp  # NumPy stays NumPy: no program compiled to pad it
    first["w"] = xp.pad(first["w"], [(0, train_net.sizes[0] - first["w"].shape[0]), (0, 0)])
    return [first, *params[1:]]


def unpad_params(params: list, width: int) -> list:
    """The parameters of the true ``width`` inputs (drops the padded rows)."""
    first = dict(params[0])
    first["w"] = first["w"][:width]
    return [first, *params[1:]]


@functools.partial(jax.jit, static_argnums=(1, 2))
def initial_params(key: jax.Array, net: MLP, train_net: MLP) -> list:
    """``nnjax.init`` for the true ``net`` with the run key's init key (as ``nnjax.fit`` does), then padded.

    One compiled program per pair of topologies: ``nnjax.init`` is one already, and op by op the
    key split and the padding compiled programs of their own. The barrier keeps the padding out
    of the draw's fused kernels, so the bits are ``nnjax.init``'s.
    """
    return pad_params(jax.lax.optimization_barrier(init(split_run_key(key)[0], net)), train_net)
