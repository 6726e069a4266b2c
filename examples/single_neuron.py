"""One neuron is a classical model: logistic regression, linear regression, softmax regression.

A network with no hidden layer computes ``output(x @ W + b)``. With one sigmoid output and
binary cross-entropy that is logistic regression; with one linear output and squared error it is
least-squares linear regression; with a softmax layer and cross-entropy it is multinomial
logistic regression. Each is trained here by ``nnjax.fit`` (full batch, Adam with a cosine
schedule) and compared with scikit-learn's solver on the same standardised data:

* breast cancer, 5 features, no penalty vs ``LogisticRegression(C=inf)``. (With all 30 features
  the classes are linearly separable: the unpenalised weights grow without bound, which the
  script shows, so there is no optimum to compare.)
* breast cancer, all 30 features, ``l2 = 1 / (2 C n)`` vs ``LogisticRegression(C=1)``;
* diabetes vs ``LinearRegression``;
* digits, softmax over 10 classes, ``l2 = 1 / (2 C n)`` vs ``LogisticRegression(C=1)``.

Run: ``python examples/single_neuron.py [--quick] [--out DIR] [--seed N]``
"""

from __future__ import annotations

import _common  # noqa: F401  (sets the plot backend and finds nnjax in a checkout)

import jax
import numpy as np
import optax
from sklearn.linear_model import LinearRegression, LogisticRegression

import nnjax

CANCER_FEATURES = [0, 1, 4, 7, 8]  # mean radius, texture, smoothness, concave points, symmetry


def train(seed: int, net: nnjax.MLP, x, y, loss: str, epochs: int, l2: float = 0.0, lr: float = 0.05):
    adam = optax.adam(optax.cosine_decay_schedule(lr, epochs, alpha=0.01))
    return nnjax.fit(jax.random.key(seed), net, (x, y), loss=loss, optimizer=adam, epochs=epochs,
                     batch_size=len(x), l2=l2, diagnostics=False)


def standardised_split(name: str, seed: int, columns=None):
    data = nnjax.data.load_dataset(name)
    x = data.x if columns is None else data.x[:, columns]
    stratify = data.y if data.task == "classification" else None
    (x_train, y_train), (x_test, y_test) = nnjax.data.split(seed, x, data.y, stratify=stratify)
    _, x_train, x_test = nnjax.data.standardize(x_train, x_test)
    return x_train, y_train, x_test, y_test


def logistic(seed: int, epochs: int, columns, c: float) -> dict:
    x, y, x_test, y_test = standardised_split("breast_cancer", seed, columns)
    net = nnjax.MLP((x.shape[1], 1), output="sigmoid")
    l2 = 0.0 if np.isinf(c) else 1.0 / (2 * c * len(x))  # sklearn: 1/2 |w|^2 + C sum(loss)
    result = train(seed, net, x, y, "binary_cross_entropy", epochs, l2)
    reference = LogisticRegression(C=c, tol=1e-12, max_iter=10_000).fit(x.astype(np.float64), y)
    probs = np.asarray(nnjax.predict(result.params, x_test, net))[:, 0]
    return {
        "features": x.shape[1], "C": c,
        "coef_diff": float(np.abs(np.asarray(result.params[0]["w"])[:, 0] - reference.coef_[0]).max()),
        "coef_scale": float(np.abs(reference.coef_).max()),
        "prob_diff": float(np.abs(probs - reference.predict_proba(x_test.astype(np.float64))[:, 1]).max()),
        "accuracy": float(np.mean((probs > 0.5) == y_test)),
        "sk_accuracy": float(reference.score(x_test.astype(np.float64), y_test)),
    }


def separable_check(seed: int) -> dict:
    """scikit-learn's unpenalised fit on all 30 features: perfect training accuracy, huge weights."""
    x, y, _, _ = standardised_split("breast_cancer", seed)
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(x.astype(np.float64), y)
    return {"train_accuracy": float(reference.score(x.astype(np.float64), y)),
            "max_coef": float(np.abs(reference.coef_).max())}


def linear(seed: int, epochs: int) -> dict:
    x, y, x_test, y_test = standardised_split("diabetes", seed)
    mean, std = float(y.mean()), float(y.std())
    net = nnjax.MLP((10, 1), output="identity")
    result = train(seed, net, x, ((y - mean) / std).astype(np.float32), "mse", epochs)
    reference = LinearRegression().fit(x.astype(np.float64), y.astype(np.float64))
    predicted = np.asarray(nnjax.predict(result.params, x_test, net))[:, 0] * std + mean
    sk_predicted = reference.predict(x_test.astype(np.float64))

    def r2(p):
        return float(1 - np.sum((y_test - p) ** 2) / np.sum((y_test - y_test.mean()) ** 2))

    return {
        "coef_diff": float(np.abs(np.asarray(result.params[0]["w"])[:, 0] * std - reference.coef_).max()),
        "coef_scale": float(np.abs(reference.coef_).max()),
        "prediction_diff": float(np.abs(predicted - sk_predicted).max()),
        "r2": r2(predicted), "sk_r2": r2(sk_predicted),
    }


