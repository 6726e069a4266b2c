"""nnjax.diagnose: verdicts on constructed histories and on real deep networks trained for a few epochs."""

import importlib.util
import pathlib
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax

# ---------------------------------------------------------------------------------------------
# constructed histories: each sign on its own


def make_history(epochs=6, layers=4, *, grad=None, weight=None, ratio=None, above=None, nonfinite=None, loss=None,
                 saturated=None):
    """A history with healthy defaults; every argument overrides one key (broadcast to (epochs, layers);
    ``saturated``: (epochs, layers - 1))."""

    def full(value, default, width=layers):
        return np.broadcast_to(np.asarray(default if value is None else value, np.float64), (epochs, width)).copy()

    return {
        "loss": np.linspace(2.3, 1.0, epochs) if loss is None else np.asarray(loss, np.float64),
        "layer_grad_norm": full(grad, 0.5),
        "layer_weight_norm": full(weight, 3.0),
        "layer_update_ratio": full(ratio, 1e-2),
        "layer_grad_above_1": full(above, 0.0),
        "layer_nonfinite": full(nonfinite, 0.0),
        "dead_units": np.zeros((epochs, layers - 1)),
        "saturated_units": full(saturated, 0.0, layers - 1),
        "skipped": np.zeros(epochs, np.int32),
        "stopped": np.zeros(epochs, bool),
    }


def test_healthy_history():
    d = nnjax.diagnose(make_history())
    assert d.verdict == "healthy"
    assert d.layers == () and d.remedies == () and d.signs == ()
    assert "HEALTHY" in str(d)


def test_vanishing_when_early_gradients_are_orders_of_magnitude_smaller():
    grads = np.array([1e-9, 1e-5, 1e-2, 1.0])
    d = nnjax.diagnose(make_history(grad=grads))
    assert d.verdict == "vanishing"
    assert d.layers == (0, 1)  # 1e-2 is above the default threshold of 1e-3
    np.testing.assert_allclose(d.evidence["min_grad_ratio"], 1e-9)
    np.testing.assert_allclose(d.per_layer["grad_ratio"], grads)
    text = d.report()
    assert "layer 1" in text and "layer 2" in text and "residual=True" in text and "batch_norm=True" in text
    # the threshold is a keyword argument
    assert nnjax.diagnose(make_history(grad=grads), vanishing_ratio=1e-10).verdict == "healthy"
    assert nnjax.diagnose(make_history(grad=grads), vanishing_ratio=0.1).layers == (0, 1, 2)


def test_vanishing_when_loss_stalls_and_early_weights_barely_move_or_shrink():
    flat = np.full(6, 2.30) - np.arange(6) * 1e-4
    still = make_history(ratio=[1e-9, 1e-3, 1e-3, 1e-3], loss=flat)
    assert nnjax.diagnose(still).verdict == "vanishing"
    assert nnjax.diagnose(still).layers == (0,)
    shrinking = make_history(weight=np.linspace(3.0, 0.3, 6)[:, None] * np.ones(4), loss=flat)
    assert nnjax.diagnose(shrinking).verdict == "vanishing"
    # the same weights with an improving loss: no verdict from these weak signs alone
    assert nnjax.diagnose(make_history(ratio=[1e-9, 1e-3, 1e-3, 1e-3])).verdict == "healthy"


