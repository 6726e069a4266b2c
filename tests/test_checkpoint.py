"""nnjax.checkpoint: bit-exact round trips, resuming, step bookkeeping, atomic saves."""

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import optax
import pytest

import nnjax
from nnjax import checkpoint

REPO = pathlib.Path(__file__).resolve().parents[1]


def _bits(leaf):
    """A leaf's exact bytes (PRNG keys through their key data)."""
    if hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    arr = np.asarray(leaf)
    return arr.dtype, arr.shape, arr.tobytes()


def assert_bitwise_equal(a, b):
    paths_a = jax.tree_util.tree_flatten_with_path(a)
    paths_b = jax.tree_util.tree_flatten_with_path(b)
    assert paths_a[1] == paths_b[1], "different tree structures"
    for (path, x), (_, y) in zip(paths_a[0], paths_b[0]):
        assert _bits(x) == _bits(y), f"leaf {jax.tree_util.keystr(path)} differs"


NET = nnjax.MLP((2, 8, 8, 1), output="sigmoid", batch_norm=True, dropout=0.1)


def _fit(epochs, resume=None, seed=0):
    data = nnjax.data.load_dataset("xor", n=64, seed=1)
    return nnjax.fit(
        None if resume is not None else jax.random.key(seed), NET, (data.x, data.y),
        loss="binary_cross_entropy", optimizer=OPTIMIZER, epochs=epochs, batch_size=24,
        validation=(data.x[:16], data.y[:16]), early_stopping=nnjax.EarlyStopping(patience=50), resume=resume,
        diagnostics=False,  # a smaller program to compile; the checkpoint is what is tested
    )


OPTIMIZER = optax.adam(0.02)


@pytest.fixture(scope="module")
def two_epochs():
    return _fit(2)


@pytest.fixture(scope="module")
def four_epochs(two_epochs):
    # Continued in memory: the same compiled program as every other fit here (fit's own tests show
    # that 2 + 2 epochs equal 4 in one call).
    return _fit(2, resume=two_epochs)


def test_round_trip_is_bit_exact_and_keeps_types(tmp_path, four_epochs):
    step = checkpoint.save(tmp_path, four_epochs, metadata={"note": "x", "n": 3})
    assert step == 4  # a FitResult's default step is its epoch count over continuations
    back = checkpoint.restore(tmp_path, like=four_epochs)
    assert_bitwise_equal(back, four_epochs)
    assert type(back) is nnjax.FitResult and type(back.train_state) is type(four_epochs.train_state)
    assert type(back.opt_state[0]) is type(four_epochs.opt_state[0])  # optax's ScaleByAdamState back
    assert jax.dtypes.issubdtype(back.key.dtype, jax.dtypes.prng_key)
    assert checkpoint.restore_metadata(tmp_path) == {"note": "x", "n": 3}


def test_restore_without_like_gives_plain_containers(tmp_path, four_epochs):
    checkpoint.save(tmp_path, four_epochs)
    raw = checkpoint.restore(tmp_path)
    assert isinstance(raw, dict) and isinstance(raw["train_state"], dict)
    np.testing.assert_array_equal(raw["params"][1]["w"], four_epochs.params[1]["w"])
    np.testing.assert_array_equal(raw["history"]["loss"], four_epochs.history["loss"])


def test_resume_from_a_checkpoint_equals_the_uninterrupted_run(tmp_path, two_epochs, four_epochs):
    checkpoint.save(tmp_path, two_epochs)
    like = jax.eval_shape(lambda: _fit(2))  # structure only: no arrays are computed
    restored = checkpoint.restore(tmp_path, like=like)
    assert_bitwise_equal(restored, two_epochs)
    continued = _fit(2, resume=restored)
    assert_bitwise_equal(continued.train_state, four_epochs.train_state)
    assert_bitwise_equal(continued.params, four_epochs.params)


