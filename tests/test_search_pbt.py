"""Population-based training and the learning-rate range test (nnjax.train.search, issue 22 items 2-3)."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax
from nnjax.train import search
from nnjax.train.loop import TrainState
from nnjax.train.search import population_based as pb
from nnjax.train.search import lr_range

BLOBS = nnjax.data.load_dataset("blobs")
NET = nnjax.MLP((2, 6, 1), output="sigmoid")
SHARED = dict(loss="binary_cross_entropy", optimizer="momentum", batch_size=20, validation=(BLOBS.x, BLOBS.y))
SPACE = {"learning_rate": pb.LogUniform(0.003, 0.3), "l2": [0.0, 1e-4, 1e-3]}


def _pbt(key, **kw):
    args = dict(members=4, generations=3, epochs_per_generation=1, quantile=0.25)
    args.update(kw)
    return search.pbt(key, NET, (BLOBS.x, BLOBS.y), SPACE, **args, **SHARED)


HEARD = []  # what the fixture's on_generation callback heard


@pytest.fixture(scope="module")
def run():
    out = _pbt(jax.random.key(7), on_generation=lambda g, scores: HEARD.append((g, scores.copy())))
    jax.effects_barrier()
    return out


def test_pbt_is_deterministic_from_its_key(run):
    again = _pbt(jax.random.key(7))
    np.testing.assert_array_equal(run.parents, again.parents)
    np.testing.assert_array_equal(run.scores, again.scores)
    for name in run.settings:
        np.testing.assert_array_equal(run.settings[name], again.settings[name])
    for a, b in zip(jax.tree.leaves(run.result.params), jax.tree.leaves(again.result.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    other = _pbt(jax.random.key(8))
    assert not np.array_equal(run.settings["learning_rate"], other.settings["learning_rate"])


def test_pbt_record_shapes_and_lineage(run):
    assert run.parents.shape == (3, 4) and run.scores.shape == (3, 4)
    assert run.result.history["val_loss"].shape == (4, 3)
    replaced = run.parents != np.arange(4)
    assert np.all(replaced.sum(axis=1) == 1)  # quantile 0.25 of 4: one member a generation
    # the replaced member copied a top one: its parent's score was the best of the generation
    for g in range(3):
        (child,) = np.flatnonzero(replaced[g])
        assert run.scores[g, run.parents[g, child]] == np.nanmin(run.scores[g])
        assert run.scores[g, child] == np.nanmax(run.scores[g])
    # the explored learning rate is the parent's times 0.8 or 1.2 (or a resample inside the range)
    lr = run.settings["learning_rate"]
    for g in range(2):
        (child,) = np.flatnonzero(replaced[g])
        ratio = lr[g + 1, child] / lr[g, run.parents[g, child]]
        assert np.isclose(ratio, 0.8, rtol=1e-5) or np.isclose(ratio, 1.2, rtol=1e-5) or 0.003 <= lr[g + 1, child] <= 0.3


@pytest.mark.parametrize("member", [None, 0, "copied"])
def test_replay_with_plain_fit_reproduces_the_member(run, member):
    """fit in chunks of k epochs with the schedule's settings equals the member (float32 rounding)."""
    if member == "copied":  # the slot replaced before the last generation: its lineage changes slot
        member = int(np.flatnonzero(run.parents[-2] != np.arange(4))[0])
        assert search.replay(run, member)[-2]["slot"] != member
    schedule = search.replay(run, member)
    chosen = run.best if member is None else member
    assert [s["generation"] for s in schedule] == [0, 1, 2] and schedule[-1]["slot"] == chosen
    again = search.replay_fit(run, NET, (BLOBS.x, BLOBS.y), member=member, **SHARED)
    np.testing.assert_allclose(np.asarray(again.history["val_loss"]), search.lineage_history(run, member)["val_loss"],
                               rtol=1e-4, atol=1e-6)
    for a, b in zip(jax.tree.leaves(again.train_state.params), jax.tree.leaves(run.result.train_state.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b)[chosen], rtol=1e-4, atol=1e-5)


