"""Population-based training (PBT) inside one compiled program.

:func:`pbt` trains a population (:func:`nnjax.fit_population`) for ``generations`` rounds of
``epochs_per_generation`` epochs. After each round, on the device (``argsort`` and a gather over
the population axis, no host round trip), the members ranked in the bottom ``quantile`` by
``metric`` copy the whole training state (parameters, batch-norm statistics, optimizer state)
of a member drawn from the top ``quantile`` (*exploit*), and perturb the copied hyper-parameters
(*explore*): each is multiplied by ``perturb[0]`` or ``perturb[1]`` (an even draw), or, with
probability ``resample_probability``, drawn afresh from its search space. The whole search is one
``lax.scan`` over generations, deterministic from its key.

A member keeps its own run key (its shuffles and dropout masks) when it copies another's state.
The record of who copied whom (:attr:`PBTResult.parents`) and of every member's settings per
generation (:attr:`PBTResult.settings`) is kept: :func:`replay` gives the settings schedule of a
member's lineage, and :func:`replay_fit` trains it again with plain :func:`nnjax.fit` calls
(chunks of ``epochs_per_generation`` epochs, each continuing from the last), reproducing the
member to float32 rounding.

The explored settings are the traced ones of a population: ``learning_rate``, ``l1``, ``l2``
and ``dropout`` (a scalar rate). A named optimizer keeps its learning rate in its state
(``optax.inject_hyperparams``); :func:`with_learning_rate` writes a new rate there, which is
what the search does after explore and what :func:`replay_fit` does between chunks.

Example:
  >>> import jax, nnjax
  >>> from nnjax.train.search import population_based as pb
  >>> data = nnjax.data.load_dataset("blobs")
  >>> out = pb.pbt(jax.random.key(0), nnjax.MLP((2, 4, 1), output="sigmoid"), (data.x, data.y),
  ...              {"learning_rate": pb.LogUniform(0.01, 1.0)}, members=4, generations=3,
  ...              epochs_per_generation=1, loss="binary_cross_entropy", optimizer="sgd", batch_size=20,
  ...              validation=(data.x, data.y))
  >>> out.parents.shape, out.settings["learning_rate"].shape, out.result.history["val_loss"].shape
  ((3, 4), (3, 4), (4, 3))
  >>> [step["epochs"] for step in pb.replay(out)]
  [1, 1, 1]
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax._base import checks
from nnjax.nn import losses
from nnjax.train.fitting import FitResult, fit
from nnjax.train.options import Options, takes_settings
from nnjax.train.population import plan_population, run_traced, select
from nnjax.train.sweeps import CONTINUOUS, Choice, LogUniform, Uniform, as_range, draw, random_search

__all__ = ["EXPLORED", "Choice", "LogUniform", "PBTResult", "SearchSpec", "Uniform", "exploit_explore", "pbt", "replay",
           "lineage_history", "replay_fit", "with_learning_rate"]

#: The settings PBT explores (the traced numbers of a population, less the init scale).
EXPLORED = ("learning_rate", "l1", "l2", "dropout")
#: Dropout rates stay below this after a perturbation.
MAX_DROPOUT = 0.9


class PBTResult(NamedTuple):
    """What :func:`pbt` returns.

    Attributes:
      result: the final population, a stacked :class:`~nnjax.FitResult` whose history covers
        every epoch (shape ``(P, generations * epochs_per_generation)``); row ``i`` is the history
        of whoever held slot ``i`` in each generation (:func:`lineage_history` follows a
        member's lineage instead).
      settings: ``{name: (generations, P)}``: the value each slot trained with in each generation.
      parents: ``(generations, P)`` ints: after generation ``g`` slot ``i`` continued from the
        state of slot ``parents[g, i]`` (``i`` itself when it was not replaced).
      scores: ``(generations, P)``: ``metric`` at the end of each generation (before exploit).
      keys: the members' run keys, ``(P,)``.
      epochs_per_generation: epochs between exploit steps.
      metric: the history key members were ranked by.
    """

    result: FitResult
    settings: dict
    parents: np.ndarray
    scores: np.ndarray
    keys: Any
    epochs_per_generation: int
    metric: str

    @property
    def best(self) -> int:
        """The slot with the best final score (NaN never wins)."""
        return _best(self.scores[-1], self.metric)

    def member(self, slot: int | None = None) -> FitResult:
        """Slot ``slot``'s trained model (default: the best) as one :class:`~nnjax.FitResult`:
        its final parameters and training state, and its lineage's history (:func:`lineage_history`)."""
        slot = self.best if slot is None else slot
        history = lineage_history(self, slot)
        return select(self.result, slot)._replace(history=history)

    def leaderboard(self) -> list[dict]:
        """One row per slot, best first: ``member`` (the slot), its settings in the last generation,
        ``scores`` (its lineage's score at the end of every generation), ``epochs`` trained and
        ``score`` (the last; NaN ranks last), as :func:`nnjax.successive_halving`'s rows."""
        generations, size = self.parents.shape
        maximise = losses.is_maximised(self.metric)
        rows = []
        for slot in range(size):
            lineage = [step["slot"] for step in replay(self, slot)]
            scores = [float(self.scores[g, s]) for g, s in enumerate(lineage)]
            rows.append({"member": slot, **{n: float(v[-1, slot]) for n, v in self.settings.items()},
                         "scores": scores, "epochs": generations * self.epochs_per_generation, "score": scores[-1]})

        def order(row: dict) -> tuple:
            bad = not np.isfinite(row["score"])
            return bad, 0.0 if bad else (-row["score"] if maximise else row["score"]), row["member"]

        return sorted(rows, key=order)


def _best(scores: np.ndarray, metric: str) -> int:
    s = np.asarray(scores, np.float64)
    if np.all(np.isnan(s)):
        raise ValueError(f"result: no member has a finite {metric!r}; every member diverged")
    return int(np.nanargmax(s) if losses.is_maximised(metric) else np.nanargmin(s))


def _is_state_with_rate(node: Any) -> bool:
    return isinstance(node, (optax.InjectHyperparamsState, optax.InjectStatefulHyperparamsState))


def with_learning_rate(opt_state: Any, rate: Any) -> Any:
    """``opt_state`` with the learning rate held by ``optax.inject_hyperparams`` set to ``rate``.

    A named optimizer (:func:`nnjax.optim.make`) keeps its rate in its state, so a run continued
    from it keeps the old rate whatever it is built with; this writes the new one (a number, or
    one per member for a stacked state; traceable). A state without such a rate is returned as is.

    Example:
      >>> import jax.numpy as jnp, nnjax
      >>> tx = nnjax.optim.make("sgd", 0.1)
      >>> s = with_learning_rate(tx.init({"w": jnp.zeros(2)}), 0.5)
      >>> float(s.hyperparams["learning_rate"])
      0.5
    """
    def put(node: Any) -> Any:
        if not _is_state_with_rate(node) or "learning_rate" not in node.hyperparams:
            return node
        old = node.hyperparams["learning_rate"]
        hyper = dict(node.hyperparams, learning_rate=jnp.broadcast_to(jnp.asarray(rate, old.dtype), old.shape))
        return node._replace(hyperparams=hyper)

    return jax.tree.map(put, opt_state, is_leaf=_is_state_with_rate)


def _check_space(space: Any, members: int, key: jax.Array) -> tuple[dict, dict]:
    """(initial values ``{name: (P,)}``, the range a resample draws from ``{name: record}``)."""
    if not isinstance(space, dict) or not space:
        raise ValueError("space: expected a dict {setting: values or distribution}, e.g. "
                         f"{{'learning_rate': LogUniform(1e-3, 1e-1)}}, got {space!r}")
    for name in space:
        if name not in EXPLORED:
            raise ValueError(f"space: expected settings among {', '.join(EXPLORED)}, got {name!r}")
    sources = {name: as_range(name, v) for name, v in space.items()}
    drawn = {name: r for name, r in sources.items() if isinstance(r, CONTINUOUS)}
    initial = random_search(members, key=key, **drawn) if drawn else {}
    for name, r in sources.items():
        if name in drawn:
            continue
        if len(r.values) == members:  # one initial value per member
            initial[name] = np.asarray(r.values, np.float64)
        else:  # a list of choices: drawn per member, as random_search draws them
            initial[name] = random_search(members, key=jax.random.fold_in(key, len(initial) + 1), **{name: r})[name]
    for name, values in initial.items():
        checks.check(name, values, name)
    return {k: np.asarray(v, np.float32) for k, v in initial.items()}, sources


def _resample(key: jax.Array, source: Any, shape: tuple) -> jax.Array:
    """Fresh values from a search-space range, in the program (:func:`nnjax.sweeps.draw`)."""
    return draw(key, as_range("space", source), shape, traced=True)


class SearchSpec(NamedTuple):
    """The static part of a PBT program (hashable): what :func:`exploit_explore` does each generation."""

    generations: int
    epochs: int
    replaced: int  # members replaced per generation
    perturb: tuple[float, float]
    resample_probability: float
    metric: str
    sources: tuple  # ((name, range record), ...)


def exploit_explore(search: SearchSpec, key: jax.Array, members: dict, score: jax.Array, ts: Any) -> tuple:
    """One exploit/explore step on the device: ``(members, ts, parents)`` after it (pure, traceable).

    The ``search.replaced`` members with the worst ``score`` (NaN is worst) each copy the whole
    stacked state ``ts`` of a member drawn evenly from the ``search.replaced`` best, and their
    settings in ``members`` (``{name: (P,)}``) become the copied ones explored: multiplied by
    one of ``search.perturb`` or, with ``search.resample_probability``, drawn from the space.
    """
    size = score.shape[0]
    worst = jnp.inf if not losses.is_maximised(search.metric) else -jnp.inf
    filled = jnp.where(jnp.isnan(score), worst, score)
    order = jnp.argsort(-filled if losses.is_maximised(search.metric) else filled, stable=True)  # best first
    top, bottom = order[:search.replaced], order[size - search.replaced:]
    pick, factor_key, resample_key, which_key = jax.random.split(key, 4)
    sources = top[jax.random.randint(pick, (search.replaced,), 0, search.replaced)]
    parents = jnp.arange(size).at[bottom].set(sources)
    copied = parents != jnp.arange(size)
    ts = jax.tree.map(lambda a: a[parents], ts)
    new = {}
    for i, (name, source) in enumerate(search.sources):
        value = members[name][parents]
        up = jax.random.bernoulli(jax.random.fold_in(factor_key, i), 0.5, value.shape)
        moved = value * jnp.where(up, search.perturb[1], search.perturb[0])
        fresh = _resample(jax.random.fold_in(resample_key, i), source, value.shape)
        again = jax.random.bernoulli(jax.random.fold_in(which_key, i), search.resample_probability, value.shape)
        explored = jnp.where(again, fresh, moved)
        if name == "dropout":
            explored = jnp.clip(explored, 0.0, MAX_DROPOUT)
        new[name] = jnp.where(copied, explored, value).astype(members[name].dtype)
    members = {**members, **new}
    if "learning_rate" in new:
        ts = ts._replace(opt_state=with_learning_rate(ts.opt_state, members["learning_rate"]))
    return members, ts, parents


def _program(search: SearchSpec, plan: Any, arrays, keys, members, ts, key, progress=None):
    def generation(carry, g):
        members, ts = carry
        out = run_traced(plan, search.epochs, arrays, keys, members, ts)
        score = out.history[search.metric][:, -1]
        if progress is not None:  # the host hears of each generation as it ends; nothing waits on it
            jax.debug.callback(progress, g, score, ordered=True)
        new_members, new_ts, parents = exploit_explore(search, jax.random.fold_in(key, g), members, score,
                                                        out.train_state)
        return (new_members, new_ts), (members, score, parents, out.history, out.train_state)

    (_, _), (settings, scores, parents, history, states) = jax.lax.scan(
        generation, (members, ts), jnp.arange(search.generations))
    last = jax.tree.map(lambda a: a[-1], states)  # the state before the last exploit: what was trained
    history = jax.tree.map(lambda a: jnp.moveaxis(a, 0, 1).reshape(a.shape[1], -1, *a.shape[3:]), history)
    return settings, scores, parents, history, last


def _progress(on_generation: Any) -> Any:
    """The callback the program calls per generation (None: none), with plain Python/NumPy values."""
    if on_generation is None:
        return None
    if not callable(on_generation):
        raise TypeError(f"on_generation: expected a callable (generation, scores) or None, got {on_generation!r}")
    return _Progress(on_generation)


class _Progress:
    """``on_generation`` called with plain values; equal (one compiled program) for the same function."""

    def __init__(self, on_generation: Any):
        self.on_generation = on_generation

    def __call__(self, generation: Any, scores: Any) -> None:
        self.on_generation(int(generation), np.asarray(scores))

    def __hash__(self) -> int:
        return hash(self.on_generation)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, _Progress) and self.on_generation == other.on_generation


