"""Populations: many models trained at once by one compiled ``jax.vmap(nnjax.fit)``.

:func:`fit_population` trains one model per key (and, optionally, per setting) in a single XLA
program and returns the stacked :class:`~nnjax.FitResult`: every leaf gains a leading population
axis. :func:`plan_population` does everything before training once and returns a plan that
:func:`nnjax.train.runner.train` runs chunk by chunk (``nnjax train --seeds N``).
:func:`best_index` and :func:`select` pick a member by a validation metric.

Members share one :class:`~nnjax.train.options.Options` record (passed as a record or as its
fields); the settings that may differ between members are :data:`MEMBER_SETTINGS`, each a
scalar or one value per member, entering as a traced number:

* ``learning_rate``: the optax optimiser is built *inside* the vmapped
  function from the member's learning rate (``optimizer`` is then a name from
  :data:`nnjax.optim.OPTIMIZERS` or a factory ``lr -> GradientTransformation``);
* ``l1``, ``l2``, ``dropout``: passed to :func:`nnjax.fit` as traced values;
* ``init_scale``: the member's initial weights (drawn from the same init key
  :func:`nnjax.fit` would use) are multiplied by it, see :func:`scale_weights`.

Sweeps over these settings (grids, random samples, a results table) live in
:mod:`nnjax.sweeps` (:func:`nnjax.sweep`).

Example:
  >>> import jax, optax, nnjax
  >>> data = nnjax.data.load_dataset("blobs")
  >>> net = nnjax.MLP((2, 8, 1), output="sigmoid")
  >>> keys = jax.random.split(jax.random.key(0), 4)
  >>> pop = nnjax.fit_population(keys, net, (data.x, data.y), loss="binary_cross_entropy",
  ...                            optimizer="sgd", learning_rate=[0.01, 0.03, 0.1, 0.3],
  ...                            epochs=3, batch_size=20, validation=(data.x, data.y))
  >>> pop.history["val_loss"].shape
  (4, 3)
  >>> best = nnjax.select(pop, nnjax.best_index(pop, "val_loss"))
  >>> best.params[0]["w"].shape
  (2, 8)
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax._base import checks, xla_options
from nnjax.nn import losses
from nnjax.train import optim
from nnjax.train import mesh as parallel_lib
from nnjax._base.typing import Params, PRNGKey
from nnjax.train import fitting
from nnjax.train.fitting import FitResult, fit, plan, prepare
from nnjax.nn.model import as_model
from nnjax.train.loop import TrainState, split_run_key
from nnjax.train.options import Options, is_auto, takes_settings

__all__ = [
    "MEMBER_SETTINGS",
    "PopulationPlan",
    "best_index",
    "fit_population",
    "found_rate",
    "member_scores",
    "plan_population",
    "population_size",
    "run_traced",
    "scale_weights",
    "select",
]

#: The settings that may differ between the members of a population (one value per member).
MEMBER_SETTINGS = ("learning_rate", "l1", "l2", "dropout", "init_scale")

# What fit takes and a population does not, and what to do instead.
_REFUSED = {
    "params": "use init_scale (initial weights are drawn per member from its key)",
    "progress": "a population runs as one compiled program; nnjax.train.runner.train(plan_population(...)) "
                "reports between chunks",
    "progress_every": "a population runs as one compiled program; nnjax.train.runner.train(plan_population(...)) "
                      "reports between chunks",
    "key": "pass the stacked keys as the first argument",
}


class _Spec(NamedTuple):
    """Everything static about a population run (hashable: a static argument of ``jit``)."""

    net: Any
    options: Options  # the shared settings, less the per-member numbers and the data
    mesh: Any  # jax.sharding.Mesh or None
    chunk_size: int | None = None  # members trained together; groups run one after another


def scale_weights(params: Params, scale: jax.Array | float) -> Params:
    """``params`` with every weight matrix (``"w"``, ``"proj"``) multiplied by ``scale``.

    Biases and batch-norm scales are left alone, so ``scale`` changes the
    initialisation's standard deviation and nothing else. ``scale`` may be traced.

    Example:
      >>> import jax, nnjax
      >>> net = nnjax.MLP((3, 4, 1))
      >>> p = nnjax.init(jax.random.key(0), net)
      >>> q = scale_weights(p, 2.0)
      >>> bool((q[0]["w"] == 2 * p[0]["w"]).all()), bool((q[0]["b"] == p[0]["b"]).all())
      (True, True)
    """
    return [{name: (v * scale if name in ("w", "proj") else v) for name, v in layer.items()} for layer in params]


def _member_options(spec: _Spec, arrays, members: dict) -> tuple[tuple, Options]:
    """One member's data and settings, inside the vmapped function (``members``: its traced numbers)."""
    x, y, w, validation = arrays
    options = spec.options
    sharding = None
    if spec.mesh is not None and "data" in spec.mesh.axis_names:
        sharding = parallel_lib.batch_sharding(spec.mesh)
    optimizer = options.build_optimizer(members.get("learning_rate"))  # clipping included
    return (x, y), options.replace(
        optimizer=optimizer, learning_rate=None, clip_norm=None, clip_value=None, l1=members.get("l1", 0.0),
        l2=members.get("l2", 0.0), dropout=members.get("dropout"), sample_weight=w, validation=validation,
        batch_sharding=sharding)