def test_vanishing_when_sigmoid_or_tanh_layers_are_saturated_from_the_first_epoch_to_the_last():
    saturated = np.array([0.97, 0.9, 0.2])  # layers 1 and 2 saturated, layer 3 not
    d = nnjax.diagnose(make_history(saturated=saturated))  # loss falls, gradients reach every layer
    assert d.verdict == "vanishing" and d.layers == (0, 1)
    np.testing.assert_allclose(d.evidence["max_saturated"], 0.97)
    np.testing.assert_allclose(d.per_layer["saturated_first"], saturated)
    assert "saturated units" in d.signs[0] and "layer 1" in d.signs[0]
    assert "xavier_normal" in d.remedies[0]  # the most direct remedy first
    assert set(importlib.import_module("nnjax.diagnose").REMEDIES["vanishing"]) <= set(d.remedies)
    assert "sat" in d.report() and "97%" in d.report()
    # the threshold is a keyword argument, on either side of the measured fractions
    assert nnjax.diagnose(make_history(saturated=saturated), saturated_fraction=0.98).verdict == "healthy"
    assert nnjax.diagnose(make_history(saturated=saturated), saturated_fraction=0.1).layers == (0, 1, 2)
    # saturated in the first epochs only: the run left the tails
    early = np.zeros((6, 3))
    early[:2] = 0.95
    assert nnjax.diagnose(make_history(saturated=early)).verdict == "healthy"
    # saturated by the end only: a well-trained net may end with many units in the tails
    late = np.linspace(0.0, 0.9, 6)[:, None] * np.ones(3)
    assert nnjax.diagnose(make_history(saturated=late)).verdict == "healthy"
    # ReLU layers record NaN, and a history without the key (an older run) is read as before
    assert nnjax.diagnose(make_history(saturated=np.nan)).verdict == "healthy"
    assert np.isnan(nnjax.diagnose(make_history(saturated=np.nan)).evidence["max_saturated"])
    old = {k: v for k, v in make_history().items() if k != "saturated_units"}
    assert nnjax.diagnose(old).verdict == "healthy"


def test_saturation_explains_large_gradients_unless_the_weights_grow():
    above = np.zeros((6, 4))
    above[:, 1:3] = 0.6  # huge weights times activations of +-1: large dL/dW entries in every epoch
    stalled = np.linspace(2.3, 2.299, 6)
    saturated = np.full(3, 0.95)
    d = nnjax.diagnose(make_history(above=above, loss=stalled, saturated=saturated))
    assert d.verdict == "vanishing", d.report()
    assert nnjax.diagnose(make_history(above=above, loss=stalled)).verdict == "exploding"  # without saturation
    growing = np.geomspace(1.0, 50.0, 6)[:, None] * np.ones(4)
    grown = nnjax.diagnose(make_history(above=above, loss=stalled, weight=growing, saturated=saturated))
    assert grown.verdict == "exploding"  # the weights grow: saturation follows from the growth
    nan_counts = np.zeros((6, 4))
    nan_counts[2, 0] = 3
    assert nnjax.diagnose(make_history(nonfinite=nan_counts, saturated=saturated)).verdict == "exploding"


def test_gradients_growing_toward_the_input_are_exploding_even_when_saturated():
    """The word follows the table's "/output" column: a first layer 1.5e4 x the output layer's is
    exploding, saturated or not; the saturation is said in a note and its remedy comes first."""
    grads = np.array([1.5e4, 3e3, 1e2, 1.0])
    saturated = np.full(3, 0.9)
    d = nnjax.diagnose(make_history(grad=grads, saturated=saturated))
    assert d.verdict == "exploding" and d.layers == (0, 1), d.report()
    assert "grows toward the input" in d.signs[0] and "layer 1 at 1.50e+04" in d.signs[0]
    assert any("saturated units" in note for note in d.notes) and "xavier_normal" in d.remedies[0]
    assert "clip_norm" in d.report() and "EXPLODING" in d.report()
    np.testing.assert_allclose(d.evidence["max_grad_ratio"], 1.5e4)
    assert nnjax.diagnose(make_history(grad=grads)).verdict == "exploding"  # without saturation too
    # the threshold is a keyword; below it the saturation decides, as before
    assert nnjax.diagnose(make_history(grad=grads, saturated=saturated), exploding_ratio=1e5).verdict == "vanishing"
    assert nnjax.diagnose(make_history(grad=grads), exploding_ratio=1e5).verdict == "healthy"
    # a layer starved on the way is vanishing, whatever the first layer gets
    assert nnjax.diagnose(make_history(grad=[1e4, 1e-5, 1e-1, 1.0])).verdict == "vanishing"


def test_exploding_on_nan_counts_and_skipped_steps():
    nonfinite = np.zeros((6, 4))
    nonfinite[3, 2:] = 17
    d = nnjax.diagnose(make_history(nonfinite=nonfinite))
    assert d.verdict == "exploding" and d.layers == (2, 3)
    assert d.evidence["nonfinite_entries"] == 34
    assert "clip_norm" in d.report() and "output layer" in d.report()
    h = make_history()
    h["skipped"][2] = 5
    assert nnjax.diagnose(h).verdict == "exploding"
    h = make_history(loss=[2.0, 1.5, np.nan, np.nan, np.nan, np.nan])  # ran, but diverged
    assert nnjax.diagnose(h).evidence["nonfinite_loss_epochs"] == 4


