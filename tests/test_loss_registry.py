"""The loss registry's contract: every registered loss, through every place that reads it.

One parametrised test per step, each over every entry of ``nnjax.losses.REGISTRY``: the targets it
encodes, its history metrics on the device, and a whole run (``nnjax train`` -> ``nnjax.load`` ->
predictions, probabilities, host metrics, ``nnjax predict``'s file), each against a float64 NumPy
reference computed from the saved parameters. The output check refuses what contradicts a loss.
"""

from __future__ import annotations

import csv

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax
from nnjax import losses, runs, training
from nnjax.cli import main

LOSSES = list(losses.REGISTRY)


# ----------------------------------------------------------------------------------------------
# NumPy float64 references of each loss: targets from class indices or values, per-example loss,
# predictions and probabilities from logits.


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


REFERENCE = {  # name: (encode(indices or values), loss(z, t), predict(z) -> class index or value, proba(z))
    "mse": (lambda y: np.asarray(y, np.float64), lambda z, t: np.mean((z - t.reshape(len(z), -1)) ** 2, axis=1),
            lambda z: z[:, 0], None),
    "binary_cross_entropy": (
        lambda y: np.asarray(y, np.float64),
        lambda z, t: np.maximum(z[:, 0], 0) - z[:, 0] * t + np.log1p(np.exp(-np.abs(z[:, 0]))),
        lambda z: (z[:, 0] > 0).astype(int), lambda z: np.stack([1 - _sigmoid(z[:, 0]), _sigmoid(z[:, 0])], 1)),
    "softmax_cross_entropy": (
        lambda y: np.asarray(y, np.int64),
        lambda z, t: -np.log(_softmax(z)[np.arange(len(z)), t]), lambda z: z.argmax(1), _softmax),
    "hinge": (lambda y: 2.0 * np.asarray(y) - 1.0, lambda z, t: np.maximum(0.0, 1.0 - t * z[:, 0]),
              lambda z: (z[:, 0] >= 0).astype(int), None),
}
CLASSES = {"mse": 0, "binary_cross_entropy": 2, "softmax_cross_entropy": 3, "hinge": 2}


def _data(name, rng, n=60):
    """Raw features and targets for the loss: class indices (separable blobs) or values."""
    k = CLASSES[name]
    if k:
        y = np.arange(n) % k
        centres = np.array([[0.0, 0.0], [3.0, 1.0], [0.0, 4.0]])[y]
        return centres + rng.normal(size=(n, 2)) + [10.0, -5.0], y
    x = rng.normal(size=(n, 2)) * [2.0, 0.5] + [1.0, 3.0]
    return x, 3.0 * x[:, 0] - x[:, 1] + 0.1 * rng.normal(size=n) + 20.0


def test_every_loss_is_tested_here():
    assert set(REFERENCE) == set(LOSSES) == set(CLASSES)