def test_replay_needs_the_learning_rate_written_into_the_optimizer_state():
    """A named optimizer keeps its rate in its state: with_learning_rate is what makes a continuation use a new one."""
    first = nnjax.fit(jax.random.key(0), NET, (BLOBS.x, BLOBS.y), epochs=1, learning_rate=0.01, **SHARED)
    ts = first.train_state
    moved = first._replace(train_state=ts._replace(opt_state=pb.with_learning_rate(ts.opt_state, 0.5)))
    leaves = jax.tree.leaves(moved.train_state.opt_state)
    assert any(np.isclose(float(np.asarray(v).ravel()[0]), 0.5) for v in leaves if np.ndim(v) == 0)
    fast = nnjax.fit(None, NET, (BLOBS.x, BLOBS.y), epochs=1, learning_rate=0.5, resume=moved, **SHARED)
    slow = nnjax.fit(None, NET, (BLOBS.x, BLOBS.y), epochs=1, learning_rate=0.5, resume=first, **SHARED)
    assert not np.allclose(np.asarray(fast.params[0]["w"]), np.asarray(slow.params[0]["w"]))


def _population_state(size):
    plan = nnjax.population.plan_population(jax.random.split(jax.random.key(3), size), NET, (BLOBS.x, BLOBS.y),
                                            learning_rate=np.linspace(0.01, 0.04, size), **SHARED, epochs=1)
    return plan.ts


def test_exploit_copies_the_whole_state_exactly():
    ts = _population_state(4)
    ts = ts._replace(params=jax.tree.map(lambda a: a + jnp.arange(4.0).reshape((4,) + (1,) * (a.ndim - 1)), ts.params))
    members = {"learning_rate": jnp.array([0.01, 0.02, 0.03, 0.04])}
    spec = pb.SearchSpec(1, 1, 1, (0.8, 1.2), 0.0, "val_loss", (("learning_rate", pb.LogUniform(1e-3, 1.0)),))
    score = jnp.array([0.1, 0.5, 0.9, 0.3])  # a loss: member 0 is best, member 2 worst
    new, out, parents = pb.exploit_explore(spec, jax.random.key(0), members, score, ts)
    assert np.asarray(parents).tolist() == [0, 1, 0, 3]
    for a, b in zip(jax.tree.leaves((out.params, out.state)), jax.tree.leaves((ts.params, ts.state))):
        np.testing.assert_array_equal(np.asarray(a)[2], np.asarray(b)[0])
        np.testing.assert_array_equal(np.asarray(a)[[0, 1, 3]], np.asarray(b)[[0, 1, 3]])
    ratio = float(new["learning_rate"][2]) / 0.01
    assert np.isclose(ratio, 0.8, rtol=1e-6) or np.isclose(ratio, 1.2, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(new["learning_rate"])[[0, 1, 3]], np.float32([0.01, 0.02, 0.04]))
    # the optimizer state holds the new rate; its other leaves are member 0's
    hyper = [s for s in jax.tree.leaves(out.opt_state, is_leaf=pb._is_state_with_rate) if pb._is_state_with_rate(s)]
    np.testing.assert_allclose(np.asarray(hyper[0].hyperparams["learning_rate"]), np.asarray(new["learning_rate"]))
    np.testing.assert_array_equal(np.asarray(hyper[0].count)[2], np.asarray(
        [s for s in jax.tree.leaves(ts.opt_state, is_leaf=pb._is_state_with_rate) if pb._is_state_with_rate(s)][0].count)[0])


def _fake_state(size):
    z = jnp.zeros((size,))
    return TrainState(z, z, z, z, z, z, z, z, z, z)