def _initial_params(spec: _Spec, key, members: dict) -> Params | None:
    """The member's initial weights scaled by its ``init_scale`` (None: as :func:`nnjax.fit` draws them)."""
    if "init_scale" not in members:
        return None
    return scale_weights(as_model(spec.net).init(split_run_key(key)[0]), members["init_scale"])


def _start_member(spec: _Spec, arrays, key, members: dict) -> TrainState:
    """One member's untrained state, as :func:`nnjax.fit` starts it from its key (under ``jax.vmap``)."""
    data, options = _member_options(spec, arrays, members)
    return plan(key, spec.net, data, options, params=_initial_params(spec, key, members)).ts


def _member(spec: _Spec, arrays, key, members: dict, ts: TrainState | None) -> FitResult:
    """One member's fit, from ``ts`` or (None) from its key: runs under ``jax.vmap`` with traced values."""
    data, options = _member_options(spec, arrays, members)
    if ts is None:  # the start in the same program: one compile for a population trained in one call
        return fit(key, spec.net, data, options, params=_initial_params(spec, key, members))
    return fit(key, spec.net, data, options, resume=FitResult(ts.params, ts.state, {}, ts, key))


def _fit_members_traced(spec: _Spec, arrays, keys, members, ts) -> FitResult:
    axis = None
    if spec.mesh is not None and "population" in spec.mesh.axis_names:
        axis = "population"
        keys, members, ts = parallel_lib.constrain_population((keys, members, ts), spec.mesh)
    one = functools.partial(_member, spec, arrays)
    if spec.chunk_size is not None:  # vmapped groups, one after another: a smaller working set
        result = jax.lax.map(lambda member: one(*member), (keys, members, ts), batch_size=spec.chunk_size)
    else:
        result = jax.vmap(one, spmd_axis_name=axis)(keys, members, ts)
    if axis is not None:
        result = parallel_lib.constrain_population(result, spec.mesh)
    return result


_fit_members = xla_options.jit(_fit_members_traced, static_argnums=0)


def run_traced(plan: "PopulationPlan", epochs: int, arrays: tuple, keys: Any, members: dict,
               ts: TrainState) -> FitResult:
    """:meth:`PopulationPlan.run`'s training as a traceable function: ``epochs`` epochs of every member.

    For searches that train a population inside their own compiled program (population-based
    training, :mod:`nnjax.train.search`): ``arrays``, ``keys``, ``members`` and ``ts`` are the
    plan's (``plan.arrays``, ``plan.keys``, ``plan.members``, ``plan.ts``) or traced values of
    the same shapes; only the plan's static part is read from ``plan``.
    """
    spec = plan.spec._replace(options=plan.spec.options.replace(epochs=int(epochs)))
    return _fit_members_traced(spec, arrays, keys, members, ts)
def _start_members_traced(spec: _Spec, arrays, keys, members) -> TrainState:
    return jax.vmap(functools.partial(_start_member, spec, arrays))(keys, members)


_start_members = jax.jit(_start_members_traced, static_argnums=0)


def population_size(keys: Any) -> int:
    """The number of members of a stacked key array (typed keys ``(P,)`` or raw ``(P, 2)``), at least one."""
    keys = jnp.asarray(keys) if not isinstance(keys, jax.Array) else keys
    typed = jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key)
    if (typed and keys.ndim != 1) or (not typed and (keys.ndim != 2 or keys.dtype != jnp.uint32)):
        raise ValueError(
            "keys: expected stacked PRNG keys, e.g. jax.random.split(jax.random.key(0), 8) (shape (P,)), "
            f"got dtype {keys.dtype} and shape {keys.shape}"
        )
    if keys.shape[0] == 0:
        raise ValueError("keys: expected at least one key (one per member), got 0 keys")
    return int(keys.shape[0])


