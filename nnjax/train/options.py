"""``nnjax.Options``: what a user sets for a training run, as one frozen record checked once.

Every face of training takes its settings here: :func:`nnjax.fit` and
:func:`nnjax.fitting.plan` (as keywords, ``fit(key, net, data, loss=..., epochs=...)``, or as a
record, ``fit(key, net, data, options)``), :func:`nnjax.fit_population`, :func:`nnjax.sweep`,
:func:`nnjax.text.fit_text`, the scikit-learn estimators and ``nnjax train``. The record is
checked when it is built, by the shared rules of :mod:`nnjax.checks` (messages
``NAME: expected X, got Y``); what can only be checked against the data (``batch_size`` at most
the number of examples, weights and labels, the loss's output shape) is checked by
:func:`nnjax.fitting.prepare`.

What is static and what is traced: the loss, the optimizer's kind, ``epochs``, ``batch_size`` and
the switches shape the compiled program (:class:`nnjax.training.FitConfig`, derived from the
record by :func:`nnjax.fitting.configure`); ``l1``, ``l2`` and ``dropout`` are traced numbers
(:class:`Regularization`), and so is a named optimizer's learning rate (it lives in the optimizer
state), so sweeping them compiles once.

Example:
  >>> from nnjax.train.options import Options
  >>> options = Options(loss="mse", optimizer="adam", learning_rate=0.01, epochs=5, batch_size=8)
  >>> options.loss.name, options.early_stopping
  ('mse', None)
  >>> options.replace(early_stopping=3).early_stopping.patience
  3
  >>> Options(loss="mse", optimizer="adam", epochs=5, batch_size=8, shuffle="no")
  Traceback (most recent call last):
  ...
  TypeError: shuffle: expected True or False, got str 'no'
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax._base import checks
from nnjax.nn import losses
from nnjax.train import optim

__all__ = ["AUTO", "EarlyStopping", "Options", "REQUIRED", "Regularization", "is_auto", "per_example",
           "regularization", "takes_settings"]

#: ``learning_rate=AUTO``: the learning-rate range test (:func:`nnjax.lr_find`) chooses the rate
#: when the run is planned (:func:`nnjax.fit`, :func:`nnjax.fit_population`, and what calls them).
AUTO = "auto"


def is_auto(rate: Any) -> bool:
    """Whether ``rate`` is :data:`AUTO` (the range test chooses)."""
    return isinstance(rate, str) and rate == AUTO


class _StoppingFields(NamedTuple):
    patience: int = 10
    min_delta: float = 0.0
    monitor: str | None = None
    mode: str = "auto"
    restore_best: bool = True
    best_follows_any_gain: bool = False


class EarlyStopping(_StoppingFields):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    ``patience`` is an int >= 1 and ``min_delta`` a finite number >= 0 (checked when the record
    is built). ``monitor`` defaults to "val_loss" with validation data, else "loss"; another name
    must be a key of the run's history (checked by :func:`nnjax.fitting.plan`). ``mode`` "auto"
    maximises accuracies and R^2 and minimises the rest ("min", "max" say it).
    ``restore_best`` returns the parameters of the best epoch.
    ``best_follows_any_gain``: the best value (and epoch) follows every improvement, even one
    smaller than ``min_delta``, while the patience count still resets only on improvements
    larger than ``min_delta`` (scikit-learn's ``tol`` rule); by default the best moves only
    on improvements larger than ``min_delta``.

    Example:
      >>> EarlyStopping(patience=2.5)
      Traceback (most recent call last):
      ...
      TypeError: patience: expected an int >= 1, got float 2.5
    """

    __slots__ = ()

    def __new__(cls, patience: int = 10, min_delta: float = 0.0, monitor: str | None = None, mode: str = "auto",
                restore_best: bool = True, best_follows_any_gain: bool = False) -> "EarlyStopping":
        if monitor is not None and not isinstance(monitor, str):
            raise TypeError(f"monitor: expected a history key such as 'val_loss' (or None), got {monitor!r}")
        return super().__new__(
            cls, checks.check_count("patience", patience), checks.check("min_delta", min_delta), monitor,
            checks.check_choice(mode, ("auto", "min", "max"), "mode"), checks.check_flag(restore_best, "restore_best"),
            checks.check_flag(best_follows_any_gain, "best_follows_any_gain"))