def test_perturbation_factors_are_drawn_evenly(seed):
    size = 400  # quantile 0.5: 200 replaced members, each perturbed
    members = {"learning_rate": jnp.full((size,), 0.1)}
    spec = pb.SearchSpec(1, 1, size // 2, (0.8, 1.2), 0.0, "loss", (("learning_rate", pb.LogUniform(1e-3, 1.0)),))
    score = jnp.arange(size, dtype=jnp.float32)
    ups = total = 0
    for i in range(5):
        new, _, parents = pb.exploit_explore(spec, jax.random.key(seed + i), members, score, _fake_state(size))
        copied = np.asarray(parents) != np.arange(size)
        ratio = np.asarray(new["learning_rate"])[copied] / 0.1
        assert np.all(np.isclose(ratio, 0.8, rtol=1e-6) | np.isclose(ratio, 1.2, rtol=1e-6))
        ups, total = ups + int(np.sum(np.isclose(ratio, 1.2, rtol=1e-6))), total + copied.sum()
    # 1000 fair draws: the share of 1.2 lies within 5 standard deviations (0.079) of a half
    assert total == 1000 and abs(ups / total - 0.5) < 5 * np.sqrt(0.25 / total)


def test_resampling_happens_at_its_rate_and_inside_the_space(seed):
    size = 400
    members = {"learning_rate": jnp.full((size,), 0.1), "dropout": jnp.full((size,), 0.5)}
    spec = pb.SearchSpec(1, 1, size // 2, (0.8, 1.2), 0.3, "loss",
                         (("learning_rate", pb.LogUniform(1e-3, 1e-2)), ("dropout", (0.1, 0.2))))
    new, _, parents = pb.exploit_explore(spec, jax.random.key(seed), members, jnp.arange(size, dtype=jnp.float32),
                                         _fake_state(size))
    copied = np.asarray(parents) != np.arange(size)
    lr = np.asarray(new["learning_rate"])[copied]
    fresh = (lr >= 1e-3) & (lr <= 1e-2)  # the perturbed values are 0.08 or 0.12: never in the space
    assert abs(fresh.mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / copied.sum())
    drop = np.asarray(new["dropout"])[copied]
    assert all(np.isclose(drop, v, rtol=1e-6).any() for v in (0.1, 0.2, 0.4, 0.6))
    assert np.all(np.isclose(drop[:, None], [0.1, 0.2, 0.4, 0.6], rtol=1e-6).any(axis=1))


@pytest.mark.parametrize("kwargs, message", [
    ({"members": 1}, "members: expected at least 2"),
    ({"quantile": 0.7}, "quantile: expected a fraction in (0, 0.5]"),
    ({"perturb": (0.8,)}, "perturb: expected two finite factors"),
    ({"resample_probability": 1.5}, "resample_probability: expected a probability"),
    ({"generations": 0}, "generations: expected an int >= 1"),
    ({"epochs": 3}, "epochs: not accepted by pbt"),
    ({"early_stopping": 2}, "early_stopping: expected None for pbt"),
    ({"metric": "val_r2"}, "metric: expected one of"),
    ({"space": {"momentum": [0.9]}}, "space: expected settings among"),
    ({"space": {}}, "space: expected a dict"),
])
def test_pbt_refuses_bad_arguments_in_one_line(kwargs, message):
    args = dict(members=4, generations=2, epochs_per_generation=1, space=SPACE)
    args.update(kwargs)
    space = args.pop("space")
    with pytest.raises((ValueError, TypeError)) as err:
        search.pbt(jax.random.key(0), NET, (BLOBS.x, BLOBS.y), space, **args, **SHARED)
    assert message in str(err.value) and "\n" not in str(err.value)


# --- the learning-rate range test -------------------------------------------------------------

def _regression(seed):
    """y = x w + noise with standard-normal features: the MSE's Hessian is 2 I, plain GD diverges above lr = 1."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((512, 4)).astype(np.float32)
    y = (x @ rng.standard_normal((4, 1)) + 0.1 * rng.standard_normal((512, 1))).astype(np.float32)
    return x, y


def test_lr_find_suggests_a_stable_rate_inside_its_band(seed):
    x, y = _regression(seed)
    net = nnjax.MLP((4, 1), output="identity")
    found = search.lr_find(jax.random.key(seed), net, (x, y), loss="mse", optimizer="sgd", batch_size=64,
                           steps=150, min_lr=1e-4, max_lr=10.0)
    assert found.losses.shape == (4, 150) and found.rates.shape == (150,)
    np.testing.assert_allclose(found.rates[[0, -1]], [1e-4, 10.0], rtol=1e-5)
    assert found.band[0] <= found.suggestion <= found.band[1]
    assert 1e-4 <= found.band[0] and found.band[1] <= 10.0
    assert found.band[1] / found.band[0] < 3  # the seeds agree
    # the known scale: stable below lr = 1 (Hessian 2 I), and not needlessly small
    assert 0.01 <= found.suggestion <= 0.5
    # diverged steps are cut: at lr = 10 the smoothed loss is gone
    assert np.all(np.isnan(found.smoothed[:, -1]))
    # the suggestion trains: a fit at it beats the minimum rate of the range
    good = nnjax.fit(jax.random.key(seed), net, (x, y), loss="mse", optimizer="sgd", batch_size=64, epochs=3,
                     learning_rate=found.suggestion)
    assert float(good.history["loss"][-1]) < 0.05


def test_smoothing_cuts_at_divergence():
    losses = np.array([[1.0, 0.9, 0.8, 0.7, 5.0, 50.0, 0.1]])
    out = lr_range.smooth(losses, beta=0.0)  # no averaging: the cut itself
    np.testing.assert_allclose(out[0, :4], [1.0, 0.9, 0.8, 0.7])
    assert np.all(np.isnan(out[0, 4:]))  # 5.0 > 4 x 0.7, and nothing after it counts
    np.testing.assert_allclose(lr_range.suggest(np.geomspace(1e-3, 1.0, 7), out), [np.geomspace(1e-3, 1.0, 7)[3] / 10])


def test_edges_of_the_range_are_told_apart():
    rates = np.geomspace(1e-3, 1.0, 20)
    falling = np.linspace(2.0, 0.1, 20)                       # still falling at max_lr, never diverged
    rising = np.concatenate([np.linspace(0.5, 1.9, 19), [np.nan]])   # lowest at the first step
    middle = np.concatenate([np.linspace(1.0, 0.2, 10), np.linspace(0.3, 0.7, 9), [np.nan]])
    high, low = lr_range.degenerate(np.stack([falling, rising, middle]))
    assert high.tolist() == [True, False, False] and low.tolist() == [False, True, False]
    assert lr_range.suggest(rates, falling[None], 1.0)[0] == rates[-1]  # what the warning is about


def test_a_range_that_never_diverges_warns_to_raise_max_lr(seed):
    x, y = _regression(seed)
    with pytest.warns(UserWarning, match=r"still fell at max_lr=0.05 .*raise max_lr") as caught:
        found = search.lr_find(jax.random.key(seed), nnjax.MLP((4, 1)), (x, y), loss="mse", optimizer="sgd",
                               batch_size=64, steps=40, min_lr=1e-3, max_lr=0.05)
    # far below the divergence edge (lr = 1): the loss falls to the last step, so the minimum is the range's end
    assert found.suggestion == pytest.approx(0.05 / 3, rel=0.25)  # the edge of the range over the back-off
    assert all("\n" not in str(w.message) for w in caught)


@pytest.mark.filterwarnings("ignore:lr_find. the loss of")  # separable blobs: no divergence (tested above)
def test_fit_learning_rate_auto_says_what_it_chose(caplog):
    with caplog.at_level(logging.WARNING, logger="nnjax"):
        out = nnjax.fit(jax.random.key(0), NET, (BLOBS.x, BLOBS.y), epochs=2, learning_rate="auto", **SHARED)
    (record,) = [r for r in caplog.records if "learning_rate='auto': chose" in r.getMessage()]
    chosen = float(record.getMessage().split("chose ")[1].split(" ")[0])
    rates = [v for v in jax.tree.leaves(out.train_state.opt_state) if np.ndim(v) == 0 and np.issubdtype(
        np.asarray(v).dtype, np.floating)]
    assert any(np.isclose(float(v), chosen, rtol=1e-2) for v in rates)


@pytest.mark.parametrize("kwargs, message", [
    ({"min_lr": 1.0, "max_lr": 0.1}, "max_lr: expected more than min_lr"),
    ({"min_lr": -1.0}, "min_lr: expected a finite number > 0"),
    ({"steps": 5}, "steps: expected at least 10"),
    ({"seeds": 0}, "seeds: expected an int >= 1"),
    ({"optimizer": nnjax.optim.make("sgd", 0.1)}, "optimizer: expected a name"),
])
def test_lr_find_refuses_bad_arguments_in_one_line(kwargs, message):
    args = dict(SHARED, steps=20)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError)) as err:
        search.lr_find(jax.random.key(0), NET, (BLOBS.x, BLOBS.y), **args)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_plot_lr_find(tmp_path):
    x, y = _regression(0)
    found = search.lr_find(jax.random.key(0), nnjax.MLP((4, 1)), (x, y), loss="mse", optimizer="sgd",
                           batch_size=64, steps=30, seeds=2)
    fig = nnjax.plots.plot_lr_find(found, path=tmp_path / "lr.png")
    assert fig.axes[0].get_xscale() == "log" and (tmp_path / "lr.png").stat().st_size > 0


def test_exploit_ranks_a_maximised_metric_upwards_and_nan_last():
    members = {"learning_rate": jnp.array([0.01, 0.02, 0.03, 0.04])}
    spec = pb.SearchSpec(1, 1, 1, (0.8, 1.2), 0.0, "val_accuracy", (("learning_rate", (0.01,)),))
    _, _, parents = pb.exploit_explore(spec, jax.random.key(0), members, jnp.array([0.5, 0.9, 0.7, 0.6]),
                                       _fake_state(4))
    assert np.asarray(parents).tolist() == [1, 1, 2, 3]  # accuracy: 0.9 is copied, 0.5 replaced
    spec = spec._replace(metric="val_loss")
    _, _, parents = pb.exploit_explore(spec, jax.random.key(0), members, jnp.array([0.5, jnp.nan, 0.7, 0.6]),
                                       _fake_state(4))
    assert np.asarray(parents).tolist() == [0, 0, 2, 3]  # a diverged member (NaN) is the worst


def test_cli_lr_auto_prints_its_choice_and_saves_a_number(tmp_path, capsys):
    import json

    from nnjax.cli import main

    code = main(["train", "--dataset", "iris", "--hidden", "8", "--epochs", "2", "--batch-size", "16", "--lr", "auto",
                 "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0
    (line,) = [s for s in err.splitlines() if s.startswith("--lr auto: chose ")]
    chosen = float(line.split("chose ")[1].split(" ")[0])
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["args"]["lr"] == chosen  # the run records the rate it trained with, not "auto"


def test_member_and_leaderboard_follow_the_lineage(run):
    board = run.leaderboard()
    assert [r["member"] for r in board][0] == run.best and sorted(r["member"] for r in board) == [0, 1, 2, 3]
    finals = [r["score"] for r in board]
    assert finals == sorted(finals)  # val_loss: lowest first
    for row in board:
        slots = [s["slot"] for s in search.replay(run, row["member"])]
        assert row["scores"] == [float(run.scores[g, s]) for g, s in enumerate(slots)] and row["epochs"] == 3
        assert row["learning_rate"] == float(run.settings["learning_rate"][-1, row["member"]])
    member = run.member()
    np.testing.assert_array_equal(member.history["val_loss"], search.lineage_history(run)["val_loss"])
    for a, b in zip(jax.tree.leaves(member.params), jax.tree.leaves(run.result.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b)[run.best])


def test_on_generation_reports_each_generation_in_order(run):
    # (test_pbt_is_deterministic_from_its_key compares the run without a callback: it changes nothing)
    assert [g for g, _ in HEARD] == [0, 1, 2]
    np.testing.assert_array_equal(np.stack([s for _, s in HEARD]), run.scores)


def _chosen(caplog):
    (record,) = [r for r in caplog.records if "learning_rate='auto': chose" in r.getMessage()]
    caplog.clear()
    return float(record.getMessage().split("chose ")[1].split(" ")[0])


def _rates(opt_state):
    """The learning rate(s) an optax.inject_hyperparams state holds."""
    return [np.asarray(node.hyperparams["learning_rate"]) for node in jax.tree.leaves(
        opt_state, is_leaf=lambda n: hasattr(n, "hyperparams")) if hasattr(node, "hyperparams")]


@pytest.mark.filterwarnings("ignore:lr_find. the loss of")  # separable blobs: no divergence (tested above)
def test_learning_rate_auto_in_options_and_in_a_population(caplog):
    options = nnjax.Options(epochs=1, learning_rate="auto", **SHARED)
    with caplog.at_level(logging.WARNING, logger="nnjax"):
        out = nnjax.fit(jax.random.key(0), NET, (BLOBS.x, BLOBS.y), options)
        chosen = _chosen(caplog)
        keys = jax.random.split(jax.random.key(1), 3)
        pop = nnjax.fit_population(keys, NET, (BLOBS.x, BLOBS.y), options, l2=[0.0, 1e-4, 1e-3])
        shared = _chosen(caplog)
    (rate,) = _rates(out.train_state.opt_state)
    assert np.isclose(float(rate), chosen, rtol=1e-2)
    # one rate for every member: the range test's with the first member's key, as lr_find gives it
    expected = search.lr_find(jax.random.fold_in(keys[0], 0x1F), NET, (BLOBS.x, BLOBS.y), options, l2=1e-4).suggestion
    (rates,) = _rates(pop.train_state.opt_state)
    np.testing.assert_allclose(rates, np.full(3, expected), rtol=1e-5)
    assert np.isclose(shared, expected, rtol=1e-2)
    with pytest.raises(ValueError, match=r"^learning_rate: expected a number here, got 'auto'; nnjax.fit") as err:
        options.build_optimizer()
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"^learning_rate: expected a number, a schedule or 'auto'"):
        nnjax.Options(epochs=1, learning_rate="fast", **SHARED)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore:lr_find. the loss of")  # separable blobs: no divergence (tested above)
def test_sklearn_learning_rate_init_auto_trains_at_the_range_tests_choice(caplog):
    from nnjax.sklearn import MLPClassifier
    with caplog.at_level(logging.WARNING, logger="nnjax"):
        clf = MLPClassifier((6,), learning_rate_init="auto", max_iter=3, random_state=0).fit(BLOBS.x, BLOBS.y)
        chosen = _chosen(caplog)
        assert np.isclose(clf.learning_rate_init_, chosen, rtol=1e-2)
        clf.partial_fit(BLOBS.x, BLOBS.y)  # keeps the rate found first: no second range test
        assert not [r for r in caplog.records if "chose" in r.getMessage()]
    assert clf.get_params()["learning_rate_init"] == "auto" and clf.score(BLOBS.x, BLOBS.y) > 0.5
    fixed = MLPClassifier((6,), learning_rate_init=0.01, max_iter=1, random_state=0).fit(BLOBS.x, BLOBS.y)
    assert fixed.learning_rate_init_ == 0.01


def test_the_back_off_is_the_optimizers_own():
    """The suggestion is the rate at the loss minimum over the optimizer table's range_backoff (SGD 3, Adam 10)."""
    x, y = _regression(0)
    net, args = nnjax.MLP((4, 1)), dict(loss="mse", optimizer="sgd", batch_size=64, steps=30, seeds=2)
    found = search.lr_find(jax.random.key(0), net, (x, y), **args)
    from nnjax._base.optimizers import OPTIMIZERS
    assert OPTIMIZERS["sgd"].range_backoff == 3 and OPTIMIZERS["adam"].range_backoff == 10
    at_minimum = found.rates[np.nanargmin(found.smoothed, axis=1)]
    np.testing.assert_allclose(found.suggestions, at_minimum / 3, rtol=1e-12)
    assert "minimum / 3," in found.rule
    cautious = search.lr_find(jax.random.key(0), net, (x, y), backoff=10, **args)
    np.testing.assert_allclose(cautious.suggestions, at_minimum / 10, rtol=1e-12)
    with pytest.raises(ValueError, match=r"^backoff: expected a finite factor >= 1, got 0.5$"):
        search.lr_find(jax.random.key(0), net, (x, y), backoff=0.5, **args)
