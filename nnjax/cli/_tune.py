"""``nnjax tune``: a hyper-parameter search over the flags of ``nnjax train``, and its best run.

The search methods are one table, :data:`METHODS`: name -> ``function(key, setup, space, args,
directory)`` returning a :class:`Found`; a new method joins by adding a row. The best member is
saved as it was trained in the search (its own weights, not a retraining) as an ordinary run,
``best/``, by the writers of ``nnjax train`` (:func:`nnjax.cli._train.save_run`).
"""

from __future__ import annotations

import argparse
import csv
import json
import pathlib
import time
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from nnjax.cli import _train
from nnjax.cli._errors import UsageError
from nnjax.cli._setup import make_setup, optimizer_factory
from nnjax.nn.losses import is_maximised
from nnjax.train.search import halving, population_based, space as space_lib

_SETTING = {"lr": "learning_rate", "l2": "l2", "dropout": "dropout"}
#: Flags of tune alone: left out of the best run's config.json (it is a run of nnjax train).
_TUNE_ONLY = ("method", "members", "min_epochs", "eta", "generation_epochs", "quantile")


class Found(NamedTuple):
    """What a search method returns.

    Attributes:
      leaderboard: one row per member, best first (settings, ``scores``, ``epochs``, ``score``).
      best: the first row's member as it was trained: a single :class:`~nnjax.FitResult`.
      metric: the history key members were ranked by.
      ends: the epochs trained at each entry of a row's ``scores`` (rungs, generations).
      pbt: the :class:`nnjax.search.PBTResult` of ``--method pbt`` (its schedules are plotted), else None.
    """

    leaderboard: list
    best: Any
    metric: str
    ends: list
    pbt: Any = None


def _metric(setup: Any) -> str:
    return "val_accuracy" if setup.prep.task == "classification" else "val_loss"


def _progress(args: argparse.Namespace, metric: str) -> Callable | None:
    if args.quiet or args.json:
        return None
    return lambda r, n, members, epochs, best: print(
        f"rung {r + 1}/{n}: {members} members at {epochs} epochs; best {metric} {best:.4f}", flush=True)


def _halving(key, setup, space, args, directory) -> Found:
    metric = _metric(setup)
    out = halving.successive_halving(key, setup.net, setup.data, space, setup.options, members=args.members,
                                     min_epochs=args.min_epochs, max_epochs=args.epochs, eta=args.eta,
                                     metric=metric, seeds=args.seeds, method="random", directory=directory,
                                     on_rung=_progress(args, metric))
    return Found(out.leaderboard, out.best, metric, halving.rungs(args.min_epochs, args.epochs, args.eta))


def _one_rung(method: str) -> Callable:
    def run(key, setup, space, args, directory) -> Found:
        metric = _metric(setup)
        out = halving.successive_halving(key, setup.net, setup.data, space, setup.options, members=args.members,
                                         min_epochs=args.epochs, max_epochs=args.epochs, metric=metric,
                                         seeds=args.seeds, method=method, directory=directory,
                                         on_rung=_progress(args, metric))
        return Found(out.leaderboard, out.best, metric, [args.epochs])
    return run


def _generation_progress(args: argparse.Namespace, metric: str, generations: int) -> Callable | None:
    if args.quiet or args.json:
        return None
    pick = np.nanmax if is_maximised(metric) else np.nanmin
    so_far = []

    def show(generation: int, scores: np.ndarray) -> None:
        finite = scores[np.isfinite(scores)]
        best = float(pick(finite)) if finite.size else float("nan")
        so_far.append(best)
        print(f"generation {generation + 1}/{generations}: best {metric} {best:.4f} "
              f"(best so far {float(pick(so_far)) if np.isfinite(so_far).any() else float('nan'):.4f})", flush=True)

    return show


def _pbt(key, setup, space, args, directory) -> Found:
    """Population-based training (:func:`nnjax.pbt`) of ``--members`` members for ``--epochs`` epochs,
    exploiting and exploring every ``--generation-epochs``; ranges explored, single values fixed."""
    metric = _metric(setup)
    explored = {n: r for n, r in space.items() if not _fixed(r)}
    fixed = {n: r.values[0] for n, r in space.items() if _fixed(r)}
    generations = args.epochs // args.generation_epochs
    options = setup.options.replace(**fixed)
    out = population_based.pbt(key, setup.net, setup.data, explored, options, members=args.members,
                               generations=generations, epochs_per_generation=args.generation_epochs,
                               quantile=args.quantile, metric=metric,
                               on_generation=_generation_progress(args, metric, generations))
    rows = [{**row, **fixed} for row in out.leaderboard()]
    rows = [{k: row[k] for k in ("member", *space, "scores", "epochs", "score")} for row in rows]
    ends = [args.generation_epochs * (g + 1) for g in range(generations)]
    return Found(rows, out.member(rows[0]["member"]), metric, ends, out)


METHODS: dict[str, Callable] = {"halving": _halving, "grid": _one_rung("grid"), "random": _one_rung("random"),
                                "pbt": _pbt}


def _fixed(r: Any) -> bool:
    """A range of one value (a flag given a number): a setting, not searched."""
    return isinstance(r, space_lib.Choice) and len(r.values) == 1


def parse_ranges(args: argparse.Namespace) -> dict:
    """``{setting: range}`` of the range flags (a single value stays fixed: one choice)."""
    try:
        return space_lib.parse_space({_SETTING[f]: f"{getattr(args, f)}" for f in _SETTING})
    except ValueError as err:
        flag = next(f for f, s in _SETTING.items() if str(err).startswith(s))
        raise UsageError(f"--{flag}: {str(err).split(': ', 1)[1]}") from None


