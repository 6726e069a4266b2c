"""The chunk runner: a compiled run cut into chunks of epochs, reported between them.

The epoch loop is one XLA program, so the host cannot see inside it. Because a run continues bit
for bit (the key schedule depends on the global epoch), it can be cut into chunks of a few epochs
with no change to the result; between chunks the host reports. :func:`train` is the one loop that
does this, for :func:`nnjax.fit` with ``progress=``, for ``nnjax train`` (one model or
``--seeds N``), for TensorBoard and for populations:

* **pipelined**: chunk ``i + 1`` is dispatched before chunk ``i`` is reported, so the device
  computes while the host reads metrics, draws a bar or writes a checkpoint;
* **chunk boundaries** come from :func:`chunk_sizes`, arithmetic that lands on every checkpoint
  epoch (a generator: nothing grows with the number of epochs until they are run);
* **the compile phase** is known, not guessed: the first dispatch returns once the program is
  compiled, and hooks hear it (:meth:`Hook.on_compiled`);
* **hooks** (:class:`Hook`: a progress bar, a TensorBoard writer, a checkpoint writer, a user
  callback) hear every chunk, and any of them may return a :class:`Stop` request.

A stop request ends training at the chunk boundary where it was made: the chunk already
dispatched after it is dropped, and the result holds the epochs up to that boundary, from which
``fit(..., resume=result)`` continues bit for bit. When every model has stopped by itself (early
stopping), training ends the same way.

Example:
  >>> import jax, optax, nnjax
  >>> from nnjax.train import runner
  >>> data = nnjax.data.load_dataset("blobs")
  >>> plan = nnjax.fitting.plan(jax.random.key(0), nnjax.MLP((2, 1), output="sigmoid"), (data.x, data.y),
  ...                           loss="binary_cross_entropy", optimizer=optax.sgd(0.1), epochs=10, batch_size=16)
  >>> def enough(done, metrics):
  ...     return runner.Stop("accurate enough") if metrics["accuracy"] > 0.5 else None
  >>> outcome = runner.train(plan, 10, every=2, hooks=runner.hooks_for(enough))
  >>> outcome.epochs_done, outcome.stop.reason, outcome.result.history["loss"].shape
  (2, 'accurate enough', (2,))
"""

from __future__ import annotations

import math
import sys
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np

__all__ = ["Callback", "Hook", "Outcome", "ProgressBar", "Stop", "chunk_epochs", "chunk_sizes", "format_metrics",
           "hooks_for", "stopped_tail", "train"]

#: Progress updates of a run by default (each chunk boundary is a host round trip).
UPDATES = 20
#: The longest default chunk: a chunk's history is allocated whole, so a run of 10^9 epochs
#: reports (and grows its history) every 1024 epochs instead of planning 5 * 10^7-epoch chunks.
MAX_CHUNK = 1024


class Stop(NamedTuple):
    """A stop request: returned by a hook (or a progress callable), it ends training at that chunk boundary.

    Example:
      >>> Stop("validation accuracy reached 0.99").reason
      'validation accuracy reached 0.99'
    """

    reason: str = "a callback asked to stop"


class Hook:
    """What the runner calls between chunks; subclass it or give any object the methods it needs.

    Every method is optional (the runner calls the ones an object has). ``done`` counts the
    epochs trained so far, over continuations.
    """

    def on_compiled(self, done: int) -> None:
        """The first chunk's program is compiled and dispatched: training proper starts now."""

    def on_chunk(self, done: int, chunk: Any) -> Stop | None:
        """A chunk is back: ``chunk`` is its ``FitResult`` with the history of its own epochs (NumPy).

        Return a :class:`Stop` to end training at this boundary.
        """

    def on_checkpoint(self, done: int, result: Any, finished: bool) -> None:
        """At a checkpoint epoch and when training ends: ``result`` holds the whole history so far.

        ``finished``: every epoch was trained or every model stopped (not for a stop request,
        after which the run can be continued).
        """

    def on_close(self) -> None:
        """Training ended, normally or by an exception."""


class ProgressBar(Hook):
    """A tqdm bar: "LABEL (compiling)" until the program is compiled, then epochs and the last metrics.

    Its rate counts from the end of the compile, so it shows training speed.
    """

    def __init__(self, total: int, *, done: int = 0, label: str = "training", file: Any = None):
        from tqdm.auto import tqdm

        self.label = label
        self.bar = tqdm(total=total, initial=done, unit="epoch", desc=f"{label} (compiling)", leave=False,
                        dynamic_ncols=True, file=sys.stderr if file is None else file)

    def on_compiled(self, done: int) -> None:
        self.bar.reset(total=self.bar.total)  # the clock starts now: the rate is training speed
        self.bar.initial = self.bar.n = self.bar.last_print_n = done  # epochs of earlier runs are no speed
        self.bar.set_description(self.label)

    def on_chunk(self, done: int, chunk: Any) -> None:
        self.bar.update(done - self.bar.n)
        self.bar.set_postfix(format_metrics(last_epoch(chunk)))

    def on_close(self) -> None:
        self.bar.close()


