"""Tests of the compiled training loop (nnjax.fit, nnjax.training)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax import training


@pytest.fixture(scope="module")
def digits():
    data = nnjax.data.load_dataset("digits")
    (x_tr, y_tr), (x_te, y_te) = nnjax.data.split(0, data.x, data.y, fractions=(0.8, 0.2))
    scaler = nnjax.data.Standardizer.fit(x_tr)
    return scaler.transform(x_tr), y_tr, scaler.transform(x_te), y_te


def _small_problem(rng, n=37, d=3, k=4):
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, k, size=n)
    return x, y


def _cfg(net, n, batch_size, epochs=1, loss="softmax_cross_entropy", opt=None, **kw):
    return training.FitConfig(
        model=net, loss=nnjax.losses.resolve(loss), optimizer=opt or optax.sgd(0.1),
        epochs=epochs, batch_size=batch_size, n=n, **kw,
    )


@pytest.mark.parametrize("n, batch_size, drop_last", [(37, 8, False), (32, 8, False), (37, 8, True), (37, 37, False), (5, 1, False)])
def test_every_example_once_per_epoch(n, batch_size, drop_last, key):
    net = nnjax.MLP((1, 2))
    cfg = _cfg(net, n, batch_size, drop_last=drop_last)
    ids = jnp.arange(n, dtype=jnp.float32)[:, None]
    ts = training.init_train_state(cfg, nnjax.init(key, net), nnjax.init_state(net))
    counts = np.zeros(n)
    for epoch in range(3):
        # the rows the steps gather (single-device runs) and the gathered epoch (data-parallel runs) agree
        rows, wb = training._epoch_order(cfg, key, ts._replace(epoch=jnp.int32(epoch)), jnp.ones(n))
        xb, _, wb2 = training._epoch_batches(cfg, key, ts._replace(epoch=jnp.int32(epoch)), ids, jnp.zeros(n), jnp.ones(n))
        assert rows.shape == xb.shape[:2] == (cfg.steps, batch_size)
        np.testing.assert_array_equal(np.asarray(xb[..., 0]), np.asarray(rows, np.float32))
        np.testing.assert_array_equal(wb, wb2)
        seen = np.asarray(rows).ravel()[np.asarray(wb).ravel() > 0]
        counts_epoch = np.bincount(seen, minlength=n)
        if drop_last:
            assert counts_epoch.max() == 1 and counts_epoch.sum() == (n // batch_size) * batch_size
        else:
            np.testing.assert_array_equal(counts_epoch, 1)
        counts += counts_epoch
    if not drop_last:
        np.testing.assert_array_equal(counts, 3)


def test_reshuffle_differs_between_epochs_and_is_reproducible(key):
    p0 = np.asarray(training.epoch_permutation(key, 0, 100))
    p1 = np.asarray(training.epoch_permutation(key, 1, 100))
    assert sorted(p0) == list(range(100)) and not np.array_equal(p0, p1)
    np.testing.assert_array_equal(p0, training.epoch_permutation(key, 0, 100))
    assert not np.array_equal(p0, training.epoch_permutation(jax.random.key(12345), 0, 100))


def test_short_last_batch_average_is_exact(key, rng):
    """A padded batch gives exactly the step of the same real rows without padding."""
    net = nnjax.MLP((3, 5, 4), activation="tanh")
    x, y = _small_problem(rng, n=5)
    params = nnjax.init(key, net)
    cfg = _cfg(net, 5, 8)
    opt_state = cfg.optimizer.init(params)
    pad = 3
    xp = np.concatenate([x, np.repeat(x[:1], pad, 0)])
    yp = np.concatenate([y, np.repeat(y[:1], pad, 0)])
    wp = np.concatenate([np.ones(5), np.zeros(pad)]).astype(np.float32)
    padded, *_ = training.train_step(params, nnjax.init_state(net), opt_state, (xp, yp, wp), key=key, cfg=cfg)
    exact, *_ = training.train_step(params, nnjax.init_state(net), opt_state, (x, y, np.ones(5, np.float32)), key=key, cfg=cfg)
    chex_allclose(padded, exact, rtol=1e-6)
    # and both equal the full-batch gradient step computed independently
    grads = jax.grad(lambda p: jnp.mean(nnjax.losses.softmax_cross_entropy(nnjax.apply(p, x, net), y)))(params)
    chex_allclose(padded, jax.tree.map(lambda p, g: p - 0.1 * g, params, grads), rtol=1e-5)


def chex_allclose(a, b, rtol=1e-6, atol=1e-7):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


def test_l1_l2_gradients_equal_closed_forms(key, rng):
    net = nnjax.MLP((3, 5, 4), activation="tanh")
    x, y = _small_problem(rng, n=8)
    params = nnjax.init(key, net)
    cfg = _cfg(net, 8, 8, opt=optax.sgd(1.0))
    w = np.ones(8, np.float32)
    l1, l2 = 0.03, 0.2
    base, *_ = training.train_step(params, nnjax.init_state(net), cfg.optimizer.init(params), (x, y, w), key=key, cfg=cfg)
    reg, *_ = training.train_step(params, nnjax.init_state(net), cfg.optimizer.init(params), (x, y, w), key=key, cfg=cfg, l1=l1, l2=l2)
    for p, b, r in zip(params, base, reg):
        expected = np.asarray(b["w"]) - (l1 * np.sign(np.asarray(p["w"])) + 2 * l2 * np.asarray(p["w"]))
        np.testing.assert_allclose(r["w"], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(r["b"], b["b"], rtol=1e-6)  # biases are not penalised


def test_digits_loss_goes_down_and_reaches_95_percent(digits, key):
    x_tr, y_tr, x_te, y_te = digits
    net = nnjax.MLP((64, 128, 64, 10), output="softmax")
    result = nnjax.fit(key, net, (x_tr, y_tr), loss="softmax_cross_entropy", optimizer=optax.sgd(0.05),
                       epochs=20, batch_size=32, validation=(x_te, y_te))
    loss = np.asarray(result.history["loss"])
    assert loss.shape == (20,) and loss[-1] < 0.2 * loss[0]
    assert np.all(np.diff(loss[:5]) < 0)
    assert float(result.history["val_accuracy"][-1]) >= 0.95
    acc = np.mean(np.argmax(nnjax.predict(result.params, x_te, net), -1) == y_te)
    np.testing.assert_allclose(acc, result.history["val_accuracy"][-1], atol=1e-6)


def test_history_loss_is_the_mean_seen_while_training(key, rng):
    """With lr=0 the parameters never move, so the epoch loss equals the full-data loss."""
    net = nnjax.MLP((3, 6, 4), activation="tanh")
    x, y = _small_problem(rng, n=37)
    result = nnjax.fit(key, net, (x, y), loss="softmax_cross_entropy", optimizer=optax.sgd(0.0), epochs=2, batch_size=8)
    params = nnjax.init(training.split_run_key(key)[0], net)
    expected = np.mean(nnjax.losses.softmax_cross_entropy(nnjax.apply(params, x, net), y))
    np.testing.assert_allclose(result.history["loss"], [expected] * 2, rtol=1e-5)


def test_early_stopping_restores_the_best_epoch(key, rng):
    x = rng.normal(size=(40, 5)).astype(np.float32)
    y = rng.integers(0, 2, size=40)  # labels are noise: validation loss must turn up
    xv = rng.normal(size=(40, 5)).astype(np.float32)
    yv = rng.integers(0, 2, size=40)
    net = nnjax.MLP((5, 64, 2), output="softmax")
    kw = dict(loss="softmax_cross_entropy", optimizer=optax.adam(0.02), batch_size=8, validation=(xv, yv))
    result = nnjax.fit(key, net, (x, y), epochs=60, early_stopping=nnjax.EarlyStopping(patience=3), **kw)
    stopped = np.asarray(result.history["stopped"])
    run = int(np.sum(~stopped))
    assert run < 60, "noise labels should trigger early stopping"
    val = np.asarray(result.history["val_loss"])
    assert np.all(np.isnan(val[run:]))
    best = int(np.nanargmin(val))
    assert int(result.train_state.best_epoch) == best and run == best + 1 + 3
    # the restored parameters are those after epoch `best`: a fresh run of best+1 epochs
    again = nnjax.fit(key, net, (x, y), epochs=best + 1, **kw)
    chex_allclose(result.params, again.params, rtol=0, atol=0)


def test_exploding_run_returns_finite_params_and_counts_skips(key, rng):
    x = rng.normal(size=(64, 4)).astype(np.float32) * 10
    y = rng.normal(size=(64,)).astype(np.float32) * 100
    net = nnjax.MLP((4, 32, 32, 1), init="normal")
    result = nnjax.fit(key, net, (x, y), loss="mse", optimizer=optax.sgd(1e3), epochs=5, batch_size=8)
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(result.params))
    skipped = np.asarray(result.history["skipped"])
    assert skipped.sum() > 0 and skipped.max() <= 8
    stop = nnjax.fit(key, net, (x, y), loss="mse", optimizer=optax.sgd(1e3), epochs=5, batch_size=8,
                     on_nonfinite="stop")
    first = int(np.argmax(np.asarray(stop.history["skipped"]) > 0))
    assert np.all(np.asarray(stop.history["stopped"])[first + 1:])
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(stop.params))


@pytest.mark.parametrize("early", [None, 2])
def test_continuation_is_bit_exact(early, key, rng):
    x, y = _small_problem(rng, n=50)
    net = nnjax.MLP((3, 16, 4), output="softmax", dropout=0.2)
    kw = dict(loss="softmax_cross_entropy", optimizer=optax.adam(0.01), batch_size=16,
              early_stopping=early, validation=(x[:10], y[:10]))
    whole = nnjax.fit(key, net, (x, y), epochs=10, **kw)
    half = nnjax.fit(key, net, (x, y), epochs=5, **kw)
    rest = nnjax.fit(None, net, (x, y), epochs=5, resume=half, **kw)
    chex_allclose(whole.params, rest.params, rtol=0, atol=0)
    chex_allclose(whole.train_state, rest.train_state, rtol=0, atol=0)
    joined = np.concatenate([half.history["loss"], rest.history["loss"]])
    np.testing.assert_array_equal(joined, whole.history["loss"])


def test_progress_chunks_equal_one_run(key, rng):
    x, y = _small_problem(rng, n=50)
    net = nnjax.MLP((3, 8, 4), output="softmax")
    seen = []
    kw = dict(loss="softmax_cross_entropy", optimizer=optax.sgd(0.1), epochs=7, batch_size=16)
    plain = nnjax.fit(key, net, (x, y), **kw)
    chunked = nnjax.fit(key, net, (x, y), progress=lambda done, m: seen.append(done), progress_every=3, **kw)
    assert seen == [3, 6, 7]
    chex_allclose(plain.params, chunked.params, rtol=0, atol=0)
    np.testing.assert_array_equal(plain.history["loss"], chunked.history["loss"])


def test_vmap_over_keys_equals_separate_runs(rng):
    x, y = _small_problem(rng, n=40)
    net = nnjax.MLP((3, 8, 4), output="softmax", dropout=0.1)
    opt = optax.sgd(0.1)

    def one(k):
        return nnjax.fit(k, net, (x, y), loss="softmax_cross_entropy", optimizer=opt, epochs=4, batch_size=8)

    keys = jax.random.split(jax.random.key(3), 8)
    many = jax.jit(jax.vmap(one))(keys)
    for i in range(8):
        single = one(keys[i])
        for a, b in zip(jax.tree_util.tree_leaves(single.params), jax.tree_util.tree_leaves(many.params)):
            np.testing.assert_allclose(b[i], a, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(many.history["loss"][i], single.history["loss"], rtol=1e-5)


def test_vmap_over_traced_hyperparameters(key, rng):
    x, y = _small_problem(rng, n=40)
    net = nnjax.MLP((3, 8, 4), output="softmax")

    def one(lr, l2, rate):
        return nnjax.fit(key, net, (x, y), loss="softmax_cross_entropy", optimizer=optax.sgd(lr), epochs=3,
                         batch_size=8, l2=l2, dropout=rate).history["loss"][-1]

    lrs, l2s, rates = jnp.array([0.0, 0.1]), jnp.array([0.0, 0.01]), jnp.array([0.0, 0.3])
    losses = np.asarray(jax.jit(jax.vmap(one))(lrs, l2s, rates))
    for i in range(2):
        np.testing.assert_allclose(losses[i], one(float(lrs[i]), float(l2s[i]), float(rates[i])), rtol=1e-5)
    assert losses[0] != losses[1]


def test_compiled_loop_equals_python_reference_loop(key, rng):
    x, y = _small_problem(rng, n=29)
    net = nnjax.MLP((3, 8, 4), output="softmax", dropout=0.25)
    opt = optax.adam(0.01)
    result = nnjax.fit(key, net, (x, y), loss="softmax_cross_entropy", optimizer=opt, epochs=3, batch_size=8, l2=1e-3)
    cfg = _cfg(net, 29, 8, opt=opt)
    step = jax.jit(lambda p, s, o, b, k: training.train_step(p, s, o, b, key=k, cfg=cfg, l2=1e-3))
    params = nnjax.init(training.split_run_key(key)[0], net)
    state, opt_state = nnjax.init_state(net), opt.init(params)
    for epoch in range(3):
        perm = np.asarray(training.epoch_permutation(key, epoch, 29))
        for s in range(4):
            idx = perm[s * 8:(s + 1) * 8]
            w = np.ones(8, np.float32)
            if len(idx) < 8:  # pad the short last batch like fit does
                w[len(idx):] = 0
                idx = np.concatenate([idx, np.zeros(8 - len(idx), int)])
            params, state, opt_state, _ = step(params, state, opt_state, (x[idx], y[idx], w), training.batch_key(key, epoch, s))
    chex_allclose(result.params, params, rtol=1e-5, atol=1e-6)


def test_epoch_loop_traces_once(key, rng):
    x, y = _small_problem(rng, n=32)
    net = nnjax.MLP((3, 8, 4))
    traces = []

    def counting_loss(logits, labels):
        traces.append(1)
        return nnjax.losses.softmax_cross_entropy(logits, labels)

    opt = optax.sgd(0.1)
    for _ in range(2):
        nnjax.fit(key, net, (x, y), loss=counting_loss, optimizer=opt, epochs=6, batch_size=8)
    assert len(traces) == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(epochs=0), "epochs"),
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=1000), "batch_size"),
        (dict(dropout=1.5), "dropout"),
        (dict(on_nonfinite="ignore"), "on_nonfinite"),
        (dict(optimizer="adamax"), "optimizer"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, match, key, rng):
    x, y = _small_problem(rng, n=20)
    args = dict(loss="softmax_cross_entropy", optimizer=optax.sgd(0.1), epochs=2, batch_size=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        nnjax.fit(key, nnjax.MLP((3, 4)), (x, y), **args)


def test_bad_data_is_rejected_before_compiling(key, rng):
    x, y = _small_problem(rng, n=20)
    net = nnjax.MLP((3, 4))
    kw = dict(loss="softmax_cross_entropy", optimizer=optax.sgd(0.1), epochs=1, batch_size=4)
    with pytest.raises(ValueError, match="features"):
        nnjax.fit(key, nnjax.MLP((5, 4)), (x, y), **kw)
    with pytest.raises(ValueError, match="y"):
        nnjax.fit(key, net, (x, np.where(y == 0, 7, y)), **kw)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="x"):
        nnjax.fit(key, net, (bad, y), **kw)
    with pytest.raises(ValueError, match="y"):
        nnjax.fit(key, net, (x, y[:-1]), **kw)


def test_named_optimizer_and_clipping_do_not_recompile(key, rng):
    x, y = _small_problem(rng, n=32)
    traces = []

    def counting_loss(logits, labels):
        traces.append(1)
        return nnjax.losses.softmax_cross_entropy(logits, labels)

    for _ in range(2):
        nnjax.fit(key, nnjax.MLP((3, 4)), (x, y), loss=counting_loss, optimizer="adam", learning_rate=0.01,
                  clip_norm=1.0, epochs=2, batch_size=8)
    assert len(traces) == 1
