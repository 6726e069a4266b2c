"""Successive halving over a compiled population.

Every member of a sample of the search space (times ``seeds``) trains as one population
(:func:`nnjax.fit_population`) for a rung of epochs; members are ranked by a validation metric,
the top ``1/eta`` survive, and the survivors are *compacted* into a smaller population (the
member axis of parameters, optimizer state and keys is gathered), which continues from each
survivor's exact state for ``eta`` times as many epochs. Members that stop cost nothing more; each
population size is one compiled program.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import concurrent.futures
import logging
import os
import pickle

import jax
import numpy as np

from nnjax.nn.losses import is_maximised
from nnjax.train.options import Options
from nnjax.train.population import fit_population, member_scores, plan_population, select
from nnjax.train.search.space import sample

__all__ = ["HalvingResult", "rungs", "successive_halving"]

_log = logging.getLogger(__name__)


class HalvingResult(NamedTuple):
    """What :func:`successive_halving` returns.

    Attributes:
      leaderboard: one row per member, best first: ``member``, its settings, ``seed``,
        ``scores`` (one per rung it reached), ``epochs`` trained, ``score`` (its last).
      best: the best member's :class:`~nnjax.FitResult` (history over all its rungs).
      settings: the best member's settings; metric: the score's history key.
    """

    leaderboard: list[dict[str, Any]]
    best: Any
    settings: dict[str, float]
    metric: str


def rungs(min_epochs: int, max_epochs: int, eta: int) -> list[int]:
    """Cumulative epochs at the end of each rung: ``min_epochs * eta**r`` up to ``max_epochs``.

    Example:
      >>> rungs(1, 9, 3), rungs(2, 10, 3)
      ([1, 3, 9], [2, 6, 10])
    """
    for name, v in (("min_epochs", min_epochs), ("max_epochs", max_epochs), ("eta", eta)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    if eta < 2:
        raise ValueError(f"eta: expected an integer >= 2, got {eta}")
    if max_epochs < min_epochs:
        raise ValueError(f"max_epochs: expected at least min_epochs={min_epochs}, got {max_epochs}")
    out = [min_epochs]
    while out[-1] < max_epochs:
        out.append(min(out[-1] * eta, max_epochs))
    return out


def _compile_rung(net: Any, data: Any, options: Options, keys: Any, settings: dict, epochs: int) -> None:
    """Compiles the program that continues ``len(keys)`` members for ``epochs`` epochs, without
    training: a stand-in population of the same size and settings (their values do not matter,
    only which penalties are on), continued from its untrained state (a resumed run's program)."""
    stand_in = plan_population(keys, net, data, options, **settings)
    stand_in.compile(stand_in.ts, epochs)


def _compile_ahead(net: Any, data: Any, options: Options, keys: Any, per: dict, sizes: list[int],
                   ends: list[int], first: int) -> dict[int, concurrent.futures.Future]:
    """Starts compiling every later rung's program in background threads, one future per rung.

    Each population size is one program; compiled one after another they were most of a
    search's first run (four programs of about 4 s each against 0.3 s of training for 27 members
    on digits, 2-core CPU). XLA compiles outside Python's lock, so the later rungs' programs
    compile side by side with the first rung's, on the machine's other cores.
    """
    later = [r for r in range(max(first, 1), len(ends))]
    if not later:
        return {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(len(later), os.cpu_count() or 2),
                                                 thread_name_prefix="nnjax-halving-compile")
    futures = {}
    for r in later:
        size = sizes[r]
        settings = {}
        for name, values in per.items():
            stand_in = np.array(values[:size])
            if not np.any(stand_in) and np.any(values):  # a penalty on for some member: keep it in the program
                stand_in[:] = np.max(np.abs(values))
            settings[name] = stand_in
        futures[r] = pool.submit(_compile_rung, net, data, options, keys[:size], settings, ends[r] - ends[r - 1])
    pool.shutdown(wait=False)
    return futures


def _wait(future: concurrent.futures.Future | None) -> None:
    """Waits for a rung's compile-ahead; a failure only means the rung compiles when it runs."""
    if future is None:
        return
    try:
        future.result()
    except Exception as error:  # noqa: BLE001 - the rung itself reports real errors
        _log.debug("compiling a rung ahead failed (it compiles when it runs): %s", error)


@jax.jit
def _gather_members(tree: Any, index: jax.Array) -> Any:
    return jax.tree.map(lambda a: a[index], tree)


def _gather(tree: Any, index: np.ndarray) -> Any:
    """The members ``index`` of a stacked tree: one small program per population size (indexing
    leaf by leaf compiled one gather per leaf shape)."""
    return _gather_members(tree, jax.numpy.asarray(np.asarray(index, np.int32)))


def successive_halving(key: jax.Array, net: Any, data: tuple[Any, Any], space: Mapping[str, Any],
                       options: Options | None = None, *, members: int, min_epochs: int, max_epochs: int,
                       eta: int = 3, metric: str = "val_loss", seeds: int = 1, method: str = "random",
                       directory: str | os.PathLike | None = None, on_rung: Any = None,
                       compile_ahead: bool = True, **settings: Any) -> HalvingResult:
    """Successive halving of ``members`` settings x ``seeds`` seeds, deterministic from ``key``.

    Settings are drawn from ``space`` (:func:`nnjax.search.sample`, with ``fold_in(key, 0)``);
    seed ``s`` trains with ``fold_in(key, 1 + s)`` for every setting (common random numbers).
    ``options``/``settings`` are :func:`nnjax.fit_population`'s (``validation=`` is needed for a
    ``val_*`` metric; ``epochs`` is taken from the rungs).

    With ``directory``, the search state (survivors, their training state, scores, histories) is
    saved there after every rung (``halving.pkl``); calling again with the same arguments and
    directory continues after the last saved rung, bit for bit the uninterrupted search.
    A saved search made with other members, rungs or seeds is refused.
    ``on_rung(rung, rungs, members, epochs, best_score)`` is called after every rung (progress).
    ``compile_ahead`` compiles the later rungs' programs (one per population size) in background
    threads while the first rung compiles and trains; results do not depend on it.
    """
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"seeds: expected a positive integer, got {seeds!r}")
    ends = rungs(min_epochs, max_epochs, eta)
    drawn = sample(space, members, key=jax.random.fold_in(key, 0), method=method)
    n = len(next(iter(drawn.values())))
    ids = np.arange(n * seeds)
    setting_of, seed_of = ids // seeds, ids % seeds
    per = {k: v[setting_of] for k, v in drawn.items()}
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jax.numpy.asarray(1 + seed_of, np.uint32))
    options = Options.of(options, **{**settings, "epochs": ends[0]})
    maximise = is_maximised(metric)
    alive = ids.copy()
    state, histories = None, {int(i): [] for i in ids}
    scores = {int(i): [] for i in ids}
    done, first = 0, 0
    stamp = {"members": n, "seeds": seeds, "rungs": ends, "eta": eta, "metric": metric,
             "settings": {k: v.tolist() for k, v in per.items()}}
    path = None if directory is None else os.path.join(os.fspath(directory), "halving.pkl")
    if path is not None and os.path.exists(path):
        with open(path, "rb") as f:
            saved = pickle.load(f)
        if saved["stamp"] != stamp:
            raise ValueError(f"directory: expected a search with the same members, rungs, seeds and settings, "
                             f"got a different one saved in {path}")
        first, done, alive, state = saved["rung"] + 1, saved["done"], saved["alive"], saved["state"]
        scores, histories, result = saved["scores"], saved["histories"], saved["result"]
    sizes = [len(ids)]
    for _ in ends[1:]:
        sizes.append(max(1, sizes[-1] // eta))
    ahead = _compile_ahead(net, data, options, keys, per, sizes, ends, first) if compile_ahead else {}
    for r, end in enumerate(ends):
        if r < first:
            continue
        _wait(ahead.get(r))
        member_settings = {k: v[alive] for k, v in per.items()}
        result = fit_population(keys[alive] if state is None else None, net, data, options,
                                resume=state, epochs=end - done, **member_settings)
        done = end
        s = member_scores(result, metric)
        history = jax.device_get(result.history)  # one transfer, then NumPy slices
        for j, i in enumerate(alive):
            scores[int(i)].append(float(s[j]))
            histories[int(i)].append(jax.tree.map(lambda a: np.asarray(a[j]), history))
        if on_rung is not None:
            finite = s[np.isfinite(s)]
            on_rung(r, len(ends), len(alive), end,
                    float((finite.max() if maximise else finite.min()) if finite.size else np.nan))
        if r < len(ends) - 1:
            keep = max(1, len(alive) // eta)
            rank = np.where(np.isnan(s), np.inf, -s if maximise else s)
            order = np.argsort(rank, kind="stable")[:keep]
            order = np.sort(order)  # survivors keep their member order
            alive, state = alive[order], _gather(result, order)
        if path is not None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".tmp", "wb") as f:
                pickle.dump({"stamp": stamp, "rung": r, "done": done, "alive": alive, "state": state,
                             "scores": scores, "histories": histories, "result": result}, f)
            os.replace(path + ".tmp", path)
    final = member_scores(result, metric)
    winner = int(np.nanargmax(final) if maximise else np.nanargmin(final)) if np.isfinite(final).any() else 0
    best_id = int(alive[winner])
    best = select(result, winner)
    history = {k: np.concatenate([h[k] for h in histories[best_id]]) for k in histories[best_id][0]}
    best = best._replace(history=history)
    rows = []
    for i in ids:
        i = int(i)
        rows.append({"member": i, **{k: float(v[i]) for k, v in per.items()}, "seed": int(seed_of[i]),
                     "scores": scores[i], "epochs": ends[len(scores[i]) - 1], "score": scores[i][-1]})
    def order_key(row):
        sc = row["score"]
        bad = not np.isfinite(sc)
        return (-row["epochs"], bad, 0.0 if bad else (-sc if maximise else sc), row["member"])
    rows.sort(key=order_key)
    return HalvingResult(rows, best, {k: float(v[best_id]) for k, v in per.items()}, metric)
