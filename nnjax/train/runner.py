"""Progress for compiled training: run ``fit`` in chunks of epochs and report between them.

The epoch loop is one XLA program, so the host cannot see inside it. Because a
run continues bit for bit (the key schedule depends on the global epoch), it can
be cut into chunks of ``every`` epochs with no change to the result; between
chunks the host updates a tqdm bar (or calls a user callback) and stops early
when every model has stopped.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["format_metrics", "run_in_chunks"]


def format_metrics(metrics: dict[str, Any]) -> dict[str, str]:
    """Short strings for the scalar metrics worth showing on a bar."""
    shown = {}
    for name in ("loss", "accuracy", "val_loss", "val_accuracy", "val_r2"):
        if name in metrics:
            value = np.asarray(metrics[name], np.float64)
            if value.size and np.isfinite(value).any():
                shown[name] = f"{np.nanmean(value):.4g}"
    return shown


def run_in_chunks(run_chunk: Callable[[Any, int], Any], ts: Any, total: int, progress: bool | Callable,
                  every: int | None) -> Any:
    """Runs ``total`` epochs as chunks of ``every`` epochs, reporting between them.

    Args:
      run_chunk: ``run_chunk(train_state, epochs) -> FitResult``, one compiled call
        (:func:`nnjax.fitting.run_compiled`); chunks of any size up to the next power of two
        share its program.
      ts: the train state to start from.
      total: epochs in all.
      progress: True for a tqdm bar (it says "compiling" until the first chunk is back, and
        its rate starts after it), or ``progress(epochs_done, metrics)`` with the last epoch's
        metrics; an object with a method ``on_chunk(epochs_done, chunk_result)`` (such as
        :class:`nnjax.tensorboard.Writer`) gets the chunk's whole ``FitResult`` instead (its
        history holds the chunk's epochs only).
      every: epochs per chunk (default: a tenth of ``total``).

    Returns:
      The last chunk's result with the history of every chunk joined (epochs after a stop,
      never run, hold NaN).
    """
    # Ten updates by default: each chunk boundary costs a host round trip (measured +14% on a
    # 2.4 ms/epoch loop with twenty chunks).
    every = max(1, min(total, every or max(1, total // 10)))
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="epoch", leave=False, desc="compiling")
    chunks, done, result = [], 0, None
    try:
        while done < total:
            size = min(every, total - done)
            result = run_chunk(ts, size)
            ts = result.train_state
            chunks.append(result.history)
            last = jax.tree.map(lambda a: np.asarray(a)[-1], result.history)
            if done == 0 and bar is not None:  # the first chunk paid the compile: time from here
                bar.set_description("training")
                bar.reset(total=total)
            done += size
            if bar is not None:
                bar.update(done - bar.n)
                bar.set_postfix(format_metrics(last))
            elif callable(getattr(progress, "on_chunk", None)):  # e.g. nnjax.tensorboard.Writer
                progress.on_chunk(done, result)
            elif callable(progress):
                progress(done, last)
            if done < total and bool(np.all(np.asarray(ts.stopped))):
                chunks.append(_stopped_tail(result.history, total - done, int(np.asarray(ts.epoch).max())))
                done = total
    finally:
        if bar is not None:
            bar.close()
    history = jax.tree.map(lambda *parts: jnp.asarray(np.concatenate([np.asarray(a) for a in parts], axis=0)),
                           *chunks)
    return result._replace(history=history)


def _stopped_tail(template: dict, length: int, next_epoch: int) -> dict:
    """History rows for epochs never run because training had stopped."""

    def fill(a):
        a = np.asarray(a)
        value = np.nan if np.issubdtype(a.dtype, np.floating) else 0
        return jnp.asarray(np.full((length,) + a.shape[1:], value, a.dtype))

    tail = jax.tree.map(fill, template)
    tail["stopped"] = jnp.ones((length,), bool)
    tail["epoch"] = jnp.arange(next_epoch, next_epoch + length, dtype=jnp.int32)
    return tail