class Callback(Hook):
    """A plain function ``progress(epochs_done, metrics)`` as a hook (``metrics``: the last epoch's).

    What the function returns is passed on, so it may return a :class:`Stop`.
    """

    def __init__(self, function: Callable[[int, dict], Any]):
        self.function = function

    def on_chunk(self, done: int, chunk: Any) -> Stop | None:
        return self.function(done, last_epoch(chunk))


_METHODS = ("on_compiled", "on_chunk", "on_checkpoint", "on_close")


def hooks_for(progress: Any, total: int = 0, *, done: int = 0) -> list:
    """The hooks for a ``progress=`` argument: True (a bar), a hook object (one with ``on_chunk``),
    a plain callable (:class:`Callback`), or a list of these; False or None give none."""
    if progress is None or progress is False:
        return []
    if progress is True:
        return [ProgressBar(total, done=done)]
    if isinstance(progress, (list, tuple)):
        return [hook for item in progress for hook in hooks_for(item, total, done=done)]
    if isinstance(progress, Hook) or any(callable(getattr(progress, name, None)) for name in _METHODS):
        return [progress]
    if callable(progress):
        return [Callback(progress)]
    raise TypeError(f"progress: expected True, a callable progress(epochs_done, metrics), a hook with on_chunk, "
                    f"or a list of these, got {type(progress).__name__}")


def chunk_epochs(total: int, every: int | None = None, checkpoint_every: int = 0) -> int:
    """Epochs per chunk: ``every``, or about :data:`UPDATES` updates a run (at most :data:`MAX_CHUNK`).

    The default divides ``checkpoint_every``, so that all chunks have one length and the
    program compiles once.

    Example:
      >>> chunk_epochs(100), chunk_epochs(100, checkpoint_every=12), chunk_epochs(10**9)
      (5, 4, 1024)
    """
    if every:
        return int(every)
    target = min(MAX_CHUNK, max(1, math.ceil(total / UPDATES)))
    if checkpoint_every:
        target = max(d for d in range(1, min(target, checkpoint_every) + 1) if checkpoint_every % d == 0)
    return target


