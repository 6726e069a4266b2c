"""nnjax.sklearn: scikit-learn's estimator checks, and behaviour against scikit-learn's own MLP.

Compiling a training program costs far more than running one on these sizes, so most tests reuse
the settings of the estimators given to the checks (``SMALL``) on data whose padded shapes match
programs the checks already compiled (see nnjax/sklearn/_padding.py).
"""

import warnings

import jax
import numpy as np
import pytest
import sklearn.neural_network as sk
from sklearn.base import clone
from sklearn.datasets import load_iris, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.estimator_checks import parametrize_with_checks

import nnjax
from nnjax.sklearn import MLPClassifier, MLPRegressor

SMALL = dict(hidden_layer_sizes=(8,), learning_rate_init=0.05, max_iter=50, random_state=0)

@parametrize_with_checks([MLPClassifier(**SMALL), MLPRegressor(**SMALL)])
def test_scikit_learn_estimator_checks(estimator, check):
    # Every check passes, check_sample_weight_equivalence_on_dense_data included (with Adam, the
    # default solver): full batches are merged into distinct sorted rows before training (see
    # nnjax/sklearn/_padding.py), so integer weights and repeated rows give the same sums.
    # max_iter=50 keeps the checks fast; not converging by then is expected (scikit-learn's own
    # test_common ignores ConvergenceWarning the same way). Skips come from scikit-learn itself
    # (pandas not installed, no decision_function, SCIPY_ARRAY_API unset) and print their reason.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def iris():
    x, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(x), y


