"""Checkpoints of training results (or any pytree of arrays) with orbax-checkpoint.

A checkpoint directory holds numbered steps (``<directory>/<step>/``), written by an
``orbax.checkpoint.CheckpointManager``. Every save is atomic: orbax writes into a temporary
directory and renames it to its step number only once everything is on disk, so a process killed
in the middle of a save leaves the previous steps readable and :func:`latest_step` ignores the
unfinished one. Each step also stores a small JSON ``metadata`` dict next to the arrays.

:func:`restore` without ``like`` returns the stored tree with dicts for named tuples and lists
for tuples (orbax's plain form). Pass ``like`` -- a pytree of the same structure, for example a
result of the same configuration or its ``jax.eval_shape`` -- to get the original types back;
leaves are matched by their path (so arrays may have other shapes than in ``like``, e.g. a history
of more epochs), and their dtypes must agree. Arrays come back uncommitted on the default device,
as :func:`nnjax.fit` returns them, so continuing a restored result reuses the compiled program.

Integrity: every step records the SHA-256 of each saved array (dtype, shape and bytes) and of its
metadata, and the size and SHA-256 of each of its files, inside the same atomic commit.
:func:`restore` and :func:`restore_metadata` check them before anything is used; a step that fails
raises :class:`CheckpointError` (a ``ValueError``) with one line naming the step's directory, what is
wrong (``file arrays/manifest.ocdbt: checksum mismatch``, ``array params/0/w: checksum mismatch``,
``file ...: missing``) and the newest intact step. Errors of the storage layer become the same
error. :func:`intact_steps` lists the steps that pass. Steps written by nnjax before these records
existed carry none: they restore unchecked, as before. A save removes the temporary directories
that interrupted saves left behind.

Example:
  >>> import tempfile, jax, optax, nnjax
  >>> from nnjax import checkpoint
  >>> data = nnjax.data.load_dataset("blobs", n=64)
  >>> net = nnjax.MLP((2, 1), output="sigmoid")
  >>> result = nnjax.fit(jax.random.key(0), net, (data.x, data.y), loss="binary_cross_entropy",
  ...                    optimizer=optax.sgd(0.1), epochs=3, batch_size=16)
  >>> directory = tempfile.mkdtemp()
  >>> checkpoint.save(directory, result, metadata={"note": "three epochs"})
  3
  >>> back = checkpoint.restore(directory, like=result)
  >>> bool((back.params[0]["w"] == result.params[0]["w"]).all()), checkpoint.restore_metadata(directory)
  (True, {'note': 'three epochs'})
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import re
import shutil
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from nnjax._base import files
from nnjax._base.files import WriteError
from nnjax.io import integrity
from nnjax.io.integrity import CheckpointError

__all__ = ["CheckpointError", "intact_steps", "latest_intact_step", "latest_step", "restore", "restore_metadata",
           "save", "steps"]

_ARRAYS, _METADATA, _EMPTY = "arrays", "metadata", "empty_arrays"


def _orbax():
    import orbax.checkpoint as ocp  # imported lazily: it takes seconds and only checkpoints need it

    return ocp


@contextlib.contextmanager
def _manager(directory: Any, max_to_keep: int | None = None, create: bool = False) -> Iterator[Any]:
    ocp = _orbax()
    path = pathlib.Path(directory).absolute()
    if not create and not path.is_dir():
        raise FileNotFoundError(f"directory: no checkpoint directory {str(directory)!r}")
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=create, enable_async_checkpointing=False,
        cleanup_tmp_directories=create,  # a save removes what interrupted saves left
        temporary_path_class=integrity.commit_class(),  # records the step's files inside its commit
    )
    with _quiet_reads(not create):
        manager = ocp.CheckpointManager(path, options=options)
        try:
            yield manager
        finally:
            manager.close()


@contextlib.contextmanager
def _quiet_reads(reading: bool) -> Iterator[None]:
    """While reading, orbax's own log lines (e.g. about its bookkeeping file) stay quiet: nnjax's
    checks decide whether a step is usable, and a damaged one raises one CheckpointError."""
    log = logging.getLogger("absl")
    level = log.level
    if reading:
        log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _default_step(tree: Any) -> int | None:
    """A result's epoch count (the largest over a population), else None."""
    train_state = getattr(tree, "train_state", None)
    if train_state is not None and hasattr(train_state, "epoch"):
        return int(np.max(np.asarray(train_state.epoch)))
    return None


