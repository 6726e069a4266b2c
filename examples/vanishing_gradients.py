"""Vanishing gradients in a 10-hidden-layer sigmoid network, and three ways out.

A deep sigmoid network whose weights start from a small normal (std 0.05) barely passes any
gradient back to its first layers: each layer multiplies the backward signal by at most
``0.25 * ||W||``. The same network is trained four ways on the digits data, each with the same
optimiser and data:

* sigmoid, small normal init            (the problem)
* ReLU with He init                      (activation and init matched to keep the scale)
* sigmoid, small normal init + batch norm
* sigmoid, small normal init + residual connections

``nnjax.diagnose`` reads each history and gives its verdict; the plot shows every layer's gradient
norm over the epochs, one panel per variant.

Usage::

    python examples/vanishing_gradients.py            # all digits, 30 epochs
    python examples/vanishing_gradients.py --quick    # 384 digits, 8 epochs
"""

from __future__ import annotations

import argparse
import functools
import pathlib
from typing import NamedTuple

import jax
import numpy as np
import optax

import _common  # puts the repository root on sys.path when run from a checkout
import nnjax


class Run(NamedTuple):
    """One trained variant: the fit result, its history as NumPy arrays, and the diagnosis."""

    result: nnjax.FitResult
    history: dict
    diagnosis: nnjax.Diagnosis


def variants(sizes: tuple[int, ...]) -> dict[str, nnjax.MLP]:
    """The four topologies, by name."""
    sigmoid = dict(activation="sigmoid", init="normal", output="softmax")
    return {
        "sigmoid + normal init": nnjax.MLP(sizes, **sigmoid),
        "relu + He init": nnjax.MLP(sizes, activation="relu", init="he_normal", output="softmax"),
        "sigmoid + batch norm": nnjax.MLP(sizes, batch_norm=True, **sigmoid),
        "sigmoid + residual": nnjax.MLP(sizes, residual=True, **sigmoid),
    }


@functools.lru_cache(maxsize=None)
def optimizer(learning_rate: float = 1e-3) -> optax.GradientTransformation:
    """Adam, one object per learning rate: fits with equal settings reuse one compiled program."""
    return optax.adam(learning_rate)


def load(n: int | None, seed: int):
    """Standardised digits, split 80/20 into training and validation data."""
    data = nnjax.data.load_dataset("digits", n=n, seed=seed)
    (x_train, y_train), (x_val, y_val) = nnjax.data.split(seed, data.x, data.y, stratify=data.y)
    _, x_train, x_val = nnjax.data.standardize(x_train, x_val)
    return (x_train, y_train), (x_val, y_val)


def experiment(*, quick: bool, epochs: int | None = None, depth: int = 10, width: int = 32, seed: int = 0) -> dict:
    """Trains the four variants on the same data; returns ``{name: Run}``.

    ``quick``: 384 digits, 8 epochs of batches of 16; otherwise all digits, 30 epochs of 32.
    """
    train, val = load(384 if quick else None, seed)
    epochs = epochs or (8 if quick else 30)
    sizes = (train[0].shape[1],) + (width,) * depth + (10,)

    def run(net: nnjax.MLP) -> Run:
        result = nnjax.fit(jax.random.key(seed), net, train, loss="softmax_cross_entropy", optimizer=optimizer(),
                           epochs=epochs, batch_size=16 if quick else 32, validation=val)
        history = jax.tree.map(np.asarray, result.history)
        return Run(result, history, nnjax.diagnose(history))

    # four topologies are four training programs: two compile at a time (_common.run_each)
    return _common.run_each({name: functools.partial(run, net) for name, net in variants(sizes).items()})


def plot(runs: dict, out: pathlib.Path) -> pathlib.Path:
    plt = _common.pyplot()

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True, sharey=True)
    for ax, (name, (_, history, diagnosis)) in zip(axes.ravel(), runs.items()):
        norms = history["layer_grad_norm"]
        colors = plt.cm.viridis(np.linspace(0, 1, norms.shape[1]))
        epochs = np.arange(1, norms.shape[0] + 1)
        for layer in range(norms.shape[1]):
            label = "output" if layer == norms.shape[1] - 1 else f"layer {layer + 1}"
            ax.plot(epochs, np.where(norms[:, layer] > 0, norms[:, layer], np.nan), color=colors[layer], label=label)
        ax.set_yscale("log")
        ax.set_title(f"{name}: {diagnosis.verdict} (val acc {history['val_accuracy'][-1]:.2f})", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("||dL/dW|| per layer")
    axes[0, 0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _common.save(fig, out, "vanishing_gradients.png")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="384 examples, 8 epochs")
    parser.add_argument("--epochs", type=int, default=None, help="default 30 (quick: 8)")
    parser.add_argument("--depth", type=int, default=10, help="hidden layers")
    parser.add_argument("--width", type=int, default=32, help="units per hidden layer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs") / "examples" / "vanishing_gradients",
                        help="directory for the plot")
    args = parser.parse_args(argv)
    if args.quick:
        _common.quick_compiles()  # before the first JAX computation
    runs = experiment(quick=args.quick, epochs=args.epochs, depth=args.depth, width=args.width, seed=args.seed)
    epochs = len(next(iter(runs.values())).history["loss"])
    print(f"{args.depth} hidden layers of {args.width}, adam(1e-3), {epochs} epochs"
          f"{' (quick: 384 digits)' if args.quick else ' (all digits)'}")
    print(f"{'variant':<24}{'verdict':<11}{'layer 1 / output grad':>22}{'loss':>16}{'val acc':>9}")
    for name, (_, h, d) in runs.items():
        loss = f"{h['loss'][0]:.3f}->{h['loss'][-1]:.3f}"
        print(f"{name:<24}{d.verdict:<11}{d.per_layer['grad_ratio'][0]:>22.2e}{loss:>16}{h['val_accuracy'][-1]:>9.3f}")
    for name, (_, _, d) in runs.items():
        print(f"verdict[{name}]: {d.verdict}")
    baseline_name = next(iter(runs))
    _, baseline_h, baseline = runs[baseline_name]
    print("\n" + baseline.report() + "\n")
    args.out.mkdir(parents=True, exist_ok=True)
    path = plot(runs, args.out)

    fixed = [n for n in list(runs)[1:] if runs[n].diagnosis.verdict == "healthy"]
    gains = {n: runs[n].diagnosis.per_layer["grad_ratio"][0] / baseline.per_layer["grad_ratio"][0] for n in list(runs)[1:]}
    statements = [
        f"{baseline_name} is {baseline.verdict}: layer 1 gets {baseline.per_layer['grad_ratio'][0]:.1e} of the output "
        f"layer's gradient and the loss improved {100 * baseline.evidence['loss_improvement']:.1f}% "
        f"(val acc {baseline_h['val_accuracy'][-1]:.2f})"
    ]
    for name in list(runs)[1:]:
        _, h, d = runs[name]
        statements.append(f"{name} is {d.verdict}: layer 1's share of the gradient x{gains[name]:.1e} the baseline's, "
                          f"val acc {h['val_accuracy'][-1]:.2f}")
    statements.append(f"{len(fixed)} of {len(runs) - 1} remedies give a healthy diagnosis (plot: {path})")
    _common.conclude(*statements)
    return {name: run.diagnosis.verdict for name, run in runs.items()}


if __name__ == "__main__":
    main()
