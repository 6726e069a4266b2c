"""Zero initialisation keeps every hidden unit identical; random initialisation breaks the symmetry.

If all weights start at the same value, every unit of a hidden layer computes the same output,
receives the same gradient and takes the same update -- forever. The layer then behaves like a
single unit, however wide it is. The script trains one network on XOR twice from two starting
points, all-zero parameters and Xavier-normal random parameters (``fit(..., params=...)``; the
same topology and optimizer, so the compiled program is reused), and measures how different the
hidden units end up.

Run: ``python examples/zero_init_symmetry.py [--quick] [--out DIR] [--seed N]``
"""

from __future__ import annotations

import _common

import jax
import numpy as np
import optax

import nnjax

HIDDEN = 8


def unit_spread(params) -> float:
    """The largest difference between any hidden unit's parameters and unit 0's (0: all identical)."""
    first, second = params[0], params[1]
    per_unit = np.concatenate([np.asarray(first["w"]), np.asarray(first["b"])[None, :],
                               np.asarray(second["w"]).T], axis=0)  # one column per hidden unit
    return float(np.max(np.abs(per_unit - per_unit[:, :1])))


def distinct_units(params, x: np.ndarray) -> int:
    """How many different functions the hidden units compute on ``x`` (to 1e-6)."""
    hidden = np.asarray(jax.nn.sigmoid(x @ params[0]["w"] + params[0]["b"]))
    return len(np.unique(np.round(hidden.T, 6), axis=0))


def main(argv: list[str] | None = None) -> dict:
    args = _common.parse_args("zero_init_symmetry", "zero init keeps hidden units identical", argv)
    data = nnjax.data.load_dataset("xor", n=200, seed=args.seed)
    net = nnjax.MLP((2, HIDDEN, 1), activation="sigmoid", output="sigmoid", init="xavier_normal")
    optimizer = optax.adam(0.05)
    random_start = nnjax.init(jax.random.key(args.seed), net)
    starts = {"zeros": jax.tree.map(np.zeros_like, random_start), "xavier_normal": random_start}

    runs = {}
    for name, start in starts.items():
        result = nnjax.fit(jax.random.key(args.seed), net, (data.x, data.y), loss="binary_cross_entropy",
                           optimizer=optimizer, epochs=150 if args.quick else 400, batch_size=32,
                           params=start, diagnostics=False)
        runs[name] = {"result": result, "spread_before": unit_spread(start), "spread_after": unit_spread(result.params),
                      "distinct": distinct_units(result.params, data.x),
                      "accuracy": float(result.history["accuracy"][-1]), "loss": float(result.history["loss"][-1])}

    _common.section(f"XOR, {HIDDEN} sigmoid hidden units, Adam, same data order for both starts")
    _common.table(["start", "unit spread before", "unit spread after", "distinct hidden units", "final loss", "accuracy"],
                  [[k, r["spread_before"], r["spread_after"], r["distinct"], r["loss"], f"{r['accuracy']:.1%}"]
                   for k, r in runs.items()])

    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for name, r in runs.items():
        axes[0].plot(np.asarray(r["result"].history["loss"]), label=f"{name} start")
        w = np.asarray(r["result"].params[0]["w"])
        axes[1].scatter(w[0], w[1], s=60 if name == "zeros" else 25, marker="s" if name == "zeros" else "o",
                        label=f"{name}: {r['distinct']} distinct unit(s)")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("training loss")
    axes[0].set_title("Loss")
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("weight from x0")
    axes[1].set_ylabel("weight from x1")
    axes[1].set_title("Hidden units' incoming weights, trained")
    axes[1].legend(fontsize=8)
    grid = np.stack(np.meshgrid(np.linspace(-2.5, 2.5, 120), np.linspace(-2.5, 2.5, 120)), -1).reshape(-1, 2)
    diff = np.asarray(nnjax.predict(runs["xavier_normal"]["result"].params, grid, net))[:, 0]
    same = np.asarray(nnjax.predict(runs["zeros"]["result"].params, grid, net))[:, 0]
    axes[2].contour(grid[:, 0].reshape(120, 120), grid[:, 1].reshape(120, 120), diff.reshape(120, 120), levels=[0.5],
                    colors="tab:orange")
    axes[2].contour(grid[:, 0].reshape(120, 120), grid[:, 1].reshape(120, 120), same.reshape(120, 120), levels=[0.5],
                    colors="tab:blue", linestyles="--")
    axes[2].scatter(data.x[:, 0], data.x[:, 1], c=data.y, cmap="coolwarm", s=8)
    axes[2].set_title("Boundary: random (solid), zeros (dashed)")
    _common.save(fig, args.out, "zero_init_symmetry.png")

    zero, rand = runs["zeros"], runs["xavier_normal"]
    acts_like = "one unit" if zero["distinct"] == 1 else f"{zero['distinct']} units"
    _common.conclude(
        f"from all-zero parameters the {HIDDEN} hidden units stay {'exactly ' if zero['spread_after'] == 0 else ''}"
        f"{'identical' if zero['spread_after'] < 1e-6 else 'different'} (largest difference {zero['spread_after']:.3g} "
        f"after training): the layer computes {zero['distinct']} distinct function(s), so it acts like "
        f"{acts_like}.",
        f"from a random start the units differ from the first step on (spread {rand['spread_before']:.3g} before, "
        f"{rand['spread_after']:.3g} after) and compute {rand['distinct']} distinct functions.",
        f"on XOR, which one hidden unit cannot solve, the zero start reaches {zero['accuracy']:.1%} training accuracy "
        f"(loss {zero['loss']:.3f}) and the random start {rand['accuracy']:.1%} (loss {rand['loss']:.3f}).",
    )
    return runs


if __name__ == "__main__":
    main()
