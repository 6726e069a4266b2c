"""A run's history on disk in append-only segments, so that a checkpoint carries only its own epochs.

``nnjax train`` checkpoints every K epochs. Were each checkpoint to hold the history of every epoch
so far, a long run would write its history again at every checkpoint (a few hundred bytes an
epoch: 10^5 epochs, 13 MB a checkpoint, however small the network). Instead:

* a checkpoint at epoch ``e`` holds the history of the epochs since the previous checkpoint ``p``
  (inside its atomic, checksummed save), and its metadata names ``p`` and the SHA-256 of the
  segment that ends at ``p`` (``{"history": {"from": p, "head": digest}}``);
* after the save, that tail is written as the segment ``RUN/history/<e>.npz`` (atomically: a
  temporary file renamed into place), which holds its rows, its first epoch and the SHA-256 of the
  segment before it: a chain back to epoch 0.

:func:`whole` rebuilds a restored checkpoint's whole history by walking the chain from its head,
checking every digest; a missing or damaged segment is a :class:`HistoryError` naming the file.
Segments beyond the checkpoint restored (from a run stopped between a segment and the next
checkpoint) are never read, and are replaced when those epochs are trained again (bit for bit the
same). A checkpoint without the ``history`` entry (written before segments existed, or by
:func:`nnjax.checkpoint.save` directly) holds its whole history itself, as before.

Example:
  >>> import pathlib, tempfile, numpy as np
  >>> run = pathlib.Path(tempfile.mkdtemp())
  >>> head = write_segment(run, {"loss": np.array([3.0, 2.0], np.float32)}, start=0, end=2, previous="")
  >>> tail = {"loss": np.array([1.5], np.float32)}  # what the checkpoint of epoch 3 holds itself
  >>> whole(run, tail, {"history": {"from": 2, "head": head}})["loss"].tolist()
  [3.0, 2.0, 1.5]
"""

from __future__ import annotations

import hashlib
import io
import pathlib
from typing import Any

import numpy as np

from nnjax._base import files

__all__ = ["DIRECTORY", "HistoryError", "digest", "rows", "segment_path", "whole", "write_segment"]

#: The folder of a run directory that holds the segments.
DIRECTORY = "history"
_KEY = "history/"  # prefix of the history entries inside a segment file


class HistoryError(ValueError):
    """A segment of a run's history is missing or damaged (one line naming the file)."""


def segment_path(run_dir: Any, end: int) -> pathlib.Path:
    """The segment that ends at epoch ``end``."""
    return pathlib.Path(run_dir) / DIRECTORY / f"{int(end)}.npz"


def rows(history: dict[str, Any], start: int, end: int, axis: int = 0) -> dict[str, np.ndarray]:
    """The rows ``[start, end)`` of every history entry along the epoch ``axis`` (1 for a population)."""
    index = np.arange(start, end)
    return {k: np.take(np.asarray(v), index, axis=axis) for k, v in history.items()}


def digest(segment: dict[str, np.ndarray], start: int, end: int, previous: str) -> str:
    """The SHA-256 of a segment: its epochs, the digest before it and every entry's dtype, shape and bytes."""
    h = hashlib.sha256(f"{int(start)}:{int(end)}:{previous}".encode())
    for name in sorted(segment):
        array = np.ascontiguousarray(segment[name])
        h.update(f"|{name}|{array.dtype.str}|{array.shape}|".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def write_segment(run_dir: Any, segment: dict[str, np.ndarray], *, start: int, end: int, previous: str) -> str:
    """Writes the epochs ``[start, end)`` as ``RUN/history/<end>.npz``; returns its digest.

    A file already there with the same digest is left as it is (a resumed run writes nothing it
    had); any other is replaced atomically.

    Raises:
      nnjax._base.files.WriteError: the storage failed (one ``OSError`` naming the file).
    """
    value = digest(segment, start, end, previous)
    path = segment_path(run_dir, end)
    try:
        if _read(path)[3] == value:
            return value
    except HistoryError:
        pass
    arrays = {_KEY + k: np.asarray(v) for k, v in segment.items()}
    arrays.update(start=np.int64(start), end=np.int64(end), previous=np.str_(previous))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    files.atomic_write(path, lambda stream: stream.write(buffer.getvalue()), binary=True)
    return value


def _read(path: pathlib.Path) -> tuple[dict[str, np.ndarray], int, str, str]:
    """``(segment, start, previous, digest)`` of a segment file, the digest computed from its contents."""
    try:
        with np.load(path, allow_pickle=False) as data:
            segment = {k[len(_KEY):]: data[k] for k in data.files if k.startswith(_KEY)}
            start, end, previous = int(data["start"]), int(data["end"]), str(data["previous"])
    except FileNotFoundError:
        raise HistoryError(f"history: segment {path} is missing") from None
    except (OSError, ValueError, KeyError, EOFError) as err:  # truncated, not a zip, an entry missing
        raise HistoryError(f"history: segment {path} is damaged ({type(err).__name__})") from None
    return segment, start, previous, digest(segment, start, end, previous)


def whole(run_dir: Any, tail: dict[str, Any], metadata: dict, axis: int = 0) -> dict[str, np.ndarray]:
    """The whole history of a restored checkpoint: the segments before it (checked) and its own ``tail``.

    Args:
      run_dir: the run directory.
      tail: the history the checkpoint holds itself (its ``FitResult.history``).
      metadata: the checkpoint's metadata; without a ``history`` entry ``tail`` is the whole history.
      axis: the epoch axis (1 for a population).

    Raises:
      HistoryError: a segment of the chain is missing, damaged or not the one the checkpoint names.
    """
    tail = {k: np.asarray(v) for k, v in tail.items()}
    entry = metadata.get("history")
    if not entry:
        return tail
    end, expected = int(entry["from"]), str(entry["head"])
    parts = [tail]
    while end > 0:
        path = segment_path(run_dir, end)
        segment, start, previous, found = _read(path)
        if found != expected or not 0 <= start < end or set(segment) != set(tail):
            raise HistoryError(f"history: segment {path} is damaged (checksum mismatch)")
        parts.append(segment)
        end, expected = start, previous
    parts.reverse()
    return {k: np.concatenate([part[k] for part in parts], axis=axis) for k in tail}
