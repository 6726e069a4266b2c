"""Integrity records of checkpoint steps: digests written with a step, checked before it is used.

A step written by :func:`nnjax.checkpoint.save` carries two records, both inside the step's atomic
commit (orbax writes the step into a temporary directory and renames it once complete):

- the ``integrity`` item, saved next to ``arrays`` and ``metadata``: the SHA-256 of every saved
  array (its dtype, shape and bytes; PRNG keys through their key data), keyed by the array's path
  (``params/0/w``), and of the metadata dict and the list of zero-size arrays;
- ``nnjax_files.json`` at the top of the step, written by the commit itself just before the
  rename: the size and SHA-256 of every file of the step but orbax's own commit bookkeeping.

Files are checked first, so a damaged file is found by its digest before the storage layer reads
it; the arrays' digests then check what was decoded. The pieces here raise :class:`Damaged` with
the reason; :mod:`nnjax.checkpoint` turns it into its public ``CheckpointError``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import os
import pathlib
import re
import sys
from typing import Any

import jax
import numpy as np

from nnjax._base.files import file_digest

__all__ = ["FILES", "ITEM", "CheckpointError", "Damaged", "array_digests", "check_arrays", "check_files",
           "commit_class", "json_digest", "storage_reason"]

FILES = "nnjax_files.json"
ITEM = "integrity"
VERSION = 1
# Written or rewritten by orbax's commit after the file record: never part of it.
_UNHASHED = {FILES, "_CHECKPOINT_METADATA", "commit_success.txt"}


class CheckpointError(ValueError):
    """A checkpoint step that is damaged or unreadable: it is never used.

    Attributes:
      step_dir: the step's directory.
      reason: what is wrong, e.g. ``"array params/0/w: checksum mismatch"``.
      intact_step: the newest other step that passed every check, or None.
    """

    __module__ = "nnjax.checkpoint"  # where users import it from

    def __init__(self, step_dir: Any, reason: str, intact_step: int | None = None):
        self.step_dir, self.reason, self.intact_step = pathlib.Path(step_dir), reason, intact_step
        if intact_step is None:
            tail = f"no intact checkpoint is left in {self.step_dir.parent}"
        else:
            tail = f"the newest intact checkpoint is {self.step_dir.parent / str(intact_step)}"
        super().__init__(f"checkpoint {self.step_dir} is damaged: {reason}; {tail}")

    def __reduce__(self):  # pickles (e.g. across processes) with its fields, not only its message
        return type(self), (self.step_dir, self.reason, self.intact_step)


class Damaged(Exception):
    """Internal: one check failed, with the reason (no step, no newest intact step yet)."""


def json_digest(value: Any) -> str:
    """The SHA-256 of ``value`` as JSON would store and read it back (tuples as lists, str keys)."""
    plain = json.loads(json.dumps(value))
    return hashlib.sha256(json.dumps(plain, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _path_name(path: tuple) -> str:
    parts = []
    for entry in path:
        for attribute in ("key", "name", "idx"):  # DictKey, GetAttrKey, SequenceKey / FlattenedIndexKey
            if hasattr(entry, attribute):
                parts.append(str(getattr(entry, attribute)))
                break
        else:
            parts.append(str(entry))
    return "/".join(parts) or "<root>"


def _array_digest(leaf: Any) -> str:
    if hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    array = np.ascontiguousarray(np.asarray(leaf))
    digest = hashlib.sha256(f"{array.dtype.name}{array.shape}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def array_digests(tree: Any) -> dict[str, str]:
    """``{path: sha256}`` of every leaf of ``tree`` (dtype, shape and bytes)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {_path_name(path): _array_digest(leaf) for path, leaf in leaves}


def check_arrays(record: dict, tree: Any) -> None:
    """Raises :class:`Damaged` unless ``tree``'s leaves are exactly the recorded ones."""
    expected, found = record.get("arrays", {}), array_digests(tree)
    for name in sorted(expected.keys() | found.keys()):
        if name not in found:
            raise Damaged(f"array {name}: missing")
        if name not in expected:
            raise Damaged(f"array {name}: not in the integrity record")
        if found[name] != expected[name]:
            raise Damaged(f"array {name}: checksum mismatch")


