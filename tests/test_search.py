"""Successive halving and search spaces (nnjax.train.search)."""

import jax
import numpy as np
import pytest

import nnjax
from nnjax.train.search import parse_range, rungs, sample, successive_halving
from nnjax.train.sweeps import LogUniform, Uniform

SETTINGS = dict(loss="binary_cross_entropy", optimizer="sgd", batch_size=20)


@pytest.fixture(scope="module")
def blobs():
    d = nnjax.data.load_dataset("blobs")
    return d.x, d.y


def _search(blobs, key=0, **kw):
    return successive_halving(jax.random.key(key), nnjax.MLP((2, 8, 1), output="sigmoid"), blobs,
                              {"learning_rate": "1e-3:1", "l2": "0,1e-3"}, members=9, min_epochs=1, max_epochs=9,
                              metric="val_loss", validation=blobs, **SETTINGS, **kw)


@pytest.mark.parametrize("text", ["1e-1:1e-4", "a:b", "1:2:3", "log:0:1", "", "1,1", "nan:1"])
def test_bad_ranges_are_refused_in_one_line(text):
    with pytest.raises(ValueError) as e:
        parse_range("lr", text)
    assert str(e.value).startswith("lr: expected") and "\n" not in str(e.value)


@pytest.mark.parametrize("args", [(0, 9, 3), (3, 1, 3), (1, 9, 1), (1.5, 9, 3)])
def test_bad_budgets_are_refused_in_one_line(args):
    with pytest.raises(ValueError) as e:
        rungs(*args)
    assert "expected" in str(e.value) and "\n" not in str(e.value)


def test_random_sample_covers_the_log_range_uniformly_in_log():
    s = sample({"learning_rate": "1e-4:1"}, 2000, key=jax.random.key(1))["learning_rate"]
    u = (np.log10(s) + 4) / 4
    assert u.min() >= 0 and u.max() < 1
    # uniform on [0, 1): mean 1/2, sd of the mean ~ 0.0065
    assert abs(u.mean() - 0.5) < 0.03 and abs((u < 0.25).mean() - 0.25) < 0.04


def test_grid_sample_spans_the_range():
    g = sample({"learning_rate": LogUniform(1e-3, 1e-1), "dropout": Uniform(0.0, 0.5)}, 9, key=jax.random.key(0),
               method="grid")
    np.testing.assert_allclose(sorted(set(g["learning_rate"])), [1e-3, 1e-2, 1e-1])
    np.testing.assert_allclose(sorted(set(g["dropout"])), [0.0, 0.25, 0.5])


def test_same_key_same_leaderboard(blobs):
    a, b = _search(blobs), _search(blobs)
    assert a.leaderboard == b.leaderboard
    assert [r["epochs"] for r in a.leaderboard].count(9) == 1 and len(a.leaderboard) == 9


def test_members_per_program_changes_the_programs_not_the_search(blobs, seed):
    # one member per program (no padding), two (the last slice of every rung padded with a copy),
    # and one whole rung per program: the same survivors, scores equal to float rounding
    outs = [_search(blobs, key=seed, members_per_program=m) for m in (1, 2, None)]
    members = [[r["member"] for r in out.leaderboard] for out in outs]
    assert members[0] == members[1] == members[2]
    for out in outs[1:]:
        for r, q in zip(outs[0].leaderboard, out.leaderboard):
            np.testing.assert_allclose(q["scores"], r["scores"], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="^members_per_program: expected a positive integer"):
        _search(blobs, members_per_program=0)


