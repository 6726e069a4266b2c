"""Many random starts at once: train a population, keep the member that validates best.

The same network is trained from P random initialisations (and P shuffle orders) in one compiled
program, ``nnjax.fit_population``. The validation split picks the best member; the test split,
never looked at during selection, says whether the pick was worth it. The script also times the
population against training one model, both compiled beforehand.

Run: ``python examples/random_starts.py [--quick] [--out DIR] [--seed N]``
"""

from __future__ import annotations

import _common

import jax
import numpy as np
import optax

import nnjax


def test_accuracies(params, net, x, y) -> np.ndarray:
    """Test accuracy of every member (the parameters carry a leading population axis)."""
    logits = jax.vmap(lambda p: nnjax.apply(p, x, net))(params)
    return np.mean(np.argmax(np.asarray(logits), axis=-1) == y[None, :], axis=1)


def main(argv: list[str] | None = None) -> dict:
    args = _common.parse_args("random_starts", "a population of random starts, the best kept by validation", argv)
    data = nnjax.data.load_dataset("digits", n=500 if args.quick else None, seed=args.seed)
    (x_tr, y_tr), (x_val, y_val), (x_te, y_te) = nnjax.data.split(
        args.seed, data.x, data.y, fractions=(0.6, 0.2, 0.2), stratify=data.y)
    _, x_tr, x_val, x_te = nnjax.data.standardize(x_tr, x_val, x_te)
    members, epochs = (8, 4) if args.quick else (32, 30)
    net = nnjax.MLP((64, 32, 10), activation="tanh", output="softmax")
    optimizer = optax.sgd(0.02)  # shared by every member (and reused by the single fit below)
    options = dict(loss="softmax_cross_entropy", epochs=epochs, batch_size=32, diagnostics=False)
    keys = jax.random.split(jax.random.key(args.seed), members)

    def population():
        return nnjax.fit_population(keys, net, (x_tr, y_tr), optimizer=optimizer, validation=(x_val, y_val),
                                    **options)

    def one_model():
        return nnjax.fit(keys[0], net, (x_tr, y_tr), optimizer=optimizer, validation=(x_val, y_val), **options)

    _common.timed(population)  # compile
    pop, pop_seconds = _common.timed(population)
    _common.timed(one_model)
    _, one_seconds = _common.timed(one_model)

    val_loss = nnjax.population.member_scores(pop, "val_loss")
    val_acc = nnjax.population.member_scores(pop, "val_accuracy")
    test_acc = test_accuracies(pop.params, net, x_te, y_te)
    best = nnjax.best_index(pop, "val_loss")
    order = np.argsort(val_loss)
    median_member = int(order[len(order) // 2])

    _common.section(f"{members} random starts, {epochs} epochs, {len(x_tr)} train / {len(x_val)} validation / "
                    f"{len(x_te)} test digits")
    rows = [[int(i), float(val_loss[i]), f"{val_acc[i]:.1%}", f"{test_acc[i]:.1%}",
             "best" if i == best else ("median" if i == median_member else "")] for i in order]
    shown = rows if len(rows) <= 10 else rows[:5] + [["...", "", "", "", ""]] + rows[-3:]
    _common.table(["member", "val loss", "val acc", "test acc", ""], shown)

    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    history = np.asarray(pop.history["val_loss"])
    for i in range(members):
        ax.plot(np.arange(1, epochs + 1), history[i], color="C0" if i == best else "0.7",
                lw=2 if i == best else 0.8, zorder=3 if i == best else 1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss")
    ax.set_title(f"{members} random starts (best by validation in blue)")
    _common.save(fig, args.out, "random_starts.png")

    gain = test_acc[best] - test_acc[median_member]
    rank_of_best_on_test = int(np.sum(test_acc > test_acc[best])) + 1
    per_model = pop_seconds / members
    mattered = "mattered" if test_acc.max() - test_acc.min() > 0.01 else "hardly mattered"
    _common.conclude(
        f"the starts ended with validation losses from {val_loss.min():.3f} to {val_loss.max():.3f} "
        f"(spread {val_loss.max() - val_loss.min():.3f}) and test accuracies from {test_acc.min():.1%} to "
        f"{test_acc.max():.1%}: the initialisation {mattered} here.",
        f"member {best}, chosen on validation loss, scored {test_acc[best]:.1%} on test against "
        f"{test_acc[median_member]:.1%} for the median member ({gain * 100:+.1f} points); it ranks "
        f"{rank_of_best_on_test} of {members} on test.",
        f"the population of {members} took {pop_seconds:.2f} s ({per_model * 1e3:.1f} ms per model) against "
        f"{one_seconds:.2f} s for one model alone: {members} models cost {pop_seconds / one_seconds:.1f}x one.",
    )
    return {"best": best, "test_accuracy": test_acc, "val_loss": val_loss, "seconds": pop_seconds}


if __name__ == "__main__":
    main()