def test_exploding_on_gradients_consistently_above_one_with_an_unstable_loss():
    above = np.zeros((6, 4))
    above[1:, 0] = 0.2  # 5 of 6 epochs, the last included
    swings = [2.3, 1.0, 3.0, 1.2, 4.0, 2.0]
    d = nnjax.diagnose(make_history(above=above, loss=swings))
    assert d.verdict == "exploding" and d.layers == (0,)
    np.testing.assert_allclose(d.evidence["max_above_1_share"], 5 / 6)
    stalled = np.linspace(2.3, 2.299, 6)
    assert nnjax.diagnose(make_history(above=above, loss=stalled)).verdict == "exploding"
    growing = np.geomspace(1.0, 50.0, 6)[:, None] * np.ones(4)
    assert nnjax.diagnose(make_history(above=above, weight=growing)).verdict == "exploding"
    # thresholds are keyword arguments
    assert nnjax.diagnose(make_history(above=above, loss=swings), above_1_fraction=0.5).verdict == "healthy"
    assert nnjax.diagnose(make_history(above=above, loss=swings), consistency=0.9).verdict == "healthy"


def test_large_gradients_alone_are_not_exploding():
    above = np.zeros((6, 4))
    above[1:, 0] = 0.2
    held = nnjax.diagnose(make_history(above=above))  # loss falls steadily, weights steady: e.g. clipped
    assert held.verdict == "healthy" and "kept in check" in held.notes[0]
    above[-1, 0] = 0.0  # 4 of 6 epochs, gone by the last one: the run recovered
    recovered = nnjax.diagnose(make_history(above=above, loss=[2.3, 1.0, 3.0, 1.2, 4.0, 2.0]))
    assert recovered.verdict == "healthy" and "recovered" in recovered.notes[0]


def test_exploding_needs_weight_growth_and_loss_swings_together():
    growth = np.geomspace(1.0, 50.0, 6)[:, None] * np.ones(4)
    swings = [2.3, 1.0, 3.0, 1.2, 4.0, 2.0]
    assert nnjax.diagnose(make_history(weight=growth, loss=swings)).verdict == "exploding"
    assert nnjax.diagnose(make_history(weight=growth)).verdict == "healthy"  # growth, steady descent
    assert nnjax.diagnose(make_history(loss=swings)).verdict == "healthy"  # swings, no growth
    np.testing.assert_allclose(nnjax.diagnose(make_history(loss=swings)).evidence["max_loss_rise"], 2.8 / 2.3)


def test_epochs_after_a_stop_are_ignored():
    grads = np.array([1e-9, 1e-5, 1e-2, 1.0])
    h = make_history(epochs=4, grad=grads)
    padded = {k: np.concatenate([v, np.full((3,) + v.shape[1:], np.nan if v.dtype.kind == "f" else 0, v.dtype)])
              for k, v in h.items()}
    padded["stopped"][4:] = True
    for hist in (padded, {k: v for k, v in padded.items() if k != "stopped"}):  # with and without "stopped"
        d = nnjax.diagnose(hist)
        assert d.epochs_used == (0, 1, 2, 3)
        assert d.verdict == "vanishing" and d.evidence["loss_last"] == h["loss"][-1]


def test_accepts_jax_arrays():
    h = make_history(grad=[1e-9, 1e-5, 1e-2, 1.0])
    as_jax = {k: jnp.asarray(v) for k, v in h.items()}
    assert nnjax.diagnose(as_jax).verdict == "vanishing"


def test_errors_name_the_argument():
    h = make_history()
    with pytest.raises(ValueError, match="diagnostics=True"):
        nnjax.diagnose({"loss": h["loss"]})
    with pytest.raises(ValueError, match="single run"):
        nnjax.diagnose({k: np.stack([v, v]) for k, v in h.items()})
    with pytest.raises(ValueError, match="at least one epoch"):
        nnjax.diagnose({**h, "stopped": np.ones(6, bool)})
    with pytest.raises(ValueError, match="vanishing_ratio"):
        nnjax.diagnose(h, vanishing_ratio=0.0)
    with pytest.raises(TypeError, match="history"):
        nnjax.diagnose([1, 2, 3])