def _step_files(step_dir: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in step_dir.rglob("*") if p.is_file() and p.relative_to(step_dir).as_posix() not in _UNHASHED)


def write_file_record(step_dir: pathlib.Path) -> None:
    """Writes ``nnjax_files.json``: size and SHA-256 of every file of the (complete, uncommitted) step."""
    files = {p.relative_to(step_dir).as_posix(): [p.stat().st_size, file_digest(p)] for p in _step_files(step_dir)}
    with (step_dir / FILES).open("w", encoding="utf-8") as stream:
        json.dump({"version": VERSION, "files": files}, stream, indent=1, sort_keys=True)
        stream.flush()
        os.fsync(stream.fileno())


def check_files(step_dir: pathlib.Path) -> bool:
    """Checks every recorded file of a step; False for a step written without records (older nnjax).

    Raises:
      Damaged: a file is missing, has another size or another digest, or the record is unreadable.
    """
    record_path = step_dir / FILES
    if not record_path.is_file():
        if (step_dir / ITEM).exists():
            raise Damaged(f"file {FILES}: missing")
        return False
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        files = record["files"]
        if not isinstance(files, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise Damaged(f"file {FILES}: unreadable manifest") from None
    for name, (size, digest) in sorted(files.items()):
        path = step_dir / name
        if not path.is_file():
            raise Damaged(f"file {name}: missing")
        actual = path.stat().st_size
        if actual != size:
            raise Damaged(f"file {name}: expected {size} bytes, got {actual}")
        if file_digest(path) != digest:
            raise Damaged(f"file {name}: checksum mismatch")
    if not (step_dir / ITEM).exists():
        raise Damaged(f"integrity record {ITEM}/: missing")
    return True


_STATUS = re.compile(r"\b([A-Z][A-Z_]{3,}):")
_READING = re.compile(r'Error reading "([^"/]+)')


def storage_reason(err: BaseException) -> str:
    """A one-line reason for an exception of the storage layer (tensorstore, orbax, the file system)."""
    if isinstance(err, FileNotFoundError):
        return f"file {pathlib.Path(err.filename).name if err.filename else '?'}: missing"
    text = " ".join(str(err).split("[tensorstore_spec=")[0].split())
    status = _STATUS.search(text)
    where = _READING.search(text)
    what = f"array {where.group(1).replace('.', '/')}" if where else "storage"
    if "manifest" in text:
        return f"{what}: unreadable manifest"
    detail = status.group(1).lower().replace("_", " ") if status else type(err).__name__
    return f"{what}: unreadable ({detail})"


def _is_closed_loop_report(error: BaseException | None) -> bool:
    return isinstance(error, RuntimeError) and str(error) == "Event loop is closed"


class _TaskReportFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # asyncio words it "Task ..." or "_GatheringFuture exception was never retrieved"
        return not str(record.msg).partition("\n")[0].endswith("exception was never retrieved")


@functools.cache
def quiet_failed_reads() -> None:
    """Hides the reports a failed read leaves behind (installed once per process, at the first restore).

    When one array cannot be read, orbax closes its event loop while the storage layer still
    finishes the other reads; their callbacks then report "Event loop is closed" (and asyncio
    "Task exception was never retrieved") on stderr, around the time the error itself is raised.
    Only those two reports are hidden; everything else reaches the previous hooks.
    """
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if not _is_closed_loop_report(unraisable.exc_value):
            previous(unraisable)

    sys.unraisablehook = hook
    logging.getLogger("asyncio").addFilter(_TaskReportFilter())


@functools.cache
def commit_class() -> type:
    """orbax's atomic-rename commit, writing :data:`FILES` into the step just before the rename."""
    from orbax.checkpoint.path import atomicity

    class RecordingCommit(atomicity.AtomicRenameTemporaryPath):
        async def finalize(self, *args, **kwargs):
            await asyncio.to_thread(write_file_record, pathlib.Path(str(self.get())))
            return await super().finalize(*args, **kwargs)

    return RecordingCommit
