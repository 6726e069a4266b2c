"""The nnjax command line: runs on disk, checkpoints and resuming, evaluate/predict, bad input.

Most runs go through ``main(argv)`` in this process, with one tiny configuration so that the
training program compiles once; three run as real subprocesses: the default digits run, a run
killed in the middle of a checkpoint save, and a bad input.
"""

import csv
import json
import os
import pathlib
import resource
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest
from sklearn.metrics import r2_score

import nnjax
from nnjax import checkpoint, runs
from nnjax.io import run_history
from nnjax.cli import main

REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
TINY = ["--dataset", "iris", "--hidden", "8", "--epochs", "4", "--batch-size", "16", "--checkpoint-every", "2",
        "--progress-every", "2"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def final_tree(run_dir):
    """The newest checkpoint, its history whole (the run's history segments and the checkpoint's own epochs)."""
    ckpt = pathlib.Path(run_dir) / "checkpoints"
    tree = checkpoint.restore(ckpt)
    tree["history"] = run_history.whole(run_dir, tree["history"], checkpoint.restore_metadata(ckpt))
    return tree


def assert_trees_bitwise_equal(a, b):
    flat_a, tree_a = jax.tree_util.tree_flatten_with_path(a)
    flat_b, tree_b = jax.tree_util.tree_flatten_with_path(b)
    assert tree_a == tree_b
    for (path, x), (_, y) in zip(flat_a, flat_b):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), f"{jax.tree_util.keystr(path)} differs"


def assert_png(path):
    data = pathlib.Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 10_000, f"{path} is not a PNG of non-trivial size"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny iris run: (run directory, the JSON summary)."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    code = main(["train", *TINY, "--out", str(out), "--json", "--quiet"])
    assert code == 0
    return out


