"""The chunk runner (nnjax.train.runner): chunk plans, pipelined dispatch, hooks and stop requests."""

from typing import Any, NamedTuple

import jax
import numpy as np
import optax
import pytest

import nnjax
from nnjax.train import runner


# ---------------------------------------------------------------------------------------------
# chunk plans: arithmetic, not lists


def test_chunk_sizes_is_a_generator_whose_plan_does_not_grow_with_epochs():
    sizes = runner.chunk_sizes(0, 10**12, runner.chunk_epochs(10**12))
    assert iter(sizes) is sizes  # a generator: nothing is planned before it is asked for
    assert [next(sizes) for _ in range(3)] == [runner.MAX_CHUNK] * 3
    assert runner.chunk_epochs(10**9) == runner.MAX_CHUNK  # a chunk's history is bounded too


@pytest.mark.parametrize("trial", range(3))
def test_chunk_sizes_cover_the_run_and_land_on_every_checkpoint(trial, rng):
    for _ in range(200):
        total = int(rng.integers(1, 60))
        done = int(rng.integers(0, total))
        every = int(rng.integers(1, 12))
        checkpoint_every = int(rng.integers(0, 9))
        sizes = list(runner.chunk_sizes(done, total, every, checkpoint_every))
        ends = done + np.cumsum(sizes)
        assert all(0 < s <= every for s in sizes) and ends[-1] == total
        if checkpoint_every:
            due = set(range(checkpoint_every, total + 1, checkpoint_every)) - set(range(done + 1))
            assert due <= set(ends.tolist())


def test_default_chunk_divides_the_checkpoint_interval():
    for total, checkpoint_every in ((100, 12), (1000, 7), (40, 50)):
        every = runner.chunk_epochs(total, checkpoint_every=checkpoint_every)
        assert checkpoint_every % every == 0 and every <= max(1, -(-total // runner.UPDATES))


# ---------------------------------------------------------------------------------------------
# the loop, on a plan that records what is asked of it (no compiling)


class _State(NamedTuple):
    epoch: np.ndarray
    stopped: np.ndarray


class _Result(NamedTuple):
    history: dict
    train_state: _State


class _RecordingPlan:
    """Trains nothing: each chunk's history counts its epochs; ``stop_at`` marks an early stop."""

    def __init__(self, events: list, stop_at: int | None = None):
        self.events, self.stop_at = events, stop_at
        self.ts = _State(np.int32(0), np.bool_(False))

    def run(self, ts: _State, epochs: int, *, slots: Any = None, trim: bool = True) -> _Result:
        self.events.append(("dispatch", int(ts.epoch) + epochs))
        first = int(ts.epoch)
        epoch = np.arange(first, first + max(epochs, slots or 0), dtype=np.int32)  # untrimmed slot rows
        stopped = np.zeros(epoch.shape, bool) if self.stop_at is None else epoch >= self.stop_at
        end = first + epochs
        state = _State(np.int32(end), np.bool_(self.stop_at is not None and end > self.stop_at))
        return _Result({"epoch": epoch, "loss": epoch.astype(np.float32), "stopped": stopped}, state)


class _Recorder(runner.Hook):
    def __init__(self, events: list, stop_after: int | None = None):
        self.events, self.stop_after = events, stop_after

    def on_compiled(self, done):
        self.events.append(("compiled", done))

    def on_chunk(self, done, chunk):
        self.events.append(("chunk", done))
        assert chunk.history["epoch"][-1] == done - 1  # the chunk's own epochs, slot rows cut off
        if self.stop_after is not None and done >= self.stop_after:
            return runner.Stop("enough")
        return None

    def on_checkpoint(self, done, result, finished):
        self.events.append(("checkpoint", done, finished))
        np.testing.assert_array_equal(result.history["epoch"], np.arange(done))  # the whole history so far

    def on_close(self):
        self.events.append(("close",))


def test_the_next_chunk_is_dispatched_before_the_previous_is_reported():
    events = []
    outcome = runner.train(_RecordingPlan(events), 7, every=3, checkpoint_every=5, hooks=[_Recorder(events)])
    assert events == [
        ("dispatch", 3), ("compiled", 0),
        ("dispatch", 5), ("chunk", 3),
        ("dispatch", 7), ("chunk", 5), ("checkpoint", 5, False),
        ("chunk", 7), ("checkpoint", 7, True), ("close",),
    ]
    assert outcome.epochs_done == 7 and outcome.stop is None and not outcome.all_stopped
    np.testing.assert_array_equal(outcome.result.history["epoch"], np.arange(7))


def test_a_stop_request_ends_at_the_boundary_it_was_made_and_drops_the_chunk_in_flight():
    events = []
    outcome = runner.train(_RecordingPlan(events), 20, every=2, hooks=[_Recorder(events, stop_after=4)])
    assert events[-4:] == [("dispatch", 6), ("chunk", 4), ("checkpoint", 4, False), ("close",)]
    assert outcome.epochs_done == 4 and outcome.stop == runner.Stop("enough")
    assert int(outcome.result.train_state.epoch) == 4  # the state of the reported boundary, not of the dropped chunk
    np.testing.assert_array_equal(outcome.result.history["epoch"], np.arange(4))


def test_training_ends_once_every_model_has_stopped():
    events = []
    outcome = runner.train(_RecordingPlan(events, stop_at=3), 20, every=2, hooks=[_Recorder(events)])
    assert outcome.all_stopped and outcome.stop is None and outcome.epochs_done == 4
    assert ("checkpoint", 4, True) in events and ("chunk", 6) not in events


def test_a_resumed_run_joins_its_earlier_history():
    plan = _RecordingPlan([])
    first = runner.train(plan, 4, every=2)
    rest = runner.train(plan, 9, start=first.result.train_state, done=4, history=first.result.history, every=2)
    np.testing.assert_array_equal(rest.result.history["epoch"], np.arange(9))


def test_hooks_are_closed_when_a_chunk_fails():
    events = []

    class Failing(_RecordingPlan):
        def run(self, ts, epochs, **kw):
            if int(ts.epoch) >= 2:
                raise RuntimeError("device lost")
            return super().run(ts, epochs, **kw)

    with pytest.raises(RuntimeError, match="device lost"):
        runner.train(Failing(events), 6, every=2, hooks=[_Recorder(events)])
    assert events[-1] == ("close",)


# ---------------------------------------------------------------------------------------------
# through nnjax.fit


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 3)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int32)
    net = nnjax.MLP((3, 6, 2), activation="tanh", output="softmax", dropout=0.1)
    return net, (x, y), dict(loss="softmax_cross_entropy", optimizer=optax.adam(0.05), batch_size=16,
                             diagnostics=False)