# ---------------------------------------------------------------------------------------------
# what fit records, against a NumPy float64 replay of the same SGD run


def numpy_replay(params, x, y, perm_of_epoch, *, lr, batch, epochs):
    """SGD on a tanh MLP with MSE, written out in NumPy: per step the weight gradients and updates."""
    ws = [np.asarray(p["w"], np.float64) for p in params]
    bs = [np.asarray(p["b"], np.float64) for p in params]
    steps = []
    for epoch in range(epochs):
        order = perm_of_epoch(epoch)
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            hs = [x[idx].astype(np.float64)]
            for i, (w, b) in enumerate(zip(ws, bs)):
                z = hs[-1] @ w + b
                hs.append(np.tanh(z) if i < len(ws) - 1 else z)
            delta = 2 * (hs[-1] - y[idx, None]) / len(idx)  # d mean((o - y)^2) / d o
            grads = []
            for i in reversed(range(len(ws))):
                grads.insert(0, (hs[i].T @ delta, delta.sum(0)))
                if i:
                    delta = (delta @ ws[i].T) * (1 - hs[i] ** 2)
            steps.append({"epoch": epoch, "g": [g for g, _ in grads], "u": [-lr * g for g, _ in grads]})
            ws = [w - lr * g for w, (g, _) in zip(ws, grads)]
            bs = [b - lr * gb for b, (_, gb) in zip(bs, grads)]
        steps[-1]["w_end"] = [w.copy() for w in ws]
    return steps


def test_recorded_statistics_match_a_numpy_replay(rng):
    # a rate small enough that float32 and the float64 replay stay together for 16 steps (0.3 let
    # them part beyond the tolerance for some draws: a chaotic trajectory, not a wrong statistic)
    n, batch, epochs, lr = 32, 4, 2, 0.05
    net = nnjax.MLP((3, 5, 4, 1), activation="tanh", init="xavier_normal")
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (3 * rng.normal(size=n)).astype(np.float32)  # large targets: some gradient entries above 1
    key = jax.random.key(11)
    params = nnjax.init(jax.random.key(12), net)
    result = nnjax.fit(key, net, (x, y), loss="mse", optimizer=optax.sgd(lr), epochs=epochs, batch_size=batch,
                       params=params)
    h = jax.tree.map(np.asarray, result.history)
    steps = numpy_replay(params, x, y, lambda e: np.asarray(nnjax.training.epoch_permutation(key, e, n)),
                         lr=lr, batch=batch, epochs=epochs)
    per_epoch = n // batch
    sampled = [bool(nnjax.diagnostics.sampled_step(s, per_epoch)) for s in range(per_epoch)]
    assert sum(sampled) == min(per_epoch, nnjax.diagnostics.SAMPLES_PER_EPOCH) and sampled[-1]
    for e in range(epochs):
        mine = steps[e * per_epoch:(e + 1) * per_epoch]
        w_end = mine[-1]["w_end"]
        picked = [s for s, take in zip(mine, sampled) if take]
        for layer in range(3):
            grad_norm = np.mean([np.linalg.norm(s["g"][layer]) for s in mine])  # every step
            w_norm = np.linalg.norm(w_end[layer])
            ratio = np.mean([np.linalg.norm(s["u"][layer]) for s in picked]) / w_norm  # sampled steps
            above = np.mean([np.mean(np.abs(s["g"][layer]) > 1) for s in picked])
            np.testing.assert_allclose(h["layer_grad_norm"][e, layer], grad_norm, rtol=2e-4)
            np.testing.assert_allclose(h["layer_weight_norm"][e, layer], w_norm, rtol=2e-4)
            np.testing.assert_allclose(h["layer_update_ratio"][e, layer], ratio, rtol=2e-4)
            np.testing.assert_allclose(h["layer_grad_above_1"][e, layer], above, atol=1e-6)
    assert h["layer_grad_above_1"].max() > 0  # the check above was not vacuous
    np.testing.assert_array_equal(h["layer_nonfinite"], 0)
    np.testing.assert_array_equal(h["dead_units"], 0)  # tanh is never exactly 0 on a whole batch here


