"""Keyed shuffle splits into training, validation and test parts.

The shuffle comes from a ``jax.random`` key (or an int seed, turned into ``jax.random.key(seed)``),
so the same key always gives the same split, and splits take part in the explicit key-splitting of
the rest of nnjax. Every row lands in exactly one part.

Part sizes follow the fractions by the largest-remainder rule: each part gets ``floor(f * n)``
rows, and the rows left over go to the parts with the largest fractional remainders. With
``stratify``, the rule is applied to each class separately, so every part holds each class in
the same proportion as the whole data, to within one example.

Example:
  >>> import numpy as np
  >>> x, y = np.arange(20).reshape(10, 2), np.arange(10)
  >>> (x_train, y_train), (x_test, y_test) = split(0, x, y, fractions=(0.8, 0.2))
  >>> x_train.shape, y_test.shape
  ((8, 2), (2,))
  >>> sorted(y_train.tolist() + y_test.tolist()) == list(range(10))
  True
"""

from __future__ import annotations

import operator
from typing import Any, Sequence

import jax
import numpy as np

from nnjax._base.typing import PRNGKey

__all__ = ["split", "split_sizes"]


def _as_key(key_or_seed: PRNGKey | int) -> PRNGKey:
    """A jax PRNG key from a key (new-style or legacy uint32[2]) or an int seed."""
    if isinstance(key_or_seed, (bool, np.bool_)):
        raise TypeError(f"key_or_seed: expected one jax PRNG key or an int seed, got bool {key_or_seed!r}")
    if isinstance(key_or_seed, (int, np.integer)):
        return jax.random.key(operator.index(key_or_seed))
    if isinstance(key_or_seed, (jax.Array, np.ndarray)):
        if jax.dtypes.issubdtype(key_or_seed.dtype, jax.dtypes.prng_key) and key_or_seed.shape == ():
            return key_or_seed
        if key_or_seed.dtype == np.uint32 and key_or_seed.shape == (2,):
            return key_or_seed
    got = type(key_or_seed).__name__
    if hasattr(key_or_seed, "shape"):
        got += f" of shape {key_or_seed.shape} and dtype {key_or_seed.dtype}"
    raise TypeError(f"key_or_seed: expected one jax PRNG key (jax.random.key(seed)) or an int seed, got {got}")


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    try:
        values = np.asarray(fractions, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"fractions: expected a sequence of numbers, got {fractions!r}") from None
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"fractions: expected at least two fractions, e.g. (0.8, 0.2), got {fractions!r}")
    if not (np.isfinite(values).all() and (values > 0).all() and abs(values.sum() - 1.0) < 1e-6):
        raise ValueError(
            f"fractions: expected positive numbers that sum to 1, got {fractions!r} (sum {values.sum():g})"
        )
    return values / values.sum()  # exactly 1, so the floors never add up to more than n


def split_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """The number of rows each part gets: ``floor(f * n)`` plus the leftover by largest remainder.

    Example:
      >>> split_sizes(10, (0.6, 0.2, 0.2)), split_sizes(3, (0.5, 0.5))
      ([6, 2, 2], [2, 1])
    """
    if operator.index(n) < 0:
        raise ValueError(f"n: expected an int >= 0, got {n}")
    exact = n * _check_fractions(fractions)
    sizes = np.floor(exact + 1e-9).astype(int)
    leftover = n - int(sizes.sum())
    # Stable sort: among equal remainders the earlier part gets the extra row.
    order = np.argsort(-(exact - sizes), kind="stable")
    sizes[order[:leftover]] += 1
    return sizes.tolist()


def _check_arrays(arrays: tuple[Any, ...], stratify: Any) -> tuple[list[np.ndarray], np.ndarray | None]:
    if not arrays:
        raise ValueError("arrays: expected at least one array to split, got none")
    data = [np.asarray(a) for a in arrays]
    for i, arr in enumerate(data):
        if arr.ndim == 0:
            raise ValueError(f"arrays[{i}]: expected an array with one row per example, got a scalar")
        if len(arr) != len(data[0]):
            raise ValueError(f"arrays[{i}]: expected {len(data[0])} rows like arrays[0], got {len(arr)}")
    if stratify is None:
        return data, None
    labels = np.asarray(stratify)
    if labels.ndim != 1 or len(labels) != len(data[0]):
        raise ValueError(f"stratify: expected one label per row, shape ({len(data[0])},), got shape {labels.shape}")
    return data, labels


def _part_of_each_row(order: np.ndarray, groups: np.ndarray, fractions: Sequence[float]) -> np.ndarray:
    """Which part each row goes to; within each group, rows are dealt out in shuffled order."""
    part = np.empty(len(order), dtype=np.int64)
    shuffled_groups = groups[order]
    for g in np.unique(groups):
        members = order[shuffled_groups == g]
        part[members] = np.repeat(np.arange(len(fractions)), split_sizes(len(members), fractions))
    return part


def split(
    key_or_seed: PRNGKey | int,
    *arrays: Any,
    fractions: Sequence[float] = (0.8, 0.2),
    stratify: Any = None,
) -> tuple[tuple[np.ndarray, ...], ...]:
    """Shuffles the rows of ``arrays`` together and splits them into parts.

    Args:
      key_or_seed: a ``jax.random.key`` (or legacy ``PRNGKey``), or an int seed.
      *arrays: arrays with the same number of rows (first axis), e.g. ``x, y``.
      fractions: the share of rows in each part, positive, summing to 1: ``(0.8, 0.2)`` for
        train/test, ``(0.6, 0.2, 0.2)`` for train/validation/test.
      stratify: optional labels, one per row (any type); keeps each class's proportion in
        every part to within one example.

    Returns:
      One tuple per part, each holding the part of every array in order:
      ``((x_train, y_train), (x_test, y_test))``. Rows within a part are in shuffled order.

    Raises:
      ValueError: rows do not match, bad fractions, or a part would be empty.
      TypeError: ``key_or_seed`` is neither a key nor an int.
    """
    key = _as_key(key_or_seed)
    data, labels = _check_arrays(arrays, stratify)
    n = len(data[0])
    shares = _check_fractions(fractions).tolist()
    order = np.asarray(jax.random.permutation(key, n))
    groups = np.zeros(n, dtype=np.int64) if labels is None else np.unique(labels, return_inverse=True)[1].reshape(-1)
    part = _part_of_each_row(order, groups, shares)
    parts = []
    for j in range(len(shares)):
        rows = order[part[order] == j]  # keep the shuffled order, not the class order
        if len(rows) == 0:
            shown = ", ".join(f"{f:g}" for f in shares)
            raise ValueError(f"fractions: part {j} of ({shown}) would be empty with {n} rows; use more data")
        parts.append(tuple(arr[rows] for arr in data))
    return tuple(parts)
