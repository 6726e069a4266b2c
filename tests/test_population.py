"""Tests of populations (nnjax.population) and hyper-parameter sweeps (nnjax.sweeps)."""

import itertools
import os
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax import population, training
from nnjax import sweeps as sw

# One population of 4 members whose every swept hyper-parameter differs, trained once per module.
LR = np.array([0.05, 0.2, 0.1, 0.3], np.float32)
L1 = np.array([0.0, 1e-3, 0.0, 2e-3], np.float32)
L2 = np.array([1e-3, 0.0, 1e-2, 0.0], np.float32)
DROPOUT = np.array([0.0, 0.25, 0.1, 0.5], np.float32)
SCALE = np.array([1.0, 0.5, 2.0, 1.5], np.float32)
FIT = dict(loss="softmax_cross_entropy", epochs=3, batch_size=16, diagnostics=False)


def _module_seed(name: str) -> int:
    value = (zlib.crc32(name.encode()) + int(os.environ.get("NNJAX_TEST_SEED", 0))) % 2**31
    print(f"[seed] {name}: {value}")
    return value


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(_module_seed(__name__ + "::problem"))
    x = rng.normal(size=(90, 5)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32) + (x[:, 2] > 0.5).astype(np.int32)
    net = nnjax.MLP((5, 12, 3), activation="tanh")
    keys = jax.random.split(jax.random.key(rng.integers(2**31)), len(LR))
    return x[:70], y[:70], x[70:], y[70:], net, keys


@pytest.fixture(scope="module")
def pop(problem):
    x, y, xv, yv, net, keys = problem
    # chunk_size=3: a vmapped group of 3, then the remaining 1 (tests/test_parallel.py runs the plain vmap).
    return population.fit_population(
        keys, net, (x, y), optimizer="sgd", learning_rate=LR, l1=L1, l2=L2, dropout=DROPOUT,
        init_scale=SCALE, validation=(xv, yv), chunk_size=3, **FIT,
    )


@pytest.fixture(scope="module")
def single_run(problem):
    """One member's run without vmap: a jitted nnjax.fit with the hyper-parameters as arguments."""
    x, y, xv, yv, net, _ = problem

    @jax.jit
    def run(key, lr, l1, l2, dropout, scale):
        start = nnjax.init(training.split_run_key(key)[0], net)
        start = [{"w": layer["w"] * scale, "b": layer["b"]} for layer in start]
        return nnjax.fit(key, net, (x, y), optimizer=optax.sgd(lr), l1=l1, l2=l2, dropout=dropout,
                         params=start, validation=(xv, yv), **FIT)

    return run


def _assert_tree_close(a, b, rtol=1e-5, atol=1e-6):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol), a, b)


def test_population_members_equal_separate_runs(pop, problem, single_run):
    keys = problem[-1]
    assert pop.history["loss"].shape == (len(LR), FIT["epochs"])
    for i in range(len(LR)):
        alone = single_run(keys[i], LR[i], L1[i], L2[i], DROPOUT[i], SCALE[i])
        member = population.select(pop, i)
        _assert_tree_close(member.params, alone.params)
        for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(member.history[name], alone.history[name], rtol=1e-5, atol=1e-6)
    # The members really differ (the hyper-parameters reached each run).
    assert len({round(float(v), 6) for v in pop.history["loss"][:, -1]}) == len(LR)


def test_population_member_equals_plain_fit(pop, problem):
    x, y, xv, yv, net, keys = problem
    i = 2  # init_scale 2.0: compare with nnjax.fit started from twice its own initial weights
    start = nnjax.init(training.split_run_key(keys[i])[0], net)
    start = [{"w": 2.0 * layer["w"], "b": layer["b"]} for layer in start]
    alone = nnjax.fit(keys[i], net, (x, y), optimizer="sgd", learning_rate=float(LR[i]), l1=float(L1[i]),
                      l2=float(L2[i]), dropout=float(DROPOUT[i]), params=start, validation=(xv, yv), **FIT)
    _assert_tree_close(population.select(pop, i).params, alone.params)
    np.testing.assert_allclose(pop.history["val_loss"][i], alone.history["val_loss"], rtol=1e-5)


def test_best_index_picks_the_best_validation_member(pop):
    val_loss = np.asarray(pop.history["val_loss"])[:, -1]
    assert population.best_index(pop) == int(np.argmin(val_loss))
    val_acc = np.asarray(pop.history["val_accuracy"])
    assert population.best_index(pop, "val_accuracy", at="best") == int(np.argmax(val_acc.max(axis=1)))
    best = population.select(pop, population.best_index(pop))
    assert best.history["loss"].shape == (FIT["epochs"],)