def _check_member_setting(name: str, value: Any, size: int) -> np.ndarray:
    """A float32 array with a leading population axis, range-checked on the host."""
    checks.check(name, value, name)  # the rules every entry point shares, on the values as given
    arr = np.asarray(value, np.float32)
    if arr.ndim == 0:
        arr = np.broadcast_to(arr, (size,))
    elif arr.shape[0] != size or arr.ndim > (2 if name == "dropout" else 1):
        raise ValueError(f"{name}: expected a scalar or shape ({size},) (one per member), got shape {arr.shape}")
    return np.ascontiguousarray(arr)


class PopulationPlan:
    """A checked population run, ready to train: what :func:`plan_population` returns.

    Like :class:`nnjax.fitting.Plan`: ``run(ts, epochs)`` trains every member ``epochs`` epochs
    from the stacked training state ``ts`` (first ``plan.ts``, the untrained members, computed
    by one small compiled program when first asked for; then a previous result's
    ``train_state``), bit for bit the run done in one call. ``run(None)`` starts every member
    inside the training program itself (one compile, for a population trained in one call).
    """

    def __init__(self, spec: _Spec, arrays: tuple, keys: Any, members: dict, start: TrainState | None = None):
        self.spec, self.arrays, self.keys, self.members = spec, arrays, keys, members
        self._start = start
        self.size = population_size(keys)

    @functools.cached_property
    def ts(self) -> TrainState:
        """The stacked state to start from (the resumed one, or every member's untrained state)."""
        if self._start is None:
            self._start = _start_members(self.spec, self.arrays, self.keys, self.members)
        return self._start

    @property
    def may_stop(self) -> bool:
        return self.spec.options.may_stop

    def _call(self, ts: TrainState | None, epochs: int | None) -> tuple[_Spec, tuple]:
        """The static spec and the member arguments of :meth:`run`'s program."""
        spec = self.spec
        if epochs is not None and epochs != spec.options.epochs:
            spec = spec._replace(options=spec.options.replace(epochs=int(epochs)))
        members = (self.keys, self.members, ts)
        if spec.mesh is not None and "population" in spec.mesh.axis_names:
            members = parallel_lib.pad_population(members, self.size, spec.mesh.shape["population"])
        return spec, members

    def run(self, ts: TrainState | None, epochs: int | None = None, *, slots: int | None = None,
            trim: bool = True) -> FitResult:
        """Trains ``epochs`` epochs (default ``options.epochs``) from ``ts``; one compiled program a length.

        ``slots`` and ``trim`` are accepted for the runner's sake: a population's program has
        exactly ``epochs`` epoch slots.
        """
        spec, members = self._call(ts, epochs)
        result = _fit_members(spec, self.arrays, *members)
        if population_size(result.key) != self.size:
            result = jax.tree.map(lambda a: a[:self.size], result)
        return result


def found_rate(keys: PRNGKey, net: Any, data: tuple[Any, Any], options: Options) -> Options:
    """``options`` with ``learning_rate="auto"`` replaced by one rate for the whole population:
    :func:`nnjax.fitting.with_found_rate` with the first member's key and, for the test, the median
    of each per-member penalty or dropout rate (other ``options`` as they are)."""
    if not is_auto(options.learning_rate):
        return options
    first = jax.tree.map(lambda k: k[0], keys)
    typical = {name: float(np.median(np.asarray(v))) for name in ("l1", "l2", "dropout")
               if (v := getattr(options, name)) is not None and np.ndim(v) > 0}
    found = fitting.with_found_rate(first, net, data, options.replace(**typical))
    return options.replace(learning_rate=found.learning_rate)