def fit_quietly(estimator, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(*args, **kwargs)


# --------------------------------------------------------------------------------------------
# Gradient steps equal scikit-learn's (same start, deterministic order): loss scales and alpha


def _reference_problem(kind, rng):
    common = dict(hidden_layer_sizes=(5,), activation="tanh", solver="sgd", momentum=0.0, learning_rate_init=0.1,
                  alpha=0.05, shuffle=False, max_iter=4, tol=0.0, n_iter_no_change=100, warm_start=True)
    weights = None
    if kind == "binary_weighted":
        x = rng.normal(size=(60, 3))
        y = np.where(x[:, 0] + 0.5 * rng.normal(size=60) > 0, "yes", "no")
        weights = rng.integers(1, 4, size=60).astype(float)
        return x, y, weights, MLPClassifier(**common), sk.MLPClassifier(**common)
    if kind == "multiclass_minibatch":
        x, y = iris()
        common.update(batch_size=50)  # three full batches per epoch, in the given order
        return x, y, weights, MLPClassifier(**common), sk.MLPClassifier(**common)
    if kind == "multilabel_adam":
        x, y = make_multilabel_classification(n_samples=80, n_features=4, n_classes=3, random_state=1)
        common.update(solver="adam", learning_rate_init=0.01)
        return StandardScaler().fit_transform(x), y, weights, MLPClassifier(**common), sk.MLPClassifier(**common)
    x = rng.normal(size=(50, 3))
    y = np.column_stack([x @ [1.0, -2.0, 0.5], np.sin(x[:, 0])]) + 0.1 * rng.normal(size=(50, 2))
    common.update(momentum=0.9, nesterovs_momentum=True, learning_rate_init=0.05)
    return x, y, weights, MLPRegressor(**common), sk.MLPRegressor(**common)


@pytest.mark.parametrize("kind", ["binary_weighted", "multiclass_minibatch", "multilabel_adam", "regression_momentum"])
def test_gradient_steps_match_scikit_learn(kind, rng):
    x, y, weights, ours, reference = _reference_problem(kind, rng)
    fit_quietly(ours, x, y)  # builds the structure; warm_start then continues from coefs_
    fit_quietly(reference, x, y)
    start = [rng.normal(scale=0.5, size=w.shape) for w in reference.coefs_]
    bias = [rng.normal(scale=0.5, size=b.shape) for b in reference.intercepts_]
    ours.coefs_, ours.intercepts_ = [w.astype(np.float32) for w in start], [b.astype(np.float32) for b in bias]
    reference.coefs_, reference.intercepts_ = [w.copy() for w in start], [b.copy() for b in bias]
    fit_quietly(ours, x, y, sample_weight=weights)
    fit_quietly(reference, x, y, sample_weight=weights)
    for a, b in zip(ours.coefs_ + ours.intercepts_, reference.coefs_ + reference.intercepts_):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    if kind != "multiclass_minibatch":  # full batch: the first loss is the start's, penalty known
        n_weight = len(x) if weights is None else weights.sum()
        penalty = reference.alpha / (2 * n_weight) * sum(np.sum(w**2) for w in start)
        np.testing.assert_allclose(ours.loss_curve_[-4], reference.loss_curve_[-4] - penalty, rtol=1e-5)
    np.testing.assert_allclose(ours.predict_proba(x) if hasattr(ours, "predict_proba") else ours.predict(x),
                               reference.predict_proba(x) if hasattr(ours, "predict_proba") else reference.predict(x),
                               rtol=1e-3, atol=1e-4)


# --------------------------------------------------------------------------------------------
# Targets


def test_multiclass_string_labels():
    x, y = iris()
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = fit_quietly(MLPClassifier(**SMALL), x, names)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    assert (clf.n_outputs_, clf.out_activation_, clf.n_layers_) == (3, "softmax", 3)
    proba = clf.predict_proba(x)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(x), clf.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(clf.predict_log_proba(x), np.log(proba))
    assert clf.score(x, names) > 0.9


def test_binary_labels_use_one_logistic_output():
    x, y = iris()
    x, y = x[y < 2], np.where(y[y < 2] == 1, "yes", "no")
    clf = fit_quietly(MLPClassifier(**SMALL), x, y)
    assert (clf.n_outputs_, clf.out_activation_, clf.coefs_[-1].shape) == (1, "logistic", (8, 1))
    proba = clf.predict_proba(x)
    assert proba.shape == (100, 2)
    hidden = np.maximum(x @ clf.coefs_[0] + clf.intercepts_[0], 0)  # float64 reference forward pass
    p = 1 / (1 + np.exp(-(hidden @ clf.coefs_[1] + clf.intercepts_[1])[:, 0]))
    np.testing.assert_allclose(proba[:, 1], p, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(clf.predict(x), np.where(p > 0.5, "yes", "no"))
    assert clf.score(x, y) == 1.0  # setosa is linearly separable from versicolor


def test_multilabel_indicators():
    x, y = make_multilabel_classification(n_samples=100, n_features=4, n_classes=5, random_state=0)
    x = StandardScaler().fit_transform(x)
    clf = fit_quietly(MLPClassifier(**SMALL), x, y)
    assert (clf.n_outputs_, clf.out_activation_) == (5, "logistic")
    np.testing.assert_array_equal(clf.classes_, np.arange(5))
    pred, proba = clf.predict(x), clf.predict_proba(x)
    assert pred.shape == proba.shape == y.shape and pred.dtype == y.dtype
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(y.dtype))
    label_accuracy = np.mean(pred == y)
    assert label_accuracy > max(np.mean(y), 1 - np.mean(y)) + 0.05  # beats the constant guess


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_regression_single_and_multi_output(n_outputs, rng):
    x = rng.normal(size=(128, 2))
    w = rng.normal(size=(2, n_outputs))
    y = np.tanh(x @ w) + 0.05 * rng.normal(size=(128, n_outputs))
    y = y[:, 0] if n_outputs == 1 else y
    reg = fit_quietly(MLPRegressor(**SMALL), x, y)
    pred = reg.predict(x)
    assert pred.shape == y.shape and reg.n_outputs_ == n_outputs and reg.out_activation_ == "identity"
    assert reg.predict(x.astype(np.float32)).dtype == np.float32
    assert reg.score(x, y) > 0.8


# --------------------------------------------------------------------------------------------
# Sample weights, populations, continuation


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_sample_weight_equals_repetition(rng, solver):
    x = rng.normal(size=(24, 3))
    y = (x[:, 0] - x[:, 1] > 0).astype(int)
    weights = rng.integers(0, 3, size=24)  # zeros included: a zero weight removes the sample
    settings = dict(hidden_layer_sizes=(6,), solver=solver, momentum=0.0, learning_rate_init=0.2, max_iter=30,
                    n_iter_no_change=100, random_state=0)
    weighted = fit_quietly(MLPClassifier(**settings), x, y, sample_weight=weights)
    order = rng.permutation(int(weights.sum()))  # repeated rows in another order: the same full batch
    repeated = fit_quietly(MLPClassifier(**settings), np.repeat(x, weights, axis=0)[order],
                           np.repeat(y, weights)[order])
    # the same sums in the same order: equal to the last bit, with Adam too
    np.testing.assert_array_equal(weighted.predict_proba(x), repeated.predict_proba(x))
    np.testing.assert_array_equal(weighted.loss_curve_, repeated.loss_curve_)
    assert weighted.t_ == 30 * 24 and repeated.t_ == 30 * weights.sum()  # samples seen, as given
    plain = fit_quietly(MLPClassifier(**settings), x, y)
    assert np.abs(plain.predict_proba(x) - weighted.predict_proba(x)).max() > 1e-3


def test_full_batches_are_merged_into_distinct_sorted_rows(rng):
    from nnjax.sklearn import _padding

    x = rng.normal(size=(5, 2)).astype(np.float32)
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0], np.float32)
    w = np.array([2.0, 0.0, 1.0, 3.0, 1.0], np.float32)
    rows = np.array([0, 0, 2, 3, 3, 3, 4])  # w as repetitions
    merged = _padding.canonical_rows(x, y, w)
    for copy, weights in ((_padding.canonical_rows(x[rows], y[rows], None), None),
                          (_padding.canonical_rows(x[rows[::-1]], y[rows[::-1]], np.ones(7)), "ones")):
        for a, b in zip(merged, copy):
            np.testing.assert_array_equal(a, b, err_msg=str(weights))
    assert merged[0].shape == (4, 2) and sorted(merged[2].tolist()) == [1.0, 1.0, 2.0, 3.0]
    # equal features with different targets stay apart (multi-output targets too)
    y2 = np.stack([y, 1 - y], axis=1)
    same_x = _padding.canonical_rows(np.zeros((5, 2), np.float32), y2, None)
    assert same_x[0].shape == (2, 2) and sorted(same_x[2].tolist()) == [2.0, 3.0]
    # padded as before: a full batch rounded up to 64 rows of weight 0, minibatches untouched
    px, py, pw, batch = _padding.pad_full_batch(x, y, w, 5, merge=True)
    assert px.shape == (64, 2) and batch == 64 and pw.sum() == w.sum() and np.count_nonzero(pw) == 4
    unmerged = _padding.pad_full_batch(x, y, w, 5)
    assert np.count_nonzero(unmerged[2]) == 4 and np.array_equal(unmerged[0][:5], x)
    assert _padding.pad_full_batch(x, y, w, 2, merge=True)[0] is x