def save(
    directory: Any,
    tree: Any,
    *,
    step: int | None = None,
    metadata: dict | None = None,
    max_to_keep: int | None = 3,
) -> int:
    """Saves ``tree`` (a :class:`nnjax.FitResult` or any pytree of arrays) as a new step.

    Args:
      directory: the checkpoint directory (created if missing).
      tree: the pytree to save; PRNG keys are stored with their implementation.
      step: the step number; default the result's epoch count for a ``FitResult``, else one
        more than the latest step (0 for the first).
      metadata: a JSON-serialisable dict stored with the step.
      max_to_keep: keep only this many most recent steps (None keeps all). Older steps are
        removed only after the new one is complete.

    Returns:
      The step number written.

    Raises:
      ValueError: if ``step`` already exists or is negative, ``metadata`` is not a dict, or
        ``max_to_keep`` is not None or an integer >= 1 (0 would keep nothing).
      WriteError: the storage failed (disk full, read-only, no permission), as one ``OSError``
        naming the step; what the failed save had written is removed, the other steps are kept.
    """
    if metadata is not None and not isinstance(metadata, dict):
        raise ValueError(f"metadata: expected a JSON-serialisable dict, got {type(metadata).__name__}")
    if max_to_keep is not None and (isinstance(max_to_keep, bool) or not isinstance(max_to_keep, (int, np.integer))
                                    or max_to_keep < 1):
        raise ValueError(f"max_to_keep: expected an integer >= 1 or None (keep all), got {max_to_keep!r}")
    step_dir = None
    try:
        # Ctrl-C waits for the save (a fraction of a second): orbax writes with worker threads
        with files.interrupts_deferred(), _manager(directory, max_to_keep=max_to_keep, create=True) as manager:
            step = _new_step(manager, directory, tree, step)
            step_dir = _step_dir(directory, step)
            _write_step(manager, step, tree, metadata)
    except Exception as err:  # the storage layer's errors (disk full, read-only) as one WriteError
        if isinstance(err, WriteError) or not _is_storage_error(err):
            raise
        if step_dir is not None:
            _remove_unfinished(step_dir)
        raise WriteError(step_dir or directory, _write_reason(err), getattr(err, "errno", None)) from None
    return step


def _new_step(manager: Any, directory: Any, tree: Any, step: int | None) -> int:
    if step is None:
        step = _default_step(tree)
        if step is None:
            latest = manager.latest_step()
            step = 0 if latest is None else latest + 1
    step = int(step)
    if step < 0:
        raise ValueError(f"step: expected a step number >= 0, got {step}")
    if step in manager.all_steps():
        raise ValueError(f"step: expected a new step number, got {step} which {directory} already holds")
    return step


def _write_step(manager: Any, step: int, tree: Any, metadata: dict | None) -> None:
    ocp = _orbax()
    tree, empty = _set_aside_empty(tree)
    record = {"version": integrity.VERSION, "arrays": integrity.array_digests(tree),
              "metadata": integrity.json_digest(metadata or {}), "empty": integrity.json_digest({"arrays": empty})}
    args = ocp.args.Composite(**{
        _ARRAYS: ocp.args.StandardSave(tree),
        _METADATA: ocp.args.JsonSave(metadata or {}),
        _EMPTY: ocp.args.JsonSave({"arrays": empty}),
        integrity.ITEM: ocp.args.JsonSave(record),
    })
    integrity.quiet_failed_reads()  # a failed write leaves the same reports behind as a failed read
    with _quiet_reads(True):  # orbax logs each failing thread's error; the one WriteError says it once
        manager.save(step, args=args)
        manager.wait_until_finished()


_OS_ERROR_CODE = re.compile(r"os_error_code='?(\d+)")


def _is_storage_error(err: BaseException) -> bool:
    """Whether an error of orbax or tensorstore comes from the storage (tensorstore's are ValueErrors)."""
    return isinstance(err, OSError) or bool(_OS_ERROR_CODE.search(str(err))) or \
        any(code in str(err) for code in ("RESOURCE_EXHAUSTED", "PERMISSION_DENIED", "UNAVAILABLE"))


def _write_reason(err: BaseException) -> str:
    """The operating system's words for a failed write ("No space left on device"), else its status."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    code = _OS_ERROR_CODE.search(str(err))
    if code:
        return os.strerror(int(code.group(1)))
    return integrity.storage_reason(err).split(": ", 1)[-1]


def _remove_unfinished(step_dir: pathlib.Path) -> None:
    """Removes what a failed save of ``step_dir`` left: orbax's temporary directory of the step."""
    for leftover in step_dir.parent.glob(f"{step_dir.name}.orbax-checkpoint-tmp*"):
        shutil.rmtree(leftover, ignore_errors=True)

