"""Tests of the MLP topology, init/apply/predict and dropout."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import nnjax
from nnjax import network


def _numpy_forward(params, x, acts):
    """Float64 reference forward pass (no dropout, no batch norm)."""
    fns = {
        "relu": lambda z: np.maximum(z, 0),
        "tanh": np.tanh,
        "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
        "identity": lambda z: z,
    }
    h = np.asarray(x, np.float64)
    for layer, act in zip(params[:-1], acts):
        h = fns[act](h @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64))
    return h @ np.asarray(params[-1]["w"], np.float64) + np.asarray(params[-1]["b"], np.float64)


def test_topology_is_static_and_hashable():
    a = nnjax.MLP([3, 5, 2], activation=["tanh"], dropout=[0.1])
    b = nnjax.MLP((3, 5, 2), activation=("tanh",), dropout=(0.1,))
    assert a == b and hash(a) == hash(b)
    assert a.n_hidden == 1 and a.n_layers == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sizes=(3,)), "sizes"),
        (dict(sizes=(3, 0, 2)), "sizes"),
        (dict(sizes=(3, 4, 2), activation="swishy"), "activation"),
        (dict(sizes=(3, 4, 4, 2), activation=("relu",)), "activation"),
        (dict(sizes=(3, 4, 2), output="tanhh"), "output"),
        (dict(sizes=(3, 4, 2), dropout=1.0), "dropout"),
        (dict(sizes=(3, 4, 2), dropout=-0.1), "dropout"),
        (dict(sizes=(3, 4, 2), init="glorious"), "initializer"),
    ],
)
def test_bad_topology_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nnjax.MLP(**kwargs)


def test_init_shapes_and_zero_biases(key):
    net = nnjax.MLP((6, 7, 5, 3))
    params = nnjax.init(key, net)
    assert [p["w"].shape for p in params] == [(6, 7), (7, 5), (5, 3)]
    assert all(set(p) == {"w", "b"} for p in params)
    assert all(float(jnp.abs(p["b"]).max()) == 0.0 for p in params)


@pytest.mark.parametrize("variant", [lambda f: f, jax.jit], ids=["eager", "jit"])
@pytest.mark.parametrize("acts", [("relu", "tanh"), ("sigmoid", "identity")])
def test_apply_matches_numpy_reference(variant, acts, key, rng):
    net = nnjax.MLP((4, 6, 5, 3), activation=acts, output="softmax")
    params = nnjax.init(key, net)
    x = rng.normal(size=(9, 4)).astype(np.float32)
    logits = variant(lambda p, x: nnjax.apply(p, x, net))(params, x)
    np.testing.assert_allclose(logits, _numpy_forward(params, x, acts), rtol=1e-5, atol=1e-5)
    probs = variant(lambda p, x: nnjax.predict(p, x, net))(params, x)
    np.testing.assert_allclose(np.sum(probs, axis=-1), 1.0, rtol=1e-6)


def test_apply_rejects_wrong_width(key):
    net = nnjax.MLP((4, 3))
    with pytest.raises(ValueError, match=r"expected shape \(n, 4\)"):
        nnjax.apply(nnjax.init(key, net), jnp.ones((2, 5)), net)


def test_whole_network_gradients_match_finite_differences(key, rng):
    net = nnjax.MLP((3, 5, 4, 2), activation=("tanh", "sigmoid"))
    params = jax.tree.map(lambda a: a.astype(jnp.float64) if jax.config.jax_enable_x64 else a, nnjax.init(key, net))
    x = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(6, 2)), jnp.float32)

    def objective(p):
        return jnp.mean(nnjax.losses.mse(nnjax.apply(p, x, net), y))

    check_grads(objective, (params,), order=1, modes=("rev",), atol=2e-2, rtol=2e-2, eps=1e-2)


def test_dropout_needs_a_key_in_training(key):
    net = nnjax.MLP((3, 4, 2), dropout=0.5)
    params = nnjax.init(key, net)
    with pytest.raises(ValueError, match="key"):
        nnjax.apply(params, jnp.ones((2, 3)), net, train=True)
    # evaluation ignores dropout and needs no key
    nnjax.apply(params, jnp.ones((2, 3)), net)


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_keep_rate_and_scaling(rate, key):
    n = 200_000
    mask = network.dropout_mask(key, rate, (n,))
    kept = np.asarray(mask) > 0
    q = 1 - rate
    # kept fraction ~ Binomial(n, q)/n: 5 standard errors
    assert abs(kept.mean() - q) < 5 * math.sqrt(q * (1 - q) / n)
    np.testing.assert_allclose(np.asarray(mask)[kept], 1 / q, rtol=1e-6)
    # inverted dropout keeps the expectation: E[mask] = 1
    assert abs(np.asarray(mask).mean() - 1) < 5 * math.sqrt((1 - q) / (q * n))


def test_dropout_masks_differ_per_layer_and_key_and_only_hit_hidden_layers(key):
    net = nnjax.MLP((5, 64, 64, 3), activation="identity", dropout=0.5, init="normal")
    params = nnjax.init(key, net)
    x = jnp.ones((4, 5))
    _, _, hidden_a = nnjax.apply_with_state(params, None, x, net, key=jax.random.key(1), train=True, return_hidden=True)
    out_a = nnjax.apply(params, x, net, key=jax.random.key(1), train=True)
    out_b = nnjax.apply(params, x, net, key=jax.random.key(2), train=True)
    assert not np.allclose(out_a, out_b)
    # same key, same mask: deterministic
    np.testing.assert_array_equal(out_a, nnjax.apply(params, x, net, key=jax.random.key(1), train=True))
    # masks of the two layers come from different keys
    m0 = network.dropout_mask(jax.random.fold_in(jax.random.key(1), 0), 0.5, (4, 64))
    m1 = network.dropout_mask(jax.random.fold_in(jax.random.key(1), 1), 0.5, (4, 64))
    assert not np.array_equal(m0, m1)


def test_gradient_flows_through_the_same_dropout_mask(key, rng):
    net = nnjax.MLP((3, 8, 1), activation="identity", dropout=0.5)
    params = nnjax.init(key, net)
    x = jnp.asarray(rng.normal(size=(1, 3)), jnp.float32)
    dkey = jax.random.key(7)
    grads = jax.grad(lambda p: jnp.sum(nnjax.apply(p, x, net, key=dkey, train=True)))(params)
    mask = network.dropout_mask(jax.random.fold_in(dkey, 0), 0.5, (1, 8))
    # dL/dw_out[j] = h_j * mask_j: zero exactly where the forward pass dropped unit j
    dropped = np.asarray(mask[0]) == 0
    assert dropped.any() and (~dropped).any()
    np.testing.assert_array_equal(np.asarray(grads[1]["w"][:, 0])[dropped], 0.0)
    hidden = np.asarray(x @ params[0]["w"] + params[0]["b"])[0]
    np.testing.assert_allclose(np.asarray(grads[1]["w"][:, 0])[~dropped], (hidden * np.asarray(mask[0]))[~dropped], rtol=1e-5)


def test_traced_dropout_rate_under_vmap(key):
    net = nnjax.MLP((4, 256, 1), activation="identity", init="normal")
    params = nnjax.init(key, net)
    x = jnp.ones((64, 4))

    def dropped_fraction(rate):
        _, _, hidden = nnjax.apply_with_state(params, None, x, net, key=key, train=True, dropout=rate, return_hidden=True)
        out = nnjax.apply_with_state(params, None, x, net, key=key, train=True, dropout=rate)[0]
        del out
        masked = network.dropout_mask(jax.random.fold_in(key, 0), rate, hidden[0].shape)
        return jnp.mean(masked == 0)

    rates = jnp.array([0.0, 0.25, 0.75])
    fractions = np.asarray(jax.vmap(dropped_fraction)(rates))
    n = 64 * 256
    for r, f in zip(np.asarray(rates), fractions):
        assert abs(f - r) < 5 * math.sqrt(max(r * (1 - r), 1e-12) / n) + 1e-9


def test_zero_init_keeps_neurons_identical_random_init_does_not(key, rng):
    x = jnp.asarray(rng.normal(size=(32, 4)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 3, size=32))
    for init, symmetric in (("zeros", True), ("he_normal", False)):
        net = nnjax.MLP((4, 6, 3), activation="tanh", init=init, output="softmax")
        params = nnjax.init(key, net)
        if init == "zeros":  # break the all-zero output so gradients reach the hidden layer
            params[1]["w"] = jnp.full_like(params[1]["w"], 0.3)
        opt = optax.sgd(0.5)
        state = opt.init(params)

        def objective(p):
            return jnp.mean(nnjax.losses.softmax_cross_entropy(nnjax.apply(p, x, net), y))

        for _ in range(3):
            updates, state = opt.update(jax.grad(objective)(params), state)
            params = optax.apply_updates(params, updates)
        w = np.asarray(params[0]["w"])
        columns_equal = np.allclose(w, w[:, :1])
        assert columns_equal == symmetric, init
