"""nnjax <-> Flax (NNX and Linen): same arrays, same outputs, against a float64 NumPy forward pass."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import nnjax
from nnjax import flax_interop

ATOL = 1e-5  # float32 rounding of a few small matrix products
SIZES, ROWS = (4, 8, 8, 3), 16  # shared shapes: each new shape costs compilations, not coverage


def numpy_forward(params, state, x, net):
    """Independent float64 reference of nnjax's evaluation-mode forward pass (residual skips included)."""
    acts = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
            "identity": lambda z: z}
    h = np.asarray(x, np.float64)
    for i, layer in enumerate(params):
        z = h @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64)
        if i == len(params) - 1:
            return z
        if net.batch_norm:
            mean, var = (np.asarray(state[i][k], np.float64) for k in ("mean", "var"))
            z = (z - mean) / np.sqrt(var + net.bn_epsilon) * np.asarray(layer["gamma"]) + np.asarray(layer["beta"])
        z = acts[net.hidden_activations[i]](z)
        if net.residual and i >= 1:  # hidden layers after the first add their input, projected if widths differ
            z = z + (h @ np.asarray(layer["proj"], np.float64) if h.shape[1] != z.shape[1] else h)
        h = z


def random_bn(rng, params, net):
    """Non-trivial batch-norm parameters and statistics, so a mix-up of any of them shows."""
    state = []
    for i in range(net.n_hidden):
        width = net.sizes[i + 1]
        params[i]["gamma"] = jnp.asarray(rng.uniform(0.5, 2.0, width), jnp.float32)
        params[i]["beta"] = jnp.asarray(rng.normal(size=width), jnp.float32)
        state.append({"mean": jnp.asarray(rng.normal(size=width), jnp.float32),
                      "var": jnp.asarray(rng.uniform(0.5, 3.0, width), jnp.float32)})
    return params, state


@pytest.mark.parametrize("activation", ["relu", ("tanh", "sigmoid")])
def test_nnx_round_trip_matches_nnjax_and_numpy(key, rng, activation):
    net = nnjax.MLP(SIZES, activation=activation)
    params = nnjax.init(key, net)
    x = rng.normal(size=(ROWS, SIZES[0])).astype(np.float32)
    model = flax_interop.to_nnx(params, net)
    reference = numpy_forward(params, None, x, net)
    np.testing.assert_allclose(model(jnp.asarray(x)), reference, atol=ATOL, rtol=ATOL)
    np.testing.assert_allclose(nnjax.apply(params, x, net), reference, atol=ATOL, rtol=ATOL)
    back, state = flax_interop.from_nnx(model)
    assert state == [{}, {}]
    for a, b in zip(back, params):
        assert set(a) == {"w", "b"}
        np.testing.assert_array_equal(a["w"], b["w"])
        np.testing.assert_array_equal(a["b"], b["b"])


def test_batch_norm_evaluation_and_training_statistics_agree(key, rng):
    net = nnjax.MLP(SIZES, activation="relu", batch_norm=True, bn_momentum=0.8)
    params, state = random_bn(rng, nnjax.init(key, net), net)
    x = rng.normal(size=(ROWS, SIZES[0])).astype(np.float32)
    model = flax_interop.to_nnx(params, net, state=state)
    reference = numpy_forward(params, state, x, net)
    np.testing.assert_allclose(model(jnp.asarray(x)), reference, atol=ATOL, rtol=ATOL)
    np.testing.assert_allclose(nnjax.apply(params, x, net, state=state), reference, atol=ATOL, rtol=ATOL)
    # One training-mode pass on each side: batch statistics and the momentum update must agree.
    model.train()
    flax_out = model(jnp.asarray(x))
    nnjax_out, nnjax_state = nnjax.apply_with_state(params, state, x, net, train=True)
    np.testing.assert_allclose(flax_out, nnjax_out, atol=1e-4, rtol=1e-4)
    _, flax_state = flax_interop.from_nnx(model)
    for a, b in zip(flax_state, nnjax_state):
        np.testing.assert_allclose(a["mean"], b["mean"], atol=ATOL, rtol=ATOL)
        np.testing.assert_allclose(a["var"], b["var"], atol=1e-4, rtol=1e-4)