def _check(args: argparse.Namespace) -> None:
    if args.method not in METHODS:
        raise UsageError(f"--method: expected one of {', '.join(METHODS)}, got {args.method!r}")
    for flag in ("members", "epochs", "min_epochs", "eta", "seeds"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag.replace('_', '-')}: expected a positive integer, got {getattr(args, flag)}")
    if args.method == "pbt":
        if args.members < 2:
            raise UsageError(f"--members: expected at least 2 for --method pbt (a population to copy within), "
                             f"got {args.members}")
        if args.seeds != 1:
            raise UsageError(f"--seeds: expected 1 with --method pbt (every member has its own key), got {args.seeds}")
        if args.generation_epochs < 1 or args.epochs % args.generation_epochs:
            raise UsageError(f"--generation-epochs: expected a positive divisor of --epochs={args.epochs}, "
                             f"got {args.generation_epochs}")
        if not 0 < args.quantile <= 0.5:
            raise UsageError(f"--quantile: expected a fraction in (0, 0.5], got {args.quantile}")
        if args.schedule != "constant":
            raise UsageError(f"--schedule: expected constant with --method pbt (PBT sets the rate itself), "
                             f"got {args.schedule}")
    if args.method == "halving":
        if args.eta < 2:
            raise UsageError(f"--eta: expected an integer >= 2, got {args.eta}")
        if args.min_epochs > args.epochs:
            raise UsageError(f"--min-epochs: expected at most --epochs={args.epochs}, got {args.min_epochs}")
    if args.validation_fraction <= 0:
        raise UsageError(f"--validation-fraction: expected > 0 (members are ranked on it), got {args.validation_fraction}")


def _write_leaderboard(run_dir: pathlib.Path, rows: list[dict]) -> None:
    with open(run_dir / "leaderboard.json", "w") as f:
        json.dump(rows, f, indent=1)
    fields = [k for k in rows[0] if k != "scores"] + ["scores"]
    with open(run_dir / "leaderboard.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({**r, "scores": " ".join(f"{v:.6g}" for v in r["scores"])})


def save_best(setup: Any, directory: pathlib.Path, member: Any, row: dict, seconds: float = 0.0) -> dict:
    """The winning member as it was trained in the search, written as an ordinary run of
    ``nnjax train`` in ``directory`` (replacing one there): its settings in config.json and its own
    weights in the checkpoint, so that ``nnjax evaluate``/``predict`` and ``nnjax.load`` open it."""
    kept = {k: v for k, v in vars(setup.args).items() if k not in _TUNE_ONLY}
    args = argparse.Namespace(**{**kept, "command": "train", "lr": row["learning_rate"], "l2": row["l2"],
                                 "dropout": f"{row['dropout']:g}", "epochs": int(row["epochs"]), "seeds": 1,
                                 "out": str(directory), "quiet": True, "json": False})
    if directory.exists():
        import shutil

        shutil.rmtree(directory)
    return _train.save_run(setup._replace(args=args), directory, member, seconds)


def tune(args: argparse.Namespace) -> int:
    """The ``nnjax tune`` command; returns the exit code."""
    _check(args)
    space = parse_ranges(args)
    if args.method == "pbt" and all(_fixed(r) for r in space.values()):
        raise UsageError("--lr: expected a range to explore with --method pbt (e.g. 1e-3:1e-1; --l2 and --dropout "
                         "take ranges too), got single values only")
    first = {f: (r.values[0] if isinstance(r, space_lib.Choice) else r.low) for f, r in zip(_SETTING, space.values())}
    base = argparse.Namespace(**{**vars(args), "command": "train", "lr": float(first["lr"]), "l2": 0.0,
                                 "dropout": "0", "seeds": 1, "resume": None, "config": None, "from_intact": False,
                                 "tensorboard": None})
    setup = make_setup(base)
    n_train = len(setup.splits["train"][0])
    steps = n_train // args.batch_size if args.drop_last else -(-n_train // args.batch_size)
    setup = setup._replace(options=setup.options.replace(optimizer=optimizer_factory(base, steps)))
    run_dir = pathlib.Path(args.resume or args.out or f"runs/tune-{time.strftime('%Y%m%d-%H%M%S')}")
    if not args.resume and run_dir.exists() and any(run_dir.iterdir()):
        raise UsageError(f"--out: {str(run_dir)!r} exists and is not empty; continue it with --resume {run_dir}")
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    out = METHODS[args.method](jax.random.key(args.seed), setup, space, args, run_dir / "search")
    seconds = time.perf_counter() - start
    _write_leaderboard(run_dir, out.leaderboard)
    if not args.no_plots:
        from nnjax.report import plots

        plots.plot_search_curves(out.leaderboard, out.ends, metric=out.metric, path=run_dir / "validation_curves.png")
        plots.plot_score_vs_settings(out.leaderboard, list(space), metric=out.metric,
                                     path=run_dir / "score_vs_settings.png")
        if out.pbt is not None:
            plots.plot_pbt_schedules(out.pbt, path=run_dir / "schedules.png")
    best = out.leaderboard[0]
    save_best(setup._replace(args=base), run_dir / "best", out.best, best, seconds)
    if not args.quiet:
        print(f"{args.method}: {len(out.leaderboard)} members in {seconds:.1f} s; best member {best['member']} "
              f"({', '.join(f'{k}={best[k]:.3g}' for k in space)}): {out.metric} {best['score']:.4f}")
        print(f"run directory: {run_dir}")
    return 0