@pytest.mark.parametrize("name", LOSSES)
def test_encode_gives_the_targets_the_loss_takes(name, rng):
    x, y = _data(name, rng)
    record = losses.resolve(name)
    task = "classification" if record.classification else "regression"
    prep = runs.Preprocessing.fit(x, y, task=task, loss=name, feature_names=("a", "b"),
                                  class_names=tuple(str(c) for c in range(CLASSES[name])))
    encoded = prep.targets(y)
    if record.classification:
        np.testing.assert_array_equal(encoded, REFERENCE[name][0](y))
        assert prep.n_outputs == (CLASSES[name] if name == "softmax_cross_entropy" else 1)
    else:  # standardised with the training split's statistics
        np.testing.assert_allclose(encoded, (y - y.mean()) / y.std(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(prep.decode(encoded[:, None]), y, rtol=1e-6)
    # the encoded targets pass the loss's own check, for the outputs it says it needs
    record.check_targets(encoded, len(y), prep.n_outputs, "y")
    np.testing.assert_allclose(prep.inputs(x), (x - x.mean(0)) / x.std(0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", LOSSES)
def test_history_metrics_on_the_device_match_numpy(name, rng):
    record = losses.resolve(name)
    k = CLASSES[name] if name == "softmax_cross_entropy" else 1
    z = rng.normal(size=(50, k))
    t = REFERENCE[name][0](rng.integers(0, max(CLASSES[name], 2), size=50) if record.classification
                           else rng.normal(size=50))
    got = {m: float(v) for m, v in record.metrics(jnp.asarray(z, jnp.float32), jnp.asarray(t)).items()}
    z = np.asarray(z, np.float32).astype(np.float64)
    if record.classification:
        predicted = REFERENCE[name][2](z)
        truth = t if name == "softmax_cross_entropy" else (t > 0).astype(int)
        assert got == pytest.approx({"accuracy": np.mean(predicted == truth)})
    else:
        sse, sst = np.sum((z[:, 0] - t) ** 2), np.sum((t - t.mean()) ** 2)
        assert got == pytest.approx({"mse": sse / len(t), "r2": 1 - sse / sst}, rel=1e-5)


def _reference_logits(model, x):
    """A float64 NumPy forward pass of the saved parameters (ReLU hidden layers, linear output)."""
    prep = model.preprocessing
    h = (x - np.asarray(prep.mean)) / np.asarray(prep.scale)
    for i, layer in enumerate(model.params):
        h = h @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64)
        if i < len(model.params) - 1:
            h = np.maximum(h, 0.0)
    return h


@pytest.fixture(scope="module")
def runs_by_loss(tmp_path_factory):
    """One tiny ``nnjax train`` run per loss: {name: (run directory, csv path, x, y)}."""
    rng = np.random.default_rng(0)
    out = {}
    for name in LOSSES:
        x, y = _data(name, rng)
        folder = tmp_path_factory.mktemp(name)
        path = folder / "data.csv"
        with open(path, "w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["a", "b", "y"])
            labels = [f"c{v}" for v in y] if CLASSES[name] else [repr(float(v)) for v in y]
            writer.writerows([[repr(float(a)), repr(float(b)), v] for (a, b), v in zip(x, labels)])
        run_dir = folder / "run"
        task = ["--task", "regression"] if not CLASSES[name] else []
        code = main(["train", "--data", str(path), "--target", "y", *task, "--loss", name, "--hidden", "5",
                     "--epochs", "4", "--batch-size", "20", "--lr", "0.05", "--test-fraction", "0",
                     "--validation-fraction", "0", "--checkpoint-every", "0", "--no-plots", "--quiet",
                     "--out", str(run_dir)])
        assert code == 0, name
        out[name] = (run_dir, path, x, y)
    return out


@pytest.mark.parametrize("name", LOSSES)
def test_a_run_of_every_loss_reads_back_as_numpy_says(name, runs_by_loss, tmp_path, capsys):
    run_dir, path, x, y = runs_by_loss[name]
    model = nnjax.load(run_dir)
    record = model.loss
    assert record.name == name and model.net.output == record.output  # --output auto: the loss's own
    np.testing.assert_allclose(model.preprocessing.mean, x.mean(0), rtol=1e-6)  # every row trained
    np.testing.assert_allclose(model.preprocessing.scale, x.std(0), rtol=1e-6)
    z = _reference_logits(model, x)
    np.testing.assert_allclose(model.logits(x), z, rtol=1e-4, atol=1e-4)
    encode, per_example, predict, proba = REFERENCE[name]
    sure = np.abs(z[:, 0] - (z[:, 1] if z.shape[1] > 1 else 0)) > 1e-3  # float32 cannot flip these
    if record.classification:
        want = np.asarray(model.classes)[predict(z)]
        np.testing.assert_array_equal(model.predict(x)[sure], want[sure])
        targets = encode(y)
    else:
        want = predict(z) * y.std() + y.mean()
        np.testing.assert_allclose(model.predict(x), want, rtol=1e-5)
        targets = encode((y - y.mean()) / y.std())
    if proba is None:
        with pytest.raises(ValueError, match="predict_proba: expected a softmax or sigmoid classifier"):
            model.predict_proba(x)
    else:
        np.testing.assert_allclose(model.predict_proba(x), proba(z), atol=1e-5)
    # host metrics (nnjax evaluate's) against NumPy
    labels = np.asarray(model.classes)[y] if record.classification else y
    scores = model.evaluate(x, labels)
    assert scores["loss"] == pytest.approx(np.mean(per_example(z, targets)), rel=1e-4, abs=1e-6)
    if record.classification:
        assert scores["accuracy"] == pytest.approx(np.mean(model.predict(x) == labels))
        assert scores["confusion_matrix"] == [[int(np.sum((y == i) & (model.class_indices(model.predict(x)) == j)))
                                               for j in range(CLASSES[name])] for i in range(CLASSES[name])]
    else:
        residual = model.predict(x) - y
        assert scores["mse"] == pytest.approx(np.mean(residual ** 2), rel=1e-9)
        assert scores["r2"] == pytest.approx(1 - np.sum(residual ** 2) / np.sum((y - y.mean()) ** 2), rel=1e-9)
    # the history's device metrics: nnjax.training.evaluate through the loss record, as in training
    prep = model.preprocessing
    device = training.evaluate(model.params, model.state, jnp.asarray(prep.inputs(x)),
                               jnp.asarray(prep.targets(y)), model.net, record)
    assert float(device["loss"]) == pytest.approx(scores["loss"], rel=1e-5, abs=1e-6)
    if record.classification:  # the same decisions, but for rows float32 could flip
        assert abs(float(device["accuracy"]) - scores["accuracy"]) <= 1 - sure.mean() + 1e-6
    # nnjax predict writes what the model predicts; its probabilities read back exactly
    assert main(["predict", str(run_dir), "--data", str(path), "--out", str(tmp_path / "p.csv")]) == 0
    with open(tmp_path / "p.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    if record.classification:
        assert [r["prediction"] for r in rows] == model.predict(x).tolist()
        if proba is not None:
            written = np.array([[float(r[f"probability_{c}"]) for c in model.classes] for r in rows])
            assert np.array_equal(written, model.predict_proba(x))
    else:
        np.testing.assert_allclose([float(r["y"]) for r in rows], model.predict(x), rtol=1e-7)


@pytest.mark.parametrize("name", LOSSES)
def test_predict_refuses_features_beyond_float32_naming_the_column(name, runs_by_loss, tmp_path, capsys):
    run_dir, path, x, y = runs_by_loss[name]
    model = nnjax.load(run_dir)
    for bad in (1e39, np.inf, np.nan):
        x_bad = x.copy()
        x_bad[3, 1] = bad
        with pytest.raises(ValueError, match=r"column 'b' \(row 4\)"):
            model.predict(x_bad)
    labels = np.asarray(model.classes)[y] if model.loss.classification else y
    with pytest.raises(ValueError, match="column 'b'"):
        model.evaluate(x_bad, labels)
    lines = path.read_text().splitlines()
    lines[4] = ",".join([lines[4].split(",")[0], "1e39", lines[4].split(",")[2]])  # data row 4: beyond float32
    (tmp_path / "big.csv").write_text("\n".join(lines) + "\n")
    for command in ("predict", "evaluate"):
        assert main([command, str(run_dir), "--data", str(tmp_path / "big.csv")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "column 'b'" in err and "1e+39" in err, err


@pytest.mark.parametrize("name", LOSSES)
def test_an_output_that_contradicts_the_loss_is_refused(name, rng):
    record = losses.resolve(name)
    x, y = _data(name, rng, n=8)
    y = record.encode(y if record.classification else (y - y.mean()) / y.std())
    k = 1 if name != "softmax_cross_entropy" else 3
    for output in ("identity", "softmax", "sigmoid", "sign", "step"):
        net = nnjax.MLP((2, k), output=output)
        if output in record.outputs:
            record.check_output(output)  # accepted outputs read the logits as the loss trained them
            continue
        with pytest.raises(ValueError, match=rf"output: expected .* for the loss '{name}', got '{output}'"):
            nnjax.fit(jax.random.key(0), net, (x, y), loss=name, optimizer="sgd", epochs=1, batch_size=4)
    assert record.output in record.outputs and "identity" in record.outputs
    assert losses.for_output(record.output).output == record.output


def test_the_command_line_refuses_a_contradicting_output_in_one_line(tmp_path, capsys):
    code = main(["train", "--dataset", "regression", "--output", "sigmoid", "--epochs", "1",
                 "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--output: expected 'identity' or 'sign' for the loss 'mse', got 'sigmoid'" in err
    assert not (tmp_path / "r").exists()