def _fake(values, stopped):
    history = {"m": np.asarray(values, np.float32), "val_accuracy": np.asarray(values, np.float32),
               "stopped": np.asarray(stopped, bool)}
    return nnjax.FitResult(None, None, history, None, None)


def test_member_scores_skip_stopped_epochs_and_nan(rng):
    values = rng.uniform(size=(5, 6))
    stopped = np.zeros((5, 6), bool)
    stopped[1, 3:] = True  # early stop after epoch 2
    stopped[3, :] = True  # never ran
    values[np.where(stopped)] = np.nan
    values[4, 2] = np.nan  # diverged once, recovered
    fake = _fake(values, stopped)
    expected_last = [values[0, 5], values[1, 2], values[2, 5], np.nan, values[4, 5]]
    np.testing.assert_allclose(population.member_scores(fake, "m"), expected_last, rtol=1e-6)
    best = [np.nanmin(values[i]) if i != 3 else np.nan for i in range(5)]
    np.testing.assert_allclose(population.member_scores(fake, "m", at="best"), best, rtol=1e-6)
    assert population.best_index(fake, "m") == int(np.nanargmin(expected_last))
    assert population.best_index(fake, "val_accuracy") == int(np.nanargmax(expected_last))
    with pytest.raises(ValueError, match="metric: expected one of"):
        population.member_scores(fake, "nope")
    with pytest.raises(ValueError, match="no member has a finite"):
        population.best_index(_fake(np.full((2, 2), np.nan), np.zeros((2, 2))), "m")


def test_select_slices_every_leaf(pop):
    member = population.select(pop, 1)
    def raw(a):
        return np.asarray(jax.random.key_data(a) if jnp.issubdtype(a.dtype, jax.dtypes.prng_key) else a)

    for a, b in zip(jax.tree_util.tree_leaves(member), jax.tree_util.tree_leaves(pop)):
        np.testing.assert_array_equal(raw(a), raw(b[1]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(learning_rate=[0.1, -0.1, 0.1, 0.1]),
         "learning_rate: expected a finite number > 0 everywhere, got -0.1 at flat index 1"),
        (dict(dropout=1.0), r"dropout: expected a number in \[0, 1\)"),
        (dict(l2=[0.0, 0.1]), r"l2: expected a scalar or shape \(4,\)"),
        (dict(l1=-1.0), "l1: expected a finite number >= 0, got -1.0"),
        (dict(init_scale=0.0), "init_scale: expected a finite number > 0, got 0.0"),
        (dict(optimizer=optax.sgd(0.1), learning_rate=0.1), "learning_rate: a fixed optax optimizer"),
        (dict(params=[]), "params: not accepted"),
        (dict(progress=True), "progress: not accepted"),
        (dict(chunk_size=0), "chunk_size: expected a positive number"),
    ],
)
def test_population_errors_name_the_argument(problem, kwargs, match):
    x, y, _, _, net, keys = problem
    args = dict(optimizer="sgd", **FIT)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        population.fit_population(keys, net, (x, y), **args)


def test_population_rejects_bad_keys_and_data(problem):
    x, y, _, _, net, keys = problem
    with pytest.raises(ValueError, match="keys: expected stacked PRNG keys"):
        population.fit_population(jax.random.key(0), net, (x, y), optimizer="sgd", **FIT)
    with pytest.raises(ValueError, match="x: expected 5 features"):
        population.fit_population(keys, net, (x[:, :3], y), optimizer="sgd", **FIT)
    with pytest.raises(ValueError, match="y"):
        population.fit_population(keys, net, (x, y + 5), optimizer="sgd", **FIT)


def test_grid_is_the_cartesian_product():
    g = sw.grid(learning_rate=[0.1, 0.01, 0.001], l2=[0.0, 1e-4], dropout=0.2)
    expected = list(itertools.product([0.1, 0.01, 0.001], [0.0, 1e-4], [0.2]))
    got = list(zip(g["learning_rate"], g["l2"], g["dropout"]))
    assert got == expected
    with pytest.raises(ValueError, match="hyper-parameter: expected one of"):
        sw.grid(lr=[0.1])


