"""nnjax.load: a run directory or a checkpoint as a model, identical to the CLI, and clear refusals."""

import csv
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax import checkpoint, metrics
from nnjax.cli import main

TINY = ["--dataset", "iris", "--hidden", "8", "--epochs", "3", "--batch-size", "16", "--progress-every", "3"]


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    """A tiny iris run directory and the iris data written as a CSV with the training columns."""
    root = tmp_path_factory.mktemp("saved")
    assert main(["train", *TINY, "--out", str(root / "run"), "--quiet", "--no-plots"]) == 0
    iris = nnjax.data.load_dataset("iris")
    prep = json.loads((root / "run" / "preprocessing.json").read_text())
    with open(root / "iris.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow([*prep["feature_names"], prep["target"]])
        writer.writerows([*(f"{v:.6g}" for v in row), iris.target_names[c]] for row, c in zip(iris.x, iris.y))
    return root / "run", root / "iris.csv"


def _csv_rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def _features(path):
    rows = _csv_rows(path)
    return np.array([[float(r[k]) for k in r if k != "y"] for r in rows]), [r["y"] for r in rows]


def test_load_predicts_exactly_what_nnjax_predict_writes(iris_run, tmp_path, capsys):
    run_dir, data = iris_run
    assert main(["predict", str(run_dir), "--data", str(data), "--out", str(tmp_path / "pred.csv")]) == 0
    written = _csv_rows(tmp_path / "pred.csv")
    model = nnjax.load(run_dir)
    x, labels = _features(data)
    predicted, proba = model.predict(x), model.predict_proba(x)
    assert [r["prediction"] for r in written] == predicted.tolist()
    assert model.classes == ("setosa", "versicolor", "virginica")
    for j, name in enumerate(model.classes):
        # the written text reads back as the same float64, bit for bit
        assert [float(r[f"probability_{name}"]) for r in written] == proba[:, j].tolist()
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
    assert predicted.tolist() == [model.classes[i] for i in model.logits(x).argmax(1)]
    # The parameters are the checkpoint's, bit for bit.
    raw = checkpoint.restore(run_dir / "checkpoints")["params"]
    assert np.asarray(raw[0]["w"]).tobytes() == np.asarray(model.params[0]["w"]).tobytes()
    assert model.net == nnjax.MLP((4, 8, 3), output="softmax") and model.member == 0

    # model.evaluate gives what nnjax evaluate prints, labels given as names or indices.
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--data", str(data), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    scored = model.evaluate(x, labels)
    assert scored == {k: v for k, v in printed.items() if k not in ("run_dir", "data", "n")}
    assert model.evaluate(x, nnjax.data.load_dataset("iris").y)["confusion_matrix"] == \
        scored["confusion_matrix"]
    assert sum(map(sum, scored["confusion_matrix"])) == 150 and 0 <= scored["roc_auc"] <= 1


def test_the_run_holds_its_summary_and_train_prints_it(iris_run, tmp_path, capsys):
    run_dir, _ = iris_run
    model = nnjax.load(run_dir)
    text = (run_dir / "summary.txt").read_text()
    assert text == f"{model.summary()}\n" and "total parameters: 67 (trained)" in text  # 4*8+8 + 8*3+3
    metrics_file = json.loads((run_dir / "metrics.json").read_text())
    assert {"f1_macro", "roc_auc", "log_loss", "confusion_matrix", "recall_per_class"} <= set(metrics_file["test"])
    capsys.readouterr()
    assert main(["train", *TINY, "--out", str(tmp_path / "shown"), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(text) and "test accuracy" in out
    assert main(["train", *TINY, "--out", str(tmp_path / "json"), "--no-plots", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert len(lines) == 1 and summary["parameters"] == 67 and "test_f1_macro" in summary
    assert "test_confusion_matrix" not in summary  # lists stay in metrics.json


def _damage(run_dir, tmp_path, how):
    broken = tmp_path / how
    shutil.copytree(run_dir, broken)
    if how == "no_preprocessing":
        (broken / "preprocessing.json").unlink()
    elif how == "bad_config":
        (broken / "config.json").write_text("{ not json")
    elif how == "no_checkpoint":
        shutil.rmtree(broken / "checkpoints")
    elif how == "other_network":
        config = json.loads((broken / "config.json").read_text())
        config["args"]["hidden"] = "5"
        (broken / "config.json").write_text(json.dumps(config))
    return broken


@pytest.mark.parametrize("how, message", [
    ("no_preprocessing", "preprocessing.json: no such file"),
    ("bad_config", "config.json: .* is not valid JSON"),
    ("no_checkpoint", "expected a complete checkpoint in checkpoints/, got none"),
    ("other_network", r"expected a checkpoint of the network \(4, 5, 3\)'s params and state"),
])
def test_a_damaged_run_is_refused_by_load_and_by_the_cli(iris_run, tmp_path, capsys, how, message):
    broken = _damage(iris_run[0], tmp_path, how)
    with pytest.raises(nnjax.saved.LoadError, match=message):
        nnjax.load(broken)
    assert main(["evaluate", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnjax: error: DIR: ") and "Traceback" not in err


def test_foreign_paths_and_bad_members_are_refused(iris_run, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"expected a run directory written by nnjax train .* got neither "
                                         r"\(contents: \['notes.txt'\]\)"):
        nnjax.load(tmp_path)
    with pytest.raises(ValueError, match="path: expected a run or checkpoint directory, got .* \\(a file\\)"):
        nnjax.load(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="member: expected 0 or None for a single run, got 1"):
        nnjax.load(iris_run[0], member=1)
    with pytest.raises(ValueError, match="net: expected None for a run directory"):
        nnjax.load(iris_run[0], net=nnjax.MLP((4, 3)))
    assert main(["predict", str(iris_run[0]), "--member", "1"]) == 2
    assert "--member: expected 0 or None" in capsys.readouterr().err


def test_a_bare_checkpoint_needs_its_net_and_a_member_for_a_population(tmp_path):
    data = nnjax.data.load_dataset("xor")
    net = nnjax.MLP((2, 8, 1), activation="tanh", output="sigmoid")
    result = nnjax.fit(jax.random.key(0), net, (data.x, data.y), loss="binary_cross_entropy",
                       optimizer=optax.adam(0.05), epochs=5, batch_size=64)
    checkpoint.save(tmp_path / "one", result)
    with pytest.raises(ValueError, match="net: expected the nnjax.MLP of the checkpoint"):
        nnjax.load(tmp_path / "one")
    model = nnjax.load(tmp_path / "one", net=net)
    assert model.preprocessing is None and model.classes == ("0", "1")
    outputs = np.asarray(nnjax.predict(result.params, data.x, net))[:, 0]
    np.testing.assert_allclose(model.predict_proba(data.x)[:, 1], outputs, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(data.x), (outputs > 0.5).astype(int))
    assert model.summary().total_params == 2 * 8 + 8 + 8 + 1

    other = nnjax.init(jax.random.key(1), net)
    pair = {"params": jax.tree.map(lambda a, b: jnp.stack([a, b]), result.params, other),
            "state": nnjax.init_state(net)}
    checkpoint.save(tmp_path / "pair", pair, step=1)
    with pytest.raises(ValueError, match=r"member: expected a member in \[0, 2\) of the population"):
        nnjax.load(tmp_path / "pair", net=net)
    second = nnjax.load(tmp_path / "pair", net=net, member=1)
    assert np.asarray(second.params[0]["w"]).tobytes() == np.asarray(other[0]["w"]).tobytes()
    with pytest.raises(ValueError, match="checkpoint of the network"):
        nnjax.load(tmp_path / "one", net=nnjax.MLP((2, 4, 1)))


def test_a_regression_run_predicts_values_like_the_cli(tmp_path, rng):
    x = rng.standard_normal((60, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 4).astype(np.float32)
    np.savez(tmp_path / "lin.npz", x=x, y=y)
    run_dir = tmp_path / "reg"
    assert main(["train", "--data", str(tmp_path / "lin.npz"), "--hidden", "", "--epochs", "2", "--batch-size", "16",
                 "--out", str(run_dir), "--quiet", "--no-plots"]) == 0
    assert main(["predict", str(run_dir), "--data", str(tmp_path / "lin.npz"), "--out", str(tmp_path / "p.csv")]) == 0
    model = nnjax.load(run_dir)
    # the written text reads back as predict's float64 values, bit for bit (8 digits lost up to 5e-8)
    assert [float(r["y"]) for r in _csv_rows(tmp_path / "p.csv")] == model.predict(x).tolist()
    with pytest.raises(ValueError, match="predict_proba: expected a softmax or sigmoid classifier"):
        model.predict_proba(x)
    scored = model.evaluate(x, y)
    assert scored["rmse"] == pytest.approx(np.sqrt(np.mean((model.predict(x) - y) ** 2)), rel=1e-6)
