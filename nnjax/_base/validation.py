"""Input validation for the edge of every public nnjax function.

nnjax checks its inputs once, on the host, before anything is compiled, so that a mistake is
reported in terms of the caller's own arguments rather than as a shape error deep inside XLA.
Every error names the argument, what was expected and what came, for example::

    ValueError: x: expected a 2-D array (n_samples, n_features), got a 1-D array of shape (5,);
    for a single feature use x.reshape(-1, 1), for a single sample x.reshape(1, -1)

Wrong types (strings or objects where numbers belong, a float where an int belongs) raise
``TypeError``; everything else raises ``ValueError``. The hyper-parameter checks
(``check_fraction``, ``check_positive``, ``check_positive_int``) are in
:mod:`nnjax.data.hyperparameters` and re-exported here.

Example:
  >>> check_features([[1, 2], [3, 4]]).dtype
  dtype('float32')
  >>> check_labels([0.0, 2.0, 1.0], n_classes=3)
  array([0, 2, 1], dtype=int32)
  >>> check_fraction(0.5, "dropout")
  0.5
"""

from __future__ import annotations

from typing import Any

import numpy as np

# The hyper-parameter checks live next door; re-exported so every check_* is importable from here.
from nnjax._base import arrays
from nnjax._base.checks import check_fraction, check_positive, check_positive_int

__all__ = [
    "check_binary_labels",
    "check_features",
    "check_fraction",
    "check_labels",
    "check_positive",
    "check_positive_int",
    "check_signed_labels",
    "check_targets",
]

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_INT32 = np.iinfo(np.int32)


# ----------------------------------------------------------------------------------------------
# Shared helpers


