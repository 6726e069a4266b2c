"""Tests for nnjax.losses: per-example values against NumPy float64, gradients, penalties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from nnjax import losses

# ---------------------------------------------------------------------------
# Independent NumPy float64 references (o: logits (n, k), y: targets).
# ---------------------------------------------------------------------------


def _columns(y, o):
    y = np.asarray(y, np.float64)
    return y.reshape(-1, 1) if y.ndim == 1 and o.shape[-1] == 1 else y


def np_mse(o, y):
    return np.mean((o - _columns(y, o)) ** 2, axis=-1)


def np_bce(o, y):
    y = _columns(y, o)
    # -[y log s(o) + (1 - y) log(1 - s(o))] = max(o, 0) - o y + log(1 + exp(-|o|))
    return np.mean(np.maximum(o, 0) - o * y + np.log1p(np.exp(-np.abs(o))), axis=-1)


def np_log_softmax(o):
    m = np.max(o, axis=-1, keepdims=True)
    return o - m - np.log(np.sum(np.exp(o - m), axis=-1, keepdims=True))


def np_softmax_ce(o, y):
    y = np.asarray(y)
    logp = np_log_softmax(o)
    if y.ndim == o.ndim - 1:
        return -logp[np.arange(len(y)), y.astype(int)]
    return -np.sum(y * logp, axis=-1)


def np_hinge(o, y):
    return np.mean(np.maximum(0.0, 1.0 - _columns(y, o) * o), axis=-1)


def np_sigmoid(o):
    e = np.exp(-np.abs(o))
    return np.where(o >= 0, 1 / (1 + e), e / (1 + e))


def _f32(a):
    """What the module sees, back in float64 for the reference."""
    return np.asarray(a, np.float32).astype(np.float64)


def _run(fn, o, y):
    return np.asarray(fn(jnp.asarray(o, jnp.float32), jnp.asarray(y)), np.float64)


N = 16

# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3])
def test_mse_matrix_targets(k, rng):
    o, y = _f32(rng.normal(size=(N, k))), _f32(rng.normal(size=(N, k)))
    got = _run(losses.mse, o, y)
    assert got.shape == (N,)
    np.testing.assert_allclose(got, np_mse(o, y), rtol=1e-5, atol=1e-6)


def test_mse_vector_targets_for_one_output(rng):
    o, y = _f32(rng.normal(size=(N, 1))), _f32(rng.normal(size=N))
    got = _run(losses.mse, o, y)
    assert got.shape == (N,)
    np.testing.assert_allclose(got, (o[:, 0] - y) ** 2, rtol=1e-5, atol=1e-6)


def test_mse_has_no_factor_one_half():
    np.testing.assert_allclose(losses.mse(jnp.array([[3.0, 0.0]]), jnp.array([[1.0, 0.0]])), [2.0])


@pytest.mark.parametrize("label_shape", ["vector", "column"])
@pytest.mark.parametrize("label_dtype", [np.int32, np.float32])
def test_binary_cross_entropy(label_shape, label_dtype, rng):
    o = _f32(rng.normal(scale=3.0, size=(N, 1)))
    y = rng.integers(0, 2, size=N).astype(label_dtype)
    if label_shape == "column":
        y = y[:, None]
    got = _run(losses.binary_cross_entropy, o, y)
    assert got.shape == (N,)
    np.testing.assert_allclose(got, np_bce(o, y), rtol=1e-5, atol=1e-6)
    # The definition itself, written with the sigmoid.
    s = np_sigmoid(o[:, 0])
    yy = y.reshape(-1).astype(np.float64)
    np.testing.assert_allclose(got, -(yy * np.log(s) + (1 - yy) * np.log(1 - s)), rtol=1e-4)


def test_binary_cross_entropy_several_outputs(rng):
    o = _f32(rng.normal(scale=2.0, size=(N, 3)))
    y = rng.integers(0, 2, size=(N, 3))
    np.testing.assert_allclose(_run(losses.binary_cross_entropy, o, y), np_bce(o, y), rtol=1e-5)


@pytest.mark.parametrize("k", [2, 5])
def test_softmax_cross_entropy_integer_labels(k, rng):
    o = _f32(rng.normal(scale=2.0, size=(N, k)))
    y = rng.integers(0, k, size=N)
    got = _run(losses.softmax_cross_entropy, o, y)
    assert got.shape == (N,)
    np.testing.assert_allclose(got, np_softmax_ce(o, y), rtol=1e-5, atol=1e-6)


def test_softmax_cross_entropy_one_hot_equals_integer(rng):
    k = 4
    o = _f32(rng.normal(scale=2.0, size=(N, k)))
    y = rng.integers(0, k, size=N)
    one_hot = np.eye(k)[y]
    got = _run(losses.softmax_cross_entropy, o, one_hot)
    assert got.shape == (N,)
    np.testing.assert_allclose(got, np_softmax_ce(o, y), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, _run(losses.softmax_cross_entropy, o, y), rtol=1e-6, atol=1e-6)


def test_softmax_cross_entropy_probability_targets(rng):
    o = _f32(rng.normal(size=(N, 3)))
    p = rng.dirichlet(np.ones(3), size=N)
    np.testing.assert_allclose(_run(losses.softmax_cross_entropy, o, p), np_softmax_ce(o, p), rtol=1e-5)


def test_softmax_cross_entropy_integer_label_column(rng):
    # Integer labels of shape (n, 1) are labels, not a (broadcast) one-hot target.
    o = _f32(rng.normal(size=(N, 4)))
    y = rng.integers(0, 4, size=N)
    got = _run(losses.softmax_cross_entropy, o, y[:, None])
    np.testing.assert_allclose(got, np_softmax_ce(o, y), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("label_dtype", [np.int32, np.float32])
def test_hinge(k, label_dtype, rng):
    o = _f32(rng.normal(scale=2.0, size=(N, k)))
    y = rng.choice([-1, 1], size=(N, k)).astype(label_dtype)
    got = _run(losses.hinge, o, y)
    assert got.shape == (N,)
    np.testing.assert_allclose(got, np_hinge(o, y), rtol=1e-5, atol=1e-6)
    if k == 1:
        np.testing.assert_allclose(_run(losses.hinge, o, y[:, 0]), np_hinge(o, y), rtol=1e-5, atol=1e-6)


def test_hinge_is_zero_beyond_the_margin():
    o = jnp.array([[2.0], [-2.0], [1.0], [0.5]])
    y = jnp.array([1, -1, 1, 1])
    np.testing.assert_allclose(losses.hinge(o, y), [0.0, 0.0, 0.0, 0.5])


CASES = {
    # name: (logits shape, target maker, reference)
    "mse": ((N, 2), lambda rng, o: rng.normal(size=o.shape) * 50, np_mse),
    "binary_cross_entropy": ((N, 1), lambda rng, o: rng.integers(0, 2, size=N), np_bce),
    "softmax_cross_entropy": ((N, 3), lambda rng, o: rng.integers(0, 3, size=N), np_softmax_ce),
    "hinge": ((N, 1), lambda rng, o: rng.choice([-1.0, 1.0], size=N), np_hinge),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_large_logits_are_finite(name, rng):
    shape, make_y, reference = CASES[name]
    o = rng.choice([-100.0, 100.0], size=shape)
    y = make_y(rng, o)
    got = _run(losses.get(name), o, y)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, reference(o, y), rtol=1e-5, atol=1e-6)
    grad = jax.grad(lambda o_: jnp.sum(losses.get(name)(o_, jnp.asarray(y))))(jnp.asarray(o, jnp.float32))
    assert np.all(np.isfinite(np.asarray(grad)))


def test_confidently_wrong_cross_entropies_are_large_not_infinite():
    np.testing.assert_allclose(losses.binary_cross_entropy(jnp.array([[100.0], [-100.0]]), jnp.array([0, 1])), [100.0, 100.0])
    np.testing.assert_allclose(losses.softmax_cross_entropy(jnp.array([[100.0, -100.0]]), jnp.array([1])), [200.0])


# ---------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_grads_wrt_logits(name, rng):
    shape, make_y, _ = CASES[name]
    o = rng.normal(scale=2.0, size=shape)
    y = make_y(rng, o)
    if name == "mse":
        y = rng.normal(size=shape)
    if name == "hinge":
        # Away from the kink at y o = 1.
        margin = 1.0 + rng.uniform(0.2, 2.0, size=N) * rng.choice([-1.0, 1.0], size=N)
        o = (margin * y)[:, None]
    # Finite differences need float64 to be meaningful at order 2.
    with jax.enable_x64(True):
        fn = losses.get(name)
        yj = jnp.asarray(y)
        # jit: eager second-order finite differences through optax take many seconds.
        loss = jax.jit(lambda o_: fn(o_, yj))
        check_grads(loss, (jnp.asarray(o, jnp.float64),), order=2, modes=("fwd", "rev"))


def test_closed_form_gradients(rng):
    def grad(fn, o, y):
        return np.asarray(jax.grad(lambda o_: jnp.sum(fn(o_, jnp.asarray(y))))(jnp.asarray(o, jnp.float32)))

    o = _f32(rng.normal(size=(N, 3)))
    y = _f32(rng.normal(size=(N, 3)))
    np.testing.assert_allclose(grad(losses.mse, o, y), 2 * (o - y) / 3, rtol=1e-5, atol=1e-6)
    labels = rng.integers(0, 2, size=(N, 3))
    np.testing.assert_allclose(grad(losses.binary_cross_entropy, o, labels), (np_sigmoid(o) - labels) / 3, atol=1e-6)
    classes = rng.integers(0, 3, size=N)
    softmax = np.exp(np_log_softmax(o))
    np.testing.assert_allclose(grad(losses.softmax_cross_entropy, o, classes), softmax - np.eye(3)[classes], atol=1e-6)
    signs = rng.choice([-1.0, 1.0], size=(N, 3))
    hinge_grad = np.where(signs * o < 1, -signs, 0.0) / 3
    np.testing.assert_allclose(grad(losses.hinge, o, signs), hinge_grad, atol=1e-7)


# ---------------------------------------------------------------------------
# mean_loss
# ---------------------------------------------------------------------------


def test_mean_loss_without_weights(rng):
    per = rng.uniform(size=N)
    np.testing.assert_allclose(losses.mean_loss(jnp.asarray(per, jnp.float32)), per.mean(), rtol=1e-6)


def test_mean_loss_with_sample_weights(rng):
    per = _f32(rng.uniform(size=N))
    w = _f32(rng.uniform(0.0, 3.0, size=N))
    got = losses.mean_loss(jnp.asarray(per, jnp.float32), jnp.asarray(w, jnp.float32))
    np.testing.assert_allclose(got, np.sum(w * per) / np.sum(w), rtol=1e-6)


@pytest.mark.parametrize("mask_dtype", [bool, np.int32, np.float32])
def test_mean_loss_with_a_mask(mask_dtype, rng):
    per = _f32(rng.uniform(size=N))
    mask = np.zeros(N, bool)
    mask[: N - 5] = True  # a padded short batch
    got = losses.mean_loss(jnp.asarray(per, jnp.float32), jnp.asarray(mask.astype(mask_dtype)))
    np.testing.assert_allclose(got, per[mask].mean(), rtol=1e-6)
    # The padded rows do not count, whatever their values.
    per_padded = per.copy()
    per_padded[~mask] = 1e6
    got2 = losses.mean_loss(jnp.asarray(per_padded, jnp.float32), jnp.asarray(mask.astype(mask_dtype)))
    np.testing.assert_allclose(got2, per[mask].mean(), rtol=1e-6)


def test_mean_loss_zero_weight_batch_is_zero_with_zero_gradient(rng):
    o = jnp.asarray(rng.normal(size=(N, 3)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 3, size=N))
    weights = jnp.zeros(N)

    def batch_loss(o_):
        return losses.mean_loss(losses.softmax_cross_entropy(o_, y), weights)

    value, grad = jax.value_and_grad(batch_loss)(o)
    assert float(value) == 0.0
    np.testing.assert_array_equal(grad, np.zeros((N, 3)))
    value_j, grad_j = jax.jit(jax.value_and_grad(batch_loss))(o)
    assert float(value_j) == 0.0
    np.testing.assert_array_equal(grad_j, np.zeros((N, 3)))


def test_mean_loss_gradient_is_the_weighted_average(rng):
    o = _f32(rng.normal(size=(N, 2)))
    y = _f32(rng.normal(size=(N, 2)))
    w = _f32(rng.uniform(0, 2, size=N))
    grad = jax.grad(lambda o_: losses.mean_loss(losses.mse(o_, jnp.asarray(y, jnp.float32)), jnp.asarray(w, jnp.float32)))(
        jnp.asarray(o, jnp.float32)
    )
    want = (w / w.sum())[:, None] * 2 * (o - y) / 2
    np.testing.assert_allclose(grad, want, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------
# Penalties
# ---------------------------------------------------------------------------


def _params(rng, sizes=(4, 5, 3)):
    return [
        {"w": jnp.asarray(rng.normal(size=(a, b)), jnp.float32), "b": jnp.asarray(rng.normal(size=b), jnp.float32)}
        for a, b in zip(sizes[:-1], sizes[1:])
    ]


def _np_penalty(params, l1, l2):
    ws = [np.asarray(layer["w"], np.float64) for layer in params]
    return l1 * sum(np.abs(w).sum() for w in ws) + l2 * sum((w**2).sum() for w in ws)


@pytest.mark.parametrize(("l1", "l2"), [(0.0, 0.0), (0.01, 0.0), (0.0, 0.1), (0.03, 0.2)])
def test_penalty_value(l1, l2, rng):
    params = _params(rng)
    np.testing.assert_allclose(losses.penalty(params, l1, l2), _np_penalty(params, l1, l2), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(losses.penalty(params, l1=l1, l2=l2), _np_penalty(params, l1, l2), rtol=1e-5, atol=1e-7)


def test_l1_and_l2_penalties(rng):
    params = _params(rng)
    ws = [np.asarray(layer["w"], np.float64) for layer in params]
    np.testing.assert_allclose(losses.l1_penalty(params), sum(np.abs(w).sum() for w in ws), rtol=1e-5)
    np.testing.assert_allclose(losses.l2_penalty(params), sum((w**2).sum() for w in ws), rtol=1e-5)


def test_penalty_excludes_biases(rng):
    params = _params(rng)
    before = float(losses.penalty(params, 0.1, 0.2))
    changed = [{"w": layer["w"], "b": layer["b"] * 100.0 + 7.0} for layer in params]
    assert float(losses.penalty(changed, 0.1, 0.2)) == before
    changed_w = [{"w": layer["w"] * 2.0, "b": layer["b"]} for layer in params]
    assert float(losses.penalty(changed_w, 0.1, 0.2)) != before


def test_penalty_gradient_closed_form(rng):
    params = _params(rng)
    l1, l2 = 0.03, 0.2
    grads = jax.grad(losses.penalty)(params, l1, l2)
    for layer, g in zip(params, grads):
        w = np.asarray(layer["w"], np.float64)
        np.testing.assert_allclose(g["w"], l1 * np.sign(w) + 2 * l2 * w, rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(g["b"], np.zeros_like(layer["b"]))


def test_penalty_counts_projections_but_not_batch_norm(rng):
    params = _params(rng)
    proj = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)
    extended = [
        {**params[0], "scale": jnp.full((5,), 3.0), "shift": jnp.ones(5)},
        {**params[1], "proj": proj},
    ]
    want = _np_penalty(params, 0.1, 0.2) + 0.1 * np.abs(np.asarray(proj)).sum() + 0.2 * (np.asarray(proj) ** 2).sum()
    np.testing.assert_allclose(losses.penalty(extended, 0.1, 0.2), want, rtol=1e-5)
    assert len(losses.weight_matrices(extended)) == 3


def test_penalty_of_no_weights_is_zero():
    assert float(losses.penalty([], 0.1, 0.1)) == 0.0
    assert float(losses.penalty([{"b": jnp.ones(3)}], 0.1, 0.1)) == 0.0


def test_penalty_strengths_can_be_traced(rng):
    params = _params(rng)
    l2s = jnp.array([0.0, 0.1, 0.5])
    got = jax.jit(jax.vmap(lambda l2: losses.penalty(params, 0.01, l2)))(l2s)
    for value, l2 in zip(got, [0.0, 0.1, 0.5]):
        np.testing.assert_allclose(value, _np_penalty(params, 0.01, l2), rtol=1e-5)


# ---------------------------------------------------------------------------
# accuracy
# ---------------------------------------------------------------------------


def test_accuracy_softmax_integer_and_one_hot(rng):
    o = rng.normal(size=(N, 4))
    y = rng.integers(0, 4, size=N)
    want = (np.argmax(o, axis=-1) == y).astype(np.float64)
    assert 0 < want.sum() < N  # the test can tell right from wrong
    for target in (y, np.eye(4)[y], y[:, None]):
        got = losses.accuracy("softmax_cross_entropy", jnp.asarray(o, jnp.float32), jnp.asarray(target))
        assert got.shape == (N,)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("label_shape", ["vector", "column"])
@pytest.mark.parametrize("label_dtype", [np.int32, np.float32])
def test_accuracy_binary(label_shape, label_dtype, rng):
    o = rng.normal(size=(N, 1))
    y = rng.integers(0, 2, size=N)
    want = ((o[:, 0] > 0) == (y == 1)).astype(np.float64)
    assert 0 < want.sum() < N
    target = y.astype(label_dtype) if label_shape == "vector" else y[:, None].astype(label_dtype)
    got = losses.accuracy("binary_cross_entropy", jnp.asarray(o, jnp.float32), jnp.asarray(target))
    assert got.shape == (N,)
    np.testing.assert_array_equal(got, want)


def test_accuracy_hinge(rng):
    o = rng.normal(size=(N, 1))
    o[0, 0] = 0.0  # sign(0) = +1: predicts +1 on the boundary
    y = rng.choice([-1, 1], size=N)
    y[0] = 1
    want = (np.where(o[:, 0] >= 0, 1, -1) == y).astype(np.float64)
    assert 0 < want.sum() < N
    got = losses.accuracy("hinge", jnp.asarray(o, jnp.float32), jnp.asarray(y))
    np.testing.assert_array_equal(got, want)
    assert float(got[0]) == 1.0


def test_accuracy_accepts_aliases(rng):
    o = jnp.asarray(rng.normal(size=(N, 3)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 3, size=N))
    np.testing.assert_array_equal(
        losses.accuracy("cross_entropy", o, y), losses.accuracy("softmax_cross_entropy", o, y)
    )


@pytest.mark.parametrize("kind", ["mse", "squared_error", "nonsense"])
def test_accuracy_rejects_non_classification(kind):
    with pytest.raises(ValueError, match="classification"):
        losses.accuracy(kind, jnp.zeros((2, 1)), jnp.zeros(2))


# ---------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------


def test_required_names():
    assert {"mse", "binary_cross_entropy", "softmax_cross_entropy", "hinge"} <= set(losses.names())


@pytest.mark.parametrize(
    ("name", "canonical", "classification", "reference"),
    [
        ("mse", "mse", False, np_mse),
        ("squared_error", "mse", False, np_mse),
        ("binary_cross_entropy", "binary_cross_entropy", True, np_bce),
        ("bce", "binary_cross_entropy", True, np_bce),
        ("log_loss", "binary_cross_entropy", True, np_bce),
        ("softmax_cross_entropy", "softmax_cross_entropy", True, np_softmax_ce),
        ("cross_entropy", "softmax_cross_entropy", True, np_softmax_ce),
        ("categorical_cross_entropy", "softmax_cross_entropy", True, np_softmax_ce),
        ("hinge", "hinge", True, np_hinge),
    ],
)
def test_resolve_names_and_aliases(name, canonical, classification, reference, rng):
    assert name in losses.names()
    loss = losses.resolve(name)
    assert isinstance(loss, losses.Loss)
    assert loss.name == canonical
    assert loss.classification is classification
    assert losses.get(name) is loss.fn
    shape, make_y, _ = CASES[canonical]
    o = _f32(rng.normal(size=shape))
    y = make_y(rng, o)
    np.testing.assert_allclose(_run(loss.fn, o, y), reference(o, y), rtol=1e-5, atol=1e-6)


def test_every_name_resolves():
    for name in losses.names():
        assert callable(losses.get(name))


def test_resolve_callables_and_loss_objects():
    def absolute_error(o, y):
        return jnp.mean(jnp.abs(o - y), axis=-1)

    loss = losses.resolve(absolute_error)
    assert loss.fn is absolute_error
    assert loss.name == "absolute_error"
    assert loss.classification is False
    assert losses.get(absolute_error) is absolute_error
    assert losses.resolve(loss) is loss
    custom = losses.Loss("mine", absolute_error, True)
    assert losses.resolve(custom) is custom


@pytest.mark.parametrize("bad", ["cross_entropyy", "MSE", "", "l2"])
def test_unknown_loss_lists_the_valid_ones(bad):
    with pytest.raises(ValueError) as info:
        losses.resolve(bad)
    message = str(info.value)
    assert repr(bad) in message
    for name in losses.names():
        assert name in message
    with pytest.raises(ValueError):
        losses.get(bad)


@pytest.mark.parametrize("name", sorted(CASES))
def test_losses_under_jit_and_vmap(name, rng):
    shape, make_y, reference = CASES[name]
    o = _f32(rng.normal(size=(3, *shape)))
    ys = np.stack([np.asarray(make_y(rng, o[i]), np.float64) for i in range(3)])
    if name == "softmax_cross_entropy":
        ys = ys.astype(np.int32)
    fn = losses.get(name)
    got = jax.jit(jax.vmap(fn))(jnp.asarray(o, jnp.float32), jnp.asarray(ys))
    for i in range(3):
        np.testing.assert_allclose(got[i], reference(o[i], ys[i]), rtol=1e-5, atol=1e-6)