def test_linen_variables_round_trip(key, rng):
    net = nnjax.MLP(SIZES, activation="tanh", batch_norm=True)
    params, state = random_bn(rng, nnjax.init(key, net), net)
    x = rng.normal(size=(ROWS, SIZES[0])).astype(np.float32)
    variables = flax_interop.to_linen(params, net, state=state)
    module = flax_interop.linen_module(net)
    out = module.apply(variables, jnp.asarray(x))
    np.testing.assert_allclose(out, numpy_forward(params, state, x, net), atol=ATOL, rtol=ATOL)
    back, back_state = flax_interop.from_linen(variables)
    np.testing.assert_allclose(nnjax.apply(back, x, net, state=back_state), out, atol=ATOL, rtol=ATOL)


def test_flax_initialised_models_convert_to_nnjax(key, rng, seed):
    x = jnp.asarray(rng.normal(size=(ROWS, 4)), jnp.float32)
    net = nnjax.MLP((4, 8, 3), activation="relu")
    # Linen: Flax's own initialisation and names.
    variables = flax_interop.linen_module(net).init(key, x)
    params, state = flax_interop.from_linen(variables)
    np.testing.assert_allclose(nnjax.apply(params, x, net), flax_interop.linen_module(net).apply(variables, x),
                               atol=ATOL, rtol=ATOL)
    # NNX: a hand-written Linear stack (not built by to_nnx), layers in a plain list.
    rngs = nnx.Rngs(seed)
    stack = [nnx.Linear(4, 8, rngs=rngs), nnx.relu, nnx.Linear(8, 3, rngs=rngs)]
    expected = stack[2](nnx.relu(stack[0](x)))
    params, _ = flax_interop.from_nnx(stack)
    np.testing.assert_allclose(nnjax.apply(params, x, net), expected, atol=ATOL, rtol=ATOL)


def test_trained_here_then_updated_in_flax_and_back(key, rng):
    """A model fitted by nnjax takes one gradient step in Flax; both sides agree on the step."""
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = (x @ rng.normal(size=(4, 3))).astype(np.float32)
    net = nnjax.MLP((4, 8, 3), activation="tanh")
    result = nnjax.fit(key, net, (x, y), loss="mse", optimizer=optax.adam(0.05), epochs=5, batch_size=32,
                       diagnostics=False)
    model = flax_interop.to_nnx(result.params, net)

    def flax_loss(m):
        return jnp.mean(jnp.square(m(jnp.asarray(x)) - y))

    grads = nnx.grad(flax_loss)(model)
    lr = 0.1
    for layer, g in zip([model.layers[0], model.layers[2]], [grads.layers[0], grads.layers[2]]):
        layer.kernel[...] = layer.kernel[...] - lr * g.kernel[...]
        layer.bias[...] = layer.bias[...] - lr * g.bias[...]
    back, _ = flax_interop.from_nnx(model)
    nnjax_grads = jax.grad(lambda p: jnp.mean(nnjax.losses.mse(nnjax.apply(p, x, net), y)))(result.params)
    stepped = jax.tree.map(lambda p, g: p - lr * g, result.params, nnjax_grads)
    for a, b in zip(back, stepped):
        np.testing.assert_allclose(a["w"], b["w"], atol=ATOL, rtol=ATOL)
        np.testing.assert_allclose(a["b"], b["b"], atol=ATOL, rtol=ATOL)


def test_dropout_layers_need_rngs_and_are_identity_in_evaluation(key, rng):
    net = nnjax.MLP((4, 8, 3), dropout=0.5)
    params = nnjax.init(key, net)
    with pytest.raises(ValueError, match="rngs"):
        flax_interop.to_nnx(params, net)
    model = flax_interop.to_nnx(params, net, rngs=nnx.Rngs(dropout=1))
    assert any(isinstance(layer, nnx.Dropout) for layer in model.layers)
    x = jnp.asarray(rng.normal(size=(ROWS, 4)), jnp.float32)
    np.testing.assert_allclose(model(x), nnjax.apply(params, x, net), atol=ATOL, rtol=ATOL)
    model.train()
    assert not np.allclose(model(x), nnjax.apply(params, x, net), atol=1e-3)


