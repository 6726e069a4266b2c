"""The rules for the numbers every entry point takes, in one place (NumPy only, no JAX import).

:func:`nnjax.fit`, :func:`nnjax.optim.make` and :func:`~nnjax.optim.schedule`,
:func:`nnjax.population.fit_population`, the ``nnjax`` command line and the scikit-learn
estimators all check their settings here, so the same value is refused everywhere with the same
words. Each caller passes the argument's name in its user's terms (the CLI says ``--lr``, the API
``learning_rate``, the estimators ``learning_rate_init``); messages read
``NAME: expected X, got Y``. A wrong type raises ``TypeError``, a bad value ``ValueError``.

The rules (:data:`RULES`, :data:`COUNTS`):

* learning rate, epsilon, clip norm and clip value, init scale: finite and > 0 (a learning-rate
  schedule is checked by its own parameters); "finite" is within float32's range, in which
  training computes (a learning rate of 1e308 would be infinite there);
* momentum, Adam's ``beta_1`` and ``beta_2``, dropout: finite in [0, 1);
* a schedule's decay rate: in (0, 1]; its final fraction: in [0, 1];
* penalties (``l1``, ``l2``, ``alpha``), weight decay, early stopping's ``min_delta``: finite (in
  float32), >= 0;
* schedule lengths (steps, decay steps), early stopping's patience: integers >= 1; warm-up: an
  integer >= 0;
* switches (``shuffle``, ``drop_last``, ...): True or False; named choices: one of their names;
* class weights: finite, >= 0, naming labels that occur in the targets;
* classification: at least two classes.

Values being traced by ``jax.jit`` or ``jax.vmap`` pass unchecked (their values are unknown on
the host); arrays (one value per member of a population) are checked element by element.

Example:
  >>> check("momentum", 0.9, "--momentum")
  0.9
  >>> check("learning_rate", float("nan"), "learning_rate_init")
  Traceback (most recent call last):
  ...
  ValueError: learning_rate_init: expected a finite number > 0, got nan
"""

from __future__ import annotations

import operator
import sys
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

from nnjax._base import optimizers

__all__ = ["COUNTS", "OPTIMIZERS", "RULES", "Rule", "SCHEDULES", "check", "check_choice", "check_class_weight",
           "check_classes", "check_count", "check_flag", "check_fraction", "check_optimizer", "check_positive",
           "check_positive_int", "check_schedule", "check_split", "is_traced", "number"]

#: Optimizer and schedule names that :func:`nnjax.optim.make` and :func:`nnjax.optim.schedule` build
#: (the keys of the one table, :mod:`nnjax._base.optimizers`).
OPTIMIZERS, SCHEDULES = tuple(optimizers.OPTIMIZERS), tuple(optimizers.SCHEDULES)


class Rule(NamedTuple):
    """What a setting must be: the words for the message and the test on a float array."""

    expected: str
    test: Callable[[np.ndarray], np.ndarray]


_FLOAT32_MAX = float(np.finfo(np.float32).max)  # training computes in float32: larger is infinite there


def _finite32(a: np.ndarray) -> np.ndarray:
    return np.isfinite(a) & (np.abs(np.where(np.isfinite(a), a, 0.0)) <= _FLOAT32_MAX)


def _positive(a: np.ndarray) -> np.ndarray:
    return _finite32(a) & (a > 0)


def _non_negative(a: np.ndarray) -> np.ndarray:
    return _finite32(a) & (a >= 0)


def _unit_interval(a: np.ndarray) -> np.ndarray:
    return (a >= 0) & (a < 1)


_POSITIVE = Rule("a finite number > 0", _positive)
_NON_NEGATIVE = Rule("a finite number >= 0", _non_negative)
_RATE = Rule("a number in [0, 1)", _unit_interval)

#: The real-valued settings, by rule name (also the API's argument name where it has one).
RULES: dict[str, Rule] = {
    "learning_rate": _POSITIVE,
    "epsilon": _POSITIVE,
    "clip_norm": _POSITIVE,
    "clip_value": _POSITIVE,
    "init_scale": _POSITIVE,
    "momentum": _RATE,
    "beta_1": _RATE,
    "beta_2": _RATE,
    "dropout": Rule("a number in [0, 1) (the probability of dropping a unit)", _unit_interval),
    "decay_rate": Rule("a number in (0, 1]", lambda a: (a > 0) & (a <= 1)),
    "final_fraction": Rule("a number in [0, 1]", lambda a: (a >= 0) & (a <= 1)),
    "l1": _NON_NEGATIVE,
    "l2": _NON_NEGATIVE,
    "alpha": _NON_NEGATIVE,
    "weight_decay": _NON_NEGATIVE,
    "min_delta": _NON_NEGATIVE,
    "penalty": _NON_NEGATIVE,
    "class_weight": _NON_NEGATIVE,
}

