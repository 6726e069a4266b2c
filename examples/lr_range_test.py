"""The learning-rate range test over seeds: one population, a suggestion with its band, and a check.

``nnjax.lr_find`` trains 4 copies of a digits classifier (one per seed, one compiled program)
while the learning rate rises exponentially from 1e-5 to 10 over a few hundred minibatch steps,
and suggests the rate at the minimum of each seed's smoothed loss divided by 10 (the median over
seeds on the log scale, with the seeds' band). The example then checks the suggestion against a
small grid of fixed rates trained as one population, and shows ``fit(learning_rate="auto")``.

Run: ``python examples/lr_range_test.py [--quick] [--out DIR] [--seed N]``
"""

from __future__ import annotations

import _common

import logging
import time

import jax
import numpy as np

import nnjax


def main(argv: list[str] | None = None) -> dict:
    args = _common.parse_args("lr_range_test", "the learning-rate range test over seeds", argv)
    data = nnjax.data.load_dataset("digits", n=600 if args.quick else None, seed=args.seed)
    (x_tr, y_tr), (x_val, y_val) = nnjax.data.split(args.seed, data.x, data.y, fractions=(0.75, 0.25),
                                                    stratify=data.y)
    _, x_tr, x_val = nnjax.data.standardize(x_tr, x_val)
    net = nnjax.MLP((64, 64, 10), activation="relu", output="softmax")
    shared = dict(loss="softmax_cross_entropy", optimizer="adam", batch_size=32, diagnostics=False)
    key = jax.random.key(args.seed)

    start = time.perf_counter()
    # lr_find's default 300 steps, also in --quick: fit(learning_rate="auto") below runs the same
    # test (same data, settings and steps), so it reuses this compiled program instead of another.
    found = nnjax.lr_find(key, net, (x_tr, y_tr), **shared)
    seconds = time.perf_counter() - start
    _common.section(f"range test: 4 seeds x {len(found.rates)} steps in {seconds:.1f} s ({found.rule})")
    _common.table(["seed", "suggestion"], [[i, float(s)] for i, s in enumerate(found.suggestions)])
    print(f"  suggestion {found.suggestion:.3g}, band {found.band[0]:.3g} .. {found.band[1]:.3g}")
    _common.save(nnjax.plots.plot_lr_find(found), args.out, "lr_range_test.png")

    grid = np.geomspace(1e-4, 1e-1, 7 if args.quick else 13)
    epochs = 4 if args.quick else 15
    keys = jax.random.split(jax.random.key(args.seed + 1), len(grid))
    pop = nnjax.fit_population(keys, net, (x_tr, y_tr), learning_rate=grid, epochs=epochs,
                               validation=(x_val, y_val), **shared)
    scores = nnjax.population.member_scores(pop, "val_loss", at="best")
    best = float(grid[int(np.nanargmin(scores))])
    _common.section(f"a grid of fixed rates, {epochs} epochs each (one population)")
    _common.table(["learning rate", "best val loss"], [[float(r), float(s)] for r, s in zip(grid, scores)])

    logging.basicConfig(level=logging.WARNING, format="  log: %(message)s")
    auto = nnjax.fit(key, net, (x_tr, y_tr), learning_rate="auto", epochs=epochs, validation=(x_val, y_val),
                     **shared)
    factor = max(found.suggestion / best, best / found.suggestion)
    _common.conclude(
        f"the range test suggests {found.suggestion:.3g} (band {found.band[0]:.3g}..{found.band[1]:.3g}, a factor "
        f"{found.band[1] / found.band[0]:.2f} over 4 seeds); the grid's best rate is {best:.3g}, a factor "
        f"{factor:.2f} away",
        f"fit(learning_rate='auto') ran the test itself and reached validation accuracy "
        f"{float(auto.history['val_accuracy'][-1]):.3f} in {epochs} epochs",
    )
    return {"suggestion": found.suggestion, "band": found.band, "grid_best": best, "factor": factor}


if __name__ == "__main__":
    main()