def steps(directory: Any) -> list[int]:
    """The complete steps in ``directory``, ascending (unfinished saves are not listed)."""
    if not pathlib.Path(directory).is_dir():
        return []
    with _manager(directory) as manager:
        return sorted(manager.all_steps())


def latest_step(directory: Any) -> int | None:
    """The newest complete step in ``directory``, or None when there is none."""
    found = steps(directory)
    return found[-1] if found else None


def _resolve_step(manager: Any, directory: Any, step: int | None) -> int:
    available = sorted(manager.all_steps())
    if not available:
        raise FileNotFoundError(f"directory: no complete checkpoint in {str(directory)!r}")
    if step is None:
        return available[-1]
    if int(step) not in available:
        raise ValueError(f"step: expected one of the saved steps {available}, got {step}")
    return int(step)


def restore(directory: Any, like: Any = None, *, step: int | None = None) -> Any:
    """Reads a saved step (default the newest complete one), once it has passed its checks.

    Args:
      directory: the checkpoint directory given to :func:`save`.
      like: a pytree of the saved structure (arrays or ``jax.ShapeDtypeStruct``) to rebuild the
        original types (named tuples, tuples, optax states) from; None returns orbax's plain form.
      step: the step to read.

    Returns:
      The saved tree; with ``like``, a tree of ``like``'s structure holding the saved arrays.

    Raises:
      FileNotFoundError: no such directory, or no complete step in it.
      CheckpointError: the step is damaged (a file or array does not match its recorded digest,
        or the storage layer cannot read it); the message names the newest intact step.
      ValueError: an unknown ``step``, or a ``like`` whose paths or dtypes the step lacks.
    """
    with _manager(directory) as manager:
        step = _resolve_step(manager, directory, step)
        raw = _checked(manager, directory, step, _read_arrays)
    return raw if like is None else _rebuild(raw, like, directory, step)


def restore_metadata(directory: Any, *, step: int | None = None) -> dict:
    """The metadata dict saved with a step (default the newest complete one).

    The step's files and the metadata's digest are checked (its arrays are not decoded);
    a damaged step raises :class:`CheckpointError` as :func:`restore` does.
    """
    with _manager(directory) as manager:
        step = _resolve_step(manager, directory, step)
        return _checked(manager, directory, step, _read_metadata)


def intact_steps(directory: Any) -> list[int]:
    """The complete steps in ``directory`` that pass every check of :func:`restore`, ascending.

    Every array of every step is read and compared with its digest: this costs a restore per step.
    """
    if not pathlib.Path(directory).is_dir():
        return []
    with _manager(directory) as manager:
        return [s for s in sorted(manager.all_steps()) if _intact(manager, directory, s)]


def latest_intact_step(directory: Any) -> int | None:
    """The newest step in ``directory`` that passes every check of :func:`restore`, or None."""
    if not pathlib.Path(directory).is_dir():
        return None
    with _manager(directory) as manager:
        return next((s for s in sorted(manager.all_steps(), reverse=True) if _intact(manager, directory, s)), None)


def _step_dir(directory: Any, step: int) -> pathlib.Path:
    return pathlib.Path(directory).absolute() / str(step)


def _checked(manager: Any, directory: Any, step: int, read: Any) -> Any:
    """``read(manager, step, recorded)`` after the step's files passed; damage as one CheckpointError."""
    try:
        return read(manager, step, integrity.check_files(_step_dir(directory, step)))
    except integrity.Damaged as damage:
        reason = str(damage)
    others = (s for s in sorted(manager.all_steps(), reverse=True) if s != step)
    intact = next((s for s in others if _intact(manager, directory, s)), None)
    raise CheckpointError(_step_dir(directory, step), reason, intact) from None


def _intact(manager: Any, directory: Any, step: int) -> bool:
    try:
        _read_arrays(manager, step, integrity.check_files(_step_dir(directory, step)))
    except integrity.Damaged:
        return False
    return True


def _storage_restore(manager: Any, step: int, items: dict) -> dict:
    """orbax's restore of some items; any failure of the storage layer becomes :class:`integrity.Damaged`."""
    ocp = _orbax()
    integrity.quiet_failed_reads()  # the reports a failed read leaves can come before its error
    try:
        return manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as err:  # tensorstore, orbax, JSON and file-system errors alike: the step is unreadable
        raise integrity.Damaged(integrity.storage_reason(err)) from None


