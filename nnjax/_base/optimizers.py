"""The optimizer and schedule table: what each name builds from optax and which numbers it takes.

One entry per name, written as data (the optax alias and the keywords it is given), so that
everything else is derived from it without importing JAX: :func:`nnjax.optim.make` and
:func:`nnjax.optim.schedule` build from it, the shared checks accept its names
(:data:`nnjax.checks.OPTIMIZERS`), the command line lists them in ``--help``, and the
scikit-learn estimators and populations get their optimizers through ``make``. A new optimizer
is one entry here; a new number it takes is one rule in :data:`nnjax.checks.RULES`.

Example:
  >>> OPTIMIZERS["nesterov"].alias, dict(OPTIMIZERS["nesterov"].numbers), dict(OPTIMIZERS["nesterov"].fixed)
  ('sgd', {'momentum': 'momentum'}, {'nesterov': True})
  >>> SCHEDULES["cosine"].keywords(0.1, steps=100, final_fraction=0.0)
  {'init_value': 0.1, 'decay_steps': 100, 'alpha': 0.0}
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Sequence

__all__ = ["NUMBERS", "OPTIMIZERS", "SCHEDULES", "SETTINGS", "Optimizer", "Schedule"]


class Optimizer(NamedTuple):
    """How one named optimizer is built: ``optax.<alias>(learning_rate, **keywords)``.

    Attributes:
      alias: the optax alias (``optax.sgd``, ``optax.adam``, ...).
      numbers: nnjax's name of each number it takes -> the alias's keyword (``beta_1`` -> ``b1``);
        the numbers are traced (injected into the optimizer state), so sweeping them compiles once.
      fixed: keywords that choose the algorithm (``nesterov=True``); static, part of the program.
      range_backoff: what the learning-rate range test (:func:`nnjax.lr_find`) divides the rate
        at its smoothed loss's minimum by: 10 for adaptive optimizers (Adam's family; the
        customary rule), 3 for the SGD family, whose minimum marks the divergence edge (about
        ``2 / lambda_max``) and whose best fixed rate lies a small factor below it (Smith's
        range-test guidance: a bound 3 to 4 times below the maximum).
    """

    alias: str
    numbers: Mapping[str, str] = {}
    fixed: Mapping[str, Any] = {}
    range_backoff: float = 10.0


_ADAM = {"beta_1": "b1", "beta_2": "b2", "epsilon": "eps"}

#: The optimizers by name, in the order ``--help`` lists them.
OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": Optimizer("sgd", range_backoff=3.0),
    "momentum": Optimizer("sgd", {"momentum": "momentum"}, range_backoff=3.0),  # heavy-ball momentum
    "nesterov": Optimizer("sgd", {"momentum": "momentum"}, {"nesterov": True}, range_backoff=3.0),
    "adam": Optimizer("adam", _ADAM),
    "adamw": Optimizer("adamw", {**_ADAM, "weight_decay": "weight_decay"}),  # decoupled weight decay
    "rmsprop": Optimizer("rmsprop"),
    "adagrad": Optimizer("adagrad"),
}

#: Every number an optimizer of the table takes (each a rule of :data:`nnjax.checks.RULES`).
NUMBERS: tuple[str, ...] = tuple(dict.fromkeys(n for entry in OPTIMIZERS.values() for n in entry.numbers))


class Schedule(NamedTuple):
    """How one named learning-rate schedule is built: ``optax.<alias>(**keywords(lr, ...))``.

    Attributes:
      alias: the optax schedule; None for a constant rate, which an optimizer is given as the
        number itself (traced in its state, so every rate shares one compiled program).
      keywords: ``keywords(learning_rate, **settings) -> dict``, plain arithmetic on the host over
        any of :data:`SETTINGS` (those it does not use are ignored; defaults as
        :func:`nnjax.optim.schedule`'s); raises ValueError when a length it needs is None. None
        for a constant rate.
    """

    alias: str | None
    keywords: Callable[..., dict] | None


def _need(value: Any, name: str) -> int:
    if value is None:
        raise ValueError(f"{name}: expected a number of steps for this schedule, got None")
    return int(value)


def _exponential(lr: float, *, decay_steps: int | None = None, steps: int | None = None, decay_rate: float = 0.5,
                 **_: Any) -> dict:
    return {"init_value": lr, "transition_steps": _need(decay_steps or steps, "decay_steps"), "decay_rate": decay_rate}


def _cosine(lr: float, *, steps: int | None = None, final_fraction: float = 0.0, **_: Any) -> dict:
    return {"init_value": lr, "decay_steps": _need(steps, "steps"), "alpha": final_fraction}


def _steps(lr: float, *, boundaries: Sequence[int] | None = None, decay_steps: int | None = None,
           steps: int | None = None, decay_rate: float = 0.5, **_: Any) -> dict:
    if boundaries is None:
        every = _need(decay_steps, "decay_steps or boundaries")
        boundaries = range(every, _need(steps, "steps"), every)
    return {"init_value": lr, "boundaries_and_scales": {int(b): decay_rate for b in boundaries}}


def _warmup_cosine(lr: float, *, steps: int | None = None, warmup_steps: int = 0, final_fraction: float = 0.0,
                   **_: Any) -> dict:
    # Without a warm-up the first step runs at the peak rate (optax's warm-up would start at 0).
    return {"init_value": 0.0 if warmup_steps else lr, "peak_value": lr, "warmup_steps": warmup_steps,
            "decay_steps": max(_need(steps, "steps"), warmup_steps + 1), "end_value": lr * final_fraction}


#: The learning-rate schedules by name ("piecewise" is another name for "step").
SCHEDULES: dict[str, Schedule] = {
    "constant": Schedule(None, None),
    "exponential": Schedule("exponential_decay", _exponential),
    "cosine": Schedule("cosine_decay_schedule", _cosine),
    "step": Schedule("piecewise_constant_schedule", _steps),
    "piecewise": Schedule("piecewise_constant_schedule", _steps),
    "warmup_cosine": Schedule("warmup_cosine_decay_schedule", _warmup_cosine),
}

#: Every setting a schedule of the table may take.
SETTINGS = ("steps", "decay_rate", "decay_steps", "boundaries", "warmup_steps", "final_fraction")