def test_population_keeps_the_best_seed():
    x, y = iris()
    single = fit_quietly(MLPClassifier(**SMALL), x, y)
    population = fit_quietly(MLPClassifier(**SMALL, n_seeds=3), x, y)
    scores = population.seed_scores_
    assert scores.shape == (3,) and population.best_seed_ == int(np.argmin(scores))
    np.testing.assert_allclose(population.loss_, scores.min(), rtol=1e-6)
    # Member 0 is the single run (vmapped runs equal separate runs).
    np.testing.assert_allclose(scores[0], single.loss_, rtol=1e-4)
    assert population.loss_ <= single.loss_ * (1 + 1e-6)


def test_partial_fit_continues_like_fit(rng):
    x, y = iris()
    settings = dict(hidden_layer_sizes=(8,), batch_size=32, learning_rate_init=0.01, random_state=3, max_iter=3,
                    n_iter_no_change=100)
    whole = fit_quietly(MLPClassifier(**settings), x, y)
    parts = MLPClassifier(**settings)
    for _ in range(3):
        parts.partial_fit(x, y, classes=[0, 1, 2])
    for a, b in zip(parts.coefs_, whole.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(parts.loss_curve_, whole.loss_curve_, rtol=1e-5)
    assert parts.n_iter_ == 1 and parts.t_ == 3 * len(x)
    with pytest.raises(ValueError, match="unknown labels"):
        parts.partial_fit(x[:5], np.full(5, 7))
    with pytest.raises(ValueError, match="classes"):
        MLPClassifier(**settings).partial_fit(x, y)
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(**settings, early_stopping=True).partial_fit(x, y, classes=[0, 1, 2])


def test_warm_start_continues_and_plain_fit_restarts():
    x, y = iris()
    clf = fit_quietly(MLPClassifier(**SMALL, warm_start=True), x, y)
    first_curve, first_iter = list(clf.loss_curve_), clf.n_iter_
    fit_quietly(clf, x, y)
    assert len(clf.loss_curve_) == first_iter + clf.n_iter_ and clf.loss_curve_[:first_iter] == first_curve
    # The second fit starts where the first ended: its first epoch's loss is close to the last one.
    assert abs(clf.loss_curve_[first_iter] - first_curve[-1]) < 0.1 * (first_curve[0] - first_curve[-1])
    with pytest.raises(ValueError, match="warm_start"):
        clf.fit(x[y < 2], y[y < 2])
    clf.set_params(warm_start=False)
    fit_quietly(clf, x, y)
    assert len(clf.loss_curve_) == clf.n_iter_


# --------------------------------------------------------------------------------------------
# Stopping rules


def sklearn_stop_epoch(values, tol, n_iter_no_change, maximise):
    """scikit-learn's rule, written out: the best follows every gain; the count resets on gains > tol."""
    best, count = (-np.inf if maximise else np.inf), 0
    for epoch, value in enumerate(values, start=1):
        count = 0 if (value >= best + tol if maximise else value <= best - tol) else count + 1
        best = max(best, value) if maximise else min(best, value)
        if count > n_iter_no_change:
            return epoch
    return len(values)


def test_stopping_rule_follows_every_gain_like_scikit_learn(rng):
    """The nnjax EarlyStopping option the estimators use, fed a loss that creeps down below tol."""
    from nnjax import losses, training  # _update_stopping is the loop's own per-epoch rule
    from nnjax.network import MLP, init, init_state

    values = np.concatenate([[1.0, 0.9], 0.9 - 0.4e-3 * np.arange(1, 20)])  # gains of 0.4 tol per epoch
    tol, patience = 1e-3, 3
    stops = {}
    for follow in (False, True):
        es = training.EarlyStopping(patience=patience, min_delta=tol, monitor="loss", mode="min",
                                    best_follows_any_gain=follow)
        net = MLP((2, 1))
        cfg = training.FitConfig(model=net, loss=losses.resolve("mse"), optimizer=None, epochs=len(values),
                                 batch_size=1, n=1, early_stopping=es)
        ts = training.TrainState(init(jax.random.key(0), net), init_state(net),
                                 None, np.int32(0), None, None, np.float32(np.inf), np.int32(-1), np.int32(0),
                                 np.bool_(False))
        ts = ts._replace(best_params=ts.params, best_state=ts.state)
        for epoch, value in enumerate(values, start=1):
            ts = training._update_stopping(cfg, ts._replace(epoch=np.int32(epoch)), {"loss": np.float32(value)}, False)
            if bool(ts.stopped):
                stops[follow] = epoch
                break
        else:
            stops[follow] = len(values)
    assert stops[True] == sklearn_stop_epoch(values, tol, patience - 1, maximise=False) == 2 + patience
    assert stops[False] > stops[True]  # the default rule counts the creeping gains as progress


def test_tol_stops_training_on_the_loss_curve():
    x, y = iris()
    clf = fit_quietly(MLPClassifier(**{**SMALL, "random_state": 1}), x, y)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    assert clf.best_loss_ == min(clf.loss_curve_) and clf.loss_ == clf.loss_curve_[-1]
    expected = sklearn_stop_epoch(clf.loss_curve_, clf.tol, clf.n_iter_no_change, maximise=False)
    assert clf.n_iter_ == expected == len(clf.loss_curve_)


def test_early_stopping_restores_the_best_validation_score():
    x, y = iris()
    clf = fit_quietly(MLPClassifier(**{**SMALL, "learning_rate_init": 0.01}, early_stopping=True,
                                    validation_fraction=0.2, n_iter_no_change=3), x, y)
    assert clf.best_loss_ is None
    assert len(clf.validation_scores_) == len(clf.loss_curve_) == clf.n_iter_ < 50
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.n_iter_ == sklearn_stop_epoch(clf.validation_scores_, clf.tol, 3, maximise=True)
    # Rebuild scikit-learn's split (the seed is drawn first, then the split) and score the kept model.
    rng = check_random_state(0)
    rng.randint(np.iinfo(np.int32).max)
    _, x_val, _, y_val = train_test_split(x, y, random_state=rng, test_size=0.2)
    assert clf.score(x_val, y_val) == pytest.approx(clf.best_validation_score_, abs=1e-6)


# --------------------------------------------------------------------------------------------
# scikit-learn's tools, and errors


def test_pipeline_cross_validation_and_grid_search():
    x, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(**SMALL))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, x, y, cv=3)
        search = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1.0]}, cv=3).fit(x, y)
    assert scores.shape == (3,) and scores.mean() > 0.8
    assert search.best_params_["mlpclassifier__alpha"] in (1e-4, 1.0)
    assert search.best_estimator_.score(x, y) > 0.9
    # A strong L2 penalty shrinks the weights: alpha reaches nnjax's l2.
    small, large = (clone(pipe).set_params(mlpclassifier__alpha=a) for a in (1e-4, 1.0))
    norms = [np.linalg.norm(fit_quietly(p, x, y)[-1].coefs_[0]) for p in (small, large)]
    assert norms[1] < norms[0]


