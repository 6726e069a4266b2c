"""Atomic file writes (a reader never sees a half-written file, a crash leaves the old one), file
digests (run directories record their data file's, checkpoints every file's) and directory locks
(one process at a time writes a run directory), and writes that Ctrl-C does not cut in half
(:func:`interrupts_deferred`).

Writes only ever replace regular files: a directory, a FIFO, a device or a socket at the target is
refused (renaming a temporary file over ``/dev/null`` would replace the device by a file). A
symbolic link is written through: its target is replaced, the link stays. A storage error (disk
full, read-only file system, no permission) is one :class:`WriteError` naming the file asked for,
never the temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import pathlib
import signal
import stat
import tempfile
import threading
from typing import IO, Any, Callable, Iterator

__all__ = ["LOCK", "DirectoryLock", "Locked", "WriteError", "atomic_write", "check_writable_file", "file_digest", "holder",
           "interrupts_deferred", "kind", "locked"]


class WriteError(OSError):
    """A file that could not be written: a storage error or a path that is no regular file.

    ``str(error)`` is one line naming the path (``path: cannot write (No space left on device)``).
    """

    def __init__(self, path: Any, reason: str, code: int | None = None):
        super().__init__(code or errno.EIO, reason, str(path))
        self.path, self.reason = pathlib.Path(path), reason

    def __str__(self) -> str:
        return f"{self.path}: cannot write ({self.reason})"

    def __reduce__(self):
        return type(self), (self.path, self.reason, self.errno)


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def kind(path: Any) -> str | None:
    """What ``path`` is when it is no regular file ("a directory", "a FIFO", ...), following
    symbolic links; None for a regular file or a path that does not exist."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    return next((name for test, name in _KINDS if test(mode)), None if stat.S_ISREG(mode) else "a special file")


def check_writable_file(path: Any) -> pathlib.Path:
    """The file a write to ``path`` replaces: ``path`` itself, or a symbolic link's target.

    Raises:
      WriteError: ``path`` (or what it links to) is a directory, a FIFO, a device or a socket.
    """
    path = pathlib.Path(path)
    target = pathlib.Path(os.path.realpath(path)) if path.is_symlink() else path
    found = kind(target)
    if found is not None:
        via = f" (a link to {target})" if target != path else ""
        raise WriteError(path, f"expected a regular file or a new one, got {found}{via}",
                         errno.EISDIR if found == "a directory" else errno.EINVAL)
    return target


def atomic_write(path: Any, write: Callable[[IO], None], *, binary: bool = False) -> pathlib.Path:
    """Calls ``write(stream)`` on a temporary file beside ``path``, syncs it, then renames it over ``path``.

    A symbolic link at ``path`` is written through (its target is replaced, the link kept).

    Raises:
      WriteError: ``path`` is no regular file (see :func:`check_writable_file`), or the storage
        failed (disk full, read-only, no permission); the old file, if any, is left as it was.
    """
    path = pathlib.Path(path)
    target = check_writable_file(path)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        mode = "wb" if binary else "w"
        with os.fdopen(handle, mode, **({} if binary else {"encoding": "utf-8", "newline": ""})) as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; use the usual permissions
        os.replace(tmp, target)
    except OSError as err:
        _remove(tmp)
        if isinstance(err, WriteError):
            raise
        raise WriteError(path, err.strerror or str(err) or type(err).__name__, err.errno) from None
    except BaseException:
        _remove(tmp)
        raise
    return path


def _remove(tmp: str | None) -> None:
    if tmp is not None:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_digest(path: Any) -> str:
    """The SHA-256 of a file's bytes, read in blocks of 1 MiB."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------
# Directory locks


LOCK = ".nnjax.lock"


class Locked(OSError):
    """Another process holds the directory's lock."""

    def __init__(self, directory: Any, holder: str):
        super().__init__(errno.EBUSY, f"in use by {holder}", str(directory))
        self.directory, self.holder = pathlib.Path(directory), holder

    def __str__(self) -> str:
        return f"{self.directory} is in use by {self.holder}"


class DirectoryLock:
    """An exclusive lock on a directory, held by this process until :meth:`release` (or its end).

    The lock is ``fcntl.flock`` on ``<directory>/.nnjax.lock``, which holds the owner's process id:
    the kernel drops it when the process ends, however it ends (a killed run leaves no stale
    lock). :meth:`release` removes the file while still holding the lock; a process that opened
    the old file just before sees that its file is no longer the directory's and tries again.
    """

    def __init__(self, directory: Any, fd: int):
        self.directory, self._fd = pathlib.Path(directory), fd

    @classmethod
    def acquire(cls, directory: Any) -> DirectoryLock:
        """Takes the lock of an existing directory at once, or raises :class:`Locked`."""
        import fcntl

        path = pathlib.Path(directory) / LOCK
        for _ in range(8):  # the file can be removed between open and flock by a releasing owner
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_holder(fd)
                os.close(fd)
                raise Locked(directory, holder) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return cls(directory, fd)
            os.close(fd)
        raise Locked(directory, "another process (its lock file keeps changing)")

    def release(self) -> None:
        """Removes the lock file and lets go of the lock (once; later calls do nothing)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.directory / LOCK)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> DirectoryLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def holder(directory: Any) -> str | None:
    """Who holds ``directory``'s lock ("another process (pid N)"), or None when nobody does;
    creates nothing."""
    import fcntl

    try:
        fd = os.open(pathlib.Path(directory) / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _read_holder(fd)
    finally:
        os.close(fd)
    return None


def _read_holder(fd: int) -> str:
    try:
        pid = int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return "another process"
    return f"another process (pid {pid})"


@contextlib.contextmanager
def locked(directory: Any) -> Iterator[DirectoryLock]:
    """``with locked(directory):`` holds :class:`DirectoryLock` for the block."""
    lock = DirectoryLock.acquire(directory)
    try:
        yield lock
    finally:
        lock.release()


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C (SIGINT) during the block takes effect when the block is done.

    For writes run by worker threads (orbax's checkpoint saves): a ``KeyboardInterrupt`` raised in
    the main thread while they run would leave them writing into a shutting-down interpreter
    (tracebacks at exit, a temporary step left behind). The signal is recorded instead, and the
    previous handler is called with it once the block has finished (Python's default raises
    ``KeyboardInterrupt`` there). Outside the main thread, where handlers cannot be set, it does
    nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            if callable(previous):
                previous(signal.SIGINT, None)
            elif previous != signal.SIG_IGN:
                raise KeyboardInterrupt