def test_random_search_distributions(key):
    n = 4000
    s = sw.random_search(n, key=key, learning_rate=sw.LogUniform(1e-4, 1e-1), dropout=sw.Uniform(0.0, 0.5),
                         l2=[0.0, 1e-4, 1e-3], init_scale=1.5)
    lr = s["learning_rate"]
    assert lr.min() >= 1e-4 and lr.max() < 1e-1
    # log10(lr) ~ U(-4, -1): mean -2.5, sd 3/sqrt(12); allow 5 standard errors.
    assert abs(np.log10(lr).mean() + 2.5) < 5 * (3 / np.sqrt(12)) / np.sqrt(n)
    assert abs(s["dropout"].mean() - 0.25) < 5 * (0.5 / np.sqrt(12)) / np.sqrt(n)
    freq = np.array([np.mean(s["l2"] == v) for v in (0.0, 1e-4, 1e-3)])
    assert np.all(np.abs(freq - 1 / 3) < 5 * np.sqrt((1 / 3) * (2 / 3) / n))
    np.testing.assert_array_equal(s["init_scale"], 1.5)
    # Adding a name does not change the others' draws.
    t = sw.random_search(n, key=key, learning_rate=sw.LogUniform(1e-4, 1e-1))
    np.testing.assert_array_equal(t["learning_rate"], lr)
    with pytest.raises(ValueError, match="expected 0 < low < high"):
        sw.random_search(3, key=key, learning_rate=sw.LogUniform(0.0, 1.0))


def _gd_reference(x, y, xv, yv, w, b, lr, l2, epochs):
    """Full-batch gradient descent on mean (o - y)^2 + l2 |w|^2 in float64; the final validation MSE."""
    for _ in range(epochs):
        r = x @ w + b - y
        w = w - lr * (2 * x.T @ r / len(x) + 2 * l2 * w)
        b = b - lr * 2 * r.mean(axis=0)
    return float(np.mean((xv @ w + b - yv) ** 2))


def test_sweep_picks_the_known_best_setting(rng, key):
    # Zero-mean, whitened inputs: the Hessian of the MSE is exactly 2 I, so gradient descent with
    # learning rate 0.5 and no penalty lands on the exact solution in one step; smaller rates
    # converge geometrically, 0.9 oscillates, 1.2 diverges and l2 > 0 biases the solution.
    n, d, epochs = 64, 4, 3
    z = rng.normal(size=(n, d))
    z = z - z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(z.T @ z / n)).T  # now z.T z / n = I
    w_true, b_true = rng.normal(size=(d, 1)), rng.normal()
    target = z @ w_true + b_true
    x, y = z.astype(np.float32), target.astype(np.float32)
    net = nnjax.MLP((d, 1))
    settings = sw.grid(learning_rate=[0.1, 0.25, 0.5, 0.9, 1.2], l2=[0.0, 0.05])
    out = sw.sweep(key, net, (x, y), settings, seeds=3, loss="mse", optimizer="sgd", epochs=epochs,
                   batch_size=n, validation=(x, y), diagnostics=False)
    best = out.table()[0]
    assert (best["learning_rate"], best["l2"]) == (0.5, 0.0)
    assert out.best == best["setting"] and out.metric == "val_loss" and not out.maximise
    # Every score equals float64 gradient descent from the same initial weights.
    for s in range(3):
        start = nnjax.init(training.split_run_key(jax.random.fold_in(key, s))[0], net)
        w0, b0 = np.asarray(start[0]["w"], np.float64), np.asarray(start[0]["b"], np.float64)
        for i in range(len(settings["learning_rate"])):
            ref = _gd_reference(z, target, z, target, w0, b0, settings["learning_rate"][i], settings["l2"][i], epochs)
            np.testing.assert_allclose(out.scores[i, s], ref, rtol=2e-3, atol=1e-5)
    rows = out.table()
    assert [r["finite"] for r in rows] == [3] * len(rows)
    np.testing.assert_allclose([r["mean"] for r in rows], out.scores[[r["setting"] for r in rows]].mean(axis=1))
    np.testing.assert_allclose([r["std"] for r in rows], out.scores[[r["setting"] for r in rows]].std(axis=1, ddof=1))
    assert out.result.history["val_loss"].shape == (10, 3, epochs)
    text = out.format()
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["rank", "setting", "learning_rate", "l2"]
    assert lines[1].split()[:4] == ["1", str(best["setting"]), "0.5", "0"]


def test_sweep_errors(problem, key):
    x, y, _, _, net, _ = problem
    with pytest.raises(ValueError, match="seeds: expected a positive"):
        sw.sweep(key, net, (x, y), sw.grid(l2=[0.0]), seeds=0, optimizer="sgd", **FIT)
    with pytest.raises(ValueError, match="settings: expected arrays of one length"):
        sw.sweep(key, net, (x, y), {"l1": [0.0, 1.0], "l2": [0.0]}, optimizer="sgd", **FIT)
    with pytest.raises(ValueError, match="l2: given both"):
        sw.sweep(key, net, (x, y), sw.grid(l2=[0.0]), l2=0.1, optimizer="sgd", **FIT)