def _read_arrays(manager: Any, step: int, recorded: bool) -> Any:
    ocp = _orbax()
    items = {_ARRAYS: ocp.args.StandardRestore(), _EMPTY: ocp.args.JsonRestore()}
    if recorded:
        items[integrity.ITEM] = ocp.args.JsonRestore()
    restored = _storage_restore(manager, step, items)
    if recorded:
        record = restored[integrity.ITEM]
        if not isinstance(record, dict):
            raise integrity.Damaged(f"item {integrity.ITEM}: unreadable")
        integrity.check_arrays(record, restored[_ARRAYS])
        if integrity.json_digest(restored[_EMPTY]) != record.get("empty"):
            raise integrity.Damaged(f"item {_EMPTY}: checksum mismatch")
    raw = jax.tree.map(_uncommitted, restored[_ARRAYS])
    for entry in restored[_EMPTY]["arrays"]:
        _put_back_empty(raw, entry)
    return raw


def _read_metadata(manager: Any, step: int, recorded: bool) -> dict:
    ocp = _orbax()
    items = {_METADATA: ocp.args.JsonRestore()}
    if recorded:
        items[integrity.ITEM] = ocp.args.JsonRestore()
    restored = _storage_restore(manager, step, items)
    metadata = dict(restored[_METADATA])
    record = restored.get(integrity.ITEM) if recorded else None
    if recorded and (not isinstance(record, dict) or integrity.json_digest(metadata) != record.get("metadata")):
        raise integrity.Damaged(f"item {_METADATA}: checksum mismatch")
    return metadata


def _uncommitted(leaf: Any) -> Any:
    """``leaf`` as an uncommitted array on the default device, like the arrays ``fit`` returns.

    orbax hands back arrays committed to a device; ``jit`` compiles anew for committed arguments,
    so a resumed ``fit`` would compile its program a second time.
    """
    if not isinstance(leaf, jax.Array):
        return leaf
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(np.asarray(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
    return jnp.asarray(np.asarray(leaf))


def _set_aside_empty(tree: Any) -> tuple[Any, list[dict]]:
    """Replaces zero-size arrays (which orbax refuses, e.g. a net without hidden layers has no
    dead-unit statistics) by one-element stand-ins, and lists where they were."""
    empty = []

    def swap(path, leaf):
        if getattr(leaf, "size", 1) != 0:
            return leaf
        dtype = np.dtype(leaf.dtype)
        empty.append({"path": [_path_entry(p) for p in path], "shape": list(leaf.shape), "dtype": dtype.name})
        return np.zeros((1,), dtype)

    return jax.tree_util.tree_map_with_path(swap, tree), empty


def _put_back_empty(raw: Any, entry: dict) -> None:
    """Puts a zero-size array back where :func:`_set_aside_empty` took it from, in the plain tree."""
    *parents, last = entry["path"]
    node = raw
    for name in parents:
        node = node[name] if not isinstance(node, dict) or name in node else node[str(name)]
    if isinstance(node, dict) and last not in node:
        last = str(last)
    node[last] = jnp.zeros(entry["shape"], entry["dtype"])


def _path_entry(entry: Any) -> Any:
    for attribute in ("key", "name", "idx"):  # DictKey, GetAttrKey, SequenceKey / FlattenedIndexKey
        if hasattr(entry, attribute):
            return getattr(entry, attribute)
    raise ValueError(f"like: unsupported pytree path entry {entry!r}")


def _lookup(raw: Any, path: tuple) -> Any:
    node = raw
    for entry in path:
        name = _path_entry(entry)
        if isinstance(node, dict):
            if name not in node and str(name) not in node:
                raise KeyError(name)
            node = node[name] if name in node else node[str(name)]
        elif isinstance(node, (list, tuple)) and isinstance(name, int) and name < len(node):
            node = node[name]
        else:
            raise KeyError(name)
    return node


def _rebuild(raw: Any, like: Any, directory: Any, step: int) -> Any:
    def leaf(path, template):
        where = jax.tree_util.keystr(path) or "<root>"
        try:
            value = _lookup(raw, path)
        except KeyError:
            raise ValueError(f"like: step {step} of {directory} has no entry {where}") from None
        expected = getattr(template, "dtype", None)
        if expected is not None and getattr(value, "dtype", None) != expected:
            raise ValueError(
                f"like: expected dtype {expected} at {where}, got {getattr(value, 'dtype', type(value).__name__)} "
                f"in step {step} of {directory}"
            )
        return value

    return jax.tree_util.tree_map_with_path(leaf, like)
