"""Exploding gradients in a deep ReLU network, the NaN guard, and three fixes.

Ten hidden ReLU layers whose weights start from N(0, 0.3^2) -- above He's std sqrt(2/n_in), 0.25 for
32 inputs and 0.18 for 64 -- amplify the signal at every layer, forward and backward; with plain SGD at a high learning rate the first
steps overshoot, the loss turns NaN and the guard inside ``nnjax.fit`` skips every step whose loss,
gradients or new parameters are not finite (the parameters stay finite). The same start is then
trained with each fix:

* gradient clipping:  ``fit(..., clip_norm=1.0)``
* a learning-rate schedule: linear warm-up from 0 over two epochs to a third of the constant rate,
  then cosine decay (a schedule that peaks at the full rate still diverges on some CPUs: at that
  peak the run sits on the edge of divergence, and which side it lands on follows the rounding)
* Adam at 1e-3

``nnjax.diagnose`` reads each history; the plot shows every layer's gradient norm over the epochs
(one panel per variant) and the loss curves.

Usage::

    python examples/exploding_gradients.py            # all digits, 20 epochs
    python examples/exploding_gradients.py --quick    # 384 digits, 8 epochs
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


def load(n: int | None, seed: int):
    """Standardised digits, split 80/20 into training and validation data."""
    data = nnjax.data.load_dataset("digits", n=n, seed=seed)
    (x_train, y_train), (x_val, y_val) = nnjax.data.split(seed, data.x, data.y, stratify=data.y)
    _, x_train, x_val = nnjax.data.standardize(x_train, x_val)
    return (x_train, y_train), (x_val, y_val)


@functools.partial(jax.jit, static_argnums=(0, 1))
def wide_normal_params(net: nnjax.MLP, stddev: float, *, key) -> list:
    """Parameters with every weight matrix drawn from N(0, stddev^2) and zero biases (one compiled
    program: op by op, every layer's draw would compile a program of its own). The barrier keeps
    the scaling out of the draw's fused kernel, so the bits are those of the draw scaled op by op."""
    draw = lambda i, shape: jax.lax.optimization_barrier(jax.random.normal(jax.random.fold_in(key, i), shape))
    return [{"w": stddev * draw(i, layer["w"].shape), "b": layer["b"]} for i, layer in enumerate(nnjax.init(key, net))]


@functools.lru_cache(maxsize=None)
def variants(lr: float, steps_per_epoch: int, epochs: int) -> dict[str, optax.GradientTransformation]:
    """``name -> optimizer``, the same objects for the same arguments (so compiled programs are reused).

    Clipping is ``optax.chain(optax.clip_by_global_norm(1.0), sgd)``, exactly what
    ``nnjax.fit(..., clip_norm=1.0)`` puts in front of the optimizer.
    """
    sgd = optax.sgd(lr)
    # Peak lr / 3: far from the edge where float rounding decides between training and diverging.
    warmup_cosine = optax.warmup_cosine_decay_schedule(0.0, lr / 3, 2 * steps_per_epoch, epochs * steps_per_epoch)
    return {
        f"sgd lr {lr:g}": sgd,
        "+ clip_norm=1.0": optax.chain(optax.clip_by_global_norm(1.0), sgd),
        "+ warm-up/cosine schedule": optax.sgd(warmup_cosine),
        "adam 1e-3": optax.adam(1e-3),
    }


class Run(NamedTuple):
    """One trained variant: the fit result, its history as NumPy arrays, and the diagnosis."""

    result: nnjax.FitResult
    history: dict
    diagnosis: nnjax.Diagnosis
    steps_per_epoch: int
    n_train: int


def experiment(*, quick: bool, epochs: int | None = None, depth: int = 10, width: int = 32, init_std: float = 0.3,
               lr: float = 0.3, seed: int = 0) -> dict:
    """Trains every variant from the same wide-normal start; returns ``{name: Run}``.

    ``quick``: 384 digits and 8 epochs; otherwise all digits and 20 epochs; batches of 16.
    """
    train, val = load(384 if quick else None, seed)
    epochs = epochs or (8 if quick else 20)
    batch_size = 16
    sizes = (train[0].shape[1],) + (width,) * depth + (10,)
    net = nnjax.MLP(sizes, activation="relu", output="softmax")
    start = wide_normal_params(net, init_std, key=jax.random.key(seed + 1))
    steps = -(-len(train[0]) // batch_size)

    def run(optimizer: optax.GradientTransformation) -> Run:
        result = nnjax.fit(jax.random.key(seed), net, train, loss="softmax_cross_entropy", optimizer=optimizer,
                           epochs=epochs, batch_size=batch_size, validation=val, params=start)
        history = jax.tree.map(np.asarray, result.history)
        return Run(result, history, nnjax.diagnose(history), steps, len(train[0]))

    # four optimizers are four training programs: two compile at a time (_common.run_each)
    return _common.run_each({name: functools.partial(run, opt) for name, opt in variants(lr, steps, epochs).items()})


def params_finite(result: nnjax.FitResult) -> bool:
    return all(bool(np.all(np.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(result.params))


def plot(runs: dict, out: pathlib.Path) -> pathlib.Path:
    plt = _common.pyplot()

    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    grad_axes = [axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1]]
    for ax, (name, (_, history, diagnosis, *_)) in zip(grad_axes, runs.items()):
        norms = history["layer_grad_norm"]
        colors = plt.cm.viridis(np.linspace(0, 1, norms.shape[1]))
        epochs = np.arange(1, norms.shape[0] + 1)
        for layer in range(norms.shape[1]):
            label = "output" if layer == norms.shape[1] - 1 else f"layer {layer + 1}"
            column = norms[:, layer]
            ax.plot(epochs, np.where(np.isfinite(column) & (column > 0), column, np.nan), marker=".",
                    color=colors[layer], label=label)
        ax.set_yscale("log")
        ax.set_xlim(0.5, norms.shape[0] + 0.5)  # epochs whose every step was NaN leave no point
        ax.set_title(f"{name}: {diagnosis.verdict} ({history['skipped'].sum()} steps skipped)", fontsize=10)
        ax.set_ylabel("||dL/dW|| per layer")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3, which="both")
    grad_axes[0].legend(fontsize=7, ncol=2)
    for name, (_, history, *_) in runs.items():
        axes[0, 2].plot(np.arange(1, len(history["loss"]) + 1), history["loss"], marker=".", label=name)
        axes[1, 2].plot(np.arange(1, len(history["loss"]) + 1), history["val_accuracy"], marker=".", label=name)
    axes[0, 2].set_yscale("log")
    axes[0, 2].set_title("training loss (NaN epochs are gaps)", fontsize=10)
    axes[1, 2].set_title("validation accuracy", fontsize=10)
    axes[1, 2].set_xlabel("epoch")
    axes[0, 2].legend(fontsize=7)
    for ax in axes[:, 2]:
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return _common.save(fig, out, "exploding_gradients.png")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="384 examples, 8 epochs")
    parser.add_argument("--epochs", type=int, default=None, help="default 20 (quick: 8)")
    parser.add_argument("--depth", type=int, default=10, help="hidden layers")
    parser.add_argument("--width", type=int, default=32, help="units per hidden layer")
    parser.add_argument("--init-std", type=float, default=0.3, help="standard deviation of every weight at init")
    parser.add_argument("--lr", type=float, default=0.3, help="the (peak) SGD learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs") / "examples" / "exploding_gradients",
                        help="directory for the plot")
    args = parser.parse_args(argv)
    if args.quick:
        _common.quick_compiles()  # before the first JAX computation
    runs = experiment(quick=args.quick, epochs=args.epochs, depth=args.depth, width=args.width,
                      init_std=args.init_std, lr=args.lr, seed=args.seed)
    names = list(runs)
    base = runs[names[0]]
    epochs, steps = len(base.history["loss"]), base.steps_per_epoch
    print(f"{args.depth} hidden ReLU layers of {args.width}, weights N(0, {args.init_std:g}^2), "
          f"{epochs} epochs of {steps} steps on {base.n_train} digits")
    print(f"{'variant':<28}{'verdict':<11}{'skipped':>8}{'NaN/Inf':>10}{'max |grad|':>12}{'loss':>18}{'val acc':>9}")
    for name, (_, h, d, *_) in runs.items():
        loss = f"{h['loss'][0]:.3g}->{h['loss'][-1]:.3g}"
        print(f"{name:<28}{d.verdict:<11}{d.evidence['skipped_steps']:>8.0f}{d.evidence['nonfinite_entries']:>10.0f}"
              f"{np.nanmax(h['layer_grad_norm']):>12.3g}{loss:>18}{h['val_accuracy'][-1]:>9.3f}")
    for name, run in runs.items():
        print(f"verdict[{name}]: {run.diagnosis.verdict}")
    print("\n" + base.diagnosis.report() + "\n")
    args.out.mkdir(parents=True, exist_ok=True)
    path = plot(runs, args.out)

    ev = base.diagnosis.evidence
    statements = [
        f"{names[0]} is {base.diagnosis.verdict}: {ev['skipped_steps']:.0f} of {epochs * steps} steps skipped by the "
        f"NaN guard, {ev['nonfinite_entries']:.0f} non-finite gradient entries, parameters "
        f"{'still finite' if params_finite(base.result) else 'NOT finite'}; "
        f"final val acc {base.history['val_accuracy'][-1]:.2f}"
    ]
    for name in names[1:]:
        _, h, d, *_ = runs[name]
        statements.append(f"{name} is {d.verdict}: {d.evidence['skipped_steps']:.0f} steps skipped, loss "
                          f"{h['loss'][0]:.3g} -> {h['loss'][-1]:.3g}, val acc {h['val_accuracy'][-1]:.2f}")
    fixed = sum(runs[n].diagnosis.verdict == "healthy" for n in names[1:])
    statements.append(f"{fixed} of {len(names) - 1} fixes give a healthy diagnosis (plot: {path})")
    _common.conclude(*statements)
    return {name: run.diagnosis.verdict for name, run in runs.items()}

if __name__ == "__main__":
    main()
