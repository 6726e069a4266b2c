"""JAX's persistent compilation cache, on by default for nnjax's training programs.

A training program compiles once per problem in a process (see :mod:`nnjax.fitting`); this cache
keeps the compiled programs on disk, so the next process that trains the same problem loads
them instead of compiling again (the README's quick start: a 3-5x faster first fit).

:func:`nnjax.fit`, and so the estimators and the examples, calls :func:`enable_default` once
per process; the command line calls it before its set-up. It changes nothing when you configured
JAX's cache yourself (``jax_compilation_cache_dir``); otherwise it points JAX at
``$NNJAX_CACHE_DIR``, or ``$XDG_CACHE_HOME/nnjax/xla`` (``~/.cache/nnjax/xla``), and caches
every program, however short its compile (JAX's default keeps only those of 1 s or more). The
small ones count: a default ``nnjax train`` also compiles ~30 programs of 5-200 ms (the data
split's shuffle, the initial draws, the optimizer's zeros, the scoring pass), about 1 s of XLA in
all on a 2-core machine, which a second run reads from disk (about 20 programs, 0.4 MB in all). The
directory is capped at :data:`MAX_BYTES` (1 GiB): JAX removes the least recently used programs
beyond it.
``NNJAX_CACHE_DIR=off`` (or ``0``, ``none``, ``false``) switches it off.

Example:
  >>> from nnjax import cache
  >>> cache.directory_from_env({"NNJAX_CACHE_DIR": "off"}) is None
  True
  >>> str(cache.directory_from_env({"NNJAX_CACHE_DIR": "/tmp/xla-cache"}))
  '/tmp/xla-cache'
"""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile
from typing import Mapping

__all__ = ["MAX_BYTES", "OFF", "directory_from_env", "enable", "enable_default", "enabled_directory"]

#: Values of ``NNJAX_CACHE_DIR`` that switch the cache off.
OFF = frozenset({"", "0", "off", "none", "false", "no"})

_done = False


def directory_from_env(env: Mapping[str, str] | None = None) -> pathlib.Path | None:
    """The cache directory the environment asks for (None: switched off)."""
    env = os.environ if env is None else env
    value = env.get("NNJAX_CACHE_DIR")
    if value is not None:
        return None if value.strip().lower() in OFF else pathlib.Path(value).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(base) / "nnjax" / "xla"


def _has_filelock() -> bool:
    try:
        import filelock  # noqa: F401
    except ImportError:
        return False
    return True


#: The default cap on the cache directory's size: JAX then removes the least recently used programs.
MAX_BYTES = 2**30


def enable(directory: str | os.PathLike, *, min_compile_seconds: float = 0.0,
           max_bytes: int | None = MAX_BYTES) -> pathlib.Path:
    """Points JAX's persistent compilation cache at ``directory`` (created if missing).

    ``max_bytes`` caps the directory (JAX evicts the least recently used programs beyond it;
    None: no cap). Every program is cached by default, so the cap keeps many problems' small
    programs from filling a disk. JAX's eviction needs the ``filelock`` package (a dependency of
    nnjax); where it is missing the cache runs without a cap rather than not at all.
    """
    import jax

    path = pathlib.Path(directory).expanduser().absolute()
    path.mkdir(parents=True, exist_ok=True)
    tempfile.TemporaryFile(dir=path).close()  # a read-only cache would warn at every program JAX compiles
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    if max_bytes is not None and not _has_filelock():
        max_bytes = None  # JAX's eviction needs filelock; without it a cap would switch the cache off
    jax.config.update("jax_compilation_cache_max_size", -1 if max_bytes is None else int(max_bytes))
    return path


def enabled_directory() -> str | None:
    """The directory JAX's persistent cache uses now (None: off)."""
    import jax

    return jax.config.jax_compilation_cache_dir


def enable_default() -> str | None:
    """Once per process: the environment's cache, unless JAX's cache is already configured."""
    global _done
    if not _done:
        _done = True
        directory = directory_from_env()
        if directory is not None and enabled_directory() is None:
            try:
                enable(directory)
            except OSError as err:  # an unwritable home: train without the cache rather than fail, said once
                print(f"nnjax: note: compilation cache off: {directory} is not writable "
                      f"({err.strerror or type(err).__name__}); set NNJAX_CACHE_DIR to another folder or off",
                      file=sys.stderr)
    return enabled_directory()
