"""nnjax's MLPClassifier against scikit-learn's, side by side on the bundled datasets.

Both estimators get the same hyper-parameters (scikit-learn's names mean the same thing in
nnjax.sklearn), the same stratified split and the same standardised features. For each dataset
the script reports test accuracy, epochs run and fit time: scikit-learn's, nnjax's first fit
(which includes compiling the training program) and nnjax's refit (the compiled program reused,
as in cross-validation or a grid search).

Run: ``python examples/sklearn_comparison.py [--quick] [--out DIR] [--seed N]``
"""

from __future__ import annotations

import _common

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SklearnMLP

import nnjax
from nnjax.sklearn import MLPClassifier as NnjaxMLP


def timed_fit(estimator, x, y) -> float:
    start = time.perf_counter()
    with warnings.catch_warnings():  # both stop at max_iter on some datasets; the table shows it
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(x, y)
    return time.perf_counter() - start


def compare(name: str, settings: dict, seed: int) -> dict:
    data = nnjax.data.load_dataset(name)
    (x_train, y_train), (x_test, y_test) = nnjax.data.split(seed, data.x, data.y, stratify=data.y)
    _, x_train, x_test = nnjax.data.standardize(x_train, x_test)
    ours, theirs = NnjaxMLP(**settings, random_state=seed), SklearnMLP(**settings, random_state=seed)
    first = timed_fit(ours, x_train, y_train)
    refit = timed_fit(ours, x_train, y_train)
    sklearn_time = timed_fit(theirs, x_train, y_train)
    return {
        "dataset": name, "shape": f"{len(x_train)}x{x_train.shape[1]}, {data.n_classes} classes",
        "nnjax_acc": ours.score(x_test, y_test), "sklearn_acc": theirs.score(x_test, y_test),
        "nnjax_iter": ours.n_iter_, "sklearn_iter": theirs.n_iter_,
        "first": first, "refit": refit, "sklearn_time": sklearn_time,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    args = _common.parse_args("sklearn_comparison", "nnjax.sklearn.MLPClassifier vs sklearn's, accuracy and fit time",
                              argv)
    names = ["iris", "wine"] if args.quick else ["iris", "wine", "breast_cancer", "digits"]
    settings = dict(hidden_layer_sizes=(64,), solver="adam", alpha=1e-4, learning_rate_init=1e-3,
                    max_iter=60 if args.quick else 300)
    rows = [compare(name, settings, args.seed) for name in names]

    _common.section(f"same settings for both: {settings}")
    _common.table(
        ["dataset", "train", "acc nnjax", "acc sklearn", "epochs nnjax", "epochs sklearn",
         "fit s sklearn", "fit s nnjax (1st)", "fit s nnjax (refit)"],
        [[r["dataset"], r["shape"], f"{r['nnjax_acc']:.1%}", f"{r['sklearn_acc']:.1%}", r["nnjax_iter"],
          r["sklearn_iter"], r["sklearn_time"], r["first"], r["refit"]] for r in rows],
    )

    gaps = np.array([r["nnjax_acc"] - r["sklearn_acc"] for r in rows])
    speedups = np.array([r["sklearn_time"] / r["refit"] for r in rows])
    compile_share = np.array([(r["first"] - r["refit"]) / r["first"] for r in rows])
    fastest = rows[int(np.argmax(speedups))]["dataset"]
    _common.conclude(
        f"test accuracy: nnjax minus scikit-learn is {gaps.mean():+.1%} on average (from {gaps.min():+.1%} to "
        f"{gaps.max():+.1%}); nnjax is at least as accurate on {int(np.sum(gaps >= 0))} of {len(rows)} datasets "
        "(different random initialisations, so a few test points either way are noise)",
        f"with its program compiled, nnjax fits {np.median(speedups):.3g}x as fast as scikit-learn (median over "
        f"datasets; best on {fastest}: {speedups.max():.3g}x)",
        f"compiling is {np.median(compile_share):.0%} of nnjax's first fit (median): it pays off when the same "
        "shapes are fitted again (refits, cross-validation folds, grid searches)",
    )
    return rows


if __name__ == "__main__":
    main()
