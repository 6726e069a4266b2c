"""Search ranges for hyper-parameter search, parsed from the strings ``nnjax tune`` takes.

A range is written ``low:high`` (log-uniform when ``0 < low`` and ``high / low >= 10``,
uniform otherwise), ``log:low:high`` or ``lin:low:high`` to choose explicitly, or a comma list
``0,1e-4,1e-3`` of choices. A space maps member settings
(:data:`nnjax.population.MEMBER_SETTINGS`) to ranges; :func:`sample` draws members from it
with :func:`nnjax.sweeps.grid` / :func:`nnjax.sweeps.random_search`, so there is one sampler.

Example:
  >>> import jax
  >>> space = parse_space({"learning_rate": "1e-4:1e-1", "l2": "0,1e-4"})
  >>> space["learning_rate"]
  LogUniform(low=0.0001, high=0.1)
  >>> s = sample(space, 6, key=jax.random.key(0), method="random")
  >>> sorted(s), s["l2"].shape
  (['l2', 'learning_rate'], (6,))
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import numpy as np

from nnjax.train.sweeps import LogUniform, Uniform, grid, random_search

__all__ = ["METHODS", "parse_range", "parse_space", "sample"]

METHODS = ("grid", "random")


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {text!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {text!r}")
    return value


def parse_range(name: str, text: str) -> Any:
    """One range from its string: a :class:`~nnjax.sweeps.LogUniform`, a
    :class:`~nnjax.sweeps.Uniform` or a tuple of choices.

    Example:
      >>> parse_range("dropout", "0:0.5"), parse_range("l2", "0,1e-3"), parse_range("lr", "lin:0.1:0.3")
      (Uniform(low=0.0, high=0.5), (0.0, 0.001), Uniform(low=0.1, high=0.3))
      >>> parse_range("lr", "1e-2:1e-3")
      Traceback (most recent call last):
      ValueError: lr: expected low < high in 'low:high', got '1e-2:1e-3'
    """
    text = str(text).strip()
    if not text:
        raise ValueError(f"{name}: expected a range 'low:high' or choices 'a,b,c', got ''")
    if ":" in text:
        parts = text.split(":")
        kind = None
        if len(parts) == 3 and parts[0] in ("log", "lin"):
            kind, parts = parts[0], parts[1:]
        if len(parts) != 2:
            raise ValueError(f"{name}: expected 'low:high', 'log:low:high' or 'lin:low:high', got {text!r}")
        low, high = (_number(name, p) for p in parts)
        if not low < high:
            raise ValueError(f"{name}: expected low < high in 'low:high', got {text!r}")
        if kind == "log" and low <= 0:
            raise ValueError(f"{name}: expected 0 < low for a log range, got {text!r}")
        if kind is None:
            kind = "log" if low > 0 and high / low >= 10 else "lin"
        return LogUniform(low, high) if kind == "log" else Uniform(low, high)
    values = tuple(_number(name, p) for p in text.split(","))
    if len(set(values)) != len(values):
        raise ValueError(f"{name}: expected distinct choices, got {text!r}")
    return values


def parse_space(ranges: Mapping[str, Any]) -> dict[str, Any]:
    """``{setting: range}`` with string ranges parsed (:func:`parse_range`); ranges that are
    already records or sequences pass through."""
    if not ranges:
        raise ValueError("space: expected at least one range, e.g. {'learning_rate': '1e-4:1e-1'}")
    out = {}
    for name, r in ranges.items():
        if isinstance(r, str):
            r = parse_range(name, r)
        elif isinstance(r, (int, float)):
            r = (float(r),)
        out[name] = r
    return out


def _grid_values(name: str, r: Any, points: int) -> np.ndarray:
    if isinstance(r, LogUniform):
        return np.geomspace(r.low, r.high, points)
    if isinstance(r, Uniform):
        return np.linspace(r.low, r.high, points)
    return np.asarray(r, np.float64).ravel()


def sample(space: Mapping[str, Any], members: int, *, key: jax.Array, method: str = "random") -> dict[str, np.ndarray]:
    """``members`` settings from ``space``: ``"random"`` draws them from ``key``; ``"grid"`` lays
    the choices and about ``members ** (1/d)`` points of each continuous range (end points included,
    geometric for log ranges) on a grid and keeps its first ``members`` rows (all of it when smaller).

    Example:
      >>> import jax
      >>> g = sample({"learning_rate": LogUniform(1e-3, 1e-1), "l2": (0.0, 1e-4)}, 6, key=jax.random.key(0), method="grid")
      >>> g["learning_rate"].round(4).tolist(), g["l2"].tolist()
      ([0.001, 0.001, 0.01, 0.01, 0.1, 0.1], [0.0, 0.0001, 0.0, 0.0001, 0.0, 0.0001])
    """
    if not isinstance(members, int) or isinstance(members, bool) or members < 1:
        raise ValueError(f"members: expected a positive number, got {members!r}")
    if method not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    space = parse_space(space)
    if method == "random":
        return random_search(members, key=key, **{k: (v if isinstance(v, (Uniform, LogUniform)) else list(v)) for k, v in space.items()})
    fixed = int(np.prod([len(v) for v in space.values() if not isinstance(v, (Uniform, LogUniform))] or [1]))
    cont = sum(isinstance(v, (Uniform, LogUniform)) for v in space.values())
    points = max(2, int(np.ceil((members / fixed) ** (1 / cont)))) if cont else 1
    g = grid(**{k: _grid_values(k, v, points) for k, v in space.items()})
    return {k: v[:members] for k, v in g.items()}
