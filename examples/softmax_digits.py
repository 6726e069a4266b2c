"""Softmax multiclass classification of handwritten digits.

A network with ten softmax outputs turns its logits into a probability distribution over the
classes: every row of ``nnjax.predict`` is non-negative and sums to one, and the predicted class
is the most probable one. The script trains on scikit-learn's 8x8 digits, checks the sums,
shows the confusion matrix of the test set, and compares the network's confidence when it is
right with its confidence when it is wrong.

Run: ``python examples/softmax_digits.py [--quick] [--out DIR] [--seed N]``
"""

from __future__ import annotations

import _common

import jax
import numpy as np
import optax

import nnjax


def train(args) -> dict:
    data = nnjax.data.load_dataset("digits", n=600 if args.quick else None, seed=args.seed)
    (x_train, y_train), (x_test, y_test) = nnjax.data.split(args.seed, data.x, data.y, stratify=data.y)
    pixels_test = x_test  # raw 0..16 intensities, for the pictures
    _, x_train, x_test = nnjax.data.standardize(x_train, x_test)
    net = nnjax.MLP((64, 32 if args.quick else 64, 10), activation="relu", output="softmax")
    epochs = 15 if args.quick else 40
    result = nnjax.fit(
        jax.random.key(args.seed), net, (x_train, y_train), loss="softmax_cross_entropy",
        optimizer=optax.adam(3e-3), epochs=epochs, batch_size=32,
        validation=(x_test, y_test), diagnostics=False,
    )
    probs = np.asarray(nnjax.predict(result.params, x_test, net), np.float64)
    return {"net": net, "result": result, "probs": probs, "y_test": y_test, "pixels_test": pixels_test, "n_train": len(y_train)}


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """counts[i, j]: test examples of class i predicted as class j."""
    counts = np.zeros((k, k), np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def plot(counts: np.ndarray, probs: np.ndarray, y_test: np.ndarray, pixels: np.ndarray, out) -> None:
    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    image = ax.imshow(counts, cmap="Blues")
    for (i, j), c in np.ndenumerate(counts):
        if c:
            ax.text(j, i, str(c), ha="center", va="center", fontsize=7,
                    color="white" if c > counts.max() / 2 else "black")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix on the test set")
    fig.colorbar(image, ax=ax, shrink=0.8)
    _common.save(fig, out, "confusion.png")

    # The most and the least confident test predictions, with their whole distributions.
    confidence = probs.max(axis=1)
    picks = [int(i) for i in np.argsort(confidence)[[-1, -2, 1, 0]]]
    fig, axes = plt.subplots(2, len(picks), figsize=(2.6 * len(picks), 4.4),
                             gridspec_kw={"height_ratios": [1.2, 1]})
    for col, i in enumerate(picks):
        axes[0, col].imshow(pixels[i].reshape(8, 8), cmap="gray_r")
        axes[0, col].set_title(f"true {y_test[i]}, predicted {probs[i].argmax()}", fontsize=9)
        axes[0, col].axis("off")
        axes[1, col].bar(range(10), probs[i], color="tab:blue")
        axes[1, col].set_xticks(range(10))
        axes[1, col].set_ylim(0, 1)
        axes[1, col].set_title(f"sum = {probs[i].sum():.6f}", fontsize=8)
    fig.suptitle("Softmax outputs: most confident (left) and least confident (right) test digits")
    _common.save(fig, out, "probabilities.png")


def main(argv: list[str] | None = None) -> dict:
    args = _common.parse_args("softmax_digits", "softmax multiclass classification of digits", argv)
    run = train(args)
    probs, y_test, history = run["probs"], run["y_test"], run["result"].history
    y_pred = probs.argmax(axis=1)
    counts = confusion(y_test, y_pred, 10)
    sum_error = float(np.max(np.abs(probs.sum(axis=1) - 1.0)))
    accuracy = float(np.mean(y_pred == y_test))
    right, wrong = probs.max(axis=1)[y_pred == y_test], probs.max(axis=1)[y_pred != y_test]

    _common.section(f"trained on {run['n_train']} digits, tested on {len(y_test)}")
    print(f"  final training loss {float(history['loss'][-1]):.4f}, test loss {float(history['val_loss'][-1]):.4f}")
    print(f"  test accuracy {accuracy:.2%} (history's val_accuracy {float(history['val_accuracy'][-1]):.2%})")
    print(f"  probabilities: min {probs.min():.2e}, max {probs.max():.6f}, max |row sum - 1| = {sum_error:.2e}")
    off = counts - np.diag(np.diag(counts))
    true_c, pred_c = np.unravel_index(np.argmax(off), off.shape)
    per_class = np.diag(counts) / np.maximum(counts.sum(axis=1), 1)
    _common.table(["class", "test examples", "recall"],
                  [[c, int(counts[c].sum()), f"{per_class[c]:.0%}"] for c in range(10)])
    plot(counts, probs, y_test, run["pixels_test"], args.out)

    mean_wrong = float(wrong.mean()) if wrong.size else float("nan")
    conclusions = [
        f"every softmax row sums to one within {sum_error:.1e}"
        f"{' (float32 rounding)' if sum_error < 1e-5 else ''} and all {probs.size} "
        f"probabilities lie in [{probs.min():.1e}, {probs.max():.4f}]: the outputs are a distribution over the 10 digits.",
        f"test accuracy is {accuracy:.1%} ({int((y_pred == y_test).sum())} of {len(y_test)}); the weakest class is "
        f"{int(per_class.argmin())} (recall {per_class.min():.0%}), the best {int(per_class.argmax())} "
        f"(recall {per_class.max():.0%}).",
    ]
    if off.max() > 0:
        conclusions.append(f"the most frequent confusion is a true {true_c} predicted as {pred_c} "
                           f"({int(off.max())} time{'s' if off.max() > 1 else ''}).")
    if wrong.size:
        more = "less" if mean_wrong < right.mean() else "not less"
        conclusions.append(f"the network is {more} sure when it is wrong: mean top probability "
                           f"{right.mean():.3f} on the {right.size} right answers vs {mean_wrong:.3f} on the {wrong.size} wrong ones.")
    _common.conclude(*conclusions)
    return {"accuracy": accuracy, "sum_error": sum_error, "confusion": counts}


if __name__ == "__main__":
    main()
