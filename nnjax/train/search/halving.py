"""Successive halving over a compiled population.

Every member of a sample of the search space (times ``seeds``) trains as a population for a rung
of epochs; members are ranked by a validation metric, the top ``1/eta`` survive, and the
survivors are *compacted*: only their training state (parameters, optimizer state, early-stopping
state) goes on, for ``eta`` times as many epochs, from each survivor's exact state. Members that
stop cost nothing more.

**One program for the whole search.** A rung's population has its own size (27, 9, 3, 1 members)
and its own length (1, 2, 6, 18 epochs); trained as one program each, a search compiled four
programs, and on a CPU compiling them was most of its time (about 2.7 s each against 0.3 s of
training for 27 digits members over four rungs, 2-core CPU; warm, tracing them still took most of
it). With ``members_per_program=M`` every rung is trained by one program instead: the rung's
members in slices of ``M`` (the last slice filled up with copies of a real member, whose results
are dropped), each slice by the chunk runner (:func:`nnjax.train.runner.train`) in chunks of the
greatest common divisor of the rung lengths (1 epoch for rungs 1, 3, 9, 27). A survivor's
trajectory is the one it has in any population (to float rounding), and a chunked run is the
run in one call bit for bit, so the search is the same search; only its programs change.

The default (``"auto"``) is one member per program on a CPU (for a search of several rungs; one rung
is one program in any case, its whole population at once), where ``jax.vmap`` over members buys
little (32 digits members vmapped run at about 0.87x the time of a loop of them, 128 at 1.0x), so
slices cost nearly nothing and nothing is padded; elsewhere ``None``: a whole rung per program (one
program per rung, as wide as the device allows), where a vmapped population is much faster than
its members one by one.
"""

from __future__ import annotations

import math
import os
import pickle
from typing import Any, Mapping, NamedTuple

import jax
import numpy as np

from nnjax.nn.losses import is_maximised
from nnjax.train import runner
from nnjax.train.options import Options
from nnjax.train.population import PopulationPlan, member_scores, plan_population, select
from nnjax.train.search.space import sample

__all__ = ["HalvingResult", "programs", "rungs", "successive_halving"]


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


def _members_per_program(value: Any, ends: list[int]) -> int | None:
    """``members_per_program`` checked, ``"auto"`` resolved for the default backend and the rungs
    ``ends`` (see the module; one rung is one program in any case: its whole population at once)."""
    if isinstance(value, str) and value == "auto":
        return 1 if jax.default_backend() == "cpu" and len(ends) > 1 else None
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"members_per_program: expected a positive integer, None or 'auto', got {value!r}")
    return value


def programs(sizes: list[int], ends: list[int],
             members_per_program: int | str | None = "auto") -> list[tuple[int, int]]:
    """The training programs a search runs: one ``(members, epochs)`` shape each, in rung order.

    ``sizes``: the members of each rung; ``ends``: :func:`rungs`. With ``members_per_program=M``
    one program, ``M`` members for the greatest common divisor of the rung lengths; with None one
    per rung (its members for its length); ``"auto"``: as :func:`successive_halving` resolves it.

    Example:
      >>> programs([27, 9, 3, 1], [1, 3, 9, 27], 1), programs([27, 9, 3, 1], [1, 3, 9, 27], None)
      ([(1, 1)], [(27, 1), (9, 2), (3, 6), (1, 18)])
    """
    members_per_program = _members_per_program(members_per_program, ends)
    lengths = [b - a for a, b in zip([0, *ends], ends)]
    if members_per_program is None:
        return list(dict.fromkeys(zip(sizes, lengths)))
    return [(members_per_program, math.gcd(*lengths))]


def _host(tree: Any) -> Any:
    """A pytree of device arrays as writable NumPy arrays (slices and joins then compile nothing)."""
    return jax.tree.map(np.array, tree)


def _rows(tree: Any, index: np.ndarray) -> Any:
    return jax.tree.map(lambda a: a[index], tree)


def _join(parts: list[Any]) -> Any:
    return jax.tree.map(lambda *a: np.concatenate(a), *parts)


def _key_rows(keys: jax.Array) -> Any:
    """``ids -> keys[ids]``, sliced on the host (typed keys through their raw data): indexing the
    device array compiles a gather per shape."""
    if jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key):
        raw, impl = np.asarray(jax.random.key_data(keys)), jax.random.key_impl(keys)
        return lambda ids: jax.random.wrap_key_data(raw[ids], impl=impl)
    raw = np.asarray(keys)
    return lambda ids: jax.device_put(raw[ids])


def _train_rung(full: PopulationPlan, key_rows: Any, alive: np.ndarray, state: Any, done: int, end: int,
                width: int | None, every: int | None) -> Any:
    """The rung from ``done`` to ``end`` epochs of the members ``alive`` (their states ``state``, in
    order), in slices of ``width`` members (None: all at once), each slice in chunks of ``every``
    epochs (None: the whole rung in one).

    Returns the members' stacked result as NumPy arrays (``key`` None; ``history`` the rung's epochs).
    """
    members = {k: np.asarray(v) for k, v in full.members.items()}
    width = len(alive) if width is None else width
    every = end - done if every is None else every
    parts = []
    for first in range(0, len(alive), width):
        pos = np.arange(first, min(first + width, len(alive)))
        real = len(pos)
        pos = np.concatenate([pos, np.full(width - real, pos[-1])])  # the last slice filled with copies
        ids = alive[pos]
        plan = PopulationPlan(full.spec, full.arrays, key_rows(ids), {k: v[ids] for k, v in members.items()},
                              _rows(state, pos))
        outcome = runner.train(plan, end, done=done, every=every)
        result = outcome.result
        history = result.history
        if outcome.all_stopped and outcome.epochs_done < end:  # as one call: epochs never run hold NaN
            history = runner.stopped_tail(history, end - outcome.epochs_done)
        parts.append(_rows(_host(result._replace(history=history, key=None)), np.arange(real)))
    return _join(parts)


