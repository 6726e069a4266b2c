"""Mixed precision: ``MLP(compute_dtype="bfloat16")`` keeps float32 parameters, computes in bfloat16."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax import saved

SIZES = (64, 128, 64, 10)


def test_policy_is_a_hashable_topology_field():
    mixed = nnjax.MLP(SIZES, compute_dtype="bfloat16")
    assert mixed == nnjax.MLP(SIZES, compute_dtype=jnp.bfloat16) and hash(mixed) == hash(nnjax.MLP(
        SIZES, compute_dtype=jnp.bfloat16))
    assert mixed.dtype == "float32" and mixed.computation_dtype == "bfloat16" and mixed.mixed_precision
    # computing in the parameter dtype is no policy at all: the same topology, the same programs
    plain = nnjax.MLP(SIZES, compute_dtype="float32")
    assert plain == nnjax.MLP(SIZES) and plain.compute_dtype is None and not plain.mixed_precision
    assert "bfloat16 compute" in str(nnjax.summary(mixed))


@pytest.mark.parametrize("bad", ["float16", "int32", "bf16x"])
def test_unsupported_compute_dtypes_are_refused(bad):
    with pytest.raises(ValueError, match="compute_dtype: expected one of float32, bfloat16"):
        nnjax.MLP(SIZES, compute_dtype=bad)


def _dots(jaxpr) -> list:
    """Every dot_general equation of a jaxpr, sub-jaxprs (pjit, custom_jvp, scan) included."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            found.append(eqn)
        for sub in jax.core.jaxprs_in_params(eqn.params):
            found.extend(_dots(sub))
    return found


@pytest.mark.parametrize("batch_norm", [False, True])
def test_forward_and_backward_matmuls_run_in_bfloat16(key, batch_norm):
    net = nnjax.MLP(SIZES, compute_dtype="bfloat16", batch_norm=batch_norm, dropout=0.1)
    params = nnjax.init(key, net)
    state = nnjax.init_state(net)
    x = jnp.ones((8, SIZES[0]), jnp.float32)

    def forward(p):
        return nnjax.apply_with_state(p, state, x, net, key=key, train=True)

    dots = _dots(jax.make_jaxpr(forward)(params).jaxpr)
    assert len(dots) == 3
    for eqn in dots:
        assert [v.aval.dtype for v in eqn.invars] == [jnp.bfloat16, jnp.bfloat16]
    # hidden layers produce bfloat16; the output layer accumulates into float32 logits
    assert [eqn.outvars[0].aval.dtype for eqn in dots] == [jnp.bfloat16, jnp.bfloat16, jnp.float32]
    logits, new_state = jax.jit(forward)(params)
    assert logits.dtype == jnp.float32
    assert all(a.dtype == jnp.float32 for a in jax.tree_util.tree_leaves(new_state))

    # the gradient's matmuls take bfloat16 operands too, except that the output layer's two
    # take the float32 gradient of the float32 logits; the gradients arrive in float32
    grad_fn = jax.grad(lambda p: jnp.mean(forward(p)[0] ** 2))
    grad_dots = _dots(jax.make_jaxpr(grad_fn)(params).jaxpr)
    operands = [[v.aval.dtype for v in eqn.invars] for eqn in grad_dots]
    assert len(operands) == 3 + 5  # forward, then two per layer less the input's gradient
    assert sum(o == [jnp.bfloat16, jnp.bfloat16] for o in operands) == 6
    assert all(jnp.bfloat16 in o for o in operands)
    assert all(g.dtype == jnp.float32 for g in jax.tree_util.tree_leaves(jax.eval_shape(grad_fn, params)))

    # a float32 net has no bfloat16 anywhere
    plain = nnjax.MLP(SIZES, batch_norm=batch_norm, dropout=0.1)
    plain_dots = _dots(jax.make_jaxpr(lambda p: nnjax.apply_with_state(p, state, x, plain, key=key, train=True))(
        params).jaxpr)
    assert all(v.aval.dtype == jnp.float32 for eqn in plain_dots for v in eqn.invars)


def test_mixed_forward_is_close_to_float32(key, rng):
    net = nnjax.MLP(SIZES, activation="tanh")
    params = nnjax.init(key, net)
    x = jnp.asarray(rng.normal(size=(32, SIZES[0])), jnp.float32)
    want = np.asarray(nnjax.apply(params, x, net))
    got = np.asarray(nnjax.apply(params, x, nnjax.MLP(SIZES, activation="tanh", compute_dtype="bfloat16")))
    # bfloat16 keeps 8 significant bits: a relative error of a few 2^-8 over three layers
    scale = np.abs(want).max()
    assert np.abs(got - want).max() < 0.05 * scale
    assert np.abs(got - want).max() > 0  # it really ran in a lower precision


