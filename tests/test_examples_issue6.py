"""Smoke tests: the random-starts and sweep examples run with --quick and measure sense.

examples/data_parallel.py runs in tests/test_parallel.py, as two processes.

Each script's ``main(argv)`` is loaded with ``runpy`` and run in this process (sharing the jax
import).
"""

import numpy as np


def test_random_starts_example(run_example, tmp_path):
    measured, printed = run_example("random_starts")
    val_loss = measured["val_loss"]
    assert measured["best"] == int(np.nanargmin(val_loss))
    assert np.all((measured["test_accuracy"] >= 0) & (measured["test_accuracy"] <= 1))
    assert f"member {measured['best']}, chosen on validation loss" in printed
    assert (tmp_path / "random_starts.png").stat().st_size > 0


def test_hyperparameter_sweep_example(run_example, tmp_path):
    measured, printed = run_example("hyperparameter_sweep")
    rows = measured["table"]
    means = [r["mean"] for r in rows]
    assert means == sorted(means)  # val_loss: best (lowest) first
    assert measured["winner"] == {k: rows[0][k] for k in measured["winner"]}
    assert 0.0 <= measured["test_accuracy"] <= 1.0
    assert "the winner is learning_rate=" in printed
    assert (tmp_path / "hyperparameter_sweep.png").stat().st_size > 0
