"""Tests of nnjax.train.branching: a cond that stays a branch under jax.vmap, and the population it serves."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax.train.branching import cond


def _branches(hits):
    def on_true(v, w):
        jax.debug.callback(lambda: hits.append("true"))
        return {"a": v * 2.0 + w, "b": jnp.sin(v)}

    def on_false(v, w):
        jax.debug.callback(lambda: hits.append("false"))
        return {"a": -v, "b": w * jnp.ones_like(v)}

    return on_true, on_false


@pytest.mark.parametrize("signs", [(1, 1, 1, 1), (-1, -1, -1, -1), (1, -1, -1, 1)])
def test_vmapped_cond_equals_each_members_lax_cond(rng, signs):
    x = jnp.asarray(np.abs(rng.normal(size=(4, 3))) * np.array(signs)[:, None], jnp.float32)
    w = jnp.asarray(rng.normal(size=(4,)), jnp.float32)
    on_true, on_false = _branches([])

    def f(v, s):
        return cond(v[0] > 0, on_true, on_false, v, s)

    got = jax.jit(jax.vmap(f))(x, w)
    for i in range(4):
        want = jax.lax.cond(x[i, 0] > 0, on_true, on_false, x[i], w[i])
        jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a)[i], np.asarray(b)), got, want)


@pytest.mark.parametrize("signs, ran", [((1, 1, 1), ["true"]), ((-1, -1, -1), ["false"]),
                                        ((1, -1, 1), ["false", "true"])])
def test_a_branch_no_member_takes_is_not_run(signs, ran):
    hits = []
    on_true, on_false = _branches(hits)
    x = jnp.asarray(signs, jnp.float32)
    out = jax.jit(jax.vmap(lambda v: cond(v > 0, on_true, on_false, v, 1.0)))(x)
    jax.block_until_ready(out)
    assert sorted(hits) == ran
    # lax.cond under vmap runs both branches whatever the members choose: what cond avoids
    hits.clear()
    jax.block_until_ready(jax.jit(jax.vmap(lambda v: jax.lax.cond(v > 0, on_true, on_false, v, 1.0)))(x))
    assert sorted(hits) == ["false", "true"]


def test_nested_vmap_and_unbatched_predicate(rng):
    x = jnp.asarray(rng.normal(size=(3, 5)), jnp.float32)
    on_true, on_false = _branches([])

    def f(v, s):
        return cond(v > 0, on_true, on_false, v, s)

    got = jax.vmap(jax.vmap(f, (0, None)), (0, None))(x, 0.5)
    want = jax.tree.map(lambda t, e: jnp.where(x > 0, t, e), on_true(x, 0.5), on_false(x, 0.5))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), got, want)
    # a predicate shared by the members, operands per member
    shared = jax.vmap(lambda v: cond(jnp.array(True), on_true, on_false, v, 0.5))(x[0])
    np.testing.assert_allclose(shared["a"], x[0] * 2.0 + 0.5, rtol=1e-6)
    assert cond(False, on_true, on_false, x[0], 0.5)["a"].shape == (5,)


def _history_equal(got, want, i):
    for name, value in want.items():
        a, b = np.asarray(got[name])[i], np.asarray(value)
        np.testing.assert_array_equal(np.isnan(a) if a.dtype.kind == "f" else a == a, np.isnan(b) if b.dtype.kind == "f"
                                      else b == b, err_msg=name)
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6, err_msg=name)


def test_vmap_of_fit_with_diagnostics_and_early_stopping_equals_a_loop(rng):
    """Members stop at different epochs (and one diverges): each equals its own fit, NaN rows included."""
    x = rng.normal(size=(96, 4)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(np.int32)
    net = nnjax.MLP((4, 8, 2), activation="tanh")
    settings = dict(loss="softmax_cross_entropy", epochs=8, batch_size=16, early_stopping=1,
                    validation=(x[:32], y[:32]))

    def fit(key, lr):
        return nnjax.fit(key, net, (x[32:], y[32:]), optimizer=optax.sgd(lr), **settings)

    lrs = jnp.array([0.5, 1e-4, 3.0, 1e38], jnp.float32)  # 1e38 overflows: skipped steps and non-finite counts
    keys = jax.random.split(jax.random.key(rng.integers(2**31)), len(lrs))
    pop = jax.jit(jax.vmap(fit))(keys, lrs)
    one = jax.jit(fit)
    for i in range(len(lrs)):
        alone = one(keys[i], lrs[i])
        _history_equal(pop.history, alone.history, i)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a)[i], b, rtol=2e-5, atol=1e-6),
                     pop.params, alone.params)
    assert np.any(np.asarray(pop.history["stopped"])), "expected some member to stop early"