def test_steps_latest_and_max_to_keep(tmp_path, rng):
    trees = {s: {"w": rng.standard_normal((3, 2)).astype(np.float32), "n": np.int32(s)} for s in range(4)}
    assert checkpoint.steps(tmp_path / "none") == [] and checkpoint.latest_step(tmp_path / "none") is None
    for s in range(4):
        assert checkpoint.save(tmp_path, trees[s], max_to_keep=2) == s  # no epoch count: latest + 1
    assert checkpoint.steps(tmp_path) == [2, 3]
    assert checkpoint.latest_step(tmp_path) == 3
    older = checkpoint.restore(tmp_path, step=2)
    np.testing.assert_array_equal(older["w"], trees[2]["w"])
    assert int(checkpoint.restore(tmp_path)["n"]) == 3


def test_zero_size_arrays_survive(tmp_path, rng):
    # orbax refuses zero-size arrays; a net without hidden layers records (epochs, 0) dead units.
    tree = {"dead": np.zeros((3, 0), np.float32), "layers": [rng.standard_normal(2), np.zeros((0,), np.int32)]}
    checkpoint.save(tmp_path, tree)
    for back in (checkpoint.restore(tmp_path), checkpoint.restore(tmp_path, like=tree)):
        assert back["dead"].shape == (3, 0) and back["dead"].dtype == np.float32
        assert back["layers"][1].shape == (0,) and back["layers"][1].dtype == np.int32
        np.testing.assert_array_equal(back["layers"][0], tree["layers"][0])


def test_bad_calls_say_what_is_wrong(tmp_path, rng):
    tree = {"w": rng.standard_normal(3).astype(np.float32)}
    with pytest.raises(FileNotFoundError, match="no checkpoint directory"):
        checkpoint.restore(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        checkpoint.restore(tmp_path / "empty")
    checkpoint.save(tmp_path / "c", tree, step=5)
    with pytest.raises(ValueError, match="already holds"):
        checkpoint.save(tmp_path / "c", tree, step=5)
    with pytest.raises(ValueError, match="step: expected one of the saved steps \\[5\\], got 6"):
        checkpoint.restore(tmp_path / "c", step=6)
    with pytest.raises(ValueError, match="step: expected a step number >= 0"):
        checkpoint.save(tmp_path / "c", tree, step=-1)
    with pytest.raises(ValueError, match="metadata: expected a JSON-serialisable dict"):
        checkpoint.save(tmp_path / "c", tree, metadata=[1])
    with pytest.raises(ValueError, match=r"has no entry \['b'\]"):
        checkpoint.restore(tmp_path / "c", like={"w": tree["w"], "b": tree["w"]})
    with pytest.raises(ValueError, match="expected dtype int32"):
        checkpoint.restore(tmp_path / "c", like={"w": np.zeros(3, np.int32)})


_SAVER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from nnjax import checkpoint

    for step in range(1, 10_000):
        tree = {"w": np.full((1_000_000,), step, np.float32), "step": np.int32(step)}
        checkpoint.save(sys.argv[1], tree, step=step, max_to_keep=2)
        print(step, flush=True)
    """
)


def test_a_kill_in_the_middle_of_a_save_leaves_the_previous_steps_readable(tmp_path):
    directory = tmp_path / "ckpt"
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
    proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(directory)], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout.readline().strip() == "1"  # one complete step before the kill
        deadline, unfinished = time.monotonic() + 120, []
        while not unfinished and time.monotonic() < deadline:
            unfinished = [p.name for p in directory.iterdir() if "tmp" in p.name]
        proc.send_signal(signal.SIGKILL)  # while a save is writing its temporary directory
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.stdout.close()
    assert unfinished, "never saw a save in progress"
    print("killed while writing", unfinished)
    complete = checkpoint.steps(directory)
    assert complete, "no complete step survived"
    for step in complete:
        tree = checkpoint.restore(directory, step=step)
        assert int(tree["step"]) == step and np.all(np.asarray(tree["w"]) == step)
    # The next save replaces whatever the killed one left behind.
    nxt = max(complete) + 1
    checkpoint.save(directory, {"w": np.zeros(2, np.float32), "step": np.int32(nxt)}, step=nxt)
    assert int(checkpoint.restore(directory)["step"]) == nxt
