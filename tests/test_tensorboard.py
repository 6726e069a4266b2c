"""TensorBoard event files from fit's progress hook and from ``nnjax train --tensorboard``.

The files are read back with TensorBoard's own reader (``EventAccumulator``) and compared with
the training history, epoch by epoch.
"""

import json
import shutil
import sys

import jax
import numpy as np
import optax
import pytest

import nnjax
from nnjax import optim
from nnjax.cli import main
from nnjax.tensorboard import Writer, learning_rate

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
pytest.importorskip("tensorboardX")


def read_scalars(logdir):
    """{tag: (steps, values)} of every scalar in ``logdir``, through TensorBoard's reader."""
    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["scalars"]:
        events = acc.Scalars(tag)
        out[tag] = (np.array([e.step for e in events]), np.array([e.value for e in events], np.float32))
    return out


def expected_tags(history):
    tags = set()
    for name, values in history.items():
        if name in ("epoch", "stopped"):
            continue
        values = np.asarray(values, np.float64)  # a JSON history has null for NaN
        columns = {name: values} if values.ndim == 1 else {f"{name}/{i}": values[:, i] for i in range(values.shape[1])}
        tags |= {tag for tag, column in columns.items() if np.isfinite(column).any()}  # NaN: no value, not written
    return tags


def assert_scalars_equal_history(scalars, history, steps):
    for name, values in history.items():
        if name in ("epoch", "stopped"):
            continue
        values = np.asarray(values, np.float32)
        columns = {name: values} if values.ndim == 1 else {f"{name}/{i}": values[:, i] for i in range(values.shape[1])}
        for tag, column in columns.items():
            finite = np.isfinite(column[steps])
            if not finite.any():
                assert tag not in scalars, tag
                continue
            got_steps, got = scalars[tag]
            np.testing.assert_array_equal(got_steps, np.asarray(steps)[finite], err_msg=tag)
            np.testing.assert_array_equal(got, column[steps][finite], err_msg=tag)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 48)]
    return nnjax.MLP((4, 8, 6, 3), dropout=0.1), (x, y)


def test_fit_hook_writes_every_epoch_of_every_chunk_with_the_learning_rate(problem, tmp_path):
    net, (x, y) = problem
    steps_per_epoch = 3  # 48 examples in batches of 16
    schedule = optim.schedule("cosine", 0.05, steps=5 * steps_per_epoch)
    with Writer(tmp_path) as writer:
        result = nnjax.fit(jax.random.key(1), net, (x, y), loss="softmax_cross_entropy",
                           optimizer=optim.make("adam", schedule, clip_norm=1.0), batch_size=16, epochs=5,
                           validation=(x[:16], y[:16]), progress=writer, progress_every=2)
    history = {k: np.asarray(v) for k, v in result.history.items()}
    scalars = read_scalars(tmp_path)
    assert set(scalars) == expected_tags(history) | {"learning_rate"}
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "skipped", "layer_grad_norm/2"} <= set(scalars)
    assert history["layer_grad_norm"].shape == (5, 3)
    assert_scalars_equal_history(scalars, history, np.arange(5))
    # one rate per chunk (epochs 0-1, 2-3, 4), the rate of the chunk's last step
    lr_steps, lr = scalars["learning_rate"]
    np.testing.assert_array_equal(lr_steps, [1, 3, 4])
    want = [float(schedule(steps_per_epoch * (e + 1) - 1)) for e in (1, 3, 4)]
    np.testing.assert_allclose(lr, want, rtol=1e-5)
    assert len(set(lr.tolist())) == 3  # the schedule moved: the values are read, not a constant
    assert writer.steps_written == 5


def test_a_plain_callback_still_gets_epochs_done_and_the_last_metrics(problem):
    net, data = problem
    calls = []
    nnjax.fit(jax.random.key(0), net, data, loss="softmax_cross_entropy", optimizer=optax.sgd(0.1),
              batch_size=16, epochs=4, progress=lambda done, last: calls.append((done, float(last["loss"]))),
              progress_every=2)
    assert [c[0] for c in calls] == [2, 4]


def test_learning_rate_is_read_from_injected_states_only():
    params = {"w": np.zeros(3, np.float32)}
    assert learning_rate(optax.adam(0.1).init(params)) is None
    assert float(learning_rate(optim.make("sgd", 0.25, clip_norm=1.0, clip_value=2.0).init(params))) == 0.25
    assert float(learning_rate(optax.inject_hyperparams(optax.adam)(learning_rate=0.5).init(params))) == 0.5


def test_population_is_one_run_per_member_and_stopped_epochs_are_not_written(tmp_path):
    history = {"epoch": np.array([[0, 1, 2], [0, 1, 2]], np.int32),
               "stopped": np.array([[False, False, True], [False, False, False]]),
               "loss": np.array([[3.0, 2.0, np.nan], [5.0, 4.0, 3.5]], np.float32),
               "layer_grad_norm": np.arange(12, dtype=np.float32).reshape(2, 3, 2)}
    with Writer(tmp_path) as writer:
        writer.write_history(history, learning_rate=np.array([0.1, 0.2]))
    first, second = read_scalars(tmp_path / "member_0"), read_scalars(tmp_path / "member_1")
    np.testing.assert_array_equal(first["loss"][0], [0, 1])
    np.testing.assert_array_equal(first["loss"][1], [3.0, 2.0])
    np.testing.assert_array_equal(second["loss"][1], [5.0, 4.0, 3.5])
    np.testing.assert_array_equal(second["layer_grad_norm/1"][1], [7.0, 9.0, 11.0])
    assert first["learning_rate"][0].tolist() == [1] and second["learning_rate"][0].tolist() == [2]
    np.testing.assert_allclose(second["learning_rate"][1], [0.2])
    with pytest.raises(ValueError, match="'epoch'"):
        Writer(tmp_path / "x").write_history({"loss": np.zeros(2)})


TINY = ["--dataset", "iris", "--hidden", "8", "--epochs", "4", "--batch-size", "16", "--checkpoint-every", "2",
        "--progress-every", "2", "--quiet"]


def test_cli_flag_writes_the_run_history_and_a_resume_replaces_no_epoch_twice(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(run_dir), "--tensorboard"]) == 0
    # as if the run had died after writing epochs 2-3 to TensorBoard but before their checkpoint
    shutil.rmtree(run_dir / "checkpoints" / "4")
    assert main(["train", "--resume", str(run_dir), "--tensorboard", "--progress-every", "2", "--quiet"]) == 0
    capsys.readouterr()
    history = {k: np.asarray(v) for k, v in json.loads((run_dir / "history.json").read_text()).items()}
    assert history["loss"].shape == (4,)
    scalars = read_scalars(run_dir / "tensorboard")
    assert set(scalars) == expected_tags(history) | {"learning_rate"}
    assert_scalars_equal_history(scalars, history, np.arange(4))  # each epoch once, resumed or not
    np.testing.assert_array_equal(scalars["learning_rate"][0], [1, 3])
    # an explicit directory, and the flag is a run control: not part of the saved settings
    other = tmp_path / "elsewhere"
    assert main(["train", *TINY, "--out", str(tmp_path / "run2"), "--tensorboard", str(other)]) == 0
    assert set(read_scalars(other)) == set(scalars)
    assert "tensorboard" not in json.loads((tmp_path / "run2" / "config.json").read_text())["args"]


def test_cli_without_tensorboardx_is_a_usage_error_before_anything_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if not installed
    assert main(["train", *TINY, "--out", str(tmp_path / "run"), "--tensorboard"]) == 2
    assert "nnjax[tensorboard]" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