@takes_settings
def plan_population(keys: PRNGKey | None, net: Any, data: tuple[Any, Any], options: Options | None = None, *,
                    init_scale: Any = None, resume: FitResult | None = None, mesh: jax.sharding.Mesh | None = None,
                    chunk_size: int | None = None, **settings: Any) -> PopulationPlan:
    """Everything :func:`fit_population` does before training: checks, encoding, every member's start.

    Takes :func:`fit_population`'s arguments. ``fit_population(...)`` is
    ``plan_population(...).run(None)`` (``run(p.ts)`` after ``resume=``);
    ``nnjax.train.runner.train(p, epochs, ...)`` runs it chunk by chunk with progress and
    checkpoints.

    Raises:
      ValueError, TypeError: as :func:`fit_population`.
    """
    for name, why in _REFUSED.items():
        if name in settings:
            raise ValueError(f"{name}: not accepted by fit_population ({why})")
    options = Options.of(options, **settings)
    if options.batch_sharding is not None:
        raise ValueError(f"batch_sharding: expected None for a population (pass mesh=nnjax.parallel.make_mesh("
                         f"population=..., data=...) instead), got {type(options.batch_sharding).__name__}")
    if keys is None:
        if resume is None:
            raise ValueError("keys: expected stacked PRNG keys (jax.random.split(key, P)), got None")
        keys = resume.key
    size = population_size(keys)
    if is_auto(options.learning_rate):  # one rate for every member: the range test's, with the first key
        options = found_rate(keys, net, data, options)
    rate = options.learning_rate
    swept = {"l1": options.l1, "l2": options.l2, "dropout": options.dropout, "init_scale": init_scale}
    if not callable(rate) and options.rate is not None:  # a number (or one per member): traced
        swept["learning_rate"] = options.rate
    members = {k: _check_member_setting(k, v, size) for k, v in swept.items() if v is not None}
    for name in ("l1", "l2"):  # a penalty that is 0 for every member stays out of the program
        if not np.any(members[name]):
            del members[name]
    if chunk_size is not None:
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
            raise ValueError(f"chunk_size: expected a positive number of members, got {chunk_size!r}")
        if mesh is not None:
            raise ValueError("chunk_size: expected None with a mesh (the mesh already splits the members)")
    if resume is not None and init_scale is not None:
        raise ValueError("init_scale: a resumed population keeps its parameters; pass init_scale=None")
    data_shards = mesh.shape["data"] if mesh is not None and "data" in mesh.axis_names else 1
    if options.batch_size % data_shards:
        raise ValueError(f"batch_size: expected a multiple of the {data_shards} devices on the mesh's 'data' "
                         f"axis, got {options.batch_size}")
    prepared = prepare(net, data, options)
    optimizer = options.optimizer
    if not isinstance(optimizer, str) and hasattr(optimizer, "update"):  # a fresh but equal optax object: one program
        optimizer = optim.by_value(optimizer, jax.eval_shape(as_model(net).init, jax.random.key(0)))
    shared = options.replace(optimizer=optimizer, learning_rate=rate if callable(rate) else None, l1=0.0, l2=0.0,
                             dropout=None, validation=None, sample_weight=None, class_weight=None)
    spec = _Spec(net=net, options=shared, mesh=mesh, chunk_size=chunk_size)
    arrays = (prepared.x, prepared.y, prepared.weights, prepared.validation)
    if options.early_stopping is not None and options.early_stopping.monitor not in (None, "loss", "val_loss"):
        # the monitor is checked on the host, as fit checks it, with member 0's settings
        first = {k: v[0] for k, v in members.items() if k != "init_scale"}
        plan(keys[0], net, (prepared.x, prepared.y), _member_options(spec, arrays, first)[1])
    members = {k: jnp.asarray(v) for k, v in members.items()}
    return PopulationPlan(spec, arrays, keys, members, None if resume is None else resume.train_state)


