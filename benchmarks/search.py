"""Hyper-parameter search on digits: successive halving in compiled populations against the tools
users would pick instead, same data, same model, same epoch budget, side by side in one process.

Rows: nnjax.successive_halving over a 27-setting grid (learning rate x L2 x dropout); sequential
nnjax.fit over the same grid; scikit-learn GridSearchCV and HalvingGridSearchCV over MLPClassifier
(the same grid without dropout, which it lacks); Optuna TPE + median pruner driving nnjax.fit one
trial at a time (skipped with the reason when optuna is not installed: pip install 'nnjax[bench]').
Reported: best validation accuracy, wall time, and the time at which a row first reached the target
validation accuracy, and how many programs the halving search compiled (its training programs:
:func:`nnjax.search.programs`). ``--quick`` shrinks data and epochs to run in seconds; ``--halving-only``
runs the halving row alone; ``--members-per-program`` sets halving's (``none``: one program per rung).

Run: ``python benchmarks/search.py [--quick] [--halving-only] [--members-per-program auto|none|M]``.
"""

from __future__ import annotations

import argparse
import itertools
import pathlib
import sys
import time
import warnings

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import nnjax  # noqa: E402
from benchmarks import compiles  # noqa: E402

LR, L2, DROPOUT = (1e-3, 1e-2, 1e-1), (0.0, 1e-4, 1e-3), (0.0, 0.2, 0.4)


def _data(quick: bool):
    d = nnjax.data.load_dataset("digits")
    x, y = np.asarray(d.x, np.float32), np.asarray(d.y)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    n = 600 if quick else len(x)
    cut = int(0.8 * n)
    return (x[:cut], y[:cut]), (x[cut:n], y[cut:n])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--target", type=float, default=None, help="validation accuracy to time (default: 0.5 pt below "
                   "the sequential grid's best)")
    p.add_argument("--halving-only", action="store_true", help="only the halving row (compile counts, timing)")
    p.add_argument("--members-per-program", default="auto", help="halving's members_per_program: auto, none "
                   "(one program per rung) or a number")
    args = p.parse_args(argv)
    choice = args.members_per_program.lower()
    per_program = {"auto": "auto", "none": None}[choice] if choice in ("auto", "none") else int(choice)
    epochs = 3 if args.quick else 27
    train, val = _data(args.quick)
    net = nnjax.MLP((64, 32 if args.quick else 64, 10), output="softmax")
    common = dict(loss="softmax_cross_entropy", optimizer=lambda lr: __import__("optax").adam(lr), batch_size=32,
                  validation=val)
    grid = list(itertools.product(LR, L2, DROPOUT))
    rows = {}

    t0 = time.perf_counter()
    with compiles.counting() as count:
        out = nnjax.successive_halving(jax.random.key(0), net, train, {"learning_rate": LR, "l2": L2,
                                                                       "dropout": DROPOUT},
                                       members=27, min_epochs=1, max_epochs=epochs, metric="val_accuracy",
                                       method="grid", members_per_program=per_program, **common)
    rows["nnjax successive_halving (27 members)"] = (out.leaderboard[0]["score"], time.perf_counter() - t0, [])
    ends = nnjax.search.rungs(1, epochs, 3)
    sizes = [sum(row["epochs"] >= end for row in out.leaderboard) for end in ends]  # members trained per rung
    shapes = nnjax.search.programs(sizes, ends, per_program)
    print(f"halving (members_per_program={args.members_per_program}): {count.compiles} programs compiled "
          f"({count.cache_hits} from the persistent cache) in {count.compile_s:.1f} s, traced in {count.trace_s:.1f} s;"
          f" training programs (members, epochs): {shapes}")
    if args.halving_only:
        print(f"halving: best val acc {out.leaderboard[0]['score']:.4f} in {rows[next(iter(rows))][1]:.1f} s")
        return

    t0, trace, best = time.perf_counter(), [], -1.0
    for lr, l2, dr in grid:
        r = nnjax.fit(jax.random.fold_in(jax.random.key(0), 1), net, train, learning_rate=lr, l2=l2,
                      dropout=dr or None, epochs=epochs, **common)
        best = max(best, float(np.asarray(r.history["val_accuracy"])[-1]))  # last epoch, as halving scores
        trace.append((time.perf_counter() - t0, best))
    rows["sequential nnjax.fit (27 settings)"] = (best, time.perf_counter() - t0, trace)

    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV, PredefinedSplit
    from sklearn.neural_network import MLPClassifier
    x = np.concatenate([train[0], val[0]])
    y = np.concatenate([train[1], val[1]])
    split = PredefinedSplit(np.r_[np.full(len(train[0]), -1), np.zeros(len(val[0]))])
    sk_grid = {"learning_rate_init": list(LR), "alpha": list(L2)}
    for name, cls in (("sklearn GridSearchCV (9)", GridSearchCV), ("sklearn HalvingGridSearchCV (9)", HalvingGridSearchCV)):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = cls(MLPClassifier(hidden_layer_sizes=net.sizes[1:-1], max_iter=epochs, batch_size=32, random_state=0),
                    sk_grid, cv=split, n_jobs=1).fit(x, y)
        rows[name] = (float(s.best_score_), time.perf_counter() - t0, [])

    try:
        import optuna
    except ImportError:
        print("skipped Optuna TPE + median pruner: optuna is not installed (pip install 'nnjax[bench]')")
    else:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        t0, trace = time.perf_counter(), []

        def objective(trial):
            lr = trial.suggest_float("lr", LR[0], LR[-1], log=True)
            l2 = trial.suggest_categorical("l2", L2)
            dr = trial.suggest_float("dropout", 0.0, DROPOUT[-1])
            r = nnjax.fit(jax.random.key(1), net, train, learning_rate=lr, l2=l2, dropout=dr or None, epochs=epochs,
                          **common)
            acc = np.asarray(r.history["val_accuracy"])
            for e, a in enumerate(acc):
                trial.report(float(a), e)
            score = float(acc[-1])
            trace.append((time.perf_counter() - t0, score))
            return score

        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0),
                                    pruner=optuna.pruners.MedianPruner())
        study.optimize(objective, n_trials=27)
        rows["Optuna TPE + median pruner driving nnjax.fit (27)"] = (study.best_value, time.perf_counter() - t0,
                                                                     [(t, max(s for _, s in trace[:i + 1]))
                                                                      for i, (t, _) in enumerate(trace)])

    seq_best = rows["sequential nnjax.fit (27 settings)"][0]
    target = args.target if args.target is not None else seq_best - 0.005
    print(f"digits, {len(train[0])} train / {len(val[0])} validation rows, {epochs} epochs, jax {jax.__version__}, "
          f"{jax.devices()[0].platform}; target validation accuracy {target:.3f}")
    print(f"{'method':52s} {'best val acc':>12s} {'wall s':>8s} {'s to target':>12s}")
    for name, (score, wall, trace) in rows.items():
        reach = next((f"{t:.1f}" for t, s in trace if s >= target), "-") if trace else (
            f"{wall:.1f}" if score >= target else "never")
        print(f"{name:52s} {score:12.4f} {wall:8.1f} {reach:>12s}")


if __name__ == "__main__":
    main()