@pytest.fixture(scope="module")
def digits_runs():
    """A float32 and a mixed run on digits, with the same key, data and settings."""
    data = nnjax.data.load_dataset("digits")
    (x, y), (xt, yt) = nnjax.data.split(0, data.x, data.y, fractions=(0.8, 0.2), stratify=data.y)
    _, x, xt = nnjax.data.standardize(x, xt)
    runs = {}
    for name, compute in (("float32", None), ("bfloat16", "bfloat16")):
        net = nnjax.MLP(SIZES, output="softmax", compute_dtype=compute)
        result = nnjax.fit(jax.random.key(0), net, (x, y), loss="softmax_cross_entropy",
                           optimizer=optax.adam(3e-3), epochs=12, batch_size=32, diagnostics=False)
        pred = np.asarray(nnjax.predict(result.params, xt, net)).argmax(-1)
        runs[name] = (net, result, float(np.mean(pred == yt)))
    return runs, len(yt)


def test_mixed_run_keeps_float32_parameters_and_optimizer_state(digits_runs):
    runs, _ = digits_runs
    _, result, _ = runs["bfloat16"]
    for tree in (result.params, result.state, result.train_state.params, result.opt_state):
        for leaf in jax.tree_util.tree_leaves(tree):
            if jnp.issubdtype(leaf.dtype, jnp.floating):
                assert leaf.dtype == jnp.float32
    assert result.history["loss"].dtype == jnp.float32
    assert int(np.sum(result.history["skipped"])) == 0


def test_mixed_run_reaches_the_float32_accuracy_on_digits(digits_runs):
    runs, n_test = digits_runs
    acc32, acc16 = runs["float32"][2], runs["bfloat16"][2]
    assert acc32 > 0.93  # the reference itself trained
    # three binomial standard errors of an accuracy measured on the n_test test digits
    margin = 3 * math.sqrt(acc32 * (1 - acc32) / n_test)
    print(f"test accuracy float32 {acc32:.4f}, bfloat16 {acc16:.4f}, margin {margin:.4f} (n={n_test})")
    assert acc16 >= acc32 - margin
    # the runs differ (the mixed run did not silently compute in float32)
    assert not np.array_equal(runs["float32"][1].history["loss"], runs["bfloat16"][1].history["loss"])


def test_nan_guard_skips_non_finite_mixed_steps(key, rng):
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    net = nnjax.MLP((8, 32, 32, 2), compute_dtype="bfloat16")
    # a learning rate of 1e30 blows the weights up: the next forward pass overflows bfloat16
    result = nnjax.fit(key, net, (x, y), loss="softmax_cross_entropy", optimizer=optax.sgd(1e30), epochs=3,
                       batch_size=16, diagnostics=False)
    assert int(np.sum(result.history["skipped"])) > 0
    for leaf in jax.tree_util.tree_leaves((result.params, result.opt_state)):
        assert bool(jnp.all(jnp.isfinite(leaf))) and leaf.dtype == jnp.float32


def test_cli_precision_flag_builds_a_mixed_network():
    prep = nnjax.runs.Preprocessing("classification", "softmax_cross_entropy", ("a", "b"), (0.0, 0.0), (1.0, 1.0),
                                    "y", ("no", "yes"))
    args = {"hidden": "8", "activation": "relu", "dropout": "0", "output": "auto", "init": "auto",
            "batch_norm": False, "residual": False}
    assert saved.network_from_args(args, prep).compute_dtype is None  # an older config: float32
    assert saved.network_from_args({**args, "precision": "bfloat16"}, prep).compute_dtype == "bfloat16"
    with pytest.raises(ValueError, match="--precision"):
        saved.network_from_args({**args, "precision": "float16"}, prep)
    from nnjax.cli import _parser

    parsed = _parser.parse_args(["train", "--precision", "bfloat16"])
    assert parsed.precision == "bfloat16"
    assert _parser.parse_args(["train"]).precision == "float32"


def test_cli_mixed_run_is_saved_and_loaded_as_mixed(tmp_path, capsys):
    from nnjax.cli import main

    out = tmp_path / "run"
    code = main(["train", "--precision", "bfloat16", "--hidden", "16", "--epochs", "2", "--no-plots", "--quiet",
                 "--json", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    model = nnjax.load(out)
    assert model.net.compute_dtype == "bfloat16"
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(model.params))
    assert "bfloat16 compute" in (out / "summary.txt").read_text()