@takes_settings
def fit_population(keys: PRNGKey | None, net: Any, data: tuple[Any, Any], options: Options | None = None, *,
                   init_scale: Any = None, resume: FitResult | None = None, mesh: jax.sharding.Mesh | None = None,
                   chunk_size: int | None = None, **settings: Any) -> FitResult:
    """Trains one model per key in one compiled program: ``jax.jit(jax.vmap(nnjax.fit))``.

    Member ``i`` is exactly ``nnjax.fit(keys[i], net, data, ...)`` with its own
    settings (results agree to float32 rounding; the same key gives the same initial
    weights, shuffles and dropout masks as a separate fit).

    Args:
      keys: stacked run keys, shape ``(P,)`` (``jax.random.split(key, P)``), at least one; with
        ``resume`` it may be None.
      net: the topology (shared by all members).
      data: ``(x, y)``, shared by all members; validated once on the host.
      options: the shared settings as an :class:`~nnjax.train.options.Options` record; keywords
        replace its fields.
      init_scale: a scalar or one per member: the initial weights are multiplied by it.
      resume: a previous population result (stacked) to continue, member by member.
      mesh: a :class:`jax.sharding.Mesh` from :func:`nnjax.parallel.make_mesh`:
        its "population" axis splits the members over devices, its "data" axis
        splits every batch (the population is padded to a multiple of the axis).
      chunk_size: train the members in vmapped groups of this size, one group
        after another, still in one program (``jax.lax.map(..., batch_size=)``).
        On a CPU a group of a few models keeps the working set in cache (about
        10 % faster for 32 digits models in groups of 4); on a GPU leave it None.
      **settings: the fields of :class:`~nnjax.train.options.Options` as :func:`nnjax.fit`
        takes them. ``optimizer`` may also be a factory ``learning_rate ->
        optax.GradientTransformation`` (built inside the vmapped function, so the learning rate
        may differ per member); ``learning_rate``, ``l1``, ``l2`` and ``dropout`` may be one
        value per member, shape ``(P,)`` (``dropout`` also ``(P, n_hidden)``);
        ``learning_rate`` defaults to 0.01 for a name; ``"auto"`` gives every member the
        range test's suggestion (:func:`nnjax.lr_find`, run once with the first key and the
        median penalties). ``batch_sharding`` is refused (use ``mesh``).

    Returns:
      A :class:`~nnjax.FitResult` whose leaves have a leading axis of size P;
      ``result.history["loss"]`` has shape ``(P, epochs)``.

    Raises:
      ValueError: bad keys, data, or per-member shapes or ranges, naming the argument.
    """
    p = plan_population(keys, net, data, options, init_scale=init_scale, resume=resume, mesh=mesh,
                        chunk_size=chunk_size, **settings)
    return p.run(None if resume is None else p.ts)


def member_scores(result: FitResult, metric: str | None = None, *, at: str = "last") -> np.ndarray:
    """One score per member: ``history[metric]`` at the last epoch run, or its best epoch.

    Args:
      result: a stacked :class:`~nnjax.FitResult` (from :func:`fit_population`).
      metric: a history key; default "val_loss" when validation data was given, else "loss".
      at: "last" (the last epoch trained: early-stopped epochs are skipped) or
        "best" (the best epoch: maximum for accuracies and R^2, minimum otherwise).

    Returns:
      A NumPy array of shape ``(P,)``; NaN for a member whose metric never was finite.
    """
    metric = metric or ("val_loss" if "val_loss" in result.history else "loss")
    if metric not in result.history:
        raise ValueError(f"metric: expected one of {', '.join(sorted(result.history))}, got {metric!r}")
    values = np.asarray(result.history[metric], np.float64)
    if values.ndim != 2:
        raise ValueError(f"result: expected a population (history arrays of shape (P, epochs)), got {values.shape}")
    ran = ~np.asarray(result.history["stopped"], bool)
    if at == "last":
        last = values.shape[1] - 1 - np.argmax(ran[:, ::-1], axis=1)
        scores = values[np.arange(len(values)), last]
        return np.where(ran.any(axis=1), scores, np.nan)
    if at == "best":
        masked = np.where(ran & np.isfinite(values), values, np.nan)
        with np.errstate(all="ignore"):
            empty = np.all(np.isnan(masked), axis=1)
            filled = np.where(empty[:, None], 0.0, masked)
            best = np.nanmax(filled, axis=1) if losses.is_maximised(metric) else np.nanmin(filled, axis=1)
        return np.where(empty, np.nan, best)
    raise ValueError(f"at: expected 'last' or 'best', got {at!r}")


def best_index(result: FitResult, metric: str | None = None, *, at: str = "last") -> int:
    """The member with the best :func:`member_scores` (NaN scores never win; ties: the first).

    Example:
      >>> import numpy as np, nnjax
      >>> fake = nnjax.FitResult(None, None, {"val_accuracy": np.array([[0.5], [0.9], [0.7]]),
      ...                                     "stopped": np.zeros((3, 1), bool)}, None, None)
      >>> best_index(fake, "val_accuracy")
      1
    """
    scores = member_scores(result, metric, at=at)
    metric = metric or ("val_loss" if "val_loss" in result.history else "loss")
    if np.all(np.isnan(scores)):
        raise ValueError(f"result: no member has a finite {metric!r}; every run diverged or stopped")
    return int(np.nanargmax(scores) if losses.is_maximised(metric) else np.nanargmin(scores))


def select(result: Any, index: int) -> Any:
    """Member ``index`` of a stacked pytree: a :class:`~nnjax.FitResult` like one ``nnjax.fit`` returns."""
    return jax.tree.map(lambda a: a[index], result)
