"""Search targets of issue 22: the range test against a learning-rate grid, and PBT against fixed settings.

Rows printed:

* **range test vs grid** (digits, 64-64-10 ReLU, Adam; diabetes, 10-32-1 tanh, SGD): the
  suggestion of ``nnjax.lr_find`` (4 seeds) and its band, against the best fixed learning rate
  of a log grid (factor 2 apart) trained as one population with 2 seeds per rate, scored by the
  best-epoch validation loss averaged over the seeds ("regret": that loss at the grid rate nearest the
  suggestion over the best one, minus 1). Targets: suggestion within a factor 3 of
  the grid's best rate; band narrower than a factor 3.
* **PBT vs best fixed** (digits, a deep 8 x 32 tanh net, plain SGD): ``nnjax.pbt`` with P
  members against the same P initial settings (same run keys) trained at fixed rates for the
  same epochs (the population PBT starts from, without exploit/explore). Target: PBT's best final
  validation loss below the best fixed member's.

Usage::

    python benchmarks/search_pbt.py --quick   # small budgets: about a minute on a loaded 2-core CPU
    python benchmarks/search_pbt.py           # the budgets quoted in the docs
    python benchmarks/search_pbt.py --json    # one JSON line at the end

Wall times are printed for orientation only (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import nnjax  # noqa: E402
from nnjax.train import search  # noqa: E402
from nnjax.train.search import population_based as pb  # noqa: E402


def _splits(name: str, seed: int, n: int | None = None):
    data = nnjax.data.load_dataset(name, seed=seed, n=n)
    stratify = data.y if data.task == "classification" else None
    (xt, yt), (xv, yv) = nnjax.data.split(seed, data.x, data.y, fractions=(0.75, 0.25), stratify=stratify)
    _, xt, xv = nnjax.data.standardize(xt, xv)
    if data.task == "regression":
        mean, std = float(np.mean(yt)), float(np.std(yt))
        yt, yv = ((np.asarray(v, np.float32).reshape(-1, 1) - mean) / std for v in (yt, yv))
    return (xt, yt), (xv, yv)


def range_vs_grid(name: str, net, loss: str, optimizer: str, *, epochs: int, steps: int, batch_size: int,
                  seed: int) -> dict:
    train, val = _splits(name, seed)
    shared = dict(loss=loss, optimizer=optimizer, batch_size=batch_size, diagnostics=False)
    start = time.perf_counter()
    found = search.lr_find(jax.random.key(seed), net, train, steps=steps, min_lr=1e-5, max_lr=10.0, **shared)
    t_find = time.perf_counter() - start
    grid = np.geomspace(1e-4, 1.0, 14)  # a factor 2.03 apart
    seeds = 2
    rates = np.repeat(grid, seeds)
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed + 1), i % seeds))(np.arange(len(rates)))
    start = time.perf_counter()
    pop = nnjax.fit_population(keys, net, train, learning_rate=rates, epochs=epochs, validation=val, **shared)
    t_grid = time.perf_counter() - start
    scores = nnjax.population.member_scores(pop, "val_loss", at="best").reshape(len(grid), seeds).mean(axis=1)
    best = float(grid[int(np.nanargmin(scores))])
    ratio = found.suggestion / best
    near = int(np.argmin(np.abs(np.log(grid) - np.log(found.suggestion))))  # the grid rate nearest the suggestion
    return {"regret": float(scores[near] / np.nanmin(scores) - 1), "dataset": name, "optimizer": optimizer,
            "suggestion": found.suggestion, "band": found.band,
            "band_factor": found.band[1] / found.band[0], "grid_best": best,
            "factor_to_best": max(ratio, 1 / ratio), "grid_scores": dict(zip(grid.round(6).tolist(), scores.tolist())),
            "seconds_find": t_find, "seconds_grid": t_grid}


def pbt_vs_fixed(*, members: int, generations: int, k: int, seed: int, quick: bool) -> dict:
    train, val = _splits("digits", seed)
    depth = 6 if quick else 8
    net = nnjax.MLP((64,) + (32,) * depth + (10,), activation="tanh", output="softmax")
    shared = dict(loss="softmax_cross_entropy", optimizer="sgd", batch_size=32, diagnostics=False, validation=val)
    space = {"learning_rate": pb.LogUniform(0.01, 1.0)}
    start = time.perf_counter()
    out = search.pbt(jax.random.key(seed), net, train, space, members=members, generations=generations,
                     epochs_per_generation=k, quantile=0.25, resample_probability=0.2, **shared)
    t_pbt = time.perf_counter() - start
    initial = out.settings["learning_rate"][0]
    start = time.perf_counter()
    fixed = nnjax.fit_population(out.keys, net, train, learning_rate=initial, epochs=generations * k, **shared)
    t_fixed = time.perf_counter() - start
    fixed_scores = nnjax.population.member_scores(fixed, "val_loss")
    fixed_acc = nnjax.population.member_scores(fixed, "val_accuracy")
    pbt_scores = out.result.history["val_loss"][:, -1]
    pbt_acc = out.result.history["val_accuracy"][:, -1]
    b, f = out.best, int(np.nanargmin(fixed_scores))
    schedule = [round(step["learning_rate"], 4) for step in search.replay(out)]
    return {"members": members, "epochs": generations * k, "k": k, "pbt_val_loss": float(pbt_scores[b]),
            "pbt_val_accuracy": float(pbt_acc[b]), "fixed_val_loss": float(fixed_scores[f]),
            "fixed_val_accuracy": float(fixed_acc[f]), "fixed_best_lr": float(initial[f]),
            "pbt_schedule": schedule, "seconds_pbt": t_pbt, "seconds_fixed": t_fixed}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small budgets (about a minute)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON line at the end")
    args = parser.parse_args(argv)
    q = args.quick
    rows = [
        range_vs_grid("digits", nnjax.MLP((64, 64, 10), activation="relu", output="softmax"), "softmax_cross_entropy",
                      "adam", epochs=8 if q else 20, steps=300, batch_size=32, seed=args.seed),
        range_vs_grid("diabetes", nnjax.MLP((10, 32, 1), activation="tanh", output="identity"), "mse", "sgd",
                      epochs=30 if q else 100, steps=300, batch_size=32, seed=args.seed),
    ]
    print("range test (4 seeds, 300 steps) vs learning-rate grid (14 rates x 2 seeds, best-epoch val loss)")
    print(f"{'data':9} {'opt':5} {'suggestion':>10} {'band':>19} {'band x':>7} {'grid best':>10} {'x to best':>9}"
          f" {'regret':>7} {'s find':>7} {'s grid':>7}")
    for r in rows:
        print(f"{r['dataset']:9} {r['optimizer']:5} {r['suggestion']:10.3g} {r['band'][0]:9.3g}..{r['band'][1]:<8.3g}"
              f" {r['band_factor']:7.2f} {r['grid_best']:10.3g} {r['factor_to_best']:9.2f} {r['regret']:7.1%}"
              f" {r['seconds_find']:7.1f}"
              f" {r['seconds_grid']:7.1f}")
    p = pbt_vs_fixed(members=8 if q else 16, generations=6 if q else 10, k=3 if q else 4, seed=args.seed, quick=q)
    print(f"\nPBT vs best fixed rate (digits, deep tanh net, SGD, {p['members']} members, {p['epochs']} epochs, "
          f"k={p['k']})")
    print(f"{'method':12} {'val loss':>9} {'val acc':>8} {'seconds':>8}")
    print(f"{'pbt':12} {p['pbt_val_loss']:9.4f} {p['pbt_val_accuracy']:8.4f} {p['seconds_pbt']:8.1f}")
    print(f"{'best fixed':12} {p['fixed_val_loss']:9.4f} {p['fixed_val_accuracy']:8.4f} {p['seconds_fixed']:8.1f}"
          f"   (lr {p['fixed_best_lr']:.3g})")
    print(f"PBT best member's learning-rate schedule per generation: {p['pbt_schedule']}")
    report = {"range": rows, "pbt": p}
    if args.json:
        print(json.dumps(report, default=float))
    return report


if __name__ == "__main__":
    main()
