"""Tests for nnjax.initializers: sample statistics against the theory, dtypes, keys, the registry.

Tolerances come from the sample size N: about five standard errors, with
  SE(mean) = sigma / sqrt(N),
  SE(variance) = sqrt(2 / (N - 1)) sigma^2            for a normal sample,
  SE(variance) = sqrt((mu4 - sigma^4) / N), mu4 = L^4/5  for U(-L, L).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import initializers

SHAPE = (400, 300)  # (fan_in, fan_out); non-square so fan_in and fan_out cannot be confused
Z = 5.0  # standard errors allowed

# The variances pinned by DESIGN.md, written out independently of the module.
NORMAL_THEORY = {
    "normal": lambda fan_in, fan_out: 0.05**2,
    "xavier_normal": lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),
    "glorot_normal": lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),
    "he_normal": lambda fan_in, fan_out: 2.0 / fan_in,
    "kaiming_normal": lambda fan_in, fan_out: 2.0 / fan_in,
    "lecun_normal": lambda fan_in, fan_out: 1.0 / fan_in,
}
UNIFORM_THEORY = {
    "uniform": lambda fan_in, fan_out: 0.05**2 / 3.0,
    "xavier_uniform": lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),
    "glorot_uniform": lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),
    "he_uniform": lambda fan_in, fan_out: 2.0 / fan_in,
    "kaiming_uniform": lambda fan_in, fan_out: 2.0 / fan_in,
    "lecun_uniform": lambda fan_in, fan_out: 1.0 / fan_in,
}
CONSTANT_SCHEMES = ("zeros", "constant")
RANDOM_SCHEMES = tuple(sorted([*NORMAL_THEORY, *UNIFORM_THEORY]))
THEORY = {**NORMAL_THEORY, **UNIFORM_THEORY}
REQUIRED = (
    "zeros",
    "uniform",
    "normal",
    "xavier_normal",
    "xavier_uniform",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
)
# P(|Z| > 2) for a standard normal Z.
P_BEYOND_2_SIGMA = math.erfc(2.0 / math.sqrt(2.0))


def _as_f64(w):
    return np.asarray(jnp.asarray(w, jnp.float32), np.float64).ravel()


def assert_normal_sample(w, var, slack=0.0):
    """Mean zero, variance `var`, and the tails of an untruncated normal."""
    w = _as_f64(w)
    n = w.size
    sigma = math.sqrt(var)
    assert abs(w.mean()) < Z * sigma / math.sqrt(n) + slack * sigma
    se_var = math.sqrt(2.0 / (n - 1)) * var
    assert abs(w.var(ddof=1) - var) < Z * se_var + slack * var, (w.var(ddof=1), var)
    # Untruncated: a normal truncated at 2 sigma (jax's "truncated_normal") never passes
    # 2 sigma of the target; an untruncated sample of this size passes 3.5 sigma ~56 times
    # on average (the chance of never doing so is about e^-56). This holds in half
    # precision too: jax's own bfloat16 normal draws never pass ~2.9 sigma.
    assert np.abs(w).max() > 3.5 * sigma
    frac = np.mean(np.abs(w) > 2.0 * sigma)
    se_frac = math.sqrt(P_BEYOND_2_SIGMA * (1 - P_BEYOND_2_SIGMA) / n)
    assert abs(frac - P_BEYOND_2_SIGMA) < Z * se_frac + slack, frac


def assert_uniform_sample(w, var, slack=0.0):
    """Mean zero, variance `var`, flat on [-sqrt(3 var), sqrt(3 var)] and reaching both ends."""
    w = _as_f64(w)
    n = w.size
    limit = math.sqrt(3.0 * var)
    sigma = math.sqrt(var)
    assert abs(w.mean()) < Z * sigma / math.sqrt(n) + slack * sigma
    mu4 = limit**4 / 5.0
    se_var = math.sqrt((mu4 - var**2) / n)
    assert abs(w.var(ddof=1) - var) < Z * se_var + slack * var, (w.var(ddof=1), var)
    # Within the limit (up to float rounding), and reaching near both ends: the chance
    # that no sample of N lies within 1e-3 limit of an end is (1 - 5e-4)^N ~ e^-60.
    tol = 1e-6 + slack
    assert w.max() <= limit * (1 + tol) and w.min() >= -limit * (1 + tol)
    assert w.max() > limit * (1 - 1e-3 - slack)
    assert w.min() < -limit * (1 - 1e-3 - slack)
    # Flat: each of ten equal bins holds a tenth of the sample.
    counts, _ = np.histogram(w, bins=10, range=(-limit * (1 + tol), limit * (1 + tol)))
    se_count = math.sqrt(n * 0.1 * 0.9)
    assert np.all(np.abs(counts - n / 10) < Z * se_count + slack * n), counts


def test_required_names_are_registered():
    assert set(REQUIRED) <= set(initializers.names())


def test_every_registered_name_has_a_theory():
    # A new scheme needs its variance written out here before it is tested.
    assert set(initializers.names()) == set(THEORY) | set(CONSTANT_SCHEMES)


@pytest.mark.parametrize("name", sorted(NORMAL_THEORY))
@pytest.mark.parametrize("shape", [SHAPE, SHAPE[::-1]])
def test_normal_schemes_match_theory(name, shape, key):
    w = initializers.get(name)(key, shape)
    assert w.shape == shape and w.dtype == jnp.float32
    assert_normal_sample(w, NORMAL_THEORY[name](*shape))


@pytest.mark.parametrize("name", sorted(UNIFORM_THEORY))
@pytest.mark.parametrize("shape", [SHAPE, SHAPE[::-1]])
def test_uniform_schemes_match_theory(name, shape, key):
    w = initializers.get(name)(key, shape)
    assert w.shape == shape and w.dtype == jnp.float32
    assert_uniform_sample(w, UNIFORM_THEORY[name](*shape))


def test_fan_in_is_the_first_axis(key):
    # He: 2/400 for (400, 300) but 2/300 for (300, 400); a 33% difference, far beyond 5 SE.
    a = _as_f64(initializers.get("he_normal")(key, (400, 300))).var()
    b = _as_f64(initializers.get("he_normal")(key, (300, 400))).var()
    assert abs(a - 2 / 400) < 0.03 * 2 / 400
    assert abs(b - 2 / 300) < 0.03 * 2 / 300


def test_normal_default_and_explicit_stddev(key):
    assert_normal_sample(initializers.get("normal")(key, SHAPE), 0.05**2)
    assert_normal_sample(initializers.get("normal", stddev=0.05)(key, SHAPE), 0.05**2)
    assert_normal_sample(initializers.normal(stddev=0.3)(key, SHAPE), 0.3**2)


def test_uniform_default_and_explicit_limit(key):
    assert_uniform_sample(initializers.get("uniform")(key, SHAPE), 0.05**2 / 3)
    assert_uniform_sample(initializers.get("uniform", limit=0.05)(key, SHAPE), 0.05**2 / 3)
    w = initializers.uniform(limit=0.7)(key, SHAPE)
    assert_uniform_sample(w, 0.7**2 / 3)
    assert float(jnp.max(jnp.abs(w))) <= 0.7


@pytest.mark.parametrize("name", ["xavier_normal", "he_normal", "lecun_normal"])
def test_gain_scales_the_variance(name, key):
    w = initializers.get(name, gain=2.0)(key, SHAPE)
    assert_normal_sample(w, 4.0 * NORMAL_THEORY[name](*SHAPE))


@pytest.mark.parametrize("name", ["xavier_uniform", "he_uniform", "lecun_uniform"])
def test_gain_scales_the_uniform_variance(name, key):
    w = initializers.get(name, gain=0.5)(key, SHAPE)
    assert_uniform_sample(w, 0.25 * UNIFORM_THEORY[name](*SHAPE))


def test_zeros_and_constant(key):
    w = initializers.get("zeros")(key, (4, 3))
    assert w.shape == (4, 3) and w.dtype == jnp.float32
    np.testing.assert_array_equal(w, np.zeros((4, 3)))
    c = initializers.get("constant", value=0.25)(key, (2, 5))
    np.testing.assert_array_equal(c, np.full((2, 5), 0.25))


@pytest.mark.parametrize("name", sorted(initializers.names()))
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (17, 2)])
def test_shapes(name, shape, key):
    w = initializers.get(name)(key, shape)
    assert w.shape == shape
    assert w.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(w)))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("name", sorted(initializers.names()))
def test_dtype_argument(name, dtype, key):
    w = initializers.get(name)(key, SHAPE, dtype)
    assert w.dtype == dtype
    w_kw = initializers.get(name)(key, SHAPE, dtype=dtype)
    assert w_kw.dtype == dtype
    if name in CONSTANT_SCHEMES:
        np.testing.assert_array_equal(np.asarray(w, np.float32), np.zeros(SHAPE))
        return
    # Half precision rounds each draw to 8 or 11 significant bits; otherwise the sample
    # must be as good as in float32 (jax's own bfloat16 draws are truncated at ~2.9 sigma
    # and take 128 uniform values).
    slack = 0.0 if dtype == jnp.float32 else 0.01
    var = THEORY[name](*SHAPE)
    check = assert_normal_sample if name in NORMAL_THEORY else assert_uniform_sample
    check(w, var, slack=slack)


@pytest.mark.parametrize("name", sorted(initializers.names()))
def test_default_dtype_is_float32_even_with_x64(name, key):
    # The contract pins dtype=jnp.float32 as the default; jax's own default follows x64.
    with jax.enable_x64(True):
        w = initializers.get(name)(key, (3, 4))
        assert w.dtype == jnp.float32
        assert initializers.get(name)(key, (3, 4), jnp.float64).dtype == jnp.float64


@pytest.mark.parametrize("name", RANDOM_SCHEMES)
def test_deterministic_per_key_and_keys_differ(name, key):
    init = initializers.get(name)
    a = init(key, (30, 20))
    b = init(key, (30, 20))
    np.testing.assert_array_equal(a, b)
    other = init(jax.random.split(key)[0], (30, 20))
    # Two independent continuous draws of 600 numbers agree nowhere (up to rare ties).
    assert np.mean(np.asarray(a) == np.asarray(other)) < 0.01
    # A fresh init from the factory draws the same numbers: no hidden state.
    np.testing.assert_array_equal(initializers.get(name)(key, (30, 20)), a)


@pytest.mark.parametrize("name", RANDOM_SCHEMES)
def test_jit_and_vmap_over_keys(name, key):
    init = initializers.get(name)
    keys = jax.random.split(key, 3)
    stacked = jax.vmap(lambda k: init(k, (5, 4)))(keys)
    jitted = jax.jit(init, static_argnums=(1,))
    for i in range(3):
        np.testing.assert_allclose(stacked[i], init(keys[i], (5, 4)), rtol=1e-6)
        np.testing.assert_allclose(jitted(keys[i], (5, 4)), init(keys[i], (5, 4)), rtol=1e-6)
    assert not np.allclose(stacked[0], stacked[1])


@pytest.mark.parametrize(
    ("name", "option", "values", "variance"),
    [
        ("normal", "stddev", [0.1, 0.5], lambda s: s**2),
        ("uniform", "limit", [0.1, 0.5], lambda lim: lim**2 / 3),
        ("he_normal", "gain", [1.0, 3.0], lambda g: g**2 * 2 / SHAPE[0]),
    ],
)
def test_hyper_parameter_can_be_traced(name, option, values, variance, key):
    # DESIGN: init scales are accepted as traced scalars so jax.vmap can sweep them.
    out = jax.vmap(lambda v: initializers.get(name, **{option: v})(key, SHAPE))(jnp.array(values))
    for row, v in zip(out, values):
        np.testing.assert_allclose(row, initializers.get(name, **{option: v})(key, SHAPE), rtol=1e-5)
        assert abs(_as_f64(row).var() - variance(v)) < 0.03 * variance(v)


def test_aliases_draw_the_same_numbers(key):
    for a, b in [
        ("glorot_normal", "xavier_normal"),
        ("glorot_uniform", "xavier_uniform"),
        ("kaiming_normal", "he_normal"),
        ("kaiming_uniform", "he_uniform"),
    ]:
        np.testing.assert_array_equal(initializers.get(a)(key, (6, 7)), initializers.get(b)(key, (6, 7)))


def test_get_passes_a_callable_through(key):
    def ones(key, shape, dtype=jnp.float32):
        return jnp.ones(shape, dtype)

    assert initializers.get(ones) is ones
    with pytest.raises(ValueError, match="stddev"):
        initializers.get(ones, stddev=0.1)


@pytest.mark.parametrize("bad", ["he", "xavier", "normal_x", "truncated_normal", "He_normal", "", None])
def test_unknown_name_lists_the_valid_ones(bad):
    with pytest.raises(ValueError) as info:
        initializers.get(bad)
    message = str(info.value)
    assert repr(bad) in message
    for name in initializers.names():
        assert name in message


@pytest.mark.parametrize(("name", "options"), [("normal", {"limit": 0.1}), ("he_normal", {"stddev": 1.0})])
def test_bad_options_raise_value_error(name, options):
    with pytest.raises(ValueError, match=name):
        initializers.get(name, **options)


# ---------------------------------------------------------------------------
# The variance() helper
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", RANDOM_SCHEMES)
@pytest.mark.parametrize("shape", [SHAPE, (50, 700)])
def test_variance_helper_matches_theory_and_sample(name, shape, key):
    v = initializers.variance(name, *shape)
    assert isinstance(v, float)
    assert v == pytest.approx(THEORY[name](*shape), rel=1e-12)
    w = _as_f64(initializers.get(name)(key, shape))
    n = w.size
    if name in NORMAL_THEORY:
        se = math.sqrt(2.0 / (n - 1)) * v
    else:
        se = math.sqrt((3.0 * v) ** 2 / 5.0 - v**2) / math.sqrt(n)
    assert abs(w.var(ddof=1) - v) < Z * se


def test_variance_helper_with_options(key):
    assert initializers.variance("normal", 3, 4, stddev=0.2) == pytest.approx(0.04)
    assert initializers.variance("uniform", 3, 4, limit=0.3) == pytest.approx(0.03)
    assert initializers.variance("he_normal", 10, 4, gain=2.0) == pytest.approx(0.8)
    assert initializers.variance("xavier_uniform", 10, 30, gain=0.5) == pytest.approx(0.0125)
    assert initializers.variance("zeros", 10, 30) == 0.0
    w = _as_f64(initializers.get("uniform", limit=0.3)(key, SHAPE))
    assert abs(w.var() - initializers.variance("uniform", *SHAPE, limit=0.3)) < 0.02 * 0.03


@pytest.mark.parametrize("bad", ["he", "normal_x", "foo_normal", "truncated_normal", "", None])
def test_variance_helper_rejects_unknown_names(bad):
    with pytest.raises(ValueError, match="expected one of"):
        initializers.variance(bad, 3, 4)


# The jax.nn.initializers call each scheme makes the same numbers as (nnjax draws flat and
# reshapes, which XLA compiles faster; see nnjax.initializers._flat).
JAX_REFERENCE = {
    "normal": lambda gain: jax.nn.initializers.normal(0.05),
    "uniform": lambda gain: lambda k, s, d: jax.random.uniform(k, s, d, minval=-0.05, maxval=0.05),
    **{f"{family}_{dist}": (lambda scale, mode, dist: lambda gain: jax.nn.initializers.variance_scaling(
        scale * gain**2, mode, dist, in_axis=-2, out_axis=-1))(scale, mode, dist)
       for family, scale, mode in (("xavier", 1.0, "fan_avg"), ("he", 2.0, "fan_in"), ("lecun", 1.0, "fan_in"))
       for dist in ("normal", "uniform")},
}


@pytest.mark.parametrize("name", sorted(JAX_REFERENCE))
@pytest.mark.parametrize("shape", [(64, 10), (7, 3), (1, 1), (2, 3, 5)])
def test_draws_equal_jax_initializers_bit_for_bit(name, shape, rng):
    seed, gain = int(rng.integers(2**31)), float(rng.uniform(0.5, 2.0))
    key = jax.random.key(seed)
    options = {"gain": gain} if name not in ("normal", "uniform") else {}
    ours = initializers.get(name, **options)(key, shape, jnp.float32)
    theirs = JAX_REFERENCE[name](gain)(key, shape, jnp.float32)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    jitted = jax.jit(lambda k: initializers.get(name, **options)(k, shape, jnp.float32))(key)
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(theirs), rtol=1e-6, atol=1e-7)


def test_a_scaled_scheme_refuses_a_one_dimensional_shape(key):
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        initializers.get("he_normal")(key, (5,))
