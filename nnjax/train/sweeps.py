"""Hyper-parameter sweeps in one compiled program, and a results table.

A sweep trains every (setting, seed) pair of a grid or a random sample over
:data:`nnjax.population.MEMBER_SETTINGS` (learning rate, L1, L2, dropout rate,
init scale) as one population (:func:`nnjax.fit_population`), then scores each
run by a validation metric and summarises each setting over its seeds.

Seed ``s`` uses the run key ``jax.random.fold_in(key, s)`` for *every* setting
(common random numbers): settings are compared on the same initial draws,
shuffles and dropout masks, so differences come from the hyper-parameters.

Example:
  >>> import jax, nnjax
  >>> from nnjax import sweeps as sw
  >>> data = nnjax.data.load_dataset("blobs")
  >>> settings = sw.grid(learning_rate=[0.01, 0.3], l2=[0.0, 1e-3])
  >>> out = sw.sweep(jax.random.key(0), nnjax.MLP((2, 1), output="sigmoid"), (data.x, data.y), settings,
  ...                seeds=2, loss="binary_cross_entropy", optimizer="sgd", epochs=2, batch_size=20,
  ...                validation=(data.x, data.y))
  >>> out.scores.shape, len(out.table())
  ((4, 2), 4)
"""

from __future__ import annotations

import itertools
import math
from typing import Any, NamedTuple, Sequence

import jax
import numpy as np

from nnjax._base import checks
from nnjax.train.fitting import FitResult
from nnjax.nn.network import MLP
from nnjax.nn.losses import is_maximised
from nnjax.train.options import Options
from nnjax.train.population import MEMBER_SETTINGS, fit_population, member_scores

__all__ = ["CONTINUOUS", "Choice", "LogUniform", "SweepResult", "Uniform", "as_range", "draw", "format_table", "grid",
           "parse_range", "random_search", "sweep"]


class Uniform(NamedTuple):
    """A uniform range ``[low, high)``: drawn evenly, laid on a grid by ``linspace``."""

    low: float
    high: float

    def check(self, name: str) -> "Uniform":
        """Itself with float ends, or a one-line ValueError naming ``name``."""
        low, high = float(self.low), float(self.high)
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError(f"{name}: expected finite low < high, got {self}")
        return Uniform(low, high)

    def from_unit(self, u: Any) -> Any:
        """The values at the quantiles ``u`` in ``[0, 1)`` (NumPy or traced, as ``u``)."""
        return self.low + u * (self.high - self.low)

    def grid(self, points: int) -> np.ndarray:
        """``points`` evenly spaced values, both ends included."""
        return np.linspace(self.low, self.high, points)


class LogUniform(NamedTuple):
    """A log-uniform range ``[low, high)``, ``low > 0``: drawn evenly on the log scale, laid on a
    grid by ``geomspace``."""

    low: float
    high: float

    def check(self, name: str) -> "LogUniform":
        """Itself with float ends, or a one-line ValueError naming ``name``."""
        low, high = float(self.low), float(self.high)
        if not (np.isfinite(low) and np.isfinite(high) and 0 < low < high):
            raise ValueError(f"{name}: expected 0 < low < high (log-uniform), got {self}")
        return LogUniform(low, high)

    def from_unit(self, u: Any) -> Any:
        """The values at the quantiles ``u`` in ``[0, 1)`` (NumPy or traced, as ``u``)."""
        xp = jax.numpy if isinstance(u, jax.Array) else np
        low = math.log(self.low)
        return xp.exp(low + u * (math.log(self.high) - low))

    def grid(self, points: int) -> np.ndarray:
        """``points`` geometrically spaced values, both ends included."""
        return np.geomspace(self.low, self.high, points)


class Choice(NamedTuple):
    """A list of choices, drawn with equal probability; a grid takes them all."""

    values: tuple

    def check(self, name: str) -> "Choice":
        """Itself with float values, or a one-line ValueError naming ``name``."""
        values = np.atleast_1d(np.asarray(self.values, np.float64))
        if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError(f"{name}: expected a non-empty list of finite numbers, got {list(np.ravel(values))}")
        return Choice(tuple(values.tolist()))

    def grid(self, points: int) -> np.ndarray:
        """The choices (``points`` is not used)."""
        return np.asarray(self.values, np.float64)


#: The continuous ranges (a grid lays points on them; a choice list is taken whole).
CONTINUOUS = (Uniform, LogUniform)


def as_range(name: str, value: Any) -> Uniform | LogUniform | Choice:
    """One search range, checked: a :class:`Uniform`, :class:`LogUniform` or :class:`Choice`
    as it is; text as :func:`parse_range` reads it; a list (tuple, array) as a :class:`Choice`; a
    number as the choice of one value. Every sampler (:func:`random_search`, :func:`draw`, grids,
    :func:`nnjax.search.sample`, PBT's resample) takes ranges through here.

    Example:
      >>> as_range("l2", [0, 1e-4]), as_range("dropout", 0.1), as_range("lr", "1e-3:1e-1")
      (Choice(values=(0.0, 0.0001)), Choice(values=(0.1,)), LogUniform(low=0.001, high=0.1))
    """
    if isinstance(value, (Uniform, LogUniform, Choice)):
        return value.check(name)
    if isinstance(value, str):
        return parse_range(name, value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return Choice(tuple(np.asarray(value, np.float64).ravel().tolist()) if np.size(value) else ()).check(name)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"{name}: expected a range (Uniform, LogUniform, Choice, 'low:high'), a list or a number, "
                         f"got {value!r}")
    return Choice((float(value),)).check(name)


