"""Batch norm and residual connections: forward passes against NumPy float64, gradients, fit threading."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import nnjax
from nnjax import diagnostics

ACT = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0), "identity": lambda z: z}


def reference_forward(params, state, x, net, *, train, row_weights=None):
    """The MLP in NumPy float64, written from the maths (no nnjax code): logits, new state, activations."""
    p64 = [{k: np.asarray(v, np.float64) for k, v in layer.items()} for layer in params]
    h = np.asarray(x, np.float64)
    new_state, acts = [], []
    for i, layer in enumerate(p64[:-1]):
        z = h @ layer["w"] + layer["b"]
        stats = {}
        if net.batch_norm:
            if train:
                w = np.ones(len(h)) if row_weights is None else np.asarray(row_weights, np.float64)
                mean = (w[:, None] * z).sum(0) / w.sum()
                var = (w[:, None] * (z - mean) ** 2).sum(0) / w.sum()  # biased, over real rows only
                m = net.bn_momentum
                old = {k: np.asarray(v, np.float64) for k, v in state[i].items()}
                stats = {"mean": m * old["mean"] + (1 - m) * mean, "var": m * old["var"] + (1 - m) * var}
            else:
                mean, var = np.asarray(state[i]["mean"], np.float64), np.asarray(state[i]["var"], np.float64)
            z = (z - mean) / np.sqrt(var + net.bn_epsilon) * layer["gamma"] + layer["beta"]
        a = ACT[net.hidden_activations[i]](z)
        acts.append(a)
        if net.residual and i >= 1:
            a = a + (h @ layer["proj"] if h.shape[1] != a.shape[1] else h)
        new_state.append(stats)
        h = a
    return h @ p64[-1]["w"] + p64[-1]["b"], new_state, acts


def randomised(key, net):
    """Parameters with non-trivial gamma/beta/bias (init sets them to 1/0) and random running stats."""
    params = nnjax.init(key, net)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.fold_in(key, 99), len(leaves))
    leaves = [leaf + 0.3 * jax.random.normal(k, leaf.shape, leaf.dtype) for leaf, k in zip(leaves, keys)]
    state = [
        {"mean": 0.5 * jax.random.normal(jax.random.fold_in(key, 200 + i), (n,)),
         "var": jax.random.uniform(jax.random.fold_in(key, 300 + i), (n,), minval=0.5, maxval=2.0)}
        for i, n in enumerate(net.sizes[1:-1])
    ] if net.batch_norm else nnjax.init_state(net)
    return jax.tree_util.tree_unflatten(treedef, leaves), state


# ---------------------------------------------------------------------------------------------
# batch norm


def test_batch_norm_params_and_state_layout(key):
    net = nnjax.MLP((4, 6, 5, 3), batch_norm=True)
    params = nnjax.init(key, net)
    for layer, n in zip(params[:-1], (6, 5)):
        np.testing.assert_array_equal(layer["gamma"], np.ones(n))
        np.testing.assert_array_equal(layer["beta"], np.zeros(n))
    assert set(params[-1]) == {"w", "b"}  # never on the output layer
    state = nnjax.init_state(net)
    assert [s["mean"].shape for s in state] == [(6,), (5,)]
    np.testing.assert_array_equal(state[1]["var"], np.ones(5))


@pytest.mark.parametrize("masked", [False, True])
def test_batch_norm_train_matches_numpy_reference(key, rng, masked):
    net = nnjax.MLP((5, 7, 6, 3), activation="tanh", batch_norm=True, bn_momentum=0.8)
    params, state = randomised(key, net)
    x = rng.normal(size=(9, 5)).astype(np.float32)
    rows = np.ones(9)
    if masked:
        rows[[2, 7, 8]] = 0.0  # e.g. the padding of a short last batch
    logits, new_state = nnjax.apply_with_state(
        params, state, x, net, train=True, row_weights=jnp.asarray(rows > 0) if masked else None
    )
    ref_logits, ref_state, _ = reference_forward(params, state, x, net, train=True, row_weights=rows)
    np.testing.assert_allclose(logits, ref_logits, rtol=2e-5, atol=2e-5)
    for got, want in zip(new_state, ref_state):
        np.testing.assert_allclose(got["mean"], want["mean"], rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(got["var"], want["var"], rtol=2e-5, atol=2e-6)


def test_masked_rows_do_not_influence_real_rows(key, rng):
    net = nnjax.MLP((5, 7, 6, 3), activation="tanh", batch_norm=True)
    params, state = randomised(key, net)
    x = rng.normal(size=(8, 5)).astype(np.float32)
    real = np.arange(8) < 5
    junk = x.copy()
    junk[~real] = 1e3 * rng.normal(size=(3, 5))
    a, sa = nnjax.apply_with_state(params, state, x, net, train=True, row_weights=jnp.asarray(real))
    b, sb = nnjax.apply_with_state(params, state, junk, net, train=True, row_weights=jnp.asarray(real))
    np.testing.assert_allclose(a[real], b[real], rtol=1e-5, atol=1e-6)
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6), sa, sb)


def test_batch_norm_eval_uses_running_statistics(key, rng):
    net = nnjax.MLP((5, 7, 6, 3), activation="relu", batch_norm=True)
    params, state = randomised(key, net)
    x = rng.normal(size=(6, 5)).astype(np.float32)
    logits, same_state = nnjax.apply_with_state(params, state, x, net, train=False)
    np.testing.assert_allclose(logits, reference_forward(params, state, x, net, train=False)[0], rtol=2e-5, atol=2e-5)
    jax.tree.map(np.testing.assert_array_equal, same_state, state)  # evaluation never updates them
    # each row is normalised on its own: one example at a time gives the same logits
    one_by_one = np.concatenate([nnjax.apply(params, x[i:i + 1], net, state=state) for i in range(6)])
    np.testing.assert_allclose(logits, one_by_one, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="state"):
        nnjax.apply(params, x, net)  # a batch-norm network needs its running statistics to evaluate


def test_running_averages_follow_the_momentum_recursion(key, rng):
    """k training passes on one batch: running = m^k * start + (1 - m^k) * batch statistic."""
    net = nnjax.MLP((4, 6, 2), activation="tanh", batch_norm=True, bn_momentum=0.7)
    params, state = randomised(key, net)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    batch_state = reference_forward(params, [{"mean": np.zeros(6), "var": np.zeros(6)}], x, net, train=True)[1][0]
    m = 0.7
    batch_mean, batch_var = batch_state["mean"] / (1 - m), batch_state["var"] / (1 - m)
    current = state
    for k in range(1, 6):
        _, current = nnjax.apply_with_state(params, current, x, net, train=True)
        decay = m**k
        np.testing.assert_allclose(current[0]["mean"], decay * np.asarray(state[0]["mean"]) + (1 - decay) * batch_mean,
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(current[0]["var"], decay * np.asarray(state[0]["var"]) + (1 - decay) * batch_var,
                                   rtol=1e-5, atol=1e-6)


def test_batch_norm_gradients_match_finite_differences(key, rng):
    with jax.enable_x64(True):
        net = nnjax.MLP((3, 5, 4, 2), activation="tanh", batch_norm=True, dtype="float64")
        params, state = randomised(key, net)
        params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        state = jax.tree.map(lambda a: a.astype(jnp.float64), state)
        x = jnp.asarray(rng.normal(size=(7, 3)))
        rows = jnp.asarray([1, 1, 0, 1, 1, 1, 0], bool)

        def train_loss(p):  # through the batch statistics, masked rows excluded
            return jnp.sum(jnp.sin(nnjax.apply_with_state(p, state, x, net, train=True, row_weights=rows)[0]))

        def eval_loss(p):
            return jnp.sum(jnp.sin(nnjax.apply(p, x, net, state=state)))

        for loss in (train_loss, eval_loss):  # jitted: check_grads evaluates them many times
            check_grads(jax.jit(loss), (params,), order=1, modes=["rev"], eps=1e-6, atol=1e-6, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# residual connections

RESIDUAL_SIZES = (5, 8, 8, 6, 6, 3)


def test_residual_params_shapes_and_output(key):
    net = nnjax.MLP(RESIDUAL_SIZES, activation="relu", residual=True)
    params = nnjax.init(key, net)
    # layer 0 takes the input (no skip); 1: 8 -> 8 identity; 2: 8 -> 6 projection; 3: 6 -> 6 identity
    assert ["proj" in layer for layer in params] == [False, False, True, False, False]
    assert params[2]["proj"].shape == (8, 6)
    assert nnjax.apply(params, jnp.ones((4, 5)), net).shape == (4, 3)
    assert net.has_skip(1) and net.has_skip(3) and not net.has_skip(0)
    assert not nnjax.MLP(RESIDUAL_SIZES).has_skip(1)
    # the projection is a weight matrix: it is penalised like the others
    expected = sum(float(jnp.sum(layer[k] ** 2)) for layer in params for k in ("w", "proj") if k in layer)
    np.testing.assert_allclose(nnjax.losses.l2_penalty(params), expected, rtol=1e-5)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_residual_forward_matches_numpy_reference(key, rng, batch_norm):
    net = nnjax.MLP(RESIDUAL_SIZES, activation="tanh", residual=True, batch_norm=batch_norm)
    params, state = randomised(key, net)
    x = rng.normal(size=(6, 5)).astype(np.float32)
    for train in (False, True) if batch_norm else (False,):
        logits, _, hidden = nnjax.apply_with_state(params, state, x, net, train=train, return_hidden=True)
        ref_logits, _, ref_acts = reference_forward(params, state, x, net, train=train)
        np.testing.assert_allclose(logits, ref_logits, rtol=2e-5, atol=2e-5)
        for got, want in zip(hidden, ref_acts):  # the activations before the skip is added
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def test_residual_gradients_match_finite_differences(key, rng):
    with jax.enable_x64(True):
        net = nnjax.MLP(RESIDUAL_SIZES, activation="tanh", residual=True, dtype="float64")
        params = jax.tree.map(lambda a: a.astype(jnp.float64), nnjax.init(key, net))
        x = jnp.asarray(rng.normal(size=(4, 5)))
        loss = jax.jit(lambda p, x: jnp.sum(jnp.cos(nnjax.apply(p, x, net))))
        check_grads(loss, (params, x), order=1, modes=["rev"], eps=1e-6, atol=1e-6, rtol=1e-6)


def test_skips_carry_the_gradient_past_layers_that_block_it(key, rng):
    """Hidden weights of zero and a very negative bias kill layers 1..3: only the skips reach layer 0."""
    x = jnp.asarray(rng.normal(size=(8, 5)), jnp.float32)
    norms = {}
    for residual in (False, True):
        net = nnjax.MLP((5, 6, 6, 6, 6, 2), activation="relu", residual=residual)
        params = nnjax.init(key, net)
        for i in (1, 2, 3):
            params[i] = {"w": jnp.zeros_like(params[i]["w"]), "b": jnp.full_like(params[i]["b"], -5.0)}
        grads = jax.grad(lambda p: jnp.sum(nnjax.apply(p, x, net) ** 2))(params)
        norms[residual] = float(jnp.linalg.norm(grads[0]["w"]))
        hidden = nnjax.apply_with_state(params, None, x, net, return_hidden=True)[2]
        # dead ReLUs are seen in the activation itself, even where a skip adds the input back
        np.testing.assert_array_equal(diagnostics.dead_fraction(hidden, jnp.ones(8)), [0.0, 1.0, 1.0, 1.0])
    assert norms[False] == 0.0
    assert norms[True] > 1e-3


# ---------------------------------------------------------------------------------------------
# batch-norm statistics threaded through fit

BN_NET = nnjax.MLP((4, 6, 5, 3), activation="relu", output="softmax", batch_norm=True, bn_momentum=0.6)
SGD = optax.sgd(0.1)  # one optimizer object: every fit below reuses the compiled program


def _fit_bn(key, data, epochs, **kwargs):
    x, y = data
    return nnjax.fit(key, BN_NET, (x, y), loss="softmax_cross_entropy", optimizer=SGD, epochs=epochs,
                     batch_size=len(x), validation=(x, y), **kwargs)


@pytest.fixture(scope="module")
def bn_data():
    rng = np.random.default_rng(5)
    return rng.normal(size=(24, 4)).astype(np.float32), rng.integers(0, 3, size=24)


def test_fit_returns_running_statistics_of_the_steps(bn_data):
    """Full batch, one epoch = one step from the initial parameters: the state is one momentum update."""
    key = jax.random.key(3)
    result = _fit_bn(key, bn_data, epochs=1)
    start = nnjax.init(nnjax.training.split_run_key(key)[0], BN_NET)
    _, want, _ = reference_forward(start, nnjax.init_state(BN_NET), bn_data[0], BN_NET, train=True)
    for got, ref in zip(result.state, want):
        np.testing.assert_allclose(got["mean"], ref["mean"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got["var"], ref["var"], rtol=1e-5, atol=1e-6)
    # validation is scored in evaluation mode, with the running statistics
    logits = nnjax.apply(result.params, bn_data[0], BN_NET, state=result.state)
    val_loss = np.mean(nnjax.losses.resolve("softmax_cross_entropy").fn(logits, jnp.asarray(bn_data[1])))
    np.testing.assert_allclose(result.history["val_loss"][-1], val_loss, rtol=1e-5)


def test_fit_resume_continues_the_running_statistics(bn_data):
    key = jax.random.key(4)
    first = _fit_bn(key, bn_data, epochs=1)
    resumed = _fit_bn(None, bn_data, epochs=1, resume=first)
    direct = _fit_bn(key, bn_data, epochs=2)
    assert not np.allclose(resumed.state[0]["mean"], first.state[0]["mean"])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), resumed.state, direct.state)