def test_run_directory_holds_everything_and_metrics_are_right(tiny):
    files = {p.name for p in tiny.iterdir()}
    assert {"config.json", "preprocessing.json", "history.csv", "history.json", "metrics.json", "diagnosis.json",
            "diagnosis.txt", "loss.png", "gradient_norms.png", "confusion_matrix.png", "checkpoints"} <= files
    for png in ("loss.png", "gradient_norms.png", "confusion_matrix.png"):
        assert_png(tiny / png)
    assert checkpoint.steps(tiny / "checkpoints") == [2, 4]  # every 2 epochs and at the end
    history = json.loads((tiny / "history.json").read_text())
    with open(tiny / "history.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    np.testing.assert_allclose([float(r["val_loss"]) for r in rows], history["val_loss"], rtol=1e-7)
    np.testing.assert_allclose([float(r["layer_grad_norm_2"]) for r in rows],
                               np.asarray(history["layer_grad_norm"])[:, 1], rtol=1e-7)
    assert json.loads((tiny / "diagnosis.json").read_text())["verdict"] in ("healthy", "vanishing", "exploding")

    # An independent float64 NumPy forward pass on the test split gives the recorded metrics.
    iris = nnjax.data.load_dataset("iris")
    (x_tr, _), _, (x_te, y_te) = nnjax.data.split(0, iris.x, iris.y, fractions=[0.7, 0.1, 0.2], stratify=iris.y)
    prep = json.loads((tiny / "preprocessing.json").read_text())
    np.testing.assert_allclose(prep["mean"], x_tr.astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_allclose(prep["scale"], x_tr.astype(np.float64).std(0), rtol=1e-6)
    params = final_tree(tiny)["params"]
    w1, b1, w2, b2 = (np.asarray(params[i][k], np.float64) for i in (0, 1) for k in ("w", "b"))
    z = (x_te - x_tr.mean(0)) / x_tr.std(0)
    logits = np.maximum(z @ w1 + b1, 0) @ w2 + b2
    log_p = logits - logits.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    metrics = json.loads((tiny / "metrics.json").read_text())
    assert np.sum(logits.argmax(1) != y_te) == pytest.approx(len(y_te) * (1 - metrics["test"]["accuracy"]), abs=1)
    assert metrics["test"]["loss"] == pytest.approx(-np.mean(log_p[np.arange(len(y_te)), y_te]), rel=1e-4)
    assert metrics["epochs_run"] == 4 and metrics["best_member"] == 0


def test_json_summary_is_the_last_line_and_matches_metrics(tiny, tmp_path, capsys):
    code, out, err = run(capsys, "train", "--config", str(tiny / "config.json"), "--out", str(tmp_path / "again"),
                         "--progress-every", "2", "--json")
    assert code == 0 and len(out.strip().splitlines()) == 1
    summary = last_json(out)
    metrics = json.loads((tiny / "metrics.json").read_text())
    assert summary["test_accuracy"] == metrics["test"]["accuracy"]
    assert summary["validation_loss"] == metrics["validation"]["loss"]
    assert summary["sizes"] == [4, 8, 3] and summary["epochs_run"] == 4
    assert "nnjax train" in err and "val_accuracy=" in err  # the progress bar, on stderr
    # --config reproduces the run exactly.
    assert_trees_bitwise_equal(final_tree(tmp_path / "again"), final_tree(tiny))


def test_human_summary_and_quiet(tiny, tmp_path, capsys):
    code, out, err = run(capsys, "train", *TINY, "--out", str(tmp_path / "a"), "--no-plots")
    assert code == 0 and "test accuracy" in out and "run directory:" in out
    assert not list((tmp_path / "a").glob("*.png"))
    code, out, err = run(capsys, "train", *TINY, "--out", str(tmp_path / "b"), "--quiet")
    assert code == 0 and out == "" and err == ""


def test_resume_continues_bit_for_bit(tiny, tmp_path, capsys):
    short = tmp_path / "short"
    assert run(capsys, "train", *TINY, "--epochs", "2", "--out", str(short), "--quiet")[0] == 0
    assert checkpoint.steps(short / "checkpoints") == [2]
    code, out, err = run(capsys, "train", "--resume", str(short), "--epochs", "4", "--progress-every", "2", "--quiet")
    assert code == 0
    assert_trees_bitwise_equal(final_tree(short), final_tree(tiny))
    tested = [json.loads((d / "metrics.json").read_text())["test"] for d in (short, tiny)]
    assert tested[0] == tested[1]
    # A finished run has nothing left to do; its settings cannot change on resume.
    assert run(capsys, "train", "--resume", str(short), "--quiet")[0] == 0
    code, _, err = run(capsys, "train", "--resume", str(short), "--lr", "0.5")
    assert code == 2 and "--lr" in err


_KILL_AT_SECOND_SAVE = textwrap.dedent(
    """
    import os, signal, sys
    from orbax.checkpoint._src.path import atomicity  # orbax's commit step: rename tmp -> final

    original = atomicity.AtomicRenameTemporaryPath.finalize

    async def finalize(self, *args, **kwargs):
        if self.get_final().name == "4":  # everything of epoch 4 written, the commit not yet done
            os.kill(os.getpid(), signal.SIGKILL)
        return await original(self, *args, **kwargs)

    atomicity.AtomicRenameTemporaryPath.finalize = finalize
    from nnjax.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def test_kill_during_a_checkpoint_save_then_resume(tiny, tmp_path, capsys):
    out = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", _KILL_AT_SECOND_SAVE, "train", *TINY, "--out", str(out), "--quiet"],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr
    assert checkpoint.steps(out / "checkpoints") == [2]  # the half-saved epoch 4 is not a checkpoint
    assert any("tmp" in p.name for p in (out / "checkpoints").iterdir())
    assert not (out / "metrics.json").exists()
    assert run(capsys, "train", "--resume", str(out), "--progress-every", "2", "--quiet")[0] == 0
    assert checkpoint.steps(out / "checkpoints") == [2, 4]
    assert_trees_bitwise_equal(final_tree(out), final_tree(tiny))


def _blobs_csv(path, rng):
    """150 rows, 4 features, 3 balanced classes: the shapes of iris, so TINY's program is reused."""
    centres = {"red": (0, 0, 0, 1), "green": (3, 0, 3, 0), "blue": (0, 3, -3, 0)}
    labels = rng.permutation(np.repeat(list(centres), 50))
    x = np.array([centres[c] for c in labels]) + rng.standard_normal((150, 4))
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["height", "colour", "width", "depth", "weight"])  # the target between features
        for row, label in zip(x, labels):
            writer.writerow([f"{row[0]:.5f}", label, *(f"{v:.5f}" for v in row[1:])])
    return x, labels


def test_csv_run_then_evaluate_and_predict_a_file_with_columns_reordered(tmp_path, rng, capsys):
    x, labels = _blobs_csv(tmp_path / "blobs.csv", rng)
    out = tmp_path / "csv"
    code, stdout, _ = run(capsys, "train", *TINY, "--data", str(tmp_path / "blobs.csv"), "--target", "colour",
                          "--out", str(out), "--json", "--quiet")
    assert code == 0
    summary = last_json(stdout)
    assert summary["sizes"] == [4, 8, 3] and summary["data"].endswith("blobs.csv")
    prep = json.loads((out / "preprocessing.json").read_text())
    assert prep["feature_names"] == ["height", "width", "depth", "weight"]
    assert prep["class_names"] == ["blue", "green", "red"]
    config = json.loads((out / "config.json").read_text())
    assert config["args"]["data"] == str((tmp_path / "blobs.csv").resolve())  # usable from any folder
    assert len(config["data"]["sha256"]) == 64

    order = [3, 0, 4, 2, 1]
    with open(tmp_path / "blobs.csv", newline="") as stream:
        table = list(csv.reader(stream))
    with open(tmp_path / "shuffled.csv", "w", newline="") as stream:
        csv.writer(stream).writerows([[row[j] for j in order] for row in table])
    code, stdout, _ = run(capsys, "evaluate", str(out), "--data", str(tmp_path / "shuffled.csv"), "--json")
    assert code == 0
    scored = last_json(stdout)
    assert scored["n"] == len(labels)
    code, _, _ = run(capsys, "predict", str(out), "--data", str(tmp_path / "shuffled.csv"), "--out",
                     str(tmp_path / "pred.csv"))
    assert code == 0
    with open(tmp_path / "pred.csv", newline="") as stream:
        predictions = list(csv.DictReader(stream))
    assert len(predictions) == len(labels) and {p["prediction"] for p in predictions} <= {"red", "green", "blue"}
    hits = np.mean([p["prediction"] == label for p, label in zip(predictions, labels)])
    assert scored["accuracy"] == pytest.approx(hits)
    for p in predictions:
        probabilities = [float(p[f"probability_{c}"]) for c in ("blue", "green", "red")]
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
        assert p["prediction"] == ("blue", "green", "red")[int(np.argmax(probabilities))]
    with open(tmp_path / "fewer.csv", "w", newline="") as stream:
        csv.writer(stream).writerows([row[:3] for row in table])
    code, _, err = run(capsys, "predict", str(out), "--data", str(tmp_path / "fewer.csv"))
    assert code == 2 and "lacks the feature columns ['depth', 'weight']" in err


def test_population_regression_from_npz(tmp_path, rng, capsys):
    x = rng.standard_normal((150, 5)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 10 + 0.1 * rng.standard_normal(150)).astype(np.float32)
    np.savez(tmp_path / "lin.npz", x=x, y=y)
    out = tmp_path / "reg"
    code, stdout, _ = run(capsys, "train", "--data", str(tmp_path / "lin.npz"), "--seeds", "3", "--hidden", "",
                          "--epochs", "6", "--lr", "0.01", "--batch-size", "16", "--progress-every", "3",
                          "--checkpoint-every", "3", "--out", str(out), "--json", "--quiet")
    assert code == 0
    summary = last_json(stdout)
    assert summary["task"] == "regression" and summary["loss"] == "mse" and summary["seeds"] == 3
    history = json.loads((out / "history.json").read_text())
    val_loss = np.asarray(history["val_loss"], np.float64)
    assert val_loss.shape == (3, 6)
    # The newest checkpoint holds epochs 3-5 of every member; the one segment before it, epochs 0-2.
    ckpt = out / "checkpoints"
    tail = checkpoint.restore(ckpt)["history"]
    assert np.shape(tail["val_loss"]) == (3, 3) and checkpoint.steps(ckpt) == [3, 6]
    whole = run_history.whole(out, tail, checkpoint.restore_metadata(ckpt), axis=1)
    np.testing.assert_array_equal(whole["val_loss"], val_loss.astype(np.float32))
    assert summary["best_member"] == int(np.argmin(val_loss[:, -1]))
    metrics = json.loads((out / "metrics.json").read_text())
    members = [m["test"]["r2"] for m in metrics["members"]]
    assert summary["test_r2"] == members[summary["best_member"]]
    assert summary["test_r2_mean"] == pytest.approx(np.mean(members))
    with open(out / "history.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 18 and sorted({r["member"] for r in rows}) == ["0", "1", "2"]
    assert (out / "loss.png").exists() and not (out / "confusion_matrix.png").exists()

    code, stdout, _ = run(capsys, "evaluate", str(out), "--data", str(tmp_path / "lin.npz"), "--json")
    scored = last_json(stdout)
    code, _, _ = run(capsys, "predict", str(out), "--data", str(tmp_path / "lin.npz"), "--out", str(tmp_path / "p.csv"))
    assert code == 0
    predicted = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)
    assert scored["r2"] == pytest.approx(r2_score(y, predicted), abs=1e-5)
    assert scored["rmse"] == pytest.approx(np.sqrt(np.mean((predicted - y) ** 2)), rel=1e-4)


def test_evaluate_defaults_to_the_test_split_and_checks_features(tiny, tmp_path, capsys):
    code, out, _ = run(capsys, "evaluate", str(tiny), "--json")
    assert code == 0
    metrics = json.loads((tiny / "metrics.json").read_text())
    assert last_json(out)["accuracy"] == metrics["test"]["accuracy"]
    code, out, _ = run(capsys, "predict", str(tiny), "--dataset", "iris")
    assert code == 0 and len(out.strip().splitlines()) == 1 + 150
    np.savez(tmp_path / "five.npz", x=np.zeros((4, 5), np.float32), y=np.zeros(4))
    code, _, err = run(capsys, "evaluate", str(tiny), "--data", str(tmp_path / "five.npz"), "--target", "y")
    assert code == 2 and "trained on 4 features, got 5" in err


def test_preprocessing_encodes_targets_for_each_loss_and_decodes_outputs(rng):
    x = rng.normal(5.0, 2.0, size=(40, 3)).astype(np.float32)
    labels = rng.integers(0, 2, size=40)
    kw = dict(task="classification", feature_names=("a", "b", "c"), class_names=("0.0", "1.0"))
    softmax = runs.Preprocessing.fit(x, labels, loss="softmax_cross_entropy", **kw)
    np.testing.assert_allclose(softmax.inputs(x).mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(softmax.inputs(x).std(0), 1, rtol=1e-5)
    logits = rng.standard_normal((40, 2))
    np.testing.assert_array_equal(softmax.decode(logits), logits.argmax(1))
    np.testing.assert_allclose(softmax.probabilities(logits).sum(1), 1.0)
    bce = runs.Preprocessing.fit(x, labels, loss="binary_cross_entropy", **kw)
    assert bce.n_outputs == 1 and bce.targets(labels).tolist() == labels.astype(float).tolist()
    np.testing.assert_array_equal(bce.decode(logits[:, :1]), (logits[:, 0] > 0).astype(int))
    hinge = runs.Preprocessing.fit(x, labels, loss="hinge", **kw)
    assert hinge.targets(labels).tolist() == (2.0 * labels - 1).tolist()
    assert softmax.class_indices(["1", "0.0", 1.0], "y").tolist() == [1, 0, 1]  # names or numbers
    with pytest.raises(ValueError, match="row 1 has class '2', expected one of the training classes"):
        softmax.class_indices(["2"], "y")
    y = rng.normal(100.0, 15.0, size=40)
    reg = runs.Preprocessing.fit(x, y, task="regression", loss="mse", feature_names=("a", "b", "c"))
    np.testing.assert_allclose(reg.targets(y).mean(), 0, atol=1e-5)
    np.testing.assert_allclose(reg.decode(reg.targets(y)[:, None]), y, rtol=1e-5)  # round trip
    with pytest.raises(ValueError, match="expected 3 columns like the training data"):
        reg.inputs(x[:, :2])


def test_help_explains_every_flag_with_its_default(capsys):
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0
    for flag in ("--dataset", "--data", "--target", "--hidden", "--activation", "--init", "--output", "--loss",
                 "--optimizer", "--lr", "--schedule", "--epochs", "--batch-size", "--dropout", "--l1", "--l2",
                 "--clip-norm", "--batch-norm", "--residual", "--early-stopping", "--validation-fraction",
                 "--seeds", "--seed", "--out", "--resume", "--quiet", "--json"):
        assert f"{flag} " in out or f"{flag}\n" in out, flag
    assert "(default: digits)" in out and "(default: 40)" in out


def _write(path, text):
    path.write_text(textwrap.dedent(text).lstrip())
    return str(path)


BAD = {
    "missing file": (["--data", "{tmp}/nope.csv", "--target", "y"], "no such file"),
    "non-numeric column": (["--data", "text.csv", "--target", "y"], "is not numeric"),
    "NaN": (["--data", "nan.csv", "--target", "y"], "non-finite"),
    "empty cell": (["--data", "empty.csv", "--target", "y"], "missing value"),
    "unknown target column": (["--data", "ok.csv", "--target", "label"], "target: expected one of the columns"),
    "no target for a CSV": (["--data", "ok.csv"], "--target: expected the name"),
    "unknown dataset": (["--dataset", "mnist"], "expected one of"),
    "batch size 0": (["--batch-size", "0"], "--batch-size: expected an integer >= 1, got 0"),
    "batch size > data": (["--batch-size", "1000"], "--batch-size: expected at most the 105 training examples"),
    "epochs 0": (["--epochs", "0"], "--epochs: expected an integer >= 1, got 0"),
    "negative epochs": (["--epochs", "-3"], "--epochs: expected an integer >= 1, got -3"),
    "hidden size 0": (["--hidden", "8,0"], "--hidden: expected layer widths >= 1, got 0"),
    "dropout 1": (["--dropout", "1.0"], "--dropout: expected rates in [0, 1)"),
    "dropout < 0": (["--dropout", "-0.1"], "--dropout: expected rates in [0, 1)"),
    "not a number": (["--epochs", "ten"], "invalid int value: 'ten'"),
    "unknown flag": (["--learning-rate", "0.1"], "unrecognized arguments"),
    "unknown loss": (["--loss", "l7"], "unknown loss 'l7'"),
    "fractions": (["--test-fraction", "0.6", "--validation-fraction", "0.5"], "a sum below 1"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_exit_2_and_nothing_on_disk(case, tmp_path, capsys):
    _write(tmp_path / "ok.csv", "a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    _write(tmp_path / "text.csv", "a,b,y\n1,x,0\n3,4,1\n")
    _write(tmp_path / "nan.csv", "a,b,y\n1,nan,0\n3,4,1\n")
    _write(tmp_path / "empty.csv", "a,b,y\n1,,0\n3,4,1\n")
    flags, expected = BAD[case]
    flags = [f.replace("{tmp}", str(tmp_path)) if "{tmp}" in f else (str(tmp_path / f) if f.endswith(".csv") else f)
             for f in flags]
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "train", "--dataset", "iris", *flags, "--out", str(out), "--quiet")
    assert code == 2
    assert err.startswith("nnjax: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert expected in err, err
    assert not out.exists()


def test_out_directory_that_is_not_empty_is_refused(tiny, tmp_path, capsys):
    code, _, err = run(capsys, "train", *TINY, "--out", str(tiny))
    assert code == 2 and "exists and is not empty" in err and "--resume" in err


def test_no_matplotlib_still_writes_the_run(tmp_path, capsys, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = run(capsys, "train", *TINY, "--out", str(tmp_path / "r"), "--quiet")
    assert code == 0 and "no plots written" in err and "nnjax[plots]" in err
    assert (tmp_path / "r" / "metrics.json").exists() and not list((tmp_path / "r").glob("*.png"))


def test_console_entry_point_reports_bad_input_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nnjax", "train", "--epochs", "0"], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "nnjax: error: --epochs: expected an integer >= 1, got 0\n"
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_default_run_reaches_95_percent_on_digits_within_a_minute_of_cpu(tmp_path):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nnjax", "train", "--json"], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"default run: {wall:.1f} s wall, {cpu:.1f} s CPU")
    assert proc.returncode == 0, proc.stderr
    summary = last_json(proc.stdout)
    assert summary["data"] == "digits" and summary["sizes"] == [64, 128, 64, 10]
    assert summary["test_accuracy"] >= 0.95
    run_dir = tmp_path / summary["run_dir"]
    assert run_dir.parent == tmp_path / "runs"
    for png in ("loss.png", "gradient_norms.png", "confusion_matrix.png"):
        assert_png(run_dir / png)
    # Under a minute on 2 cores: the CPU time it used (load-independent) must fit in 60 s.
    assert cpu < 60, f"the default run used {cpu:.1f} s of CPU"


def test_console_script_is_main_then_an_exit_with_its_code(monkeypatch, capsys):
    import gc
    import importlib.metadata

    from nnjax import cli

    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert scripts["nnjax"].load() is cli.run
    monkeypatch.setattr(sys, "argv", ["nnjax", "train", "--epochs", "0"])
    try:
        with pytest.raises(SystemExit) as exit_:
            cli.run()
    finally:
        gc.unfreeze()  # run() freezes the heap for the process's exit; this test process goes on
    assert exit_.value.code == 2
    assert "--epochs" in capsys.readouterr().err
