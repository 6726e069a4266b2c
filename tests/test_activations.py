"""Tests for nnjax.activations: values against NumPy float64, derivatives, the registry."""

import functools
import math
import os
import zlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from jax.test_util import check_grads

from nnjax import activations

# ---------------------------------------------------------------------------
# Independent NumPy float64 references.
# ---------------------------------------------------------------------------


def _np_softmax(x):
    z = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


def _np_log_softmax(x):
    z = x - np.max(x, axis=-1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def _np_gelu_tanh(x):
    # Hendrycks & Gimpel (2016), tanh approximation.
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _np_gelu_exact(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _np_sigmoid(x):
    # exp(-|x|) never overflows; both branches of the logistic function are exact.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


REFERENCES = {
    "identity": lambda x: x,
    "linear": lambda x: x,
    "step": lambda x: np.where(x >= 0, 1.0, 0.0),
    "heaviside": lambda x: np.where(x >= 0, 1.0, 0.0),
    "sign": lambda x: np.where(x >= 0, 1.0, -1.0),
    "sigmoid": _np_sigmoid,
    "logistic": _np_sigmoid,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "gelu": _np_gelu_tanh,
    "softmax": _np_softmax,
    "log_softmax": _np_log_softmax,
}

REQUIRED = ("identity", "step", "sign", "sigmoid", "tanh", "relu", "leaky_relu", "softmax")
PIECEWISE_CONSTANT = ("step", "heaviside", "sign")
# Everything else in the registry is differentiable (smooth away from x = 0).
DIFFERENTIABLE = tuple(n for n in sorted(REFERENCES) if n not in PIECEWISE_CONSTANT)


def _away_from_zero(rng, shape, low=0.1, high=3.0):
    """Random points with |x| in [low, high]: away from the kinks of relu, leaky relu, elu."""
    return rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def test_required_names_are_registered():
    assert set(REQUIRED) <= set(activations.names())


def test_every_registered_name_has_a_reference():
    # A new activation needs a NumPy reference here before it is tested.
    assert set(activations.names()) == set(REFERENCES)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_values_match_numpy_float64(name, rng):
    x = rng.normal(scale=3.0, size=(6, 7))
    x[0, :3] = [0.0, -0.0, 1e-3]  # the boundary of step, sign and relu
    got = np.asarray(activations.get(name)(jnp.asarray(x, jnp.float32)), np.float64)
    want = REFERENCES[name](x.astype(np.float32).astype(np.float64))
    assert got.shape == x.shape
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)


def test_gelu_is_close_to_the_exact_erf_form(rng):
    x = rng.normal(scale=3.0, size=200)
    got = np.asarray(activations.gelu(jnp.asarray(x, jnp.float32)), np.float64)
    np.testing.assert_allclose(got, _np_gelu_exact(x), atol=2e-3)


def test_sign_and_step_at_zero():
    zero = jnp.zeros((3,))
    np.testing.assert_array_equal(activations.sign(zero), np.ones(3))
    np.testing.assert_array_equal(activations.step(zero), np.ones(3))
    np.testing.assert_array_equal(activations.sign(-zero), np.ones(3))
    np.testing.assert_array_equal(activations.sign(jnp.array([-1e-30, 1e-30])), [-1.0, 1.0])
    np.testing.assert_array_equal(activations.step(jnp.array([-1e-30, 1e-30])), [0.0, 1.0])
    assert float(activations.sign(0.0)) == 1.0
    assert float(activations.step(0.0)) == 1.0


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("name", ["step", "sign"])
def test_step_and_sign_keep_float_dtype(name, dtype):
    out = activations.get(name)(jnp.array([-2.0, 0.0, 3.0], dtype))
    assert out.dtype == dtype


@pytest.mark.parametrize("name", ["step", "sign"])
def test_step_and_sign_of_integers_are_floats(name):
    out = activations.get(name)(jnp.array([-2, 0, 3]))
    assert jnp.issubdtype(out.dtype, jnp.floating)
    np.testing.assert_array_equal(out, REFERENCES[name](np.array([-2.0, 0.0, 3.0])))


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, 1.5])
def test_leaky_relu_negative_slope(slope, rng):
    x = rng.normal(scale=2.0, size=(5, 4))
    got = activations.leaky_relu(jnp.asarray(x, jnp.float32), negative_slope=slope)
    want = np.where(x > 0, x, slope * x)
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=2e-6, atol=1e-6)


def test_leaky_relu_default_slope_is_one_percent():
    np.testing.assert_allclose(activations.leaky_relu(jnp.array([-100.0, 100.0])), [-1.0, 100.0])


def test_leaky_relu_slope_can_be_traced(rng):
    x = jnp.asarray(rng.normal(size=(8,)), jnp.float32)
    slopes = jnp.array([0.0, 0.1, 0.3])
    got = jax.vmap(lambda s: activations.leaky_relu(x, negative_slope=s))(slopes)
    for row, s in zip(got, [0.0, 0.1, 0.3]):
        np.testing.assert_allclose(row, np.where(x > 0, x, s * np.asarray(x)), rtol=1e-6)