RESIDUAL = (4, 8, 8, 6, 3)  # hidden layer 1: identity skip (8 -> 8); hidden layer 2: projection (8 -> 6)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_residual_networks_export_to_nnx_and_linen_with_equal_outputs(key, rng, batch_norm):
    net = nnjax.MLP(RESIDUAL, activation="tanh", residual=True, batch_norm=batch_norm, dropout=(0.0, 0.3, 0.0))
    params = nnjax.init(key, net)
    assert "proj" not in params[1] and params[2]["proj"].shape == (8, 6)
    params[2]["b"] = jnp.asarray(rng.normal(size=6), jnp.float32)  # nonzero biases, so a dropped bias shows
    state = None
    if batch_norm:
        params, state = random_bn(rng, params, net)
    x = rng.normal(size=(ROWS, RESIDUAL[0])).astype(np.float32)
    reference = numpy_forward(params, state, x, net)
    no_skip = numpy_forward(params, state, x, nnjax.MLP(RESIDUAL, activation="tanh", batch_norm=batch_norm))
    assert np.max(np.abs(reference - no_skip)) > 0.1  # the skips matter for these outputs
    np.testing.assert_allclose(nnjax.apply(params, x, net, state=state), reference, atol=ATOL, rtol=ATOL)

    model = flax_interop.to_nnx(params, net, state=state, rngs=nnx.Rngs(0))
    blocks = [layer for layer in model.layers if isinstance(layer, flax_interop.ResidualBlock)]
    assert len(blocks) == 2 and blocks[0].proj is None and blocks[1].proj.kernel[...].shape == (8, 6)
    np.testing.assert_allclose(model(jnp.asarray(x)), reference, atol=ATOL, rtol=ATOL)
    back, back_state = flax_interop.from_nnx(model)

    variables = flax_interop.to_linen(params, net, state=state)
    assert set(variables["params"]["Proj_2"]) == {"kernel"} and "Proj_1" not in variables["params"]
    module = flax_interop.linen_module(net)
    np.testing.assert_allclose(module.apply(variables, jnp.asarray(x)), reference, atol=ATOL, rtol=ATOL)
    # Linen's own init makes the same variable tree (so Flax-initialised models convert too)
    made = module.init(jax.random.key(1), jnp.asarray(x))
    assert jax.tree.structure(made) == jax.tree.structure(variables)
    linen_back, linen_state = flax_interop.from_linen(variables)

    for got, got_state in ((back, back_state), (linen_back, linen_state)):
        assert [set(layer) for layer in got] == [set(layer) for layer in params]
        jax.tree.map(np.testing.assert_array_equal, got, params)
        np.testing.assert_allclose(nnjax.apply(got, x, net, state=got_state if batch_norm else None), reference,
                                   atol=ATOL, rtol=ATOL)


def test_errors_name_the_problem(key):
    residual = nnjax.MLP(RESIDUAL, residual=True)
    params = nnjax.init(key, residual)
    del params[2]["proj"]
    with pytest.raises(ValueError, match=r"params\[2\]: expected a residual projection proj \(8, 6\)"):
        flax_interop.to_nnx(params, residual)
    with pytest.raises(ValueError, match="identity skip needs equal widths"):
        flax_interop.ResidualBlock(nnx.Linear(3, 4, rngs=nnx.Rngs(0)), nnx.relu)
    net = nnjax.MLP((4, 8, 3), batch_norm=True)
    with pytest.raises(ValueError, match="state"):
        flax_interop.to_linen(nnjax.init(key, net), net)
    with pytest.raises(ValueError, match="expected 2 layers"):
        flax_interop.to_nnx(nnjax.init(key, net)[:1], net)
    with pytest.raises(ValueError, match="at least one Linear"):
        flax_interop.from_nnx([nnx.relu])
    with pytest.raises(ValueError, match="every hidden layer"):
        flax_interop.from_linen({"params": {
            "Dense_0": {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)},
            "Dense_1": {"kernel": jnp.ones((3, 3)), "bias": jnp.zeros(3)},
            "Dense_2": {"kernel": jnp.ones((3, 1)), "bias": jnp.zeros(1)},
            "BatchNorm_1": {"scale": jnp.ones(3), "bias": jnp.zeros(3)}},
            "batch_stats": {"BatchNorm_1": {"mean": jnp.zeros(3), "var": jnp.ones(3)}}})


def test_linen_module_is_a_plain_flax_module():
    assert issubclass(flax_interop.LinenMLP, nn.Module)
