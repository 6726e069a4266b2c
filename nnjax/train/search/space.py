"""Search spaces for hyper-parameter search, parsed from the strings ``nnjax tune`` takes.

The ranges are one set of records, :class:`~nnjax.sweeps.Uniform`, :class:`~nnjax.sweeps.LogUniform`
and :class:`~nnjax.sweeps.Choice` (:mod:`nnjax.sweeps`), read from text by :func:`parse_range`:
``low:high`` (log-uniform when ``0 < low`` and ``high / low >= 10``, uniform otherwise),
``log:low:high`` or ``lin:low:high`` to choose explicitly, or a comma list ``0,1e-4,1e-3`` of
choices. A space maps member settings (:data:`nnjax.population.MEMBER_SETTINGS`) to ranges;
:func:`sample` draws members from it with :func:`nnjax.sweeps.grid` /
:func:`nnjax.sweeps.random_search`, successive halving draws through it, and PBT resamples from the
same records (:func:`nnjax.sweeps.draw`), so there is one sampler.

Example:
  >>> import jax
  >>> space = parse_space({"learning_rate": "1e-4:1e-1", "l2": "0,1e-4"})
  >>> space["learning_rate"], space["l2"]
  (LogUniform(low=0.0001, high=0.1), Choice(values=(0.0, 0.0001)))
  >>> s = sample(space, 6, key=jax.random.key(0), method="random")
  >>> sorted(s), s["l2"].shape
  (['l2', 'learning_rate'], (6,))
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import numpy as np

from nnjax.train.sweeps import CONTINUOUS, Choice, LogUniform, Uniform, as_range, grid, parse_range, random_search

__all__ = ["METHODS", "Choice", "LogUniform", "Uniform", "parse_range", "parse_space", "sample"]

METHODS = ("grid", "random")


def parse_space(ranges: Mapping[str, Any]) -> dict[str, Any]:
    """``{setting: range}`` with every range a record (:func:`nnjax.sweeps.as_range`: text parsed,
    lists and numbers as choices, records checked)."""
    if not ranges:
        raise ValueError("space: expected at least one range, e.g. {'learning_rate': '1e-4:1e-1'}")
    return {name: as_range(name, r) for name, r in ranges.items()}


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
        return random_search(members, key=key, **space)
    fixed = int(np.prod([len(r.values) for r in space.values() if isinstance(r, Choice)] or [1]))
    cont = sum(isinstance(r, CONTINUOUS) for r in space.values())
    points = max(2, int(np.ceil((members / fixed) ** (1 / cont)))) if cont else 1
    g = grid(**{name: r.grid(points) for name, r in space.items()})
    return {k: v[:members] for k, v in g.items()}
