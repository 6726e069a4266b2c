"""Regularisation: L1 vs L2 weight penalties, and dropout against overfitting.

Part 1 trains the same network three ways -- no penalty, ``l1`` and ``l2`` -- on data where only
4 of 20 input features carry signal. The penalty strengths are traced numbers, so the three runs
are one ``jax.vmap`` of ``nnjax.fit`` (one compilation). L1 (``l1 * sum|W|``) pushes weights to
(nearly) exactly zero: a sparse network that ignores the noise features. L2 (``l2 * sum W^2``)
shrinks every weight but rarely to zero.

Part 2 trains a wide network on 100 noisy two-moons points, with and without dropout (again
one vmap, over the traced dropout rate), and compares the gap between training and validation
loss, both measured in evaluation mode (no units dropped) after training.

Run: ``python examples/regularization.py [--quick] [--out DIR] [--seed N]``
"""

from __future__ import annotations

import _common

import jax
import jax.numpy as jnp
import numpy as np
import optax

import nnjax

N_FEATURES, N_INFORMATIVE = 20, 4
SMALL = 1e-3  # a weight below this in magnitude counts as zero


def sparse_signal_data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels from a noisy linear rule on the first 4 of 20 standard-normal features."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, N_FEATURES)).astype(np.float32)
    w = np.zeros(N_FEATURES)
    w[:N_INFORMATIVE] = [2.0, -1.5, 1.0, -0.5]
    y = (x @ w + 0.3 * rng.standard_normal(n) > 0).astype(np.int32)
    return x, y


def penalties(args) -> dict:
    x, y = sparse_signal_data(args.seed, 200 if args.quick else 400)
    net = nnjax.MLP((N_FEATURES, 16, 1), activation="tanh", output="sigmoid")
    names = ("none", "L1", "L2")
    l1 = jnp.array([0.0, 3e-3, 0.0])
    l2 = jnp.array([0.0, 0.0, 3e-3])
    optimizer = optax.sgd(0.1)

    def train(l1, l2):
        return nnjax.fit(jax.random.key(args.seed), net, (x, y), loss="binary_cross_entropy", optimizer=optimizer,
                         epochs=100, batch_size=32, l1=l1, l2=l2, diagnostics=False)

    # jit(vmap(...)): the three runs and the stacking of their results are one program
    results = jax.device_get(jax.jit(jax.vmap(train))(l1, l2))
    out = {}
    for i, name in enumerate(names):
        params = jax.tree.map(lambda a: a[i], results.params)
        weights = np.concatenate([layer["w"].ravel() for layer in params])
        rows = np.linalg.norm(params[0]["w"], axis=1)  # how much each input feature is used
        out[name] = {"weights": weights, "feature_norms": rows, "zero_fraction": float(np.mean(np.abs(weights) < SMALL)),
                     "accuracy": float(results.history["accuracy"][i, -1]),
                     "l1": float(l1[i]), "l2": float(l2[i]),
                     "noise_use": float(rows[N_INFORMATIVE:].mean() / rows[:N_INFORMATIVE].mean())}
    return out


def dropout(args) -> dict:
    moons = nnjax.data.load_dataset("moons", n=1100, noise=0.35, seed=args.seed)
    x_train, y_train, x_val, y_val = moons.x[:100], moons.y[:100], moons.x[100:], moons.y[100:]
    width = 64 if args.quick else 256
    net = nnjax.MLP((2, width, width, 1), activation="relu", output="sigmoid")
    loss = nnjax.losses.resolve("binary_cross_entropy")
    rates = jnp.array([0.0, 0.5])
    optimizer = optax.adam(3e-3)

    def train(rate):
        return nnjax.fit(jax.random.key(args.seed), net, (x_train, y_train), loss=loss, optimizer=optimizer,
                         epochs=120 if args.quick else 400, batch_size=20, dropout=rate,
                         validation=(x_val, y_val), diagnostics=False)

    results = jax.device_get(jax.jit(jax.vmap(train))(rates))
    # evaluation mode (no units dropped), one compiled program per split's shape
    evaluate = jax.jit(nnjax.training.evaluate, static_argnums=(4, 5))
    out = {}
    for i, rate in enumerate(np.asarray(rates)):
        params = jax.tree.map(lambda a: a[i], results.params)
        train_m = jax.device_get(evaluate(params, None, x_train, y_train, net, loss))
        val_m = jax.device_get(evaluate(params, None, x_val, y_val, net, loss))
        out[float(rate)] = {
            "train_loss": float(train_m["loss"]), "val_loss": float(val_m["loss"]),
            "train_accuracy": float(train_m["accuracy"]), "val_accuracy": float(val_m["accuracy"]),
            "val_curve": np.asarray(results.history["val_loss"][i]),
        }
        out[float(rate)]["gap"] = out[float(rate)]["val_loss"] - out[float(rate)]["train_loss"]
    return out