def test_verbose_prints_every_epoch(capsys):
    x, y = iris()
    clf = fit_quietly(MLPClassifier(**SMALL, verbose=True), x, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == clf.n_iter_ and lines[0] == f"Iteration 1, loss = {clf.loss_curve_[0]:.8f}"


@pytest.mark.parametrize("params, message", [
    (dict(solver="lbfgs"), "solver: expected one of 'sgd', 'adam'"),
    (dict(learning_rate="adaptive"), "learning_rate"),
    (dict(hidden_layer_sizes=(4, 0)), "hidden_layer_sizes: expected positive integers"),
    (dict(alpha=-1.0), "alpha: expected a finite number >= 0, got -1.0"),
    (dict(n_seeds=0), "n_seeds"),
    (dict(activation="swish"), "unknown activation"),
    (dict(max_iter=2.5), "max_iter: expected an integer"),
])
def test_invalid_parameters_fail_at_fit_with_the_name(params, message):
    x, y = iris()
    clf = MLPClassifier(**params)  # scikit-learn's rule: __init__ stores, fit validates
    with pytest.raises((ValueError, TypeError), match=message):
        clf.fit(x, y)
    with pytest.raises(ValueError, match="loss: expected 'squared_error'"):
        MLPRegressor(loss="poisson").fit(x, y)
    with pytest.raises(ValueError, match="sample_weight"):
        MLPClassifier().fit(x, y, sample_weight=-np.ones(len(y)))


def test_partial_fit_takes_a_batch_of_one_declared_class_and_refuses_other_classes_later():
    # scikit-learn's test_mlp.py: test_partial_fit_unseen_classes and test_partial_fit_classes_error
    clf = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    clf.partial_fit([[1], [2], [3]], ["a", "b", "c"], classes=["a", "b", "c", "d"])
    clf.partial_fit([[4]], ["d"])  # one class, declared on the first call
    assert list(clf.classes_) == ["a", "b", "c", "d"] and clf.predict_proba([[4]]).shape == (1, 4)
    first = MLPClassifier(hidden_layer_sizes=(4,)).partial_fit(np.ones((5, 2)), np.zeros(5, int), classes=[0, 1, 2])
    np.testing.assert_allclose(first.predict_proba(np.ones((3, 2))).sum(axis=1), 1.0, rtol=1e-6)
    clf = MLPClassifier(hidden_layer_sizes=(4,), solver="sgd").partial_fit([[3, 2]], [0], classes=[0, 1])
    with pytest.raises(ValueError, match=r"classes: expected the classes of the first call to partial_fit \[0 1\]"):
        clf.partial_fit([[3, 2]], [0], classes=[1, 2])
    clf.partial_fit([[3, 2]], [0], classes=[1, 0])  # the same classes in another order
    with pytest.raises(ValueError, match="at least 2 classes"):  # a fresh nnjax.fit still refuses one class
        nnjax.fit(jax.random.key(0), nnjax.MLP((2, 3)), (np.ones((4, 2), np.float32), np.zeros(4, int)),
                  loss="softmax_cross_entropy", optimizer="sgd", epochs=1, batch_size=4)


def test_one_class_predict_proba_has_two_columns_like_scikit_learn(rng):
    from sklearn.neural_network import MLPClassifier as Reference

    x = rng.normal(size=(20, 3))
    for labels in (np.zeros(20, int), np.array(["only"] * 20)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(x, labels)
            theirs = Reference(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(x, labels)
        assert ours.predict_proba(x).shape == theirs.predict_proba(x).shape == (20, 2)
        np.testing.assert_allclose(ours.predict_proba(x).sum(axis=1), 1.0, rtol=1e-6)
        assert (ours.predict(x) == labels).all()


@pytest.mark.parametrize("estimator", [MLPClassifier(), MLPRegressor()], ids=lambda e: type(e).__name__)
def test_default_estimators_pass_the_sample_weight_equivalence_check(estimator):
    # the default Adam, batch_size="auto" and max_iter=200: weighted and repeated fits agree to 1e-7
    from sklearn.utils.estimator_checks import check_sample_weight_equivalence_on_dense_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check_sample_weight_equivalence_on_dense_data(type(estimator).__name__, estimator)