def softmax(seed: int, epochs: int, c: float = 1.0) -> dict:
    x, y, x_test, y_test = standardised_split("digits", seed)
    net = nnjax.MLP((64, 10), output="softmax")
    result = train(seed, net, x, y, "softmax_cross_entropy", epochs, l2=1.0 / (2 * c * len(x)), lr=0.2)
    probs = np.asarray(nnjax.predict(result.params, x_test, net), np.float64)
    reference = LogisticRegression(C=c, tol=1e-10, max_iter=5000).fit(x.astype(np.float64), y)
    return {
        "sum_error": float(np.abs(probs.sum(axis=1) - 1).max()),
        "prob_diff": float(np.abs(probs - reference.predict_proba(x_test.astype(np.float64))).max()),
        "accuracy": float(np.mean(probs.argmax(axis=1) == y_test)),
        "sk_accuracy": float(reference.score(x_test.astype(np.float64), y_test)),
    }


def main(argv: list[str] | None = None) -> dict:
    args = _common.parse_args("single_neuron", "one neuron = logistic / linear / softmax regression", argv)
    epochs = 3000 if args.quick else 5000  # compiling dominates: a full-batch epoch costs microseconds

    sep = separable_check(args.seed)
    _common.section("breast cancer, all 30 features, no penalty (scikit-learn)")
    print(f"  training accuracy {sep['train_accuracy']:.3f}, largest |coefficient| {sep['max_coef']:.3g}")

    rows = [logistic(args.seed, epochs, CANCER_FEATURES, np.inf), logistic(args.seed, epochs, None, 1.0)]
    _common.section(f"sigmoid neuron vs LogisticRegression on breast cancer ({epochs} full-batch epochs)")
    _common.table(["features", "C", "max |dw|", "max |coef|", "max |dp| (test)", "accuracy", "sklearn accuracy"],
                  [[r["features"], r["C"], r["coef_diff"], r["coef_scale"], r["prob_diff"], r["accuracy"],
                    r["sk_accuracy"]] for r in rows])

    lin = linear(args.seed, epochs)
    _common.section("linear neuron vs LinearRegression on diabetes")
    _common.table(["max |dw|", "max |coef|", "max |d prediction|", "test R^2", "sklearn test R^2"],
                  [[lin["coef_diff"], lin["coef_scale"], lin["prediction_diff"], lin["r2"], lin["sk_r2"]]])

    soft = softmax(args.seed, epochs // 5)  # 64 x 10 weights: a larger step size, fewer epochs
    _common.section(f"softmax layer vs multinomial LogisticRegression(C=1) on digits ({epochs // 5} epochs)")
    _common.table(["max |sum p - 1|", "max |dp| (test)", "accuracy", "sklearn accuracy"],
                  [[soft["sum_error"], soft["prob_diff"], soft["accuracy"], soft["sk_accuracy"]]])

    worst_logistic = max(r["coef_diff"] / r["coef_scale"] for r in rows)
    _common.conclude(
        f"All 30 breast-cancer features separate the classes (scikit-learn's unpenalised fit reaches training "
        f"accuracy {sep['train_accuracy']:.0%} with a weight of {sep['max_coef']:.3g}), so the unpenalised "
        f"comparison uses {len(CANCER_FEATURES)} features.",
        f"The sigmoid neuron's weights match LogisticRegression to within {worst_logistic:.1e} of the largest "
        f"coefficient, and its test probabilities to within {max(r['prob_diff'] for r in rows):.1e}.",
        f"The linear neuron's weights match LinearRegression to within {lin['coef_diff'] / lin['coef_scale']:.1e} "
        f"(relative); test R^2 {lin['r2']:.4f} vs {lin['sk_r2']:.4f}.",
        f"Softmax probabilities sum to one within {soft['sum_error']:.1e}, match multinomial logistic regression "
        f"to within {soft['prob_diff']:.1e}, and classify digits with accuracy {soft['accuracy']:.1%} "
        f"(scikit-learn {soft['sk_accuracy']:.1%}).",
    )
    return {"separable": sep, "logistic": rows, "linear": lin, "softmax": soft}


if __name__ == "__main__":
    main()
