"""Learning-rate schedules: constant, step, exponential, cosine and warm-up + cosine.

A schedule is a function of the optimiser's step count (``nnjax.optim.schedule`` builds the
optax ones by name). The script trains the same network from the same start with SGD + momentum
and small batches under each schedule, all peaking at the same large rate, on noisy two-moons
data. It plots the learning rate against the step and the held-out loss against the epoch, and
measures two things: the final held-out loss, and how much that loss still jumps around in the
last quarter of training (a large constant rate keeps bouncing; a decayed rate settles).

Run: ``python examples/lr_schedules.py [--quick] [--out DIR] [--seed N]``
"""

from __future__ import annotations

import _common

import jax
import numpy as np
import optax

import nnjax
from nnjax import optim

PEAK = 0.3  # large on purpose: good for early progress, too large to settle with


def make_schedules(steps: int, quick: bool) -> dict:
    """Schedules by name, all starting (or peaking) at ``PEAK`` over ``steps`` optimiser steps."""
    schedules = {
        "constant": optim.schedule("constant", PEAK),
        "constant (peak / 10)": optim.schedule("constant", PEAK / 10),
        "step": optim.schedule("step", PEAK, boundaries=[steps // 2, 3 * steps // 4], decay_rate=0.2),
        "cosine": optim.schedule("cosine", PEAK, steps=steps),
        "exponential": optim.schedule("exponential", PEAK, decay_steps=max(steps // 4, 1), decay_rate=0.5),
        "warmup_cosine": optim.schedule("warmup_cosine", PEAK, steps=steps, warmup_steps=steps // 10),
    }
    if quick:  # each schedule is its own optimizer, hence its own compilation: keep two
        schedules = {k: schedules[k] for k in ("constant", "cosine")}
    return schedules


def jumpiness(losses: np.ndarray) -> float:
    """Mean absolute change of the loss between consecutive epochs over the last quarter of them."""
    tail = losses[-max(len(losses) // 4, 2):]
    return float(np.mean(np.abs(np.diff(tail))))


def main(argv: list[str] | None = None) -> dict:
    args = _common.parse_args("lr_schedules", "learning-rate schedules compared", argv)
    train = nnjax.data.load_dataset("moons", n=600, noise=0.3, seed=args.seed)
    held_out = nnjax.data.load_dataset("moons", n=2000, noise=0.3, seed=args.seed + 1)
    net = nnjax.MLP((2, 32, 32, 1), activation="tanh", output="sigmoid")
    epochs, batch_size = 40, 10
    steps = epochs * -(-len(train.x) // batch_size)
    schedules = make_schedules(steps, args.quick)

    runs = {}
    for name, schedule in schedules.items():
        result = nnjax.fit(jax.random.key(args.seed), net, (train.x, train.y), loss="binary_cross_entropy",
                           optimizer=optax.sgd(schedule, momentum=0.9), epochs=epochs, batch_size=batch_size,
                           validation=(held_out.x, held_out.y), diagnostics=False)
        losses = np.asarray(result.history["val_loss"], np.float64)
        runs[name] = {"losses": losses, "final": float(losses[-1]), "jumpiness": jumpiness(losses),
                      "lr": np.asarray(jax.vmap(schedule)(np.arange(steps))),
                      "skipped": int(np.sum(result.history["skipped"])),
                      "accuracy": float(result.history["val_accuracy"][-1])}

    _common.section(f"{len(train.x)} noisy moons, batches of {batch_size}, SGD + momentum 0.9, peak rate {PEAK}, "
                    f"{steps} steps; loss on {len(held_out.x)} held-out points")
    _common.table(["schedule", "final lr", "final loss", "accuracy", "jumpiness (last 25%)", "skipped steps"],
                  [[k, float(r["lr"][-1]), r["final"], f"{r['accuracy']:.1%}", r["jumpiness"], r["skipped"]]
                   for k, r in runs.items()])

    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, r in runs.items():
        axes[0].plot(r["lr"], label=name)
        axes[1].plot(np.arange(1, epochs + 1), r["losses"], label=name)
    axes[0].set_xlabel("optimiser step")
    axes[0].set_ylabel("learning rate")
    axes[0].set_title("Schedules")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("held-out loss (end of epoch)")
    axes[1].set_yscale("log")
    axes[1].set_title("Held-out loss")
    for ax in axes:
        ax.legend(fontsize=8)
    _common.save(fig, args.out, "lr_schedules.png")

    best = min(runs, key=lambda k: runs[k]["final"])
    calmest = min(runs, key=lambda k: runs[k]["jumpiness"])
    const = runs["constant"]
    decayed = {k: r for k, r in runs.items() if not k.startswith("constant")}
    calmer = [k for k, r in decayed.items() if r["jumpiness"] < const["jumpiness"]]
    lower = [k for k, r in decayed.items() if r["final"] < const["final"]]
    conclusions = []
    if "constant (peak / 10)" in runs:
        small = runs["constant (peak / 10)"]
        quieter = sum(r["jumpiness"] < small["jumpiness"] for r in decayed.values())
        conclusions.append(f"a constant rate of {PEAK / 10:g} ends at {small['final']:.4f} with jumpiness "
                           f"{small['jumpiness']:.2e}; {quieter} of {len(decayed)} decaying schedules end calmer than it.")
    _common.conclude(
        f"{best} ends with the lowest held-out loss ({runs[best]['final']:.4f}, accuracy {runs[best]['accuracy']:.1%}); "
        f"the constant peak rate ends at {const['final']:.4f} (accuracy {const['accuracy']:.1%}).",
        f"{len(lower)} of {len(decayed)} decaying schedules ({', '.join(lower) or 'none'}) end below the constant rate.",
        f"in the last quarter the loss moves by {const['jumpiness']:.2e} per epoch at a constant rate; "
        f"{len(calmer)} of {len(decayed)} decaying schedules are calmer ({', '.join(calmer) or 'none'}), "
        f"{calmest} the calmest ({runs[calmest]['jumpiness']:.2e}).",
        *conclusions,
    )
    return runs


if __name__ == "__main__":
    main()
