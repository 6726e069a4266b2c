"""Adam vs plain SGD (and SGD with momentum), on well-scaled and badly scaled features.

SGD moves every weight by ``lr * gradient``: one learning rate must suit every direction, so
features on very different scales (the breast-cancer data mixes values near 0.01 with values
in the thousands) make it either crawl or blow up. Adam divides each coordinate's step by a
running estimate of its gradient's size, so its steps are about ``lr`` whatever the scale. The
script trains the same network with each optimizer and the same learning rate, on raw and on
standardised features, and reports the final losses, held-out accuracy, and how many steps
nnjax's non-finite guard had to skip (a step whose loss or gradients overflow is not applied).

Run: ``python examples/adam_vs_sgd.py [--quick] [--out DIR] [--seed N]``
"""

from __future__ import annotations

import _common

import jax
import numpy as np
import optax

import nnjax

LR = 0.01


def main(argv: list[str] | None = None) -> dict:
    args = _common.parse_args("adam_vs_sgd", "Adam vs SGD on raw and standardised features", argv)
    data = nnjax.data.load_dataset("breast_cancer")
    (x_train, y_train), (x_test, y_test) = nnjax.data.split(args.seed, data.x, data.y, stratify=data.y)
    _, z_train, z_test = nnjax.data.standardize(x_train, x_test)
    features = {"raw": (x_train, x_test), "standardised": (z_train, z_test)}
    optimizers = {"sgd": optax.sgd(LR), "momentum 0.9": optax.sgd(LR, momentum=0.9), "adam": optax.adam(LR)}
    if args.quick:  # each optimizer is one compilation (reused for both feature sets): keep two
        optimizers.pop("momentum 0.9")
    net = nnjax.MLP((x_train.shape[1], 16, 1), activation="relu", output="sigmoid")
    epochs = 40 if args.quick else 100

    runs = {}
    for opt_name, optimizer in optimizers.items():
        for feat_name, (xtr, xte) in features.items():
            result = nnjax.fit(jax.random.key(args.seed), net, (xtr, y_train), loss="binary_cross_entropy",
                               optimizer=optimizer, epochs=epochs, batch_size=32, validation=(xte, y_test),
                               diagnostics=False)
            h = result.history
            runs[(opt_name, feat_name)] = {
                "losses": np.asarray(h["loss"], np.float64), "final": float(h["loss"][-1]),
                "accuracy": float(h["val_accuracy"][-1]), "skipped": int(np.sum(h["skipped"])),
                "steps": epochs * -(-len(xtr) // 32),
            }

    spread = float(np.max(x_train.std(axis=0)) / np.min(x_train.std(axis=0)))
    _common.section(f"breast cancer: {len(y_train)} train / {len(y_test)} test, learning rate {LR}, {epochs} epochs; "
                    f"raw feature scales differ by {spread:.3g}x")
    _common.table(["optimizer", "features", "final loss", "test accuracy", "skipped steps"],
                  [[o, f, r["final"], f"{r['accuracy']:.1%}", f"{r['skipped']} of {r['steps']}"]
                   for (o, f), r in runs.items()])

    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, feat_name in zip(axes, features):
        for opt_name in optimizers:
            r = runs[(opt_name, feat_name)]
            ax.plot(np.arange(1, epochs + 1), r["losses"], label=f"{opt_name} (test acc {r['accuracy']:.0%})")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(f"{feat_name} features")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("training loss")
    _common.save(fig, args.out, "adam_vs_sgd.png")

    adam_raw, adam_std = runs[("adam", "raw")], runs[("adam", "standardised")]
    sgd_raw, sgd_std = runs[("sgd", "raw")], runs[("sgd", "standardised")]
    best_std = min((o for o in optimizers), key=lambda o: runs[(o, "standardised")]["final"])
    _common.conclude(
        f"on raw features Adam reaches loss {adam_raw['final']:.3f} and {adam_raw['accuracy']:.1%} test accuracy; "
        f"SGD with the same rate reaches {sgd_raw['final']:.3g} and {sgd_raw['accuracy']:.1%}"
        + (f", and {sgd_raw['skipped']} of its {sgd_raw['steps']} steps overflowed and were skipped by the guard"
           if sgd_raw["skipped"] else "") + ".",
        f"standardising the features {'lowers' if sgd_std['final'] < sgd_raw['final'] else 'does not lower'} SGD's final loss: from {sgd_raw['final']:.3g} to {sgd_std['final']:.3g} and "
        f"its test accuracy {'rises' if sgd_std['accuracy'] > sgd_raw['accuracy'] else 'changes'} from "
        f"{sgd_raw['accuracy']:.1%} to {sgd_std['accuracy']:.1%} (Adam: loss {adam_raw['final']:.3g} to "
        f"{adam_std['final']:.3g}, accuracy {adam_raw['accuracy']:.1%} to {adam_std['accuracy']:.1%}): "
        f"on raw features {'Adam' if adam_raw['final'] < sgd_raw['final'] else 'SGD'} is the better choice.",
        f"on standardised features {best_std} ends lowest (" + ", ".join(
            f"{o} {runs[(o, 'standardised')]['final']:.3f}" for o in optimizers) + ").",
    )
    return runs


if __name__ == "__main__":
    main()
