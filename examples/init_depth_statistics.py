"""Activation variance through depth for each weight-init scheme, with tanh and with ReLU.

A deep stack of equal-width hidden layers is fed standard-normal inputs; the variance of each
layer's activations (over examples and units) shows whether an init keeps the signal's scale
steady, lets it die out or blows it up. Roughly, a layer multiplies the variance by
``n_in * Var(W) * c``, with ``c`` = 1/2 for ReLU (half the units are off) and ``c`` <= 1 for tanh
(it squashes large values): He (``Var(W) = 2/n``) is built for ReLU, LeCun and Xavier (``1/n`` for
equal widths) sit at the edge for tanh, a fixed small normal shrinks the signal layer after layer,
and zeros make every unit compute the same value. The printed verdicts are measured, not assumed.
No training happens here.

Usage::

    python examples/init_depth_statistics.py            # 30 layers of 256 units, 2000 examples
    python examples/init_depth_statistics.py --quick    # 12 layers of 64 units
"""

from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import _common  # puts the repository root on sys.path when run from a checkout
import nnjax

INITS = ("zeros", "normal", "xavier_normal", "he_normal", "lecun_normal")
ACTIVATIONS = ("tanh", "relu")
STEADY = (0.9, 1.1)  # per-layer variance factor counted as "steady"


def activation_variances(activation: str, init: str, *, depth: int, width: int, n: int, seed: int) -> np.ndarray:
    """The variance of each hidden layer's activations, shape ``(depth,)``."""
    net = nnjax.MLP((width,) * (depth + 1) + (1,), activation=activation, init=init)
    key = jax.random.key(seed)
    params = nnjax.init(key, net)
    x = jax.random.normal(jax.random.fold_in(key, 1), (n, width))
    forward = jax.jit(lambda p, x: nnjax.apply_with_state(p, None, x, net, return_hidden=True)[2])
    return np.array([float(jnp.var(h)) for h in forward(params, x)])


def per_layer_factor(variances: np.ndarray) -> float:
    """Geometric mean of the variance's change from one layer to the next (NaN if it is 0)."""
    first, last = variances[0], variances[-1]
    if not (first > 0 and last > 0):
        return float("nan")
    return float((last / first) ** (1.0 / max(len(variances) - 1, 1)))


def describe(variances: np.ndarray) -> str:
    factor = per_layer_factor(variances)
    if not np.isfinite(factor):
        return "zero (every unit computes the same value)"
    if factor < STEADY[0]:
        return f"shrinking (x{factor:.3f} per layer)"
    if factor > STEADY[1]:
        return f"growing (x{factor:.3f} per layer)"
    return f"steady (x{factor:.3f} per layer)"


def plot(results: dict, depth: int, width: int, out: pathlib.Path) -> pathlib.Path:
    plt = _common.pyplot()

    fig, axes = plt.subplots(1, len(ACTIVATIONS), figsize=(11, 4.2), sharey=True)
    layers = np.arange(1, depth + 1)
    for ax, activation in zip(axes, ACTIVATIONS):
        for init in INITS:
            v = results[activation, init]
            label = init if np.any(v > 0) else f"{init} (variance 0)"
            style = "--" if init == "lecun_normal" else "-"  # equal widths: LeCun's variance is Xavier's
            ax.plot(layers, np.where(v > 0, v, np.nan), style, marker=".", label=label)
        ax.set_yscale("log")
        ax.set_title(f"{activation}: {depth} layers of {width} units")
        ax.set_xlabel("hidden layer")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("variance of the activations")
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    return _common.save(fig, out, "init_depth_statistics.png")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small stack that runs in seconds")
    parser.add_argument("--depth", type=int, default=None, help="hidden layers (default 30, quick 12)")
    parser.add_argument("--width", type=int, default=None, help="units per layer (default 256, quick 64)")
    parser.add_argument("--n", type=int, default=None, help="examples (default 2000, quick 256)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs") / "examples" / "init_depth_statistics",
                        help="directory for the plot")
    args = parser.parse_args(argv)
    if args.quick:
        _common.quick_compiles()  # before the first JAX computation
    depth = args.depth or (12 if args.quick else 30)
    width = args.width or (64 if args.quick else 256)
    n = args.n or (256 if args.quick else 2000)
    args.out.mkdir(parents=True, exist_ok=True)

    results = {
        (activation, init): activation_variances(activation, init, depth=depth, width=width, n=n, seed=args.seed)
        for activation in ACTIVATIONS
        for init in INITS
    }
    print(f"activation variance through {depth} hidden layers of {width} units ({n} standard-normal inputs)")
    print(f"{'activation':<11}{'init':<15}{'layer 1':>10}{f'layer {depth}':>11}  verdict")
    for (activation, init), v in results.items():
        print(f"{activation:<11}{init:<15}{v[0]:>10.3g}{v[-1]:>11.3g}  {describe(v)}")
    path = plot(results, depth, width, args.out)

    steady, statements = {}, []
    for activation in ACTIVATIONS:
        factors = {init: per_layer_factor(results[activation, init]) for init in INITS}
        steady[activation] = [i for i, f in factors.items() if STEADY[0] <= f <= STEADY[1]]
        closest = min((i for i in INITS if np.isfinite(factors[i])), key=lambda i: abs(np.log(factors[i])))
        statements.append(f"{activation}: variance steady with {', '.join(steady[activation]) or 'none'}; closest "
                          f"to x1 per layer: {closest} (x{factors[closest]:.3f})")
    statements.append(f"zeros give every unit the same value: variance {results['relu', 'zeros'][-1]:g} at the "
                      f"last layer (plot: {path})")
    _common.conclude(*statements)
    return {"results": results, "steady": steady, "plot": str(path)}


if __name__ == "__main__":
    main()