def test_saturated_fraction_matches_numpy_and_ignores_padding(rng):
    # scales that put about 38% of the entries in each tail region (|tanh(x)| > 0.99 for |x| > 2.65,
    # a sigmoid outside [0.005, 0.995] for |x| > 5.29): P(fewer than 5% or more than 95%) < 1e-6
    hidden = [rng.normal(scale=3.0, size=(16, 8)), rng.normal(scale=6.0, size=(16, 5)), rng.normal(size=(16, 4))]
    acts = ("tanh", "sigmoid", "relu")
    outs = [np.tanh(hidden[0]), 1 / (1 + np.exp(-hidden[1])), np.maximum(hidden[2], 0)]
    weights = np.ones(16)
    weights[12:] = 0.0  # padding rows, made fully saturated so that counting them would show
    outs[0][12:], outs[1][12:] = 1.0, 0.0
    got = np.asarray(nnjax.diagnostics.saturated_fraction([jnp.asarray(o, jnp.float32) for o in outs],
                                                          jnp.asarray(weights, jnp.float32), acts))
    expected = [np.mean(np.abs(outs[0][:12]) > 0.99), np.mean(np.abs(2 * outs[1][:12] - 1) > 0.99)]
    assert 0.05 < expected[0] < 0.95 and 0.05 < expected[1] < 0.95  # neither all nor nothing
    np.testing.assert_allclose(got[:2], expected, atol=1e-6)
    assert np.isnan(got[2])  # ReLU has no flat tails (its zeros are dead_units)
    assert np.all(np.isnan(nnjax.diagnostics.saturated_fraction(outs[:1], jnp.ones(16), None)))


def test_fit_records_saturated_units_only_for_sigmoid_and_tanh_layers(rng):
    x = rng.normal(size=(32, 3)).astype(np.float32)
    y = rng.normal(size=32).astype(np.float32)
    net = nnjax.MLP((3, 6, 6, 6, 1), activation=("tanh", "relu", "sigmoid"))
    h = nnjax.fit(jax.random.key(0), net, (x, y), loss="mse", optimizer=optax.sgd(0.01), epochs=2,
                  batch_size=8).history
    sat = np.asarray(h["saturated_units"])
    assert sat.shape == (2, 3)
    assert np.all(np.isnan(sat[:, 1])) and np.all((sat[:, [0, 2]] >= 0) & (sat[:, [0, 2]] <= 1))
    assert np.all(sat[:, [0, 2]] < 0.2)  # Xavier init keeps them in the slope


# ---------------------------------------------------------------------------------------------
# real runs: the experiments of examples/vanishing_gradients.py and examples/exploding_gradients.py
# in their --quick setting (10 hidden layers of 32, 384 digits, a few epochs). The smoke tests of the
# examples run the same settings, so in one pytest process the compiled programs are shared.