def chunk_sizes(done: int, total: int, every: int, checkpoint_every: int = 0) -> Iterator[int]:
    """Chunk lengths from ``done`` to ``total`` epochs: at most ``every``, ending on each checkpoint epoch.

    A generator: the plan of a run of 10^9 epochs costs nothing before the epochs are run.

    Example:
      >>> list(chunk_sizes(0, 10, 4)), list(chunk_sizes(3, 10, 4, checkpoint_every=5))
      ([4, 4, 2], [2, 4, 1])
    """
    while done < total:
        stop = min(total, done + every)
        if checkpoint_every:
            stop = min(stop, (done // checkpoint_every + 1) * checkpoint_every)
        yield stop - done
        done = stop


def format_metrics(metrics: dict[str, Any]) -> dict[str, str]:
    """Short strings for the scalar metrics worth showing on a bar (the mean over a population's members)."""
    shown = {}
    for name in ("loss", "accuracy", "val_loss", "val_accuracy", "val_r2"):
        if name in metrics:
            value = np.asarray(metrics[name], np.float64)
            if value.size and np.isfinite(value).any():
                shown[name] = f"{np.nanmean(value):.4g}"
    return shown


def _epoch_axis(result: Any) -> int:
    """0 for one model's history, 1 for a population's (a leading member axis)."""
    return int(np.ndim(result.train_state.epoch))


def last_epoch(chunk: Any) -> dict[str, np.ndarray]:
    """Each history entry's row of the chunk's last epoch (one per member for a population)."""
    axis = _epoch_axis(chunk)
    return {k: np.take(np.asarray(v), -1, axis=axis) for k, v in chunk.history.items()}


class Outcome(NamedTuple):
    """What :func:`train` returns.

    Attributes:
      result: the last chunk's ``FitResult`` with the history of every epoch run (NumPy arrays,
        the given ``history`` first).
      epochs_done: epochs trained so far, over continuations.
      all_stopped: every model stopped by itself (early stopping or a non-finite step).
      stop: the :class:`Stop` request that ended training, or None.
    """

    result: Any
    epochs_done: int
    all_stopped: bool
    stop: Stop | None


def _call(hooks: Sequence[Any], method: str, *args: Any) -> list:
    return [getattr(hook, method)(*args) for hook in hooks if callable(getattr(hook, method, None))]


def _join(parts: list[dict], axis: int) -> dict:
    return {k: np.concatenate([part[k] for part in parts], axis=axis) for k in parts[-1]}


def train(plan: Any, total: int, *, start: Any = None, done: int = 0, history: dict | None = None,
          every: int | None = None, checkpoint_every: int = 0, hooks: Sequence[Any] = ()) -> Outcome:
    """Trains ``plan`` from epoch ``done`` to ``total`` in chunks, reporting to ``hooks`` between them.

    Args:
      plan: a :class:`nnjax.fitting.Plan` or a population's plan
        (:func:`nnjax.population.plan_population`): ``plan.run(ts, epochs, slots=, trim=)`` trains
        one chunk and ``plan.ts`` is the untrained state.
      total: the epoch to train up to (over continuations).
      start: the training state to continue from (default ``plan.ts``), after ``done`` epochs.
      done: epochs already trained.
      history: the history of those epochs (NumPy or JAX arrays), joined in front of the new one.
      every: epochs per chunk (default :func:`chunk_epochs`); every chunk, the short last one too,
        runs one compiled program.
      checkpoint_every: chunks end on every multiple of it, and hooks hear
        :meth:`Hook.on_checkpoint` there (and at the end); 0: only at the end.
      hooks: :class:`Hook` objects, or anything :func:`hooks_for` turns into them (a plain
        callable ``f(epochs_done, metrics)``, True for a bar).

    Returns:
      An :class:`Outcome`.
    """
    ts = plan.ts if start is None else start
    hooks = hooks_for(list(hooks), total, done=done)
    every = chunk_epochs(total, every, checkpoint_every)
    gathered = [] if history is None else [{k: np.asarray(v) for k, v in history.items()}]
    parts: list[dict] = []
    state = {"result": None, "all_stopped": False, "stop": None, "done": done}

    def report(chunk: Any, size: int, end: int) -> bool:
        """Reads a finished chunk and hands it to the hooks; True when training ends here."""
        axis = _epoch_axis(chunk)
        host = {k: np.take(np.asarray(v), np.arange(size), axis=axis) for k, v in chunk.history.items()}
        chunk = chunk._replace(history=host)
        parts.append(host)
        stop = next((s for s in _call(hooks, "on_chunk", end, chunk) if isinstance(s, Stop)), None)
        all_stopped = bool(np.all(np.asarray(chunk.train_state.stopped)))
        finished = end >= total or all_stopped
        state.update(done=end, all_stopped=all_stopped, stop=stop)
        if finished or stop is not None or (checkpoint_every and end % checkpoint_every == 0):
            gathered[:] = [_join(gathered + parts, axis)]
            parts.clear()
            state["result"] = chunk._replace(history=gathered[0])
            _call(hooks, "on_checkpoint", end, state["result"], finished)
        return finished or stop is not None

    pending = None  # the chunk dispatched last, not yet reported: (chunk, size, epochs done after it)
    try:
        for size in chunk_sizes(done, total, every, checkpoint_every):
            chunk = plan.run(ts, size, slots=every, trim=False)  # returns once dispatched
            if pending is None:
                _call(hooks, "on_compiled", done)
            else:
                ended = report(*pending)
                if ended:  # the chunk just dispatched is dropped: training ends at the reported boundary
                    pending = None
                    break
            ts, done = chunk.train_state, done + size
            pending = (chunk, size, done)
        if pending is not None:
            report(*pending)
    finally:
        _call(hooks, "on_close")
    result = state["result"]
    if result is None:  # nothing to train: the start as a result
        raise ValueError(f"epochs: expected more than the {done} epochs already trained, got {total}")
    return Outcome(result, state["done"], state["all_stopped"], state["stop"])


def stopped_tail(history: dict, length: int) -> dict:
    """``history`` with ``length`` rows appended for epochs never run because training had stopped
    (NaN, counts 0, ``stopped`` true, ``epoch`` counting on), as one call's history has them."""
    axis = int(np.ndim(history["stopped"])) - 1
    next_epoch = int(np.max(np.asarray(history["epoch"]))) + 1

    def fill(a):
        a = np.asarray(a)
        shape = list(a.shape)
        shape[axis] = length
        value = np.nan if np.issubdtype(a.dtype, np.floating) else 0
        return np.concatenate([a, np.full(shape, value, a.dtype)], axis=axis)

    tail = {k: fill(v) for k, v in history.items()}
    epochs = np.arange(next_epoch, next_epoch + length, dtype=np.asarray(history["epoch"]).dtype)
    tail["stopped"] = np.concatenate([np.asarray(history["stopped"]),
                                      np.ones(np.shape(history["stopped"])[:axis] + (length,), bool)], axis=axis)
    tail["epoch"] = np.concatenate([np.asarray(history["epoch"]),
                                    np.broadcast_to(epochs, np.shape(history["epoch"])[:axis] + (length,))], axis=axis)
    return tail
