"""The XLA options of nnjax's programs: chosen per backend, switchable off, harmless when unknown."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax import xla_options


def test_options_per_backend_and_environment():
    assert xla_options.options_for("cpu", {}) == xla_options.CPU_OPTIONS
    assert xla_options.options_for("gpu", {}) == {}
    assert xla_options.options_for("tpu", {}) == {}
    for off in ("off", "0", "false", "OFF "):
        assert xla_options.options_for("cpu", {"NNJAX_XLA_OPTIONS": off}) == {}
    assert xla_options.options_for("cpu", {"NNJAX_XLA_OPTIONS": "on"}) == xla_options.CPU_OPTIONS


def test_wrapped_function_computes_what_jax_jit_computes():
    def f(x, n):
        return jnp.cumsum(jnp.sin(x) * n)

    fast = xla_options.jit(f, static_argnums=1)
    x = jax.random.normal(jax.random.key(0), (257,))
    np.testing.assert_array_equal(np.asarray(fast(x, 3)), np.asarray(jax.jit(f, static_argnums=1)(x, 3)))
    for seed in range(1, 4):
        x = jax.random.normal(jax.random.key(seed), (64,))
        np.testing.assert_array_equal(np.asarray(fast(x, seed)), np.asarray(fast.plain(x, seed)))


def test_an_option_this_xla_does_not_know_falls_back_to_the_defaults(monkeypatch):
    monkeypatch.setattr(xla_options, "CPU_OPTIONS", {"xla_cpu_option_that_does_not_exist": True})
    def f(x):
        return x * 2.0

    fn = xla_options.jit(f)
    x = jnp.arange(5.0)
    if jax.default_backend() == "cpu":
        np.testing.assert_array_equal(np.asarray(fn(x)), np.arange(5.0) * 2)
        np.testing.assert_array_equal(np.asarray(fn(x + 1)), (np.arange(5.0) + 1) * 2)  # and stays on the defaults
    else:
        pytest.skip(f"the CPU options are not used on the {jax.default_backend()} backend")


def test_fit_is_the_same_with_and_without_the_options(monkeypatch):
    """The schedule orders the kernels; it must not change what a training run computes."""
    data = nnjax.data.load_dataset("moons", n=96)
    net = nnjax.MLP((2, 16, 8, 2), activation="tanh", output="softmax")

    def run():
        return nnjax.fit(jax.random.key(3), net, (data.x, data.y), loss="softmax_cross_entropy",
                         optimizer=optax.adam(0.01), epochs=4, batch_size=16)

    tuned = run()
    monkeypatch.setenv("NNJAX_XLA_OPTIONS", "off")
    plain = run()
    for a, b in zip(jax.tree.leaves(tuned.params), jax.tree.leaves(plain.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(tuned.history["loss"]), np.asarray(plain.history["loss"]), rtol=1e-6)