class _Static:
    """A population plan's static part alone (``spec``), as a static argument: the compiled
    program's cache holds no data arrays, and equal settings share the program."""

    def __init__(self, plan: Any):
        self.spec = plan.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, _Static) and self.spec == other.spec


@functools.partial(jax.jit, static_argnums=(0, 1, 7))
def _compiled(search: SearchSpec, plan: _Static, arrays, keys, members, ts, key, progress=None):
    return _program(search, plan, arrays, keys, members, ts, key, progress)


@takes_settings
def pbt(key: jax.Array, net: Any, data: tuple[Any, Any], space: dict, options: Options | None = None, *,
        members: int, generations: int, epochs_per_generation: int, quantile: float = 0.25,
        perturb: Sequence[float] = (0.8, 1.2), resample_probability: float = 0.25, metric: str | None = None,
        on_generation: Any = None, **settings: Any) -> PBTResult:
    """Population-based training of ``members`` models for ``generations`` rounds, in one program.

    Args:
      key: the search key: member ``i`` trains with run key ``fold_in(key, i)``; the initial
        draws and every exploit/explore step come from other keys folded from it.
      net, data: as :func:`nnjax.fit`.
      space: ``{setting: range}`` for settings of :data:`EXPLORED`, each a range of
        :func:`nnjax.sweeps.as_range` (the records of every search): a :class:`LogUniform` or
        :class:`Uniform` (drawn per member, and drawn from on resample), a :class:`Choice` or
        list of choices, range text (``"1e-3:1e-1"``), or exactly ``members`` values (one initial
        value per member; a resample then draws from these).
      options, **settings: the shared settings (:class:`~nnjax.Options`), ``epochs`` excepted
        (it is ``generations * epochs_per_generation``); early stopping is refused.
      members: the population size, at least 2.
      generations: rounds of training, each followed by exploit/explore (the last one's result
        is what is returned).
      epochs_per_generation: ``k``, epochs between exploit steps.
      quantile: the fraction ranked bottom (replaced) and top (copied), in (0, 0.5].
      perturb: the two factors of explore, each drawn with probability 1/2.
      resample_probability: the chance that a copied setting is drawn afresh instead.
      metric: the history key ranked at the end of each generation; default "val_loss" with
        validation data, else "loss" (accuracies and R^2 are maximised).
      on_generation: a callable ``on_generation(generation, scores)`` called from the program
        (``jax.debug.callback``) as each generation ends, with the members' ``metric`` as a NumPy
        array (progress); it is part of the compiled program, so pass the same function to reuse it.

    Returns:
      A :class:`PBTResult`.

    Raises:
      ValueError, TypeError: bad arguments, naming the argument.
    """
    members = checks.check_count("epochs", members, "members")
    if members < 2:
        raise ValueError(f"members: expected at least 2 (a population to copy within), got {members}")
    generations = checks.check_count("epochs", generations, "generations")
    k = checks.check_count("epochs", epochs_per_generation, "epochs_per_generation")
    if isinstance(quantile, bool) or not isinstance(quantile, (int, float)) or not 0 < quantile <= 0.5:
        raise ValueError(f"quantile: expected a fraction in (0, 0.5], got {quantile!r}")
    perturb = tuple(float(f) for f in np.atleast_1d(np.asarray(perturb, np.float64)))
    if len(perturb) != 2 or not all(np.isfinite(f) and f > 0 for f in perturb):
        raise ValueError(f"perturb: expected two finite factors > 0 such as (0.8, 1.2), got {perturb!r}")
    if isinstance(resample_probability, bool) or not isinstance(resample_probability, (int, float)) or \
            not 0 <= resample_probability <= 1:
        raise ValueError(f"resample_probability: expected a probability in [0, 1], got {resample_probability!r}")
    if "epochs" in settings:
        raise ValueError("epochs: not accepted by pbt (it trains generations * epochs_per_generation epochs)")
    options = Options.of(options, epochs=k, **settings)
    if options.early_stopping is not None:
        raise ValueError("early_stopping: expected None for pbt (exploit replaces poor members instead)")
    if "learning_rate" in space and (callable(options.learning_rate) or
                                     (not isinstance(options.optimizer, str) and hasattr(options.optimizer, "update"))):
        raise ValueError("learning_rate: to explore it, expected optimizer as a name or a factory lr -> optax "
                         "transformation and no schedule, got a fixed optimizer or a schedule")
    init_key, search_key = jax.random.split(jax.random.key(0) if key is None else key)
    initial, sources = _check_space(space, members, init_key)
    keys = jax.vmap(lambda i: jax.random.fold_in(search_key, i))(jnp.arange(members))
    traced = {name: initial.get(name, getattr(options, name)) for name in EXPLORED if name in initial}
    plan = plan_population(keys, net, data, options.replace(**{n: v for n, v in traced.items()}))
    metric = metric or ("val_loss" if options.validation is not None else "loss")
    shapes = jax.eval_shape(lambda ts: run_traced(plan, 1, plan.arrays, plan.keys, plan.members, ts).history,
                            plan.ts)
    if metric not in shapes or shapes[metric].ndim != 2:
        names = sorted(n for n, s in shapes.items() if s.ndim == 2 and n not in ("epoch", "stopped", "skipped"))
        raise ValueError(f"metric: expected one of {', '.join(names)}, got {metric!r}")
    search = SearchSpec(generations, k, max(1, int(quantile * members)), perturb, float(resample_probability), metric,
                     tuple(sources.items()))
    # the explored settings (a penalty that starts at 0 everywhere is not in plan.members)
    members_in = {n: plan.members.get(n, jnp.asarray(initial[n])) for n in initial}
    fixed = {n: v for n, v in plan.members.items() if n not in initial}
    settings_out, scores, parents, history, last = _compiled(
        search, _Static(plan), plan.arrays, plan.keys, {**fixed, **members_in}, plan.ts,
        jax.random.fold_in(search_key, members), _progress(on_generation))
    result = FitResult(last.params, last.state, {k_: np.asarray(v) for k_, v in history.items()}, last, plan.keys)
    return PBTResult(result, {n: np.asarray(settings_out[n]) for n in initial}, np.asarray(parents),
                     np.asarray(scores), plan.keys, k, metric)