def load_example(name: str):
    """The module ``examples/<name>.py``, imported once per process under a fixed name."""
    module_name = f"nnjax_example_{name}"
    if module_name not in sys.modules:
        examples = pathlib.Path(__file__).resolve().parents[1] / "examples"
        if str(examples) not in sys.path:
            sys.path.append(str(examples))  # the examples import their helpers, examples/_common.py
        spec = importlib.util.spec_from_file_location(module_name, examples / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


@pytest.fixture(scope="module")
def vanishing_runs():
    runs = load_example("vanishing_gradients").experiment(quick=True)
    assert list(runs) == ["sigmoid + normal init", "relu + He init", "sigmoid + batch norm", "sigmoid + residual"]
    assert all(len(run.result.params) == 11 for run in runs.values())  # 10 hidden layers and the output
    return runs


@pytest.fixture(scope="module")
def exploding_runs():
    runs = load_example("exploding_gradients").experiment(quick=True)
    assert list(runs) == ["sgd lr 0.3", "+ clip_norm=1.0", "+ warm-up/cosine schedule", "adam 1e-3"]
    return runs


def test_deep_sigmoid_with_small_normal_init_vanishes(vanishing_runs):
    d = vanishing_runs["sigmoid + normal init"].diagnosis
    assert d.verdict == "vanishing", d.report()
    assert 0 in d.layers  # the first layer is the one starved
    # the gradient shrinks layer by layer towards the input
    assert np.all(np.diff(np.log(d.per_layer["grad_norm"])) > 0)
    assert d.evidence["min_grad_ratio"] < 1e-6
    assert d.evidence["loss_improvement"] < 0.05  # barely learns


@pytest.mark.parametrize("remedy", ["relu + He init", "sigmoid + batch norm", "sigmoid + residual"])
def test_remedies_for_vanishing_train_and_are_healthy(vanishing_runs, remedy):
    baseline = vanishing_runs["sigmoid + normal init"]
    run = vanishing_runs[remedy]
    assert run.diagnosis.verdict == "healthy", run.diagnosis.report()
    assert run.diagnosis.evidence["min_grad_ratio"] > 1e3 * baseline.diagnosis.evidence["min_grad_ratio"]
    h = run.history
    assert h["loss"][-1] < 0.85 * h["loss"][0]  # it trains (chance accuracy is 10%)
    assert h["accuracy"][-1] > 0.4 and baseline.history["accuracy"][-1] < 0.2


def test_large_init_and_high_learning_rate_explode_and_the_guard_catches_nan(exploding_runs):
    run = exploding_runs["sgd lr 0.3"]
    d = run.diagnosis
    assert d.verdict == "exploding", d.report()
    assert d.evidence["skipped_steps"] > 0 and d.evidence["nonfinite_entries"] > 0
    assert "clip_norm" in d.report()
    # the guard never let a non-finite value into the parameters
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(run.result.params))


@pytest.mark.parametrize("fix", ["+ clip_norm=1.0", "+ warm-up/cosine schedule", "adam 1e-3"])
def test_clipping_schedule_and_adam_fix_the_explosion(exploding_runs, fix):
    run = exploding_runs[fix]
    assert run.diagnosis.verdict == "healthy", run.diagnosis.report()
    h = run.history
    assert h["skipped"].sum() == 0 and np.all(np.isfinite(h["loss"]))
    assert h["loss"][-1] < 0.5 * h["loss"][0]


def test_diagnose_takes_a_fit_result(vanishing_runs):
    run = vanishing_runs["relu + He init"]
    from_result, from_history = nnjax.diagnose(run.result), nnjax.diagnose(run.history)
    assert from_result.verdict == from_history.verdict
    for name, value in from_history.evidence.items():
        np.testing.assert_allclose(from_result.evidence[name], value, rtol=1e-6, err_msg=name)




# The examples' scripts on the runs above: their ``main(["--quick"])`` trains the same programs, which
# this process has compiled for the fixtures (programs are compared by what they compute), so each costs
# its plot and a second of training instead of the compiles (~20 and ~15 s on 2 cores).


def check_png(path: pathlib.Path) -> None:
    assert path.is_file(), f"expected a plot at {path}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000  # a drawn figure, not an empty canvas