# ---------------------------------------------------------------------------
# softmax and log_softmax
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_acts_along_the_last_axis(name, rng):
    x = rng.normal(scale=2.0, size=(3, 4, 5))
    got = np.asarray(activations.get(name)(jnp.asarray(x, jnp.float32)), np.float64)
    want = REFERENCES[name](x)
    assert got.shape == x.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # Along any other axis the answer would differ.
    other = np.moveaxis(REFERENCES[name](np.moveaxis(x, 0, -1)), -1, 0)
    assert not np.allclose(got, other, atol=1e-3)


def test_softmax_rows_sum_to_one(rng):
    x = rng.normal(scale=5.0, size=(10, 6))
    p = np.asarray(activations.softmax(jnp.asarray(x, jnp.float32)), np.float64)
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=-1), np.ones(10), rtol=1e-6)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_is_stable_for_huge_inputs(name, rng):
    x = rng.normal(size=(8, 5)) * 1e4
    x[0] = 1e4  # all equal and huge
    x[1] = -1e4  # all equal and hugely negative
    x[2] = [1e4, -1e4, 1e4, 0.0, -1e4]
    got = np.asarray(activations.get(name)(jnp.asarray(x, jnp.float32)), np.float64)
    assert np.all(np.isfinite(got))
    want = REFERENCES[name](x.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    if name == "softmax":
        np.testing.assert_allclose(got[0], np.full(5, 0.2), rtol=1e-6)
        np.testing.assert_allclose(got[1], np.full(5, 0.2), rtol=1e-6)
        np.testing.assert_allclose(got[2], [0.5, 0.0, 0.5, 0.0, 0.0], atol=1e-7)
        np.testing.assert_allclose(got.sum(axis=-1), np.ones(8), rtol=1e-6)


def test_softmax_is_shift_invariant(rng):
    x = jnp.asarray(rng.normal(size=(4, 6)), jnp.float32)
    np.testing.assert_allclose(activations.softmax(x + 1e3), activations.softmax(x), atol=1e-4)


def test_sigmoid_saturates_without_nan():
    out = np.asarray(activations.sigmoid(jnp.array([-1e4, -100.0, 100.0, 1e4])))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, [0.0, 0.0, 1.0, 1.0], atol=1e-30)


# ---------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_get_returns_a_callable_for_every_name(name):
    assert name in activations.names()
    fn = activations.get(name)
    assert callable(fn)
    x = jnp.array([[-1.5, 0.5, 2.0]])
    np.testing.assert_allclose(fn(x), REFERENCES[name](np.asarray(x, np.float64)), rtol=1e-6)


def test_aliases_are_the_same_function():
    assert activations.get("linear") is activations.get("identity")
    assert activations.get("heaviside") is activations.get("step")
    assert activations.get("logistic") is activations.get("sigmoid")


def test_get_passes_a_callable_through():
    def cube(x):
        return x**3

    assert activations.get(cube) is cube
    assert activations.get(jnp.sin) is jnp.sin


@pytest.mark.parametrize("bad", ["swish_typo", "", "ReLU", None, 3])
def test_get_unknown_name_lists_the_valid_ones(bad):
    with pytest.raises(ValueError) as info:
        activations.get(bad)
    message = str(info.value)
    assert repr(bad) in message
    for name in activations.names():
        assert name in message


def test_names_are_sorted_and_unique():
    names = activations.names()
    assert list(names) == sorted(set(names))