def _as_array(value: Any, name: str) -> np.ndarray:
    """``np.asarray(value)``, with NumPy's conversion errors reworded to name the argument."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{name}: expected an array, got a {type(value).__name__} that NumPy cannot convert "
            f"(rows of different lengths?): {err}"
        ) from None


def _describe(arr: np.ndarray) -> str:
    """'a 1-D array of shape (5,)' or 'a scalar'."""
    if arr.ndim == 0:
        return f"a scalar ({arr.item()!r})"
    return f"a {arr.ndim}-D array of shape {arr.shape}"


def _require_numeric(arr: np.ndarray, name: str, hint: str = "") -> None:
    if arr.dtype.kind in "biuf":
        return
    if arr.dtype == object and arr.ndim == 0:
        got = f"a {type(arr.item()).__name__}"
    else:
        got = f"an array of dtype {arr.dtype}"
    raise TypeError(f"{name}: expected a numeric array (bool, int or float), got {got}{hint}")


def _require_finite(arr: np.ndarray, name: str) -> None:
    if arr.dtype.kind != "f":
        return
    # A sum is finite only if every entry is (NaN and Inf propagate): one pass, no copy of the
    # data. Only a non-finite sum (bad entries, or finite ones whose sum overflows) pays the count.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(arr)):
            return
    bad = ~np.isfinite(arr)
    count = int(bad.sum())
    if count:
        first_row = int(np.flatnonzero(bad.reshape(len(arr), -1).any(axis=1))[0])
        entries = "entry" if count == 1 else "entries"
        raise ValueError(
            f"{name}: expected finite values, got {count} NaN or infinite {entries} "
            f"(first in row {first_row})"
        )


def _require_length(arr: np.ndarray, n: int | None, name: str) -> None:
    if n is not None and len(arr) != n:
        raise ValueError(f"{name}: expected {n} rows (one per example), got {len(arr)} rows")
    if len(arr) == 0:
        raise ValueError(f"{name}: expected at least one row, got an empty array")


def _format_values(values: np.ndarray, limit: int = 10) -> str:
    """The distinct values as a short list: '[-1, 2, 7]' or '[0.5, 1.5, ... (12 distinct)]'."""
    distinct = np.unique(values)
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else repr(v) for v in distinct[:limit].tolist())
    if len(distinct) > limit:
        shown += f", ... ({len(distinct)} distinct)"
    return f"[{shown}]"


def _to_int32(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.size and (arr.min() < _INT32.min or arr.max() > _INT32.max):
        raise ValueError(f"{name}: expected values within the int32 range, got {arr.min()}..{arr.max()}")
    return arr.astype(np.int32, copy=False)


def _to_float32(arr: np.ndarray, name: str) -> np.ndarray:
    # Check before casting: NumPy warns on overflowing casts, and warnings are errors in tests.
    # float32 and narrower floats are in range by their type; wider ones are compared by their
    # extremes (max and min: no |arr| copy of the data).
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 4 and arr.size:
        largest = max(float(arr.max()), -float(arr.min()))
        if largest > _FLOAT32_MAX:
            raise ValueError(
                f"{name}: expected values within the float32 range (|v| <= {_FLOAT32_MAX:.3g}), "
                f"got a largest magnitude of {largest:.3g}; rescale them"
            )
    if arr.dtype == np.float32 and arr.flags.c_contiguous:
        return arr  # no copy: float32 data is used as given
    return arrays.aligned(arr, np.float32)  # the conversion's one copy, aligned (read in place by a CPU device)


def _label_vector(y: Any, name: str, n: int | None, *, keep_column: bool) -> np.ndarray:
    """Labels as a numeric, finite array of shape (n,) (or (n, 1) when kept) for the label checks."""
    arr = _as_array(y, name)
    _require_numeric(arr, name, hint="; encode other labels with nnjax.data.encode_labels")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr if keep_column else arr[:, 0]
    elif arr.ndim != 1:
        hint = f"; for one-hot rows use {name}.argmax(axis=1)" if arr.ndim == 2 else ""
        raise ValueError(f"{name}: expected labels of shape (n,), got {_describe(arr)}{hint}")
    _require_length(arr, n, name)
    _require_finite(arr, name)
    return arr


# ----------------------------------------------------------------------------------------------
# Arrays


def check_features(x: Any, name: str = "x", *, allow_int: bool = False) -> np.ndarray:
    """Checks a feature matrix and returns it as a float32 NumPy array.

    Args:
      x: array-like of shape (n_samples, n_features), bool, int or float, all finite.
      name: the argument's name, for error messages.
      allow_int: keep integer (and bool) input as int32 instead of float32, for token ids.

    Returns:
      ``x`` as an ``np.ndarray`` of dtype float32 (int32 for integer input when ``allow_int``).

    Raises:
      TypeError: ``x`` is not numeric (strings, objects, complex numbers).
      ValueError: ``x`` is not 2-D, is empty, or holds NaN or infinite values.

    Example:
      >>> check_features([[0, 1], [2, 3]], allow_int=True)
      array([[0, 1],
             [2, 3]], dtype=int32)
      >>> check_features([1.0, 2.0])
      Traceback (most recent call last):
      ...
      ValueError: x: expected a 2-D array (n_samples, n_features), got a 1-D array of shape (2,); \