def run_example_main(name: str, runs: dict, tmp_path: pathlib.Path, capsys) -> tuple[dict, str]:
    """Runs ``examples/<name>.py --quick`` in-process: its verdicts (those of the fixture's runs,
    same programs and keys) and what it printed; its plot is a drawn PNG."""
    capsys.readouterr()
    verdicts = load_example(name).main(["--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    check_png(tmp_path / f"{name}.png")
    assert verdicts == {key: run.diagnosis.verdict for key, run in runs.items()}
    return verdicts, out


def test_vanishing_gradients_example_prints_what_it_measured(vanishing_runs, tmp_path, capsys):
    verdicts, out = run_example_main("vanishing_gradients", vanishing_runs, tmp_path, capsys)
    assert verdicts["sigmoid + normal init"] == "vanishing"
    assert f"verdict[sigmoid + normal init]: {verdicts['sigmoid + normal init']}" in out
    healthy = sum(v == "healthy" for name, v in verdicts.items() if name != "sigmoid + normal init")
    assert "Conclusions:" in out and f"* {healthy} of 3 remedies give a healthy diagnosis" in out
    assert "remedies to try:" in out  # the baseline's report is printed in full
    # the conclusion quotes the measured ratio of the first layer's gradient to the output layer's
    ratio = float(re.search(r"layer 1 gets ([0-9.e+-]+) of the output", out).group(1))
    assert 0 < ratio < 1e-3


def test_exploding_gradients_example_prints_what_it_measured(exploding_runs, tmp_path, capsys):
    verdicts, out = run_example_main("exploding_gradients", exploding_runs, tmp_path, capsys)
    assert verdicts["sgd lr 0.3"] == "exploding"
    skipped = int(re.search(r"sgd lr 0.3 is exploding: (\d+) of (\d+) steps skipped", out).group(1))
    assert skipped > 0
    assert "parameters still finite" in out
    fixed = sum(v == "healthy" for name, v in verdicts.items() if name != "sgd lr 0.3")
    assert "Conclusions:" in out and f"* {fixed} of 3 fixes give a healthy diagnosis" in out


SATURATED_SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def saturated_runs():
    """Ten tanh layers of 32 on 384 digits, 3 epochs: weights from N(0, 3^2) and Xavier init (the remedy).

    Pre-activations of about N(0, 17^2) put most units in tanh's flat tails from the first step on.
    Adam bounds every step by its learning rate, so the weights cannot grow fast whatever the
    rounding: the verdict rests on the gradient ratios and the saturation, not on growth. With SGD
    the huge raw gradients make the
    trajectory chaotic (weights of one layer grew x1.2 to x27 in 3 epochs, depending on the CPU's
    rounding), so that run is only asserted not to be healthy.
    """
    example = load_example("exploding_gradients")
    train, _ = example.load(384, 0)
    net = nnjax.MLP((64,) + (32,) * 10 + (10,), activation="tanh", output="softmax")

    def run(seed, params, optimizer):
        result = nnjax.fit(jax.random.key(seed), net, train, loss="softmax_cross_entropy", optimizer=optimizer,
                           epochs=3, batch_size=16, params=params)
        return nnjax.diagnose(result)

    adam = optax.adam(1e-3)

    def huge(seed):
        return example.wide_normal_params(net, 3.0, key=jax.random.key(seed + 1))

    return {
        "adam": {seed: run(seed, huge(seed), adam) for seed in SATURATED_SEEDS},
        "sgd": run(0, huge(0), optax.sgd(0.1)),
        "xavier": run(0, nnjax.init(jax.random.key(1), net), adam),
    }


@pytest.mark.parametrize("seed", SATURATED_SEEDS)
def test_deep_tanh_with_huge_init_is_saturated_and_its_gradients_grow_toward_the_input(saturated_runs, seed):
    """Issue 24: the few units left in tanh's slope pass the huge weights back, so the gradient grows
    about x2-3 a layer toward the input (the first layer's 1e4 x the output layer's): the verdict
    says "exploding", as the table does, and the saturation is a note with Xavier init its remedy."""
    d = saturated_runs["adam"][seed]
    assert d.verdict == "exploding", d.report()
    assert d.per_layer["grad_ratio"][0] > 1e3 and "grows toward the input" in d.signs[0]
    assert np.all(np.diff(np.log(d.per_layer["grad_norm"])) < 0)  # larger at every layer nearer the input
    assert d.layers[0] == 0 and "layer 1" in d.report().split("layers concerned:")[1].splitlines()[0]
    assert any("saturated units" in note for note in d.notes) and "xavier_normal" in d.remedies[0]
    # far from the threshold of 0.5: 0.85 to 0.9 measured in every hidden layer, first and last epoch
    assert d.evidence["max_saturated"] > 0.75
    assert np.all(d.per_layer["saturated_first"] > 0.7) and np.all(d.per_layer["saturated_last"] > 0.7)


def test_deep_tanh_with_huge_init_and_sgd_is_not_healthy(saturated_runs):
    d = saturated_runs["sgd"]
    assert d.verdict in ("vanishing", "exploding"), d.report()
    assert d.evidence["max_saturated"] > 0.75  # 0.97 to 0.98 measured


def test_xavier_init_removes_the_saturation(saturated_runs):
    xavier = saturated_runs["xavier"]
    assert xavier.verdict == "healthy", xavier.report()
    assert xavier.evidence["max_saturated"] < 0.1  # 0.01 measured
    assert xavier.evidence["loss_last"] < 0.5 * min(d.evidence["loss_last"] for d in saturated_runs["adam"].values())