def test_compacted_survivor_matches_an_uncompacted_run(blobs):
    out = _search(blobs)
    row = out.leaderboard[0]
    # the same member trained without halving: one fit with its key and settings for all 9 epochs
    ref = nnjax.fit(jax.random.fold_in(jax.random.key(0), 1 + row["seed"]), nnjax.MLP((2, 8, 1), output="sigmoid"),
                    blobs, learning_rate=row["learning_rate"], l2=row["l2"], epochs=9, validation=blobs, **SETTINGS)
    np.testing.assert_allclose(out.best.history["val_loss"], ref.history["val_loss"], rtol=1e-4, atol=1e-6)
    for a, b in zip(jax.tree.leaves(out.best.params), jax.tree.leaves(ref.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(jax.random.key_data(out.best.key), jax.random.key_data(ref.key))


def test_a_search_compiles_one_training_program(blobs, caplog):
    from nnjax.train.search import halving

    # rungs of 9, 3 and 1 members for 1, 2 and 6 epochs: one program of 2 members for 1 epoch
    assert halving.programs([9, 3, 1], [1, 3, 9], 2) == [(2, 1)]
    net, space = nnjax.MLP((2, 5, 1), output="sigmoid"), {"learning_rate": "1e-3:1", "l2": "0,1e-3"}
    jax.clear_caches()
    with jax.log_compiles(True), caplog.at_level("WARNING"):
        out = successive_halving(jax.random.key(0), net, blobs, space, members=9, min_epochs=1, max_epochs=9,
                                 metric="val_loss", validation=blobs, members_per_program=2, **SETTINGS)
    compiled = [r.getMessage() for r in caplog.records if "_fit_members_traced" in r.getMessage()
                and "compil" in r.getMessage().lower() and "Finished" in r.getMessage()]
    assert len(out.leaderboard) == 9 and sorted(r["epochs"] for r in out.leaderboard) == [1] * 6 + [3, 3, 9]
    assert len(compiled) == 1, compiled


def test_resume_after_a_rung_is_bit_for_bit(blobs, tmp_path):
    whole = _search(blobs)

    def interrupt_after_first_rung(rung, *_):
        if rung == 1:  # the first rung is saved; the second is lost
            raise KeyboardInterrupt

    run = lambda **kw: _search(blobs, directory=tmp_path, **kw)
    with pytest.raises(KeyboardInterrupt):
        run(on_rung=interrupt_after_first_rung)
    resumed = run()
    assert resumed.leaderboard == whole.leaderboard
    strip = lambda r: jax.tree.leaves(r._replace(key=None))  # typed keys compared apart
    for a, b in zip(strip(resumed.best), strip(whole.best)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(jax.random.key_data(resumed.best.key), jax.random.key_data(whole.best.key))
    with pytest.raises(ValueError, match="^directory: expected"):
        successive_halving(jax.random.key(0), nnjax.MLP((2, 8, 1), output="sigmoid"), blobs,
                           {"learning_rate": "1e-3:1"}, members=9, min_epochs=1, max_epochs=9,
                           validation=blobs, directory=tmp_path, **SETTINGS)
    with pytest.raises(ValueError, match="^directory: expected"):
        run(members_per_program=3)  # another slicing is another rounding: not this search


def _cli(argv):
    from nnjax.cli import main
    return main([str(a) for a in argv])


@pytest.mark.parametrize("flags, message", [
    (["--lr", "1e-1:1e-4"], "--lr: expected low < high"),
    (["--l2", "a,b"], "--l2: expected a number"),
    (["--method", "bayes"], "--method: expected one of halving, grid, random"),
    (["--min-epochs", "9", "--epochs", "3"], "--min-epochs: expected at most"),
    (["--eta", "1"], "--eta: expected an integer >= 2"),
    (["--method", "pbt", "--seeds", "2"], "--seeds: expected 1 with --method pbt"),
    (["--method", "pbt", "--members", "1"], "--members: expected at least 2"),
    (["--method", "pbt", "--epochs", "6", "--generation-epochs", "4"],
     "--generation-epochs: expected a positive divisor"),
    (["--method", "pbt", "--quantile", "0.7"], "--quantile: expected a fraction in (0, 0.5]"),
    (["--method", "pbt", "--lr", "0.1"], "--lr: expected a range to explore with --method pbt"),
])
def test_tune_refuses_bad_ranges_and_budgets_in_one_line(flags, message, tmp_path, capsys):
    assert _cli(["tune", "--dataset", "xor", "--out", tmp_path / "run", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_tune_best_run_predicts_as_nnjax_predict_does(tmp_path, capsys, monkeypatch):
    found = _capture(monkeypatch, "halving")
    run = tmp_path / "run"
    assert _cli(["tune", "--dataset", "blobs", "--hidden", "4", "--epochs", "3", "--members", "3", "--batch-size", "16",
                 "--lr", "1e-2:1e-1", "--out", run]) == 0
    assert "rung 2/2: 1 members at 3 epochs; best val_accuracy" in capsys.readouterr().out
    import json
    rows = json.loads((run / "leaderboard.json").read_text())
    assert (run / "validation_curves.png").stat().st_size and (run / "score_vs_settings.png").stat().st_size
    assert len(rows) == 3 and rows[0]["epochs"] == 3 and (run / "leaderboard.csv").read_text().count("\n") == 4
    assert _cli(["predict", run / "best", "--dataset", "blobs", "--out", tmp_path / "p.csv"]) == 0
    model = nnjax.load(run / "best")
    x = nnjax.data.load_dataset("blobs").x
    import csv
    with open(tmp_path / "p.csv") as f:
        rows = list(csv.DictReader(f))
    predicted = np.asarray(model.predict(x)).ravel()
    column = [k for k in rows[0] if "predict" in k or k in ("y", "label", "class")][0]
    assert len(rows) == len(x)
    np.testing.assert_array_equal(np.asarray([float(r[column]) for r in rows]), predicted.astype(float))
    # best/ is the winning member itself (its own weights, not a retraining), with its settings
    (out,) = found
    config = json.loads((run / "best" / "config.json").read_text())["args"]
    assert config["lr"] == out.leaderboard[0]["learning_rate"] and "method" not in config and config["epochs"] == 3
    _check_best_is_the_member(run, out.best, tmp_path)


def _capture(monkeypatch, method):
    """Runs the real search of ``method`` and keeps what it found (the member the search trained)."""
    from nnjax.cli import _tune
    found, real = [], _tune.METHODS[method]

    def keep(*args, **kwargs):
        found.append(real(*args, **kwargs))
        return found[-1]

    monkeypatch.setitem(_tune.METHODS, method, keep)
    return found


def _check_best_is_the_member(run, member, tmp_path):
    """best/ holds the member's own weights: its predictions are the member's, and nnjax predict opens it."""
    model = nnjax.load(run / "best")
    x = nnjax.data.load_dataset("blobs").x
    own = model._replace(params=member.params, state=member.state)
    np.testing.assert_allclose(model.predict_proba(x), own.predict_proba(x), rtol=1e-6, atol=1e-7)
    for a, b in zip(jax.tree.leaves(model.params), jax.tree.leaves(member.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert _cli(["predict", run / "best", "--dataset", "blobs", "--out", tmp_path / "best.csv"]) == 0
    assert _cli(["evaluate", run / "best"]) == 0


def test_tune_pbt_writes_leaderboard_schedules_and_the_best_member(tmp_path, monkeypatch, capsys):
    found = _capture(monkeypatch, "pbt")
    run = tmp_path / "run"
    assert _cli(["tune", "--dataset", "blobs", "--hidden", "4", "--epochs", "4", "--generation-epochs", "2",
                 "--members", "4", "--batch-size", "16", "--method", "pbt", "--lr", "1e-2:1e-1", "--out", run]) == 0
    printed = capsys.readouterr().out
    assert "generation 1/2: best val_accuracy" in printed and "generation 2/2: best val_accuracy" in printed
    (out,) = found
    import json
    rows = json.loads((run / "leaderboard.json").read_text())
    assert len(rows) == 4 and all(r["epochs"] == 4 and len(r["scores"]) == 2 for r in rows)
    assert rows[0]["member"] == out.pbt.best and rows[0]["score"] == max(r["score"] for r in rows)
    assert all(r["l2"] == 0.0 and r["dropout"] == 0.0 for r in rows)  # single values are fixed, not explored
    assert set(out.pbt.settings) == {"learning_rate"}
    assert (run / "schedules.png").stat().st_size and (run / "validation_curves.png").stat().st_size
    _check_best_is_the_member(run, out.best, tmp_path)


def test_one_set_of_range_records_for_every_sampler():
    from nnjax.train import search, sweeps
    from nnjax.train.search import population_based as pb
    assert pb.LogUniform is sweeps.LogUniform is search.LogUniform and search.Choice is sweeps.Choice
    key = jax.random.key(3)
    for r in (LogUniform(1e-4, 1e-1), Uniform(0.0, 0.5), sweeps.Choice((0.0, 1e-4, 1e-3))):
        # the host's draw (random search, halving) and the program's (PBT's resample) are one draw
        host = sweeps.draw(key, r, (64,))
        program = jax.jit(lambda k, r=r: sweeps.draw(k, r, (64,), traced=True))(key)
        np.testing.assert_allclose(np.asarray(program), host, rtol=1e-5)
    assert parse_range("l2", "0,1e-4") == sweeps.as_range("l2", [0, 1e-4]) == sweeps.Choice((0.0, 1e-4))
    assert sweeps.as_range("dropout", 0.1) == sweeps.Choice((0.1,))
    drawn = sample({"learning_rate": "1e-3:1e-1", "l2": [0.0, 1e-4]}, 5, key=key)
    direct = sweeps.random_search(5, key=key, learning_rate=LogUniform(1e-3, 1e-1), l2=sweeps.Choice((0.0, 1e-4)))
    for name in direct:
        np.testing.assert_array_equal(drawn[name], direct[name])
    for value, message in ((LogUniform(0.0, 1.0), "lr: expected 0 < low < high (log-uniform)"),
                           (Uniform(1.0, 1.0), "lr: expected finite low < high"),
                           ([], "lr: expected a non-empty list of finite numbers"), ("x", "lr: expected a number")):
        with pytest.raises(ValueError) as err:
            sweeps.as_range("lr", value)
        assert str(err.value).startswith(message) and "\n" not in str(err.value)