def draw(key: jax.Array, r: Uniform | LogUniform | Choice, shape: tuple, *, traced: bool = False) -> Any:
    """Values drawn from the range ``r`` with ``key``: float64 NumPy, or with ``traced=True`` a
    float32 JAX array (inside a compiled program: PBT's resample). The same key gives the same
    draws either way (up to float32 rounding)."""
    if isinstance(r, Choice):
        index = jax.random.randint(key, shape, 0, len(r.values))
        if traced:
            return jax.numpy.asarray(r.values, jax.numpy.float32)[index]
        return np.asarray(r.values, np.float64)[np.asarray(index)]
    u = jax.random.uniform(key, shape)
    return r.from_unit(u if traced else np.asarray(u, np.float64))


def parse_range(name: str, text: str) -> Uniform | LogUniform | Choice:
    """One range from its text: ``low:high`` (a :class:`LogUniform` when ``0 < low`` and
    ``high / low >= 10``, a :class:`Uniform` otherwise), ``log:low:high`` or ``lin:low:high`` to
    choose, or a comma list ``a,b,c`` of distinct choices (a :class:`Choice`).

    Example:
      >>> parse_range("dropout", "0:0.5"), parse_range("l2", "0,1e-3"), parse_range("lr", "lin:0.1:0.3")
      (Uniform(low=0.0, high=0.5), Choice(values=(0.0, 0.001)), Uniform(low=0.1, high=0.3))
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
    return Choice(values)


def _number(name: str, text: str) -> float:
    value = checks.number(text)
    if value is None:
        raise ValueError(f"{name}: expected a number, got {text!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {text!r}")
    return value


def _check_name(name: str) -> None:
    if name not in MEMBER_SETTINGS:
        raise ValueError(f"hyper-parameter: expected one of {', '.join(MEMBER_SETTINGS)}, got {name!r}")


def grid(**values: float | Sequence[float]) -> dict[str, np.ndarray]:
    """Every combination of the given values (the first name varies slowest).

    Example:
      >>> g = grid(learning_rate=[0.1, 0.01], dropout=[0.0, 0.5])
      >>> g["learning_rate"].tolist(), g["dropout"].tolist()
      ([0.1, 0.1, 0.01, 0.01], [0.0, 0.5, 0.0, 0.5])
    """
    if not values:
        raise ValueError("values: expected at least one hyper-parameter, e.g. grid(learning_rate=[0.1, 0.01])")
    axes = []
    for name, v in values.items():
        _check_name(name)
        axes.append(np.atleast_1d(np.asarray(v, np.float64)).ravel())
    rows = list(itertools.product(*axes))
    return {name: np.array([row[i] for row in rows]) for i, name in enumerate(values)}


def random_search(n: int, *, key: jax.Array, **distributions: Any) -> dict[str, np.ndarray]:
    """``n`` settings drawn at random: each value a range (:func:`as_range`: a :class:`Uniform`,
    a :class:`LogUniform`, a :class:`Choice` or a list of choices, range text) or a constant.

    Each name draws from its own key (``fold_in(key, MEMBER_SETTINGS.index(name))``),
    so adding a name does not change the others' draws.

    Example:
      >>> import jax
      >>> s = random_search(5, key=jax.random.key(0), learning_rate=LogUniform(1e-3, 1e-1), l2=[0.0, 1e-4])
      >>> s["learning_rate"].shape, bool(((s["learning_rate"] >= 1e-3) & (s["learning_rate"] < 1e-1)).all())
      ((5,), True)
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n: expected a positive number of settings, got {n!r}")
    out = {}
    for name, dist in distributions.items():
        _check_name(name)
        out[name] = draw(jax.random.fold_in(key, MEMBER_SETTINGS.index(name)), as_range(name, dist), (n,))
    return out