def successive_halving(key: jax.Array, net: Any, data: tuple[Any, Any], space: Mapping[str, Any],
                       options: Options | None = None, *, members: int, min_epochs: int, max_epochs: int,
                       eta: int = 3, metric: str = "val_loss", seeds: int = 1, method: str = "random",
                       directory: str | os.PathLike | None = None, on_rung: Any = None,
                       members_per_program: int | str | None = "auto", **settings: Any) -> HalvingResult:
    """Successive halving of ``members`` settings x ``seeds`` seeds, deterministic from ``key``.

    Settings are drawn from ``space`` (:func:`nnjax.search.sample`, with ``fold_in(key, 0)``);
    seed ``s`` trains with ``fold_in(key, 1 + s)`` for every setting (common random numbers).
    ``options``/``settings`` are :func:`nnjax.fit_population`'s (``validation=`` is needed for a
    ``val_*`` metric; ``epochs`` is taken from the rungs).

    ``members_per_program``: members trained by one program at a time. An integer ``M``: the whole
    search is one training program (:func:`programs`), the members in slices of ``M`` (a last,
    short slice is filled up with copies of a real member: that many members' epochs are wasted);
    None: one program per rung, each rung's population at once; ``"auto"``: 1 on a CPU for a search
    of several rungs, else None (see the module). Survivors' scores agree between choices to float rounding.

    With ``directory``, the search state (survivors, their training state, scores, histories) is
    saved there after every rung (``halving.pkl``); calling again with the same arguments and
    directory continues after the last saved rung, bit for bit the uninterrupted search.
    A saved search made with other members, rungs, seeds or members per program is refused.
    ``on_rung(rung, rungs, members, epochs, best_score)`` is called after every rung (progress).
    """
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"seeds: expected a positive integer, got {seeds!r}")
    ends = rungs(min_epochs, max_epochs, eta)
    width = _members_per_program(members_per_program, ends)
    drawn = sample(space, members, key=jax.random.fold_in(key, 0), method=method)
    n = len(next(iter(drawn.values())))
    ids = np.arange(n * seeds)
    setting_of, seed_of = ids // seeds, ids % seeds
    per = {k: v[setting_of] for k, v in drawn.items()}
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jax.numpy.asarray(1 + seed_of, np.uint32))
    options = Options.of(options, **{**settings, "epochs": ends[0]})
    # checks and encodes once; every slice's program shares its static part and its data
    full = plan_population(keys, net, data, options, **per)
    key_rows = _key_rows(keys)
    sizes = [len(ids)]
    for _ in ends[1:]:
        sizes.append(max(1, sizes[-1] // eta))
    every = None if width is None else programs(sizes, ends, width)[0][1]  # the one program's epochs
    maximise = is_maximised(metric)
    alive, state = ids.copy(), None
    histories = {int(i): [] for i in ids}
    scores = {int(i): [] for i in ids}
    done, first = 0, 0
    stamp = {"members": n, "seeds": seeds, "rungs": ends, "eta": eta, "metric": metric,
             "settings": {k: v.tolist() for k, v in per.items()}, "members_per_program": width}
    path = None if directory is None else os.path.join(os.fspath(directory), "halving.pkl")
    if path is not None and os.path.exists(path):
        with open(path, "rb") as f:
            saved = pickle.load(f)
        if saved["stamp"] != stamp:
            raise ValueError(f"directory: expected a search with the same members, rungs, seeds, settings and "
                             f"members per program, got a different one saved in {path}")
        first, done, alive, state = saved["rung"] + 1, saved["done"], saved["alive"], saved["state"]
        scores, histories, result = saved["scores"], saved["histories"], saved["result"]
    if state is None:
        state = _host(full.ts)
    for r, end in enumerate(ends):
        if r < first:
            continue
        result = _train_rung(full, key_rows, alive, state, done, end, width, every)
        done = end
        s = member_scores(result, metric)
        for j, i in enumerate(alive):
            scores[int(i)].append(float(s[j]))
            histories[int(i)].append(_rows(result.history, j))
        if on_rung is not None:
            finite = s[np.isfinite(s)]
            on_rung(r, len(ends), len(alive), end,
                    float((finite.max() if maximise else finite.min()) if finite.size else np.nan))
        if r < len(ends) - 1:
            keep = max(1, len(alive) // eta)
            rank = np.where(np.isnan(s), np.inf, -s if maximise else s)
            order = np.sort(np.argsort(rank, kind="stable")[:keep])  # survivors keep their member order
            alive, state = alive[order], _rows(result.train_state, order)
        if path is not None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".tmp", "wb") as f:
                pickle.dump({"stamp": stamp, "rung": r, "done": done, "alive": alive, "state": state,
                             "scores": scores, "histories": histories, "result": result}, f)
            os.replace(path + ".tmp", path)
    final = member_scores(result, metric)
    winner = int(np.nanargmax(final) if maximise else np.nanargmin(final)) if np.isfinite(final).any() else 0
    best_id = int(alive[winner])
    history = {k: np.concatenate([h[k] for h in histories[best_id]]) for k in histories[best_id][0]}
    best = jax.device_put(select(result._replace(history={}), winner))  # transfers, no program
    best = best._replace(history=history, key=key_rows(best_id))
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
