"""The XLA options nnjax's training programs are compiled with, per backend.

A training step of a small network is a few dozen kernels of a few microseconds each. XLA's CPU
compiler orders them, by default, to run as many independent kernels side by side on its
thread pool as it can; on a machine with few cores the hand-offs between threads cost more than
the kernels. With the per-layer diagnostics on (many small independent reductions), a
64-128-64-10 network trained 1.7x slower than without them on a 2-core CPU; compiled with the
memory-optimised schedule (:data:`CPU_OPTIONS`), both run at the speed of a hand-written
``lax.scan`` (``benchmarks/run.py``, W1). Large networks (W2) are unaffected.

:func:`jit` is ``jax.jit`` with these options for programs that run on the CPU; nothing changes
on GPUs and TPUs, nor for your own ``jax.jit`` programs. ``NNJAX_XLA_OPTIONS=off`` compiles
nnjax's programs with XLA's defaults (``XLA_FLAGS`` then applies as usual). An XLA that does not
know an option (older jaxlib) gets the defaults, once, without an error.

Example:
  >>> from nnjax import xla_options
  >>> xla_options.options_for("cpu", {})
  {'xla_cpu_scheduler_type': 'CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED'}
  >>> xla_options.options_for("gpu", {}), xla_options.options_for("cpu", {"NNJAX_XLA_OPTIONS": "off"})
  ({}, {})
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Mapping

import jax

__all__ = ["CPU_OPTIONS", "jit", "options_for"]

#: Compiler options of nnjax's programs on the CPU backend.
CPU_OPTIONS: dict[str, Any] = {"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"}

_OFF = frozenset({"0", "off", "none", "false", "no"})


def options_for(backend: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compiler options for a program on ``backend`` ("cpu", "gpu", ...), given the environment."""
    env = os.environ if env is None else env
    if env.get("NNJAX_XLA_OPTIONS", "").strip().lower() in _OFF:
        return {}
    return dict(CPU_OPTIONS) if backend == "cpu" else {}


def _unknown_option(error: Exception) -> bool:
    return any(name in str(error) for name in CPU_OPTIONS)


def jit(fun: Callable, **jit_kwargs) -> Callable:
    """``jax.jit(fun, **jit_kwargs)``, compiled with :func:`options_for` the default backend.

    The returned function has ``lower`` (the tuned program's, as ``jax.jit``'s) and ``plain``
    (the ``jax.jit`` of XLA's defaults).
    """
    plain = jax.jit(fun, **jit_kwargs)
    tuned: dict[tuple, Callable] = {}
    known = {"ok": True}

    def _pick() -> Callable:
        if not known["ok"]:
            return plain
        options = options_for(jax.default_backend())
        if not options:
            return plain
        key = tuple(sorted(options.items()))
        if key not in tuned:
            try:
                tuned[key] = jax.jit(fun, compiler_options=options, **jit_kwargs)
            except TypeError:  # a jax.jit without compiler_options
                known["ok"] = False
                return plain
        return tuned[key]

    @functools.wraps(fun)
    def call(*args, **kwargs):
        chosen = _pick()
        if chosen is plain:
            return plain(*args, **kwargs)
        try:
            return chosen(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - only an XLA that lacks the option is handled
            if not _unknown_option(error):
                raise
            known["ok"] = False
            return plain(*args, **kwargs)

    call.plain = plain
    call.lower = lambda *args, **kwargs: _pick().lower(*args, **kwargs)
    return call