#: The integer settings, by rule name: the smallest value allowed.
COUNTS: dict[str, int] = {"steps": 1, "decay_steps": 1, "warmup_steps": 0, "epochs": 1, "batch_size": 1, "patience": 1}


def number(text: str) -> float | None:
    """``text`` read as a float (Python's syntax: ``1e-3``, ``nan``, ``inf`` included), or None
    when it is no number: the one reader of numbers in text (CSV cells, search ranges, saved flags),
    each caller deciding what a non-finite value means to it.

    Example:
      >>> number(" 1e-3"), number("inf"), number("a")
      (0.001, inf, None)
    """
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def is_traced(value: Any) -> bool:
    """Whether ``value`` is being traced by JAX (checked without importing JAX)."""
    jax = sys.modules.get("jax")
    return jax is not None and isinstance(value, jax.core.Tracer)


def _real_array(value: Any, name: str, expected: str) -> np.ndarray:
    """A setting as a real-valued array; bools, strings and None are type errors."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected {expected}, got bool {value!r}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        arr = np.asarray(None)  # ragged or unconvertible: reported as a wrong type below
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name}: expected {expected}, got {type(value).__name__} {value!r}")
    return arr


def _beyond_float32(value: Any) -> str:
    big = isinstance(value, (int, float)) and np.isfinite(value) and abs(value) > _FLOAT32_MAX
    return " (beyond float32's range, in which training computes)" if big else ""


def _accept_or_raise(value: Any, arr: np.ndarray, ok: np.ndarray, name: str, expected: str) -> Any:
    if not np.all(ok):
        if arr.ndim == 0:
            raise ValueError(f"{name}: expected {expected}, got {arr.item()!r}{_beyond_float32(arr.item())}")
        first = int(np.flatnonzero(~ok.ravel())[0])
        bad = arr.ravel()[first].item()
        raise ValueError(f"{name}: expected {expected} everywhere, got {bad!r} at flat index {first}"
                         f"{_beyond_float32(bad)}")
    return float(arr) if arr.ndim == 0 else value


def check(rule: str, value: Any, name: str | None = None) -> Any:
    """Checks ``value`` against the rule of :data:`RULES` called ``rule``.

    Args:
      rule: a key of :data:`RULES` ("learning_rate", "momentum", "l2", ...).
      value: a real number or an array of them; a traced value passes unchecked.
      name: the argument's name in the caller's terms (default: ``rule``).

    Returns:
      A Python float for a concrete scalar, else ``value`` unchanged.

    Raises:
      TypeError: not a real number.
      ValueError: outside the rule (NaN always is).

    Example:
      >>> check("l2", -1.0)
      Traceback (most recent call last):
      ...
      ValueError: l2: expected a finite number >= 0, got -1.0
    """
    name = rule if name is None else name
    if is_traced(value):
        return value
    expected, test = RULES[rule]
    arr = _real_array(value, name, expected)
    return _accept_or_raise(value, arr, test(arr.astype(np.float64)), name, expected)


def check_count(rule: str, value: Any, name: str | None = None) -> int:
    """Checks an integer setting against :data:`COUNTS` (bools and floats such as ``3.0`` are refused).

    Example:
      >>> check_count("decay_steps", 0, "--decay-epochs")
      Traceback (most recent call last):
      ...
      ValueError: --decay-epochs: expected an int >= 1, got 0
    """
    name = rule if name is None else name
    low = COUNTS[rule]
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an int >= {low}, got bool {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an int >= {low}, got {type(value).__name__} {value!r}") from None
    if number < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {number}")
    return number


def check_flag(value: Any, name: str) -> bool:
    """Checks a switch: True or False (NumPy's bool too); anything else, a string included, is refused.

    Example:
      >>> check_flag("no", "shuffle")
      Traceback (most recent call last):
      ...
      TypeError: shuffle: expected True or False, got str 'no'
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_choice(value: Any, choices: tuple[str, ...], name: str) -> str:
    """Checks a setting that is one of a few names.

    Example:
      >>> check_choice("bogus", ("auto", "min", "max"), "mode")
      Traceback (most recent call last):
      ...
      ValueError: mode: expected one of 'auto', 'min', 'max', got 'bogus'
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _named(names: Mapping[str, str] | None, rule: str) -> str:
    return (names or {}).get(rule, rule)


def check_optimizer(*, names: Mapping[str, str] | None = None, **settings: Any) -> None:
    """Checks an optimizer's numbers: each keyword is a rule of :data:`RULES`; None values are skipped.

    A callable learning rate (an optax schedule) is checked by its own parameters, see
    :func:`check_schedule`.

    Args:
      names: the user's name for each setting (e.g. ``{"learning_rate": "--lr"}``).
      **settings: ``learning_rate``, ``momentum``, ``beta_1``, ``beta_2``, ``epsilon``,
        ``weight_decay``, ``clip_norm``, ``clip_value``.

    Example:
      >>> check_optimizer(learning_rate=0.1, momentum=float("nan"), names={"momentum": "--momentum"})
      Traceback (most recent call last):
      ...
      ValueError: --momentum: expected a number in [0, 1), got nan
    """
    for rule, value in settings.items():
        if value is None or (rule == "learning_rate" and callable(value)):
            continue
        check(rule, value, _named(names, rule))


def check_schedule(*, names: Mapping[str, str] | None = None, **settings: Any) -> None:
    """Checks a learning-rate schedule's parameters; None values are skipped.

    Args:
      names: the user's name for each setting (e.g. ``{"decay_steps": "--decay-epochs"}``).
      **settings: ``learning_rate``, ``decay_rate``, ``final_fraction`` (real rules) and
        ``steps``, ``decay_steps``, ``warmup_steps`` (counts).
    """
    for rule, value in settings.items():
        if value is None:
            continue
        if rule in COUNTS:
            check_count(rule, value, _named(names, rule))
        else:
            check(rule, value, _named(names, rule))


def check_classes(labels: Any, name: str = "y") -> None:
    """Classification needs at least two distinct classes among ``labels``.

    Example:
      >>> check_classes([1, 1, 1], "y")
      Traceback (most recent call last):
      ...
      ValueError: y: expected at least 2 classes for classification, got only class 1
    """
    classes = np.unique(np.asarray(labels))
    if classes.size < 2:
        got = f"only class {classes[0].item()!r}" if classes.size else "no labels"
        raise ValueError(f"{name}: expected at least 2 classes for classification, got {got}")


def check_class_weight(class_weight: Any, labels: Any, name: str = "class_weight") -> dict:
    """Checks ``{label: weight}``: labels that occur in ``labels``, weights finite and >= 0.

    Returns:
      ``class_weight`` as a dict.

    Example:
      >>> check_class_weight({7: 2.0}, [0, 1, 2])
      Traceback (most recent call last):
      ...
      ValueError: class_weight: expected labels that occur in y ([0, 1, 2]), got 7
    """
    if not isinstance(class_weight, Mapping):
        raise TypeError(f"{name}: expected a dict {{label: weight}}, got {type(class_weight).__name__}")
    known = np.unique(np.asarray(labels)).tolist()
    for label, weight in class_weight.items():
        if label not in known:
            raise ValueError(f"{name}: expected labels that occur in y ({known[:20]}), got {label!r}")
        check("class_weight", weight, f"{name}[{label!r}]")
    return dict(class_weight)


def check_split(test: Any, validation: Any, names: tuple[str, str] = ("test_fraction", "validation_fraction")) -> None:
    """Checks a train/validation/test split: each share in [0, 1) and rows left to train on.

    Both shares may be 0 (train on everything, nothing held out).

    Example:
      >>> check_split(0.6, 0.5)
      Traceback (most recent call last):
      ...
      ValueError: test_fraction + validation_fraction: expected a sum below 1 (rows must remain to train on), got 1.1
    """
    for value, name in zip((test, validation), names):
        check_fraction(value, name)
    total = float(test) + float(validation)
    if not total < 1:
        raise ValueError(f"{names[0]} + {names[1]}: expected a sum below 1 (rows must remain to train on), "
                         f"got {total:g}")


def check_fraction(value: Any, name: str, *, low: float = 0.0, high: float = 1.0,
                   inclusive_high: bool = False) -> Any:
    """Checks that a number (or every element of an array) lies in ``[low, high)``.

    With ``inclusive_high=True`` the interval is ``[low, high]``. Traced values pass unchecked.

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
    if is_traced(value):
        return value
    interval = f"[{low:g}, {high:g}{']' if inclusive_high else ')'}"
    arr = _real_array(value, name, f"a number in {interval}")
    ok = (arr >= low) & ((arr <= high) if inclusive_high else (arr < high))
    return _accept_or_raise(value, arr, ok, name, f"a number in {interval}")


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> Any:
    """Checks that a real number (or every element of an array) is finite and > 0 (>= 0).

    Example:
      >>> check_positive(0.0, "l2", allow_zero=True)
      0.0
    """
    return check("penalty" if allow_zero else "learning_rate", value, name)


def check_positive_int(value: Any, name: str) -> int:
    """Checks an integer >= 1 (a batch size, a number of epochs or of units).

    Example:
      >>> check_positive_int(0, "batch_size")
      Traceback (most recent call last):
      ...
      ValueError: batch_size: expected an int >= 1, got 0
    """
    return check_count("steps", value, name)