# ---------------------------------------------------------------------------
# Derivatives
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_check_grads_away_from_kinks(name, rng):
    fn = activations.get(name)
    x = _away_from_zero(rng, (4, 5))
    # Finite differences need float64 to be meaningful at order 2.
    with jax.enable_x64(True):
        check_grads(fn, (jnp.asarray(x, jnp.float64),), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name", PIECEWISE_CONSTANT)
def test_piecewise_constant_have_zero_gradient(name, rng):
    fn = activations.get(name)
    x = jnp.asarray(np.concatenate([rng.normal(size=20), [0.0, -0.0, 1e-6, -1e-6]]), jnp.float32)
    grad = jax.grad(lambda v: jnp.sum(fn(v) * jnp.arange(1.0, v.size + 1)))(x)
    np.testing.assert_array_equal(grad, np.zeros(x.shape))
    _, tangent = jax.jvp(fn, (x,), (jnp.ones_like(x),))
    np.testing.assert_array_equal(tangent, np.zeros(x.shape))


def _elementwise_grad(fn, x):
    return jax.vmap(jax.grad(lambda v: fn(v)))(x)


def test_relu_gradient_is_zero_or_one(rng):
    x = jnp.asarray(_away_from_zero(rng, (50,)), jnp.float32)
    grad = np.asarray(_elementwise_grad(activations.relu, x))
    np.testing.assert_array_equal(grad, np.where(np.asarray(x) > 0, 1.0, 0.0))
    # At 0 the module documents jax's convention: 0.
    assert float(jax.grad(activations.relu)(0.0)) == 0.0


@pytest.mark.parametrize("slope", [0.01, 0.2])
def test_leaky_relu_gradient_is_slope_or_one(slope, rng):
    x = jnp.asarray(_away_from_zero(rng, (50,)), jnp.float32)
    fn = functools.partial(activations.leaky_relu, negative_slope=slope)
    grad = np.asarray(_elementwise_grad(fn, x))
    np.testing.assert_allclose(grad, np.where(np.asarray(x) > 0, 1.0, slope), rtol=1e-7)


def test_default_leaky_relu_gradient(rng):
    x = jnp.asarray(_away_from_zero(rng, (50,)), jnp.float32)
    grad = np.asarray(_elementwise_grad(activations.get("leaky_relu"), x))
    np.testing.assert_allclose(grad, np.where(np.asarray(x) > 0, 1.0, 0.01), rtol=1e-6)


def test_closed_form_derivatives(rng):
    x = rng.normal(scale=2.0, size=30)
    xj = jnp.asarray(x, jnp.float32)
    s = _np_sigmoid(x)
    np.testing.assert_allclose(_elementwise_grad(activations.sigmoid, xj), s * (1 - s), atol=1e-6)
    np.testing.assert_allclose(_elementwise_grad(activations.tanh, xj), 1 - np.tanh(x) ** 2, atol=1e-6)
    np.testing.assert_allclose(_elementwise_grad(activations.softplus, xj), s, atol=1e-6)
    np.testing.assert_allclose(
        _elementwise_grad(activations.elu, xj), np.where(x > 0, 1.0, np.exp(x)), atol=1e-6
    )
    np.testing.assert_allclose(_elementwise_grad(activations.identity, xj), np.ones(30))


def test_softmax_jacobian_is_diag_p_minus_outer(rng):
    x = rng.normal(size=6)
    p = _np_softmax(x)
    jac = jax.jacfwd(activations.softmax)(jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(jac, np.diag(p) - np.outer(p, p), atol=1e-6)
    jac_rev = jax.jacrev(activations.softmax)(jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(jac_rev, np.diag(p) - np.outer(p, p), atol=1e-6)


def test_gradients_are_finite_for_huge_inputs():
    x = jnp.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]])
    for name in ["softmax", "log_softmax", "sigmoid", "tanh", "softplus", "elu", "gelu"]:
        fn = activations.get(name)
        grad = jax.grad(lambda v, fn=fn: jnp.sum(fn(v) * jnp.array([1.0, 2.0, 3.0])))(x)
        assert np.all(np.isfinite(grad)), name


# ---------------------------------------------------------------------------
# chex variants: the same values with and without jit.
# ---------------------------------------------------------------------------


def _seed_for(test_id: str) -> int:
    # Same recipe as the conftest's `seed` fixture (unittest-style classes take no fixtures).
    return (zlib.crc32(test_id.encode()) + int(os.environ.get("NNJAX_TEST_SEED", 0))) % 2**31


class TestActivationVariants(chex.TestCase):
    """Every activation under `jax.jit` and eagerly, against the NumPy references."""

    def _rng(self):
        seed = _seed_for(self.id())
        print(f"[seed] {self.id()}: {seed}")
        return np.random.default_rng(seed)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(name, name) for name in sorted(REFERENCES)])
    def test_values(self, name):
        x = self._rng().normal(scale=3.0, size=(5, 4))
        x[0, 0] = 0.0
        fn = self.variant(activations.get(name))
        got = np.asarray(fn(jnp.asarray(x, jnp.float32)), np.float64)
        want = REFERENCES[name](x.astype(np.float32).astype(np.float64))
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("small", 0.05), ("large", 0.5))
    def test_leaky_relu_slope(self, slope):
        x = self._rng().normal(size=(7,))
        fn = self.variant(functools.partial(activations.leaky_relu, negative_slope=slope))
        np.testing.assert_allclose(
            np.asarray(fn(jnp.asarray(x, jnp.float32)), np.float64),
            np.where(x > 0, x, slope * x),
            rtol=2e-6,
            atol=1e-7,
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_sign_and_step_at_zero(self):
        zero = jnp.zeros((2, 3))
        np.testing.assert_array_equal(self.variant(activations.sign)(zero), np.ones((2, 3)))
        np.testing.assert_array_equal(self.variant(activations.step)(zero), np.ones((2, 3)))

    @chex.variants(with_jit=True, without_jit=True)
    def test_softmax_huge_inputs(self):
        x = self._rng().normal(size=(4, 3)) * 1e4
        p = np.asarray(self.variant(activations.softmax)(jnp.asarray(x, jnp.float32)))
        assert np.all(np.isfinite(p))
        np.testing.assert_allclose(p.sum(axis=-1), np.ones(4), rtol=1e-6)
        np.testing.assert_allclose(p, _np_softmax(x.astype(np.float32).astype(np.float64)), atol=1e-6)