class SweepResult(NamedTuple):
    """What :func:`sweep` returns.

    Attributes:
      settings: ``{name: (S,) array}``, one entry per swept hyper-parameter.
      scores: ``(S, seeds)``: each run's ``metric`` (see :func:`nnjax.population.member_scores`).
      metric: the history key scored; maximise: whether larger is better.
      result: the stacked :class:`~nnjax.FitResult`, leaves of shape ``(S, seeds, ...)``.
    """

    settings: dict[str, np.ndarray]
    scores: np.ndarray
    metric: str
    maximise: bool
    result: FitResult

    @property
    def best(self) -> int:
        """The index of the setting with the best mean score over seeds (NaN runs count as failures)."""
        return self.table()[0]["setting"]

    def table(self) -> list[dict[str, Any]]:
        """One row per setting, best first: its values, mean, std, min, max and finite runs over seeds.

        A setting with a non-finite run (it diverged) ranks below every setting whose runs all finished.
        """
        rows = []
        for i in range(self.scores.shape[0]):
            s = self.scores[i]
            ok = s[np.isfinite(s)]
            row = {"setting": i, **{k: float(v[i]) for k, v in self.settings.items()}}
            row.update(
                mean=float(ok.mean()) if ok.size else float("nan"),
                std=float(ok.std(ddof=1)) if ok.size > 1 else 0.0,
                min=float(ok.min()) if ok.size else float("nan"),
                max=float(ok.max()) if ok.size else float("nan"),
                finite=int(ok.size),
                seeds=int(s.size),
            )
            rows.append(row)
        sign = -1.0 if self.maximise else 1.0

        def order(row):
            failed = row["finite"] < row["seeds"]
            return (failed, sign * row["mean"] if row["finite"] else np.inf, row["setting"])

        return sorted(rows, key=order)

    def format(self, digits: int = 4) -> str:
        """The table as aligned text (see :func:`format_table`)."""
        return format_table(self.table(), metric=self.metric, digits=digits)


def format_table(rows: Sequence[dict[str, Any]], *, metric: str = "score", digits: int = 4) -> str:
    """Aligned text for :meth:`SweepResult.table` rows: rank, setting values, mean +- std, range.

    Example:
      >>> print(format_table([{"setting": 0, "l2": 0.001, "mean": 0.5, "std": 0.1, "min": 0.4, "max": 0.6,
      ...                      "finite": 3, "seeds": 3}], metric="val_loss"))
      rank  setting  l2     val_loss mean  std  min  max  finite
      1     0        0.001  0.5            0.1  0.4  0.6  3/3
    """
    if not rows:
        return "(no settings)"
    names = [k for k in rows[0] if k in MEMBER_SETTINGS]
    header = ["rank", "setting", *names, f"{metric} mean", "std", "min", "max", "finite"]
    fmt = lambda v: f"{v:.{digits}g}"  # noqa: E731
    body = [
        [str(r + 1), str(row["setting"]), *[fmt(row[n]) for n in names],
         fmt(row["mean"]), fmt(row["std"]), fmt(row["min"]), fmt(row["max"]), f"{row['finite']}/{row['seeds']}"]
        for r, row in enumerate(rows)
    ]
    widths = [max(len(line[c]) for line in [header, *body]) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header, *body]]
    return "\n".join(lines)


def sweep(
    key: jax.Array,
    net: MLP,
    data: tuple[Any, Any],
    settings: dict[str, Any],
    options: Options | None = None,
    *,
    seeds: int = 3,
    metric: str | None = None,
    at: str = "last",
    **population_kwargs: Any,
) -> SweepResult:
    """Trains every setting with ``seeds`` seeds as one population and scores the runs.

    Args:
      key: the sweep key; seed ``s`` of every setting uses ``fold_in(key, s)``.
      net: the topology.
      data: ``(x, y)``.
      settings: ``{name: (S,) values}`` from :func:`grid` or :func:`random_search`
        (names from :data:`~nnjax.population.MEMBER_SETTINGS`).
      seeds: runs per setting.
      metric: the history key scored (default "val_loss" with validation, else "loss").
      options: the settings shared by every run, an :class:`~nnjax.train.options.Options`
        record (its fields may be given as keywords instead).
      at: "last" epoch run or "best" epoch (see :func:`~nnjax.population.member_scores`).
      **population_kwargs: :func:`nnjax.fit_population`'s keywords (the settings ``loss``,
        ``optimizer``, ``epochs``, ``batch_size``, ``validation``, ..., and ``mesh``,
        ``chunk_size``); a member setting not in ``settings`` may be given here as a constant.

    Returns:
      A :class:`SweepResult`; ``.table()`` ranks the settings and ``.format()`` prints them.
    """
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"seeds: expected a positive number of runs per setting, got {seeds!r}")
    if not settings:
        raise ValueError("settings: expected at least one hyper-parameter, e.g. grid(learning_rate=[0.1, 0.01])")
    columns = {}
    for name, values in settings.items():
        _check_name(name)
        if name in population_kwargs:
            raise ValueError(f"{name}: given both in settings and as a keyword; keep one")
        columns[name] = np.atleast_1d(np.asarray(values, np.float64))
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise ValueError(f"settings: expected arrays of one length, got lengths {sorted(lengths)}")
    n_settings = lengths.pop()
    seed_keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(np.arange(seeds))
    keys = jax.numpy.tile(seed_keys, n_settings)  # setting-major: run i * seeds + s
    per_run = {name: np.repeat(v, seeds) for name, v in columns.items()}
    result = fit_population(keys, net, data, options, **per_run, **population_kwargs)
    scores = member_scores(result, metric, at=at).reshape(n_settings, seeds)
    metric = metric or ("val_loss" if "val_loss" in result.history else "loss")
    stacked = jax.tree.map(lambda a: a.reshape((n_settings, seeds) + a.shape[1:]), result)
    return SweepResult(settings=columns, scores=scores, metric=metric, maximise=is_maximised(metric), result=stacked)
