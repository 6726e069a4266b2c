"""The rule of a dropout override (``fit(dropout=...)``, ``apply_with_state(dropout=...)``).

A scalar replaces the rate of the hidden layers the net was built with dropout in and leaves the
others without it; on a net built without dropout it applies to every hidden layer; a sequence
sets each layer. The references below are written out layer by layer with ``nnjax.dropout_mask``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax import network, population


def _reference(params, x, key, rates):
    """An identity-activation forward pass with layer ``i`` masked at ``rates[i]`` (None: no mask)."""
    h = x
    for i, layer in enumerate(params[:-1]):
        h = h @ layer["w"] + layer["b"]
        if rates[i] is not None:
            h = h * network.dropout_mask(jax.random.fold_in(key, i), rates[i], h.shape)
    return h @ params[-1]["w"] + params[-1]["b"]


@pytest.fixture
def setup(key, rng):
    x = jnp.asarray(rng.normal(size=(16, 5)), jnp.float32)
    return x, jax.random.fold_in(key, 7)


@pytest.mark.parametrize(
    "built, override, effective",
    [
        ((0.0, 0.5), 0.3, (None, 0.3)),          # a scalar only touches the layers that have dropout
        ((0.2, 0.5), 0.3, (0.3, 0.3)),           # ... replacing (not scaling) their rates
        (0.0, 0.3, (0.3, 0.3)),                  # a net without dropout: every hidden layer
        ((0.0, 0.5), 0.0, (None, None)),         # a scalar 0 switches dropout off
        ((0.0, 0.5), (0.3, 0.0), (0.3, None)),   # a sequence sets each layer explicitly
        ((0.0, 0.5), None, (None, 0.5)),         # no override: the net's own rates
    ],
)
def test_override_rule(setup, key, built, override, effective):
    x, dkey = setup
    net = nnjax.MLP((5, 64, 64, 3), activation="identity", dropout=built)
    params = nnjax.init(key, net)
    got = nnjax.apply(params, x, net, key=dkey, train=True, dropout=override)
    want = _reference(params, x, dkey, [r if r else None for r in effective])
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
    if override is not None and any(effective):  # the override really is in effect (masks differ from none)
        assert not np.allclose(np.asarray(got), np.asarray(_reference(params, x, dkey, [None, None])), atol=1e-3)


def test_traced_scalar_under_vmap_follows_the_rule(setup, key):
    x, dkey = setup
    net = nnjax.MLP((5, 64, 64, 3), activation="identity", dropout=(0.0, 0.5))
    params = nnjax.init(key, net)
    rates = jnp.array([0.0, 0.25, 0.75])
    got = jax.vmap(lambda r: nnjax.apply(params, x, net, key=dkey, train=True, dropout=r))(rates)
    for i, r in enumerate(np.asarray(rates)):
        want = _reference(params, x, dkey, [None, r if r > 0 else None])
        np.testing.assert_allclose(np.asarray(got[i]), np.asarray(want), rtol=1e-5, atol=1e-5)


def test_a_scalar_override_on_a_plain_net_needs_a_key(key):
    net = nnjax.MLP((3, 4, 2))
    params = nnjax.init(key, net)
    with pytest.raises(ValueError, match="key"):
        nnjax.apply(params, jnp.ones((2, 3)), net, train=True, dropout=0.3)


def _data(rng):
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32) + (x[:, 2] > 0.5).astype(np.int32)
    return x, y


FIT = dict(loss="softmax_cross_entropy", optimizer=optax.sgd(0.1), epochs=3, batch_size=16, diagnostics=False)


def test_fit_scalar_equals_the_net_built_with_that_rate_where_it_had_dropout(key, rng):
    x, y = _data(rng)
    built = nnjax.MLP((5, 16, 16, 3), activation="relu", dropout=(0.0, 0.5))
    overridden = nnjax.fit(key, built, (x, y), dropout=0.2, **FIT)
    same = nnjax.fit(key, nnjax.MLP((5, 16, 16, 3), activation="relu", dropout=(0.0, 0.2)), (x, y), **FIT)
    everywhere = nnjax.fit(key, built, (x, y), dropout=(0.2, 0.2), **FIT)
    np.testing.assert_allclose(overridden.history["loss"], same.history["loss"], rtol=1e-5)
    # the first layer kept its "no dropout": a run that drops there too differs
    assert not np.allclose(overridden.history["loss"], everywhere.history["loss"], rtol=1e-3)


def test_population_sweep_over_a_scalar_rate_follows_the_rule(key, rng):
    x, y = _data(rng)
    net = nnjax.MLP((5, 16, 16, 3), activation="relu", dropout=(0.0, 0.5))
    rates = np.array([0.0, 0.3], np.float32)
    keys = jax.random.split(key, len(rates))
    pop = population.fit_population(keys, net, (x, y), dropout=rates, **FIT)
    for i, rate in enumerate(rates):
        alone = nnjax.fit(keys[i], nnjax.MLP((5, 16, 16, 3), activation="relu", dropout=(0.0, float(rate))),
                          (x, y), **FIT)
        np.testing.assert_allclose(pop.history["loss"][i], alone.history["loss"], rtol=1e-5, atol=1e-6)
