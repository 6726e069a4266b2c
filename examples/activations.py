"""Activation functions and their derivatives, measured with ``jax.grad``.

Each activation is evaluated on a grid and differentiated elementwise with
``jax.vmap(jax.grad(f))``; the script plots every function next to its derivative and
measures what matters for training: the largest slope (sigmoid's 1/4 is why deep sigmoid nets
have vanishing gradients), where the slope is zero (step and sign cannot be trained by
gradients; ReLU is flat for every negative input), and what a chain of layers does to a
gradient when each layer multiplies it by the best slope the activation offers.

Run: ``python examples/activations.py [--quick] [--out DIR]``
"""

from __future__ import annotations

import _common  # noqa: F401  (sets the plot backend and finds nnjax in a checkout)

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import activations

NAMES = ("identity", "step", "sign", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu")
DEPTH = 10  # layers in the "chain of derivatives" estimate


def derivative(name: str):
    """Elementwise derivative of the activation ``name`` (a function of an array)."""
    f = activations.get(name)
    return jax.jit(jax.vmap(jax.grad(lambda t: f(t))))


def measure(grid: jax.Array) -> dict[str, dict[str, float]]:
    """Per activation: its values and slopes on ``grid`` and summary numbers."""
    out = {}
    for name in NAMES:
        values = np.asarray(activations.get(name)(grid))
        slopes = np.asarray(derivative(name)(grid))
        out[name] = {
            "values": values,
            "slopes": slopes,
            "max_slope": float(np.max(np.abs(slopes))),
            "argmax_slope": float(grid[int(np.argmax(np.abs(slopes)))]),
            "slope_at_0": float(derivative(name)(jnp.zeros((1,)))[0]),
            "flat_fraction": float(np.mean(np.abs(slopes) < 1e-3)),
            "negative_flat_fraction": float(np.mean(np.abs(slopes[grid < 0]) < 1e-3)),
        }
    return out


def plot(grid: np.ndarray, stats: dict, out) -> None:
    plt = _common.pyplot()
    cols = 5
    rows = -(-len(NAMES) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), sharex=True)
    for ax, name in zip(axes.flat, NAMES):
        ax.plot(grid, stats[name]["values"], label="f(x)", color="tab:blue")
        ax.plot(grid, stats[name]["slopes"], label="f'(x)", color="tab:orange", linestyle="--")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.axvline(0, color="grey", linewidth=0.5)
        ax.set_title(f"{name}  (max |f'| = {stats[name]['max_slope']:.3g})", fontsize=9)
        ax.set_ylim(-1.6, 2.6)
    axes.flat[0].legend(loc="upper left", fontsize=8)
    for ax in list(axes.flat)[len(NAMES):]:
        ax.set_visible(False)
    fig.suptitle("Activation functions (solid) and their derivatives from jax.grad (dashed)")
    _common.save(fig, out, "activations.png")


def main(argv: list[str] | None = None) -> dict:
    args = _common.parse_args("activations", "each activation with its derivative", argv)
    grid = jnp.linspace(-4.0, 4.0, 161 if args.quick else 801)
    stats = measure(grid)

    _common.section(f"derivatives on a grid of {grid.size} points in [-4, 4]")
    _common.table(
        ["activation", "max |f'|", "f'(0)", "flat (|f'|<1e-3)", "flat for x<0", f"max|f'|^{DEPTH}"],
        [[n, s["max_slope"], s["slope_at_0"], f"{s['flat_fraction']:.0%}", f"{s['negative_flat_fraction']:.0%}",
          s["max_slope"] ** DEPTH] for n, s in stats.items()],
    )
    plot(np.asarray(grid), stats, args.out)

    sig, tanh, relu = stats["sigmoid"], stats["tanh"], stats["relu"]
    untrainable = [n for n, s in stats.items() if s["flat_fraction"] == 1.0]
    saturating = [n for n in ("sigmoid", "tanh") if stats[n]["slopes"][0] < 0.1 * stats[n]["max_slope"]]
    _common.conclude(
        f"sigmoid's slope never exceeds {sig['max_slope']:.4f} (reached at x = {sig['argmax_slope']:.2g}), so through {DEPTH} "
        f"sigmoid layers a gradient shrinks by a factor of at least {1 / sig['max_slope'] ** DEPTH:.3g}; "
        f"tanh's peak slope is {tanh['max_slope']:.3f} and ReLU's is {relu['max_slope']:.3f}, "
        f"whose {DEPTH}-layer products are {tanh['max_slope'] ** DEPTH:.3g} and {relu['max_slope'] ** DEPTH:.3g}.",
        f"{', '.join(untrainable) or 'no activation'} ha{'ve' if len(untrainable) != 1 else 's'} a zero slope at "
        "every grid point: gradient descent gets no signal through them (the perceptron rule is used instead).",
        f"ReLU is flat on {relu['negative_flat_fraction']:.0%} of the negative inputs (a unit that only sees "
        f"negative inputs stops learning), leaky_relu on {stats['leaky_relu']['negative_flat_fraction']:.0%} "
        f"(slope {stats['leaky_relu']['slopes'][0]:.3g} there).",
        f"{' and '.join(saturating) or 'neither sigmoid nor tanh'} saturate: at x = {float(grid[0]):.0f} "
        f"the slope is below 10% of the peak ({sig['slopes'][0]:.2g} for sigmoid, {tanh['slopes'][0]:.2g} for tanh).",
    )
    return stats


if __name__ == "__main__":
    main()
