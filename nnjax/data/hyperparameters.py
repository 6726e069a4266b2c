"""Checks for hyper-parameters: rates in an interval, positive numbers, positive integers.

Errors follow :mod:`nnjax.data.validation`: they name the argument, what was expected and what
came; a wrong type raises ``TypeError``, a bad value ``ValueError``. ``check_fraction`` and
``check_positive`` let traced values through unchanged, since their values are unknown on the host
while ``jax.jit`` or ``jax.vmap`` traces a function, and accept arrays (one value per model of a
population), checking every element.

Example:
  >>> check_fraction(0.5, "dropout")
  0.5
  >>> check_positive_int(32, "batch_size")
  32
"""

from __future__ import annotations

import operator
from typing import Any

import jax
import numpy as np

__all__ = ["check_fraction", "check_positive", "check_positive_int"]


def _is_traced(value: Any) -> bool:
    return isinstance(value, jax.core.Tracer)


def _real_array(value: Any, name: str, expected: str) -> np.ndarray:
    """A hyper-parameter as a real-valued array; bools and strings are type errors."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        arr = np.asarray(None)  # ragged or unconvertible: reported as a wrong type below
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name}: expected {expected}, got {type(value).__name__} {value!r}")
    return arr


def check_fraction(
    value: Any, name: str, *, low: float = 0.0, high: float = 1.0, inclusive_high: bool = False
) -> Any:
    """Checks that a number (or every element of an array) lies in ``[low, high)``.

    With ``inclusive_high=True`` the interval is ``[low, high]``. Traced values pass unchecked.

    Args:
      value: a real number or an array of them (one per model of a population, say).
      name: the argument's name, for error messages.
      low: the smallest allowed value (allowed itself).
      high: the upper bound.
      inclusive_high: whether ``high`` itself is allowed.

    Returns:
      A Python float for a scalar, else ``value`` unchanged.

    Raises:
      TypeError: not a real number (a bool, a string, ...).
      ValueError: outside the interval (NaN always is).

    Example:
      >>> check_fraction(1.0, "dropout")
      Traceback (most recent call last):
      ...
      ValueError: dropout: expected a number in [0, 1), got 1.0
    """
    if _is_traced(value):
        return value
    interval = f"[{low:g}, {high:g}{']' if inclusive_high else ')'}"
    arr = _real_array(value, name, f"a number in {interval}")
    ok = (arr >= low) & ((arr <= high) if inclusive_high else (arr < high))
    return _accept_or_raise(value, arr, ok, name, f"a number in {interval}")


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> Any:
    """Checks that a real number (or every element of an array) is finite and > 0 (>= 0).

    Args:
      value: a real number or an array of them, e.g. a learning rate or an L2 strength.
      name: the argument's name, for error messages.
      allow_zero: accept 0 as well.

    Returns:
      A Python float for a scalar, else ``value`` unchanged.

    Example:
      >>> check_positive(0.0, "l2", allow_zero=True)
      0.0
    """
    if _is_traced(value):
        return value
    expected = "a finite number >= 0" if allow_zero else "a finite number > 0"
    arr = _real_array(value, name, expected)
    ok = np.isfinite(arr) & ((arr >= 0) if allow_zero else (arr > 0))
    return _accept_or_raise(value, arr, ok, name, expected)


def _accept_or_raise(value: Any, arr: np.ndarray, ok: np.ndarray, name: str, expected: str) -> Any:
    if not np.all(ok):
        if arr.ndim == 0:
            raise ValueError(f"{name}: expected {expected}, got {arr.item()!r}")
        first = int(np.flatnonzero(~ok.ravel())[0])
        bad = arr.ravel()[first].item()
        raise ValueError(f"{name}: expected {expected} everywhere, got {bad!r} at flat index {first}")
    return float(arr) if arr.ndim == 0 else value


def check_positive_int(value: Any, name: str) -> int:
    """Checks an integer >= 1 (a batch size, a number of epochs or of units).

    Python and NumPy integers are accepted; bools and floats (even ``32.0``) are not.

    Returns:
      ``value`` as a Python int.

    Example:
      >>> check_positive_int(0, "batch_size")
      Traceback (most recent call last):
      ...
      ValueError: batch_size: expected an int >= 1, got 0
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an int >= 1, got bool {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an int >= 1, got {type(value).__name__} {value!r}") from None
    if number < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {number}")
    return number