def plot(pen: dict, drop: dict, out) -> None:
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    bins = np.linspace(-1.5, 1.5, 61)
    for name, r in pen.items():
        axes[0].hist(np.clip(r["weights"], bins[0], bins[-1]), bins=bins, histtype="step", linewidth=1.5,
                     label=f"{name}: {r['zero_fraction']:.0%} of |w| < {SMALL:g}")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("weight value")
    axes[0].set_ylabel("count (log)")
    axes[0].set_title("Weights after training")
    axes[0].legend(fontsize=8)
    positions = np.arange(N_FEATURES)
    for j, (name, r) in enumerate(pen.items()):
        axes[1].bar(positions + (j - 1) * 0.28, r["feature_norms"], width=0.28, label=name)
    axes[1].axvspan(-0.5, N_INFORMATIVE - 0.5, color="green", alpha=0.08, label="informative features")
    axes[1].set_xlabel("input feature")
    axes[1].set_ylabel("norm of its outgoing weights")
    axes[1].set_title("How much each input is used")
    axes[1].legend(fontsize=8)
    _common.save(fig, out, "l1_vs_l2.png")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for rate, r in drop.items():
        axes[0].plot(r["val_curve"], label=f"dropout {rate:g}")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("validation loss")
    axes[0].set_yscale("log")
    axes[0].set_title("Validation loss while training")
    axes[0].legend(fontsize=8)
    labels = [f"dropout {rate:g}" for rate in drop]
    positions = np.arange(len(drop))
    axes[1].bar(positions - 0.2, [r["train_loss"] for r in drop.values()], width=0.4, label="training")
    axes[1].bar(positions + 0.2, [r["val_loss"] for r in drop.values()], width=0.4, label="validation")
    axes[1].set_xticks(positions, labels)
    axes[1].set_ylabel("loss (evaluation mode)")
    axes[1].set_title("Train/validation gap after training")
    axes[1].legend(fontsize=8)
    _common.save(fig, out, "dropout.png")


def main(argv: list[str] | None = None) -> dict:
    args = _common.parse_args("regularization", "L1 vs L2 penalties; dropout and the generalisation gap", argv)
    pen = penalties(args)
    _common.section(f"L1 vs L2: {N_INFORMATIVE} informative of {N_FEATURES} features (one vmapped fit)")
    _common.table(["penalty", "l1", "l2", f"|w| < {SMALL:g}", "noise/informative use", "train accuracy"],
                  [[k, r["l1"], r["l2"], f"{r['zero_fraction']:.1%}", r["noise_use"], f"{r['accuracy']:.1%}"]
                   for k, r in pen.items()])
    drop = dropout(args)
    _common.section("dropout on 100 noisy two-moons points (one vmapped fit over the rate)")
    _common.table(["dropout", "train loss", "val loss", "gap", "train acc", "val acc"],
                  [[rate, r["train_loss"], r["val_loss"], r["gap"], f"{r['train_accuracy']:.1%}",
                    f"{r['val_accuracy']:.1%}"] for rate, r in drop.items()])
    plot(pen, drop, args.out)

    l1, l2, none = pen["L1"], pen["L2"], pen["none"]
    without, with_ = drop[0.0], drop[0.5]
    sparser = "L1" if l1["zero_fraction"] > l2["zero_fraction"] else "L2"
    narrower = with_["gap"] < without["gap"]
    _common.conclude(
        f"{sparser} gives the sparser network: {l1['zero_fraction']:.0%} of the weights end below {SMALL:g} with L1, "
        f"{l2['zero_fraction']:.0%} with L2 and {none['zero_fraction']:.0%} without a penalty.",
        f"the noise features' weights are {l1['noise_use']:.0%} as large as the informative ones' with L1, "
        f"{l2['noise_use']:.0%} with L2 and {none['noise_use']:.0%} without: "
        f"{'L1 does the most feature selection' if l1['noise_use'] < min(l2['noise_use'], none['noise_use']) else 'L1 did not select features best here'}.",
        f"dropout 0.5 {'narrowed' if narrower else 'did not narrow'} the train/validation loss gap: "
        f"{without['gap']:.3f} without dropout, {with_['gap']:.3f} with it "
        f"(validation accuracy {without['val_accuracy']:.1%} vs {with_['val_accuracy']:.1%}).",
    )
    return {"penalties": pen, "dropout": drop}


if __name__ == "__main__":
    main()