def test_a_stopped_fit_holds_the_epochs_run_and_resumes_bit_for_bit(problem, key):
    net, data, kw = problem
    whole = nnjax.fit(key, net, data, epochs=10, **kw)
    seen = []

    def stop_at_four(done, metrics):
        seen.append(done)
        return nnjax.Stop("four is enough") if done >= 4 else None

    stopped = nnjax.fit(key, net, data, epochs=10, progress=stop_at_four, progress_every=2, **kw)
    assert seen == [2, 4] and int(stopped.train_state.epoch) == 4
    assert stopped.history["loss"].shape == (4,) and not bool(stopped.train_state.stopped)
    rest = nnjax.fit(None, net, data, epochs=6, resume=stopped, **kw)
    for a, b in zip(jax.tree_util.tree_leaves(whole.params), jax.tree_util.tree_leaves(rest.params)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.concatenate([stopped.history["loss"], rest.history["loss"]]),
                                  whole.history["loss"])


def test_fit_with_early_stopping_and_progress_equals_one_call(problem, key):
    net, data, kw = problem
    stopping = nnjax.EarlyStopping(patience=1, min_delta=10.0)  # no gain counts: stops after epoch 2
    one = nnjax.fit(key, net, data, epochs=9, early_stopping=stopping, **kw)
    chunked = nnjax.fit(key, net, data, epochs=9, early_stopping=stopping, progress=[lambda d, m: None],
                        progress_every=2, **kw)
    assert int(one.epochs_run) == int(chunked.epochs_run) < 4  # stopped in the second chunk
    for name in ("loss", "stopped", "epoch"):
        np.testing.assert_array_equal(one.history[name], chunked.history[name])


def test_progress_of_a_kind_nothing_understands_is_refused(problem, key):
    net, data, kw = problem
    with pytest.raises(TypeError, match="progress: expected"):
        nnjax.fit(key, net, data, epochs=2, progress="yes", **kw)