def replay(result: PBTResult, member: int | None = None) -> list[dict]:
    """The settings schedule of ``member``'s lineage (default: the best member), generation by generation.

    Each entry: ``{"generation", "slot", "epochs", <setting>: value, ...}``: train ``epochs``
    epochs with run key ``result.keys[slot]`` and these settings, continuing from the previous
    entry's state (the first from the key's untrained start). :func:`replay_fit` runs it.

    Raises:
      ValueError: a member outside the population.
    """
    size = result.parents.shape[1]
    member = result.best if member is None else member
    if isinstance(member, bool) or not isinstance(member, (int, np.integer)) or not 0 <= member < size:
        raise ValueError(f"member: expected an index in [0, {size}), got {member!r}")
    slots = [int(member)]
    for g in range(result.parents.shape[0] - 2, -1, -1):  # who the slot continued from after generation g
        slots.append(int(result.parents[g, slots[-1]]))
    slots.reverse()
    return [{"generation": g, "slot": slot, "epochs": result.epochs_per_generation,
             **{name: float(values[g, slot]) for name, values in result.settings.items()}}
            for g, slot in enumerate(slots)]


def lineage_history(result: PBTResult, member: int | None = None) -> dict:
    """The history of ``member``'s lineage (default: the best): each generation's epochs from the slot it was in.

    ``result.result.history[name][i]`` is the history of slot ``i``, whoever held it; this
    stitches the rows of the slots in :func:`replay`'s schedule, so it is the history a
    :func:`replay_fit` run records.
    """
    k = result.epochs_per_generation
    slots = [step["slot"] for step in replay(result, member)]
    return {name: np.concatenate([np.asarray(values)[slot, g * k:(g + 1) * k] for g, slot in enumerate(slots)])
            for name, values in result.result.history.items()}


@takes_settings
def replay_fit(result: PBTResult, net: Any, data: tuple[Any, Any], options: Options | None = None, *,
               member: int | None = None, **settings: Any) -> FitResult:
    """``member``'s lineage trained again by plain :func:`nnjax.fit` calls, one per generation.

    ``options``/``settings``: the shared settings :func:`pbt` was given. Each call continues from
    the previous one (its learning rate written into the optimizer state, see
    :func:`with_learning_rate`); the result equals the member's to float32 rounding.
    """
    out = None
    for step in replay(result, member):
        chosen = {name: step[name] for name in EXPLORED if name in step}
        key = result.keys[step["slot"]]
        if out is None:
            out = fit(key, net, data, options, epochs=step["epochs"], **chosen, **settings)
        else:
            if "learning_rate" in chosen:
                ts = out.train_state
                out = out._replace(train_state=ts._replace(
                    opt_state=with_learning_rate(ts.opt_state, chosen["learning_rate"])))
            history = out.history
            more = fit(key, net, data, options, epochs=step["epochs"], resume=out, **chosen, **settings)
            out = more._replace(history={k: np.concatenate([np.asarray(history[k]), np.asarray(v)])
                                         for k, v in more.history.items()})
    return out