class Regularization(NamedTuple):
    """The traced numbers of a run (a pytree: ``jax.vmap`` maps over them).

    A field left None is absent from the program: no penalty is computed for ``l1=None``,
    and ``dropout=None`` keeps the model's own static rates (for the override rule of a
    scalar rate see :func:`nnjax.apply_with_state`). Built by :meth:`Options.regularization`.
    """

    l1: jax.Array | None = None
    l2: jax.Array | None = None
    dropout: jax.Array | None = None


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of the four settings every run needs (``loss``, ``optimizer``, ``epochs``, ``batch_size``).
REQUIRED: Any = _Required()

_NEEDS = {
    "loss": "a loss name (e.g. 'softmax_cross_entropy') or a per-example callable",
    "optimizer": "an optax.GradientTransformation or a name such as 'adam'",
    "epochs": "an int >= 1",
    "batch_size": "an int >= 1",
}


class _Shape(tuple):
    def __repr__(self) -> str:
        return f"<array {tuple(self)}>"


def _is_transformation(value: Any) -> bool:
    return hasattr(value, "init") and hasattr(value, "update")


@dataclasses.dataclass(frozen=True)
class Options:
    """The settings of a training run, checked once (see the module docstring).

    Attributes:
      loss: a name ("mse", "binary_cross_entropy", "softmax_cross_entropy", "hinge"), a
        per-example callable ``loss(logits, y) -> (n,)`` or a :class:`nnjax.losses.Loss`; held
        as the resolved :class:`~nnjax.losses.Loss`.
      optimizer: an ``optax.GradientTransformation``; a name from :data:`nnjax.optim.OPTIMIZERS`
        used with ``learning_rate``; or a factory ``learning_rate -> GradientTransformation``.
      epochs: passes over the data.
      batch_size: examples per minibatch (at most the number of examples).
      learning_rate: for a named optimizer or a factory: a number (default 0.01 for a name), an
        optax schedule, in a population one number per member, or ``"auto"``
        (:data:`AUTO`): the learning-rate range test's suggestion (:func:`nnjax.lr_find`), found
        when the run is planned. None with a fixed optax transformation (it has its own).
      l1, l2: penalty strengths ``l1 * sum|W| + l2 * sum W^2`` (finite, >= 0; may be traced).
      dropout: overrides the net's dropout rate(s) (in [0, 1); may be traced); None keeps them.
      validation: ``(x_val, y_val)``, scored at the end of every epoch.
      sample_weight: per-example weights ``(n,)``.
      class_weight: ``{label: weight}``.
      drop_last: drop the short last batch instead of padding it.
      early_stopping: an :class:`EarlyStopping`, an int patience >= 1, or None (no early
        stopping). An int 0 is refused: None is the API's off (``nnjax train --early-stopping 0``
        is the command line's).
      on_nonfinite: "skip" a step whose loss, gradients or new parameters are not finite, or
        "stop" training there.
      clip_norm, clip_value: gradient clipping in front of the optimizer (finite, > 0).
      diagnostics: record per-layer gradient health.
      shuffle: reshuffle every epoch; False visits the examples in order.
      batch_sharding: a ``jax.sharding.Sharding`` for the epoch's ``(steps, batch, ...)`` arrays.

    Raises:
      TypeError: a setting of the wrong type (a string for a switch, a float for ``epochs``),
        an unknown setting (see :meth:`of`) or a missing required one.
      ValueError: a value outside its rule, naming the setting.
    """

    loss: Any = REQUIRED
    optimizer: Any = REQUIRED
    epochs: int = REQUIRED
    batch_size: int = REQUIRED
    learning_rate: Any = None
    l1: Any = 0.0
    l2: Any = 0.0
    dropout: Any = None
    validation: Any = None
    sample_weight: Any = None
    class_weight: Any = None
    drop_last: bool = False
    early_stopping: Any = None
    on_nonfinite: str = "skip"
    clip_norm: Any = None
    clip_value: Any = None
    diagnostics: bool = True
    shuffle: bool = True
    batch_sharding: Any = None

    def __post_init__(self) -> None:
        for name, needs in _NEEDS.items():
            if getattr(self, name) is REQUIRED:
                raise TypeError(f"{name}: expected {needs}, got none (every run needs loss, optimizer, epochs "
                                "and batch_size)")
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen record)
        put("loss", losses.resolve(per_example(self.loss) if _is_plain_callable(self.loss) else self.loss))
        self._check_optimizer()
        put("epochs", checks.check_count("epochs", self.epochs))
        put("batch_size", checks.check_count("batch_size", self.batch_size))
        for name in ("l1", "l2"):
            checks.check(name, getattr(self, name))
        for name in ("dropout", "clip_norm", "clip_value"):
            if getattr(self, name) is not None:
                checks.check(name, getattr(self, name))
        if self.validation is not None and (not isinstance(self.validation, (tuple, list)) or len(self.validation) != 2):
            raise ValueError(f"validation: expected a pair (x_val, y_val), got {type(self.validation).__name__}")
        if self.class_weight is not None and not isinstance(self.class_weight, Mapping):
            raise TypeError(f"class_weight: expected a dict {{label: weight}}, got {type(self.class_weight).__name__}")
        for name in ("drop_last", "diagnostics", "shuffle"):
            put(name, checks.check_flag(getattr(self, name), name))
        put("early_stopping", _early_stopping(self.early_stopping))
        checks.check_choice(self.on_nonfinite, ("skip", "stop"), "on_nonfinite")
        if self.batch_sharding is not None and not isinstance(self.batch_sharding, jax.sharding.Sharding):
            raise TypeError(f"batch_sharding: expected a jax.sharding.Sharding (or None), got "
                            f"{type(self.batch_sharding).__name__}")

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is f.default:
                continue
            if isinstance(value, losses.Loss):
                value = value.name
            elif f.name in ("validation", "sample_weight") or hasattr(value, "shape"):
                value = jax.tree.map(lambda a: _Shape(np.shape(a)), value)
            shown.append(f"{f.name}={value!r}")
        return f"Options({', '.join(shown)})"

    def _check_optimizer(self) -> None:
        opt, rate = self.optimizer, self.learning_rate
        if isinstance(opt, str):
            if opt not in optim.OPTIMIZERS:
                raise ValueError(f"optimizer: expected one of {', '.join(optim.OPTIMIZERS)} or an optax "
                                 f"transformation, got {opt!r}")
        elif _is_transformation(opt):
            if rate is not None:
                raise ValueError("learning_rate: a fixed optax optimizer already has its learning rate: expected "
                                 f"None, got {rate!r}; to set it here (or vary it per member), pass optimizer as a "
                                 "name ('sgd') or a factory (lambda lr: optax.sgd(lr, momentum=0.9))")
        elif not callable(opt):
            raise ValueError(f"optimizer: expected an optax.GradientTransformation, a name from "
                             f"{', '.join(optim.OPTIMIZERS)} or a factory lr -> transformation, got {opt!r}")
        if isinstance(rate, str) and not is_auto(rate):
            raise ValueError(f"learning_rate: expected a number, a schedule or {AUTO!r} (the range test chooses), "
                             f"got {rate!r}")
        if rate is not None and not callable(rate) and not is_auto(rate):
            checks.check("learning_rate", rate)

    @classmethod
    def of(cls, options: "Options | None" = None, /, **settings: Any) -> "Options":
        """``options`` with ``settings`` replaced (a new record from ``settings`` alone without one).

        Raises:
          TypeError: a keyword that is no setting, naming it (with the nearest setting's name).
        """
        names = [f.name for f in dataclasses.fields(cls)]
        for name in settings:
            if name not in names:
                near = difflib.get_close_matches(name, names, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise TypeError(f"{name}: expected a setting of nnjax.Options ({', '.join(names)}), got an unknown "
                                f"keyword{hint}")
        if options is None:
            return cls(**settings)
        if not isinstance(options, Options):
            raise TypeError(f"options: expected an nnjax.Options, got {type(options).__name__}")
        return dataclasses.replace(options, **settings) if settings else options

    def replace(self, **settings: Any) -> "Options":
        """A copy with ``settings`` changed, checked again."""
        return Options.of(self, **settings)

    @property
    def rate(self) -> Any:
        """The learning rate a named optimizer or a factory is built with (0.01 for a name when unset)."""
        if self.learning_rate is None and isinstance(self.optimizer, str):
            return 0.01
        return self.learning_rate

    def build_optimizer(self, learning_rate: Any = None) -> optax.GradientTransformation:
        """The optax transformation of these settings, clipping in front.

        Args:
          learning_rate: the rate for a name or a factory (default :attr:`rate`); a population
            passes each member's (traced) rate here.
        """
        rate = self.rate if learning_rate is None else learning_rate
        if is_auto(rate):
            raise ValueError(f"learning_rate: expected a number here, got {AUTO!r}; nnjax.fit and nnjax.fit_population "
                             "resolve it (or call nnjax.lr_find and pass its suggestion)")
        opt = self.optimizer
        if isinstance(opt, str):
            tx = optim.make(opt, rate)
        elif _is_transformation(opt):
            tx = opt
        elif rate is None:
            raise ValueError("learning_rate: expected a value for the optimizer factory, got None")
        else:
            tx = opt(rate)
        return optim.with_clipping(tx, clip_norm=self.clip_norm, clip_value=self.clip_value)

    def regularization(self) -> Regularization:
        """The traced numbers of the run: :func:`regularization` of ``l1``, ``l2`` and ``dropout``."""
        return regularization(self.l1, self.l2, self.dropout)

    @property
    def may_stop(self) -> bool:
        """Whether a run can stop before its last epoch (early stopping, or ``on_nonfinite="stop"``)."""
        return self.early_stopping is not None or self.on_nonfinite == "stop"


def regularization(l1: Any = 0.0, l2: Any = 0.0, dropout: Any = None) -> Regularization:
    """The traced numbers of a run as one record; a static zero penalty is left out of the program.

    Each may be traced (a population passes each member's). ``dropout`` None keeps the net's
    own rates.

    Raises:
      ValueError: for a concrete negative or non-finite penalty, or a dropout rate outside [0, 1).

    Example:
      >>> regularization(l1=0.0, l2=1e-3)._fields, regularization(l2=1e-3).l1 is None
      (('l1', 'l2', 'dropout'), True)
    """
    values = {}
    for name, value in (("l1", l1), ("l2", l2)):
        checks.check(name, value)
        if not checks.is_traced(value) and np.all(np.asarray(value) == 0):
            continue  # a static 0 costs nothing
        values[name] = jnp.asarray(value, jnp.float32)
    if dropout is not None:
        checks.check("dropout", dropout)
        values["dropout"] = jnp.asarray(dropout, jnp.float32)
    return Regularization(**values)


def _is_plain_callable(loss: Any) -> bool:
    return callable(loss) and not isinstance(loss, (str, losses.Loss))


def per_example(fn: Callable) -> Callable:
    """``fn(logits, y)`` checked to return one value per example, shape ``(n,)``, when it is traced.

    A callable loss that reduces over the batch (a scalar) or keeps the outputs (``(n, k)``)
    would be averaged wrongly; the check runs while the program is traced, so it costs nothing
    when training. One wrapper per callable, so equal settings still share one program.

    Example:
      >>> import jax.numpy as jnp
      >>> per_example(lambda logits, y: jnp.mean((logits - y) ** 2))(jnp.zeros((4, 1)), jnp.zeros((4, 1)))
      Traceback (most recent call last):
      ...
      ValueError: loss: expected one value per example, shape (4,) for a batch of 4, got shape () from '<lambda>'; reduce over the outputs only, e.g. jnp.mean(..., axis=-1)
    """
    try:
        return _per_example(fn)
    except TypeError:  # an unhashable callable object: a wrapper of its own
        return _per_example.__wrapped__(fn)


@functools.lru_cache(maxsize=None)
def _per_example(fn: Callable) -> Callable:
    name = getattr(fn, "__name__", type(fn).__name__)

    @functools.wraps(fn)
    def loss(logits: jax.Array, y: jax.Array) -> jax.Array:
        out = fn(logits, y)
        n = jnp.shape(logits)[0]
        if jnp.shape(out) != (n,):
            raise ValueError(f"loss: expected one value per example, shape ({n},) for a batch of {n}, got shape "
                             f"{jnp.shape(out)} from {name!r}; reduce over the outputs only, e.g. "
                             "jnp.mean(..., axis=-1)")
        return out

    return loss


def _early_stopping(value: Any) -> EarlyStopping | None:
    """An int is a patience (>= 1: the API's off is None, not 0)."""
    if value is None or isinstance(value, EarlyStopping):
        return value
    return EarlyStopping(patience=checks.check_count("patience", value, "early_stopping"))


def takes_settings(function: Callable) -> Callable:
    """Shows the settings of :class:`Options` in ``function``'s signature in place of its ``**settings``.

    The settings are written once, as the record's fields; ``help(nnjax.fit)`` and editors then
    list them as keyword-only arguments of every function that takes them.
    """
    signature = inspect.signature(function)
    kept = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    taken = {p.name for p in kept}
    settings = [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                          default=inspect.Parameter.empty if f.default is REQUIRED else f.default, annotation=f.type)
        for f in dataclasses.fields(Options) if f.name not in taken
    ]
    function.__signature__ = signature.replace(parameters=kept + settings)
    return function
