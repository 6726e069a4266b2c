"""Successive halving on digits: many settings start, the best third survives each rung.

Every member trains in a compiled population; between rungs only the survivors go on, from their
exact state, so members that stop cost nothing more. On a CPU the whole search is one training
program (`members_per_program`, see docs/search.md).
"""

from __future__ import annotations

import _common

import jax
import numpy as np

import nnjax


def main(argv=None) -> None:
    args = _common.parse_args("successive_halving", __doc__.splitlines()[0], argv)
    data = nnjax.data.load_dataset("digits")
    x, y = np.asarray(data.x, np.float32) / 16.0, np.asarray(data.y)
    n = 600 if args.quick else len(x)
    x, y = x[:n], y[:n]
    cut = int(0.8 * n)
    members, max_epochs = (9, 3) if args.quick else (27, 27)
    net = nnjax.MLP((64, 16 if args.quick else 64, 10), output="softmax")
    out, seconds = _common.timed(
        nnjax.successive_halving, jax.random.key(args.seed), net, (x[:cut], y[:cut]),
        {"learning_rate": "1e-3:1e-1", "l2": "0,1e-4,1e-3"}, members=members, min_epochs=1, max_epochs=max_epochs,
        metric="val_accuracy", loss="softmax_cross_entropy", optimizer="adam", batch_size=32,
        validation=(x[cut:], y[cut:]))
    _common.section(f"leaderboard ({members} members, {seconds:.1f} s)")
    _common.table(["member", "learning_rate", "l2", "epochs", "val_accuracy"],
                  [[r["member"], f"{r['learning_rate']:.2g}", r["l2"], r["epochs"], f"{r['score']:.3f}"]
                   for r in out.leaderboard[:5]])
    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for r in out.leaderboard:
        ax.plot(np.cumsum([1] * len(r["scores"])), r["scores"], marker="o", alpha=0.6)
    ax.set_xlabel("rung")
    ax.set_ylabel("validation accuracy")
    ax.set_title("successive halving: every member's score per rung")
    _common.save(fig, args.out, "successive_halving.png")
    best = out.leaderboard[0]
    _common.conclude(f"the best member ({best['member']}) trained {best['epochs']} epochs and reached "
                     f"{best['score']:.3f} validation accuracy; {sum(r['epochs'] == max_epochs for r in out.leaderboard)} "
                     f"of {len(out.leaderboard)} members reached the last rung")


if __name__ == "__main__":
    main()
