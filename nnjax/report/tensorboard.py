"""TensorBoard event files for training runs, written between compiled chunks.

:class:`Writer` is a progress hook: pass it as ``nnjax.fit(..., progress=writer)`` (or
``nnjax train --tensorboard``) and training runs in chunks of ``progress_every`` epochs,
as with any progress callable. After each chunk the writer receives the chunk's result
(:meth:`Writer.on_chunk`) and writes every epoch of its history, each at its global epoch as
the TensorBoard step, so a chunked run and a run in one go give the same curves:

* every per-epoch number of the history under its own name: ``loss``, ``accuracy``,
  ``grad_norm``, ``skipped``, ``val_loss``, ``val_accuracy``, ...;
* every per-layer entry, one tag per layer: ``layer_grad_norm/0``, ``layer_grad_norm/1``, ...
  (with ``fit(..., diagnostics=True)``, the default);
* ``learning_rate``, read from the optimiser state when it is an ``optax.inject_hyperparams``
  state (nnjax's named optimisers are), once per chunk at the chunk's last epoch: it is the rate
  of that epoch's last step (with a schedule, choose ``progress_every=1`` for one value per epoch).

Epochs that did not run (after early stopping) are not written. A population's history
(leading member axis) is written as one TensorBoard run per member, ``logdir/member_<i>``.

The writing is done by ``tensorboardX`` (``pip install "nnjax[tensorboard]"``); the files are
ordinary TensorBoard event files (``tensorboard --logdir DIR``).

Example:
  >>> import jax, optax, nnjax, tempfile
  >>> from nnjax.tensorboard import Writer
  >>> data = nnjax.data.load_dataset("xor")
  >>> net = nnjax.MLP((2, 8, 1), activation="tanh", output="sigmoid")
  >>> with Writer(tempfile.mkdtemp()) as writer:
  ...     result = nnjax.fit(jax.random.key(0), net, (data.x, data.y), loss="binary_cross_entropy",
  ...                        optimizer="adam", learning_rate=0.05, epochs=4, batch_size=32,
  ...                        progress=writer, progress_every=2)
  >>> writer.steps_written
  4
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

__all__ = ["Writer", "learning_rate"]

_SKIPPED_KEYS = ("epoch", "stopped")


def learning_rate(opt_state: Any) -> np.ndarray | None:
    """The learning rate held by an ``optax.inject_hyperparams`` state inside ``opt_state``.

    Args:
      opt_state: an optax optimiser state (a chain's tuple of states is searched in order).

    Returns:
      The first injected ``learning_rate`` found (the rate of the last step taken; a leading
      member axis for a population), or None when no injected state holds one.
    """
    import optax

    injected = (optax.InjectHyperparamsState, optax.InjectStatefulHyperparamsState)
    stack = [opt_state]
    while stack:
        node = stack.pop(0)
        if isinstance(node, injected):
            if "learning_rate" in node.hyperparams:
                return np.asarray(node.hyperparams["learning_rate"])
            stack.insert(0, node.inner_state)
        elif isinstance(node, (tuple, list)):
            stack[:0] = list(node)
        elif isinstance(node, dict):
            stack[:0] = list(node.values())
    return None


class Writer:
    """Writes a training history as TensorBoard scalars (a progress hook for ``nnjax.fit``).

    Args:
      logdir: the directory of the event files (created if missing).
      purge_step: when continuing a run in the same directory, the first epoch written anew:
        TensorBoard discards any earlier events at this step or later (``tensorboardX``'s
        ``purge_step``), so a resumed run shows no duplicated tail.
      flush_secs: seconds between flushes of the event files (they are also flushed after
        each chunk).

    Raises:
      ImportError: when ``tensorboardX`` is not installed (``pip install "nnjax[tensorboard]"``).
    """

    def __init__(self, logdir: str | pathlib.Path, *, purge_step: int | None = None, flush_secs: int = 30):
        try:
            import tensorboardX
        except ImportError as err:
            raise ImportError("nnjax.tensorboard.Writer needs tensorboardX: pip install \"nnjax[tensorboard]\"") \
                from err
        self._summary_writer = tensorboardX.SummaryWriter
        self.logdir = pathlib.Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._purge_step = purge_step
        self._flush_secs = flush_secs
        self._writers: dict[str, Any] = {}
        #: epochs written so far (per member for a population).
        self.steps_written = 0

    def _writer(self, name: str) -> Any:
        if name not in self._writers:
            self._writers[name] = self._summary_writer(str(self.logdir / name if name else self.logdir),
                                                       purge_step=self._purge_step, flush_secs=self._flush_secs)
        return self._writers[name]

    def __call__(self, epochs_done: int, metrics: dict) -> None:
        """Writes one epoch's metrics (the plain progress-callable form: the last epoch of a chunk)."""
        self.write_history({k: np.asarray(v)[None] for k, v in metrics.items()})

    def on_chunk(self, epochs_done: int, result: Any) -> None:
        """Writes every epoch of a chunk: ``result`` is the chunk's ``FitResult`` (history of its epochs).

        ``nnjax.fit`` and ``nnjax train`` call this after each chunk instead of ``__call__``.
        """
        ts = getattr(result, "train_state", None)
        rate = None if ts is None else learning_rate(ts.opt_state)
        self.write_history(result.history, learning_rate=rate)

    def write_history(self, history: dict, *, learning_rate: Any = None) -> None:
        """Writes a history (``{name: (epochs, ...)}``, or ``(members, epochs, ...)`` for a population).

        Args:
          history: as in ``FitResult.history``; it must hold ``"epoch"`` (the global epoch of each
            row, the TensorBoard step) and may hold ``"stopped"`` (rows not run are not written).
          learning_rate: the rate at the last row (a scalar, or one per member), or None.
        """
        history = {k: np.asarray(v) for k, v in history.items()}
        if "epoch" not in history:
            raise ValueError(f"history: expected an 'epoch' entry (the global step), got {sorted(history)}")
        if history["epoch"].ndim == 2:  # a population: one run per member
            for m in range(history["epoch"].shape[0]):
                rate = None if learning_rate is None else np.asarray(learning_rate).reshape(-1)[m]
                self._write_rows(f"member_{m}", {k: v[m] for k, v in history.items()}, rate)
        else:
            self._write_rows("", history, learning_rate)
        self.flush()

    def _write_rows(self, run: str, history: dict, rate: Any) -> None:
        writer = self._writer(run)
        steps = history["epoch"].astype(np.int64)
        ran = ~history["stopped"].astype(bool) if "stopped" in history else np.ones(steps.shape, bool)
        written = 0
        for row in np.flatnonzero(ran):
            step = int(steps[row])
            for name, values in sorted(history.items()):
                if name in _SKIPPED_KEYS:
                    continue
                value = values[row]
                # NaN marks "no value" (e.g. the saturation of a ReLU layer): left out, not plotted as a gap
                # with a warning line from tensorboardX for each
                if value.ndim == 0 and np.isfinite(value):
                    writer.add_scalar(name, float(value), step)
                elif value.ndim == 1:
                    for layer, entry in enumerate(value):
                        if np.isfinite(entry):
                            writer.add_scalar(f"{name}/{layer}", float(entry), step)
            written += 1
        if rate is not None and ran.any():
            writer.add_scalar("learning_rate", float(np.asarray(rate)), int(steps[np.flatnonzero(ran)[-1]]))
        if run in ("", "member_0"):  # every member has the same epochs
            self.steps_written += written

    def flush(self) -> None:
        """Writes buffered events to disk."""
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        """Flushes and closes the event files."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
