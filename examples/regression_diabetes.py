"""Regression with one linear output: disease progression on scikit-learn's diabetes data.

For regression the output layer has one unit and no activation (``output="identity"``), trained
with the mean squared error. With no hidden layer the network *is* linear regression, so
gradient descent should reach the least-squares solution: the script compares its test R^2 with
NumPy's exact ``lstsq`` fit, and then adds a hidden layer to see whether a non-linear model
does better on this small dataset.

Run: ``python examples/regression_diabetes.py [--quick] [--out DIR] [--seed N]``
"""

from __future__ import annotations

import _common

import jax
import numpy as np
import optax

import nnjax


def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination 1 - SSE / SST (float64)."""
    y, pred = np.asarray(y, np.float64), np.asarray(pred, np.float64)
    return float(1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))


def least_squares(x_train, y_train, x_test) -> np.ndarray:
    """Exact linear regression with a bias, in float64: the reference for the linear neuron."""
    design = np.c_[np.asarray(x_train, np.float64), np.ones(len(x_train))]
    coef, *_ = np.linalg.lstsq(design, np.asarray(y_train, np.float64), rcond=None)
    return np.c_[np.asarray(x_test, np.float64), np.ones(len(x_test))] @ coef


def main(argv: list[str] | None = None) -> dict:
    args = _common.parse_args("regression_diabetes", "one linear output unit for regression", argv)
    data = nnjax.data.load_dataset("diabetes")
    (x_train, y_train), (x_test, y_test) = nnjax.data.split(args.seed, data.x, data.y)
    _, x_train, x_test = nnjax.data.standardize(x_train, x_test)
    # Standardise the target too (with training statistics) so that one learning rate suits it.
    y_mean, y_std = float(y_train.mean()), float(y_train.std())
    z_train, z_test = (y_train - y_mean) / y_std, (y_test - y_mean) / y_std

    epochs = 60 if args.quick else 300
    optimizer = optax.adam(0.01)
    models = {
        "linear neuron (10 -> 1)": nnjax.MLP((10, 1), output="identity"),
        "hidden layer (10 -> 16 -> 1)": nnjax.MLP((10, 16, 1), activation="tanh", output="identity"),
    }
    runs = {}
    for name, net in models.items():
        result = nnjax.fit(
            jax.random.key(args.seed), net, (x_train, z_train), loss="mse", optimizer=optimizer,
            epochs=epochs, batch_size=32, validation=(x_test, z_test), diagnostics=False,
        )
        pred = np.asarray(nnjax.predict(result.params, x_test, net))[:, 0] * y_std + y_mean
        runs[name] = {"result": result, "pred": pred, "r2": r2_score(y_test, pred),
                      "rmse": float(np.sqrt(np.mean((pred - y_test) ** 2)))}
    reference = least_squares(x_train, y_train, x_test)
    ref_r2 = r2_score(y_test, reference)
    ref_rmse = float(np.sqrt(np.mean((reference - y_test) ** 2)))
    baseline_rmse = float(np.sqrt(np.mean((y_train.mean() - y_test) ** 2)))

    _common.section(f"{len(y_train)} training and {len(y_test)} test patients, {epochs} epochs of Adam")
    rows = [[name, r["r2"], r["rmse"], float(r["result"].history["val_r2"][-1])] for name, r in runs.items()]
    rows.append(["least squares (NumPy, exact)", ref_r2, ref_rmse, "-"])
    rows.append(["predict the training mean", r2_score(y_test, np.full_like(y_test, y_train.mean())), baseline_rmse, "-"])
    _common.table(["model", "test R^2", "test RMSE", "history val_r2"], rows)

    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    lo, hi = float(y_test.min()), float(y_test.max())
    for name, r in runs.items():
        axes[0].scatter(y_test, r["pred"], s=12, alpha=0.7, label=f"{name}: R^2 = {r['r2']:.3f}")
        axes[1].plot(np.asarray(r["result"].history["val_loss"]), label=name)
    axes[0].plot([lo, hi], [lo, hi], color="grey", linestyle="--", label="perfect prediction")
    axes[0].set_xlabel("true progression")
    axes[0].set_ylabel("predicted progression")
    axes[0].legend(fontsize=8)
    axes[0].set_title("Test set predictions")
    axes[1].axhline(1 - ref_r2, color="grey", linestyle=":", label="least squares (1 - R^2)")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("test MSE (standardised target)")
    axes[1].set_yscale("log")
    axes[1].legend(fontsize=8)
    axes[1].set_title("Test loss while training")
    _common.save(fig, args.out, "regression.png")

    linear, hidden = runs["linear neuron (10 -> 1)"], runs["hidden layer (10 -> 16 -> 1)"]
    gap = linear["r2"] - ref_r2
    better = "better than" if hidden["r2"] > linear["r2"] else "no better than"
    _common.conclude(
        f"the single linear output neuron reaches test R^2 = {linear['r2']:.3f}, {abs(gap):.3f} "
        f"{'above' if gap >= 0 else 'below'} the exact least-squares fit ({ref_r2:.3f}): gradient descent on the MSE "
        f"{'found' if abs(gap) < 0.02 else 'has not yet reached'} the linear-regression solution.",
        f"its test RMSE is {linear['rmse']:.1f} against {baseline_rmse:.1f} for always predicting the training mean "
        f"({1 - linear['rmse'] / baseline_rmse:.0%} smaller).",
        f"with a hidden layer of 16 tanh units the test R^2 is {hidden['r2']:.3f}, {better} the linear neuron "
        f"({hidden['r2'] - linear['r2']:+.3f}) on {len(y_train)} training examples.",
    )
    return {name: r["r2"] for name, r in runs.items()} | {"least_squares": ref_r2}


if __name__ == "__main__":
    main()
