"""``nnjax tune``: a hyper-parameter search over the flags of ``nnjax train``, and its best run.

The search methods are one table, :data:`METHODS`: name -> ``function(key, setup, space, args,
directory)`` returning a :class:`nnjax.search.HalvingResult`-like record (``leaderboard``,
``best``, ``settings``, ``metric``); a new method joins by adding a row.
"""

from __future__ import annotations

import argparse
import csv
import json
import pathlib
import time
from typing import Any, Callable

import jax

from nnjax.cli import _train
from nnjax.cli._errors import UsageError
from nnjax.cli._setup import make_setup, optimizer_factory
from nnjax.train.search import halving, space as space_lib

_SETTING = {"lr": "learning_rate", "l2": "l2", "dropout": "dropout"}


def _progress(args: argparse.Namespace, metric: str) -> Callable | None:
    if args.quiet or args.json:
        return None
    return lambda r, n, members, epochs, best: print(
        f"rung {r + 1}/{n}: {members} members at {epochs} epochs; best {metric} {best:.4f}", flush=True)


def _halving(key, setup, space, args, directory) -> Any:
    metric = "val_accuracy" if setup.prep.task == "classification" else "val_loss"
    return halving.successive_halving(key, setup.net, setup.data, space, setup.options, members=args.members,
                                      min_epochs=args.min_epochs, max_epochs=args.epochs, eta=args.eta,
                                      metric=metric, seeds=args.seeds, method="random", directory=directory,
                                      on_rung=_progress(args, metric))


def _one_rung(method: str) -> Callable:
    def run(key, setup, space, args, directory):
        metric = "val_accuracy" if setup.prep.task == "classification" else "val_loss"
        return halving.successive_halving(key, setup.net, setup.data, space, setup.options, members=args.members,
                                          min_epochs=args.epochs, max_epochs=args.epochs, metric=metric,
                                          seeds=args.seeds, method=method, directory=directory,
                                          on_rung=_progress(args, metric))
    return run


METHODS: dict[str, Callable] = {"halving": _halving, "grid": _one_rung("grid"), "random": _one_rung("random")}


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


def tune(args: argparse.Namespace) -> int:
    """The ``nnjax tune`` command; returns the exit code."""
    _check(args)
    space = parse_ranges(args)
    first = {f: (r[0] if isinstance(r, tuple) else r.low) for f, r in zip(_SETTING, space.values())}
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

        ends = sorted({r["epochs"] for r in out.leaderboard})
        ends = halving.rungs(args.min_epochs, args.epochs, args.eta) if args.method == "halving" else ends
        plots.plot_search_curves(out.leaderboard, ends, metric=out.metric, path=run_dir / "validation_curves.png")
        plots.plot_score_vs_settings(out.leaderboard, list(space), metric=out.metric,
                                     path=run_dir / "score_vs_settings.png")
    best = out.leaderboard[0]
    # the best member as an ordinary run: nnjax train with its settings (evaluate/predict/load open it)
    best_args = argparse.Namespace(**{**vars(base), "lr": best["learning_rate"], "l2": best.get("l2", 0.0),
                                      "dropout": f"{best.get('dropout', 0.0):g}", "out": str(run_dir / "best"),
                                      "quiet": True, "json": False})
    if (run_dir / "best").exists():
        import shutil

        shutil.rmtree(run_dir / "best")
    _train.train(best_args)
    if not args.quiet:
        print(f"{args.method}: {len(out.leaderboard)} members in {seconds:.1f} s; best member {best['member']} "
              f"({', '.join(f'{k}={best[k]:.3g}' for k in space)}): {out.metric} {best['score']:.4f}")
        print(f"run directory: {run_dir}")
    return 0