for a single feature use x.reshape(-1, 1), for a single sample x.reshape(1, -1)
    """
    arr = _as_array(x, name)
    _require_numeric(arr, name)
    if arr.ndim != 2:
        hint = ""
        if arr.ndim == 1:
            hint = f"; for a single feature use {name}.reshape(-1, 1), for a single sample {name}.reshape(1, -1)"
        raise ValueError(f"{name}: expected a 2-D array (n_samples, n_features), got {_describe(arr)}{hint}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one sample and one feature, got shape {arr.shape}")
    _require_finite(arr, name)
    if allow_int and arr.dtype.kind in "biu":
        return _to_int32(arr, name)
    return _to_float32(arr, name)


def check_targets(y: Any, n: int | None, name: str = "y") -> np.ndarray:
    """Checks regression (or generic) targets: numeric, finite, ``n`` rows, 1-D or 2-D.

    Args:
      y: array-like of shape (n,) or (n, n_outputs).
      n: the number of rows expected (the number of examples in ``x``); None accepts any.
      name: the argument's name, for error messages.

    Returns:
      ``y`` as float32, or as int32 when it holds integers or bools (labels stay labels).

    Raises:
      TypeError: ``y`` is not numeric.
      ValueError: wrong number of dimensions or rows, or NaN/infinite values.

    Example:
      >>> check_targets([0.5, 1.5], n=2)
      array([0.5, 1.5], dtype=float32)
      >>> check_targets([0.5, 1.5], n=3)
      Traceback (most recent call last):
      ...
      ValueError: y: expected 3 rows (one per example), got 2 rows
    """
    arr = _as_array(y, name)
    _require_numeric(arr, name)
    if arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[1] == 0):
        raise ValueError(f"{name}: expected a 1-D (n,) or 2-D (n, n_outputs) array, got {_describe(arr)}")
    _require_length(arr, n, name)
    _require_finite(arr, name)
    if arr.dtype.kind in "biu":
        return _to_int32(arr, name)
    return _to_float32(arr, name)


def check_labels(y: Any, n_classes: int | None = None, name: str = "y", *, n: int | None = None) -> np.ndarray:
    """Checks class labels: whole numbers in ``[0, n_classes)``, shape (n,).

    Floats that are whole numbers (``2.0``) and bools are accepted; a column (n, 1) is flattened.

    Args:
      y: array-like of labels.
      n_classes: the number of classes; None only requires labels >= 0.
      name: the argument's name, for error messages.
      n: the number of labels expected (the number of examples); None accepts any.

    Returns:
      The labels as an int32 array of shape (n,).

    Raises:
      TypeError: non-numeric labels (encode them with :func:`nnjax.data.encode_labels`).
      ValueError: wrong shape or length, fractional, negative or too large labels.

    Example:
      >>> check_labels([0, 3, 1], n_classes=3)
      Traceback (most recent call last):
      ...
      ValueError: y: expected labels in [0, 3), got out-of-range values [3]
    """
    arr = _label_vector(y, name, n, keep_column=False)
    if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
        fractional = arr[arr != np.round(arr)]
        raise ValueError(f"{name}: expected whole-number labels, got {_format_values(fractional)}")
    labels = arr.astype(np.int64)
    high = np.inf if n_classes is None else check_positive_int(n_classes, "n_classes")
    bad = labels[(labels < 0) | (labels >= high)]
    if bad.size:
        interval = "labels >= 0" if n_classes is None else f"labels in [0, {high})"
        raise ValueError(f"{name}: expected {interval}, got out-of-range values {_format_values(bad)}")
    return _to_int32(labels, name)


def _check_label_set(y: Any, name: str, n: int | None, allowed: tuple[int, int], hint: str, dtype: Any) -> np.ndarray:
    arr = _label_vector(y, name, n, keep_column=True)
    values = np.unique(arr).astype(np.float64)
    bad = values[~np.isin(values, allowed)]
    if bad.size:
        other = (0, 1) if allowed == (-1, 1) else (-1, 1)
        suggestion = ""
        if np.isin(values, other).all():
            suggestion = f"; they look like {other[0]}/{other[1]} labels, convert with {hint}"
        raise ValueError(
            f"{name}: expected labels in {{{allowed[0]}, {allowed[1]}}}, got {_format_values(bad)}{suggestion}"
        )
    return arr.astype(dtype)


def check_signed_labels(y: Any, name: str = "y", *, n: int | None = None, dtype: Any = np.float32) -> np.ndarray:
    """Checks labels in {-1, +1} (int or float), as the perceptron and the hinge loss use.

    Args:
      y: array-like of shape (n,) or (n, 1).
      name: the argument's name, for error messages.
      n: the number of labels expected; None accepts any.
      dtype: the dtype returned (float32 by default, ready for arithmetic such as ``y * x``).

    Returns:
      The labels as ``dtype``, shape unchanged.

    Example:
      >>> check_signed_labels([0, 1])
      Traceback (most recent call last):
      ...
      ValueError: y: expected labels in {-1, 1}, got [0]; they look like 0/1 labels, convert with 2 * y - 1
    """
    return _check_label_set(y, name, n, (-1, 1), "2 * y - 1", dtype)


def check_binary_labels(y: Any, name: str = "y", *, n: int | None = None, dtype: Any = np.float32) -> np.ndarray:
    """Checks labels in {0, 1} (bool, int or float), as binary cross-entropy uses.

    Args:
      y: array-like of shape (n,) or (n, 1).
      name: the argument's name, for error messages.
      n: the number of labels expected; None accepts any.
      dtype: the dtype returned (float32 by default).

    Returns:
      The labels as ``dtype``, shape unchanged.

    Example:
      >>> check_binary_labels([True, False])
      array([1., 0.], dtype=float32)
    """
    return _check_label_set(y, name, n, (0, 1), "(y + 1) // 2", dtype)
