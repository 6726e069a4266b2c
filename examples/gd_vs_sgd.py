"""Full-batch gradient descent vs minibatch SGD vs pure (one-example) SGD.

The three differ only in ``batch_size``: ``n`` takes one exact gradient step per epoch, ``1``
takes ``n`` noisy steps, and a minibatch sits in between. The script trains the same network
from the same initial parameters with the same learning rate all three ways and records the
training loss at the end of every epoch (``validation`` is set to the training data, so
``history["val_loss"]`` is the exact full-data loss of the epoch's final parameters). Each run is
compiled once and then timed on a second, identical call, so wall time excludes compilation.

Run: ``python examples/gd_vs_sgd.py [--quick] [--out DIR] [--seed N]``
"""

from __future__ import annotations

import _common

import jax
import numpy as np
import optax

import nnjax


def loss_at_time(seconds: np.ndarray, losses: np.ndarray, budget: float) -> float:
    """The last end-of-epoch loss reached within ``budget`` seconds (``seconds[0] = 0``: the initial loss)."""
    return float(losses[seconds <= budget][-1])


def main(argv: list[str] | None = None) -> dict:
    args = _common.parse_args("gd_vs_sgd", "full-batch GD vs minibatch SGD vs pure SGD", argv)
    data = nnjax.data.load_dataset("digits", n=256 if args.quick else 1024, seed=args.seed)
    _, x = nnjax.data.standardize(data.x)
    y, n = data.y, len(data.y)
    net = nnjax.MLP((64, 32, 10), activation="tanh", output="softmax")
    epochs = 8 if args.quick else 40
    optimizer = optax.sgd(0.02)  # one object for every run: the same compiled program is reused
    methods = {"full-batch GD": n, "minibatch SGD (32)": 32, "pure SGD (1)": 1}

    init_key, _ = nnjax.training.split_run_key(jax.random.key(args.seed))  # fit's own initial draw
    logits = nnjax.apply(nnjax.init(init_key, net), x, net)
    initial_loss = float(np.mean(nnjax.losses.get("softmax_cross_entropy")(logits, y)))

    runs = {}
    for name, batch_size in methods.items():
        def train(batch_size=batch_size):
            return nnjax.fit(jax.random.key(args.seed), net, (x, y), loss="softmax_cross_entropy",
                             optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                             validation=(x, y), diagnostics=False)

        _, compile_and_run = _common.timed(train)
        result, seconds = _common.timed(train)  # same arguments: no compilation this time
        losses = np.r_[initial_loss, np.asarray(result.history["val_loss"], np.float64)]
        runs[name] = {"batch": batch_size, "steps": -(-n // batch_size), "losses": losses,
                      "seconds": seconds, "compile": compile_and_run - seconds,
                      "times": seconds * np.arange(epochs + 1) / epochs,
                      "accuracy": float(result.history["val_accuracy"][-1])}

    budget = min(r["seconds"] for r in runs.values())
    _common.section(f"{n} digits, {epochs} epochs, SGD with learning rate 0.02, same initial parameters")
    _common.table(
        ["method", "batch", "steps/epoch", "final loss", "accuracy", "run s", "s/epoch", f"loss at {budget:.2g}s"],
        [[k, r["batch"], r["steps"], float(r["losses"][-1]), f"{r['accuracy']:.1%}", r["seconds"],
          r["seconds"] / epochs, loss_at_time(r["times"], r["losses"], budget)] for k, r in runs.items()],
    )

    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, r in runs.items():
        axes[0].plot(np.arange(epochs + 1), r["losses"], marker="o", markersize=3, label=name)
        axes[1].plot(r["times"], r["losses"], marker="o", markersize=3, label=name)
    for ax, xlabel in zip(axes, ("epoch", "wall time (s, compilation excluded)")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("training loss (end of epoch)")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    axes[0].set_title("Loss against epochs")
    axes[1].set_title("Loss against wall time")
    _common.save(fig, args.out, "gd_vs_sgd.png")

    by_epoch = sorted(runs, key=lambda k: runs[k]["losses"][-1])
    by_speed = sorted(runs, key=lambda k: runs[k]["seconds"])
    more_steps_win = by_epoch == sorted(runs, key=lambda k: -runs[k]["steps"])
    reached = {k: loss_at_time(r["times"], r["losses"], budget) for k, r in runs.items()}
    best_at_budget = min(reached, key=reached.get)
    gd, pure = runs["full-batch GD"], runs["pure SGD (1)"]
    _common.conclude(
        f"per epoch, {'more (noisier) steps won' if more_steps_win else 'the number of steps did not decide the order'}: "
        f"after {epochs} epochs the losses rank " + " < ".join(f"{k} {runs[k]['losses'][-1]:.3f}" for k in by_epoch) + ".",
        f"an epoch of full-batch GD (1 update) took {gd['seconds'] / epochs * 1e3:.2f} ms and one of pure SGD "
        f"({pure['steps']} sequential updates) {pure['seconds'] / epochs * 1e3:.2f} ms, {pure['seconds'] / gd['seconds']:.1f}x "
        f"as long; fastest to slowest per epoch: {', '.join(by_speed)}.",
        f"with the same wall-time budget ({budget * 1e3:.1f} ms, the fastest run's total) {best_at_budget} reached the "
        f"lowest loss ({reached[best_at_budget]:.3f}), against "
        + ", ".join(f"{reached[k]:.3f} for {k}" for k in runs if k != best_at_budget)
        + f" (initial loss {initial_loss:.3f}).",
    )
    return runs


if __name__ == "__main__":
    main()
