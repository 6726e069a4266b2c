"""Kernels per minibatch step: how many operations XLA runs in the compiled inner loop.

On a CPU, a small network's step costs roughly a fixed price per kernel
(thread-pool dispatch, a pass over memory), so the number of kernels in the
innermost ``while`` body is a load-independent measure of per-step overhead:
it does not move when other processes share the machine, unlike timings.
Each program is compiled through public entry points only (``jax.jit`` over
``nnjax.fit``), so the count follows whatever ``nnjax.fit`` compiles today.

Example:
  >>> from benchmarks import workloads
  >>> counts = count_all(workloads.build("w5", quick=True))
  >>> counts["hand-written lax.scan"]["ops"] > 0
  True
"""

from __future__ import annotations

import collections
import re

import jax
import jax.numpy as jnp
import optax

import nnjax
from benchmarks.peers.handwritten_scan import make_run
from benchmarks.peers.jax_mlp import as_tuples
from benchmarks.workloads import Workload

__all__ = ["count_all", "inner_loop_ops"]

_BOOKKEEPING = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast"}


def _computations(hlo: str) -> dict[str, list[str]]:
    """Computation name -> its instruction lines, from compiled HLO text."""
    out, current = {}, None
    for line in hlo.splitlines():
        header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$", line)
        if header:
            current = header.group(1)
            out[current] = []
        elif line.startswith("}"):
            current = None
        elif current is not None and " = " in line:
            out[current].append(line.strip())
    return out


def inner_loop_ops(hlo: str) -> dict:
    """The largest ``while`` body that holds no loop itself (the minibatch step) and what runs in it.

    Returns:
      ``{"ops": executed operations, "by_kind": {opcode: count}}``; bookkeeping
      instructions (parameters, tuples, constants, bitcasts) are not counted.
    """
    comps = _computations(hlo)
    bodies = set(re.findall(r"body=%?([\w.\-]+)", hlo))
    leaves = [b for b in bodies if b in comps and not any(" while(" in line for line in comps[b])]
    if not leaves:
        raise ValueError("hlo: expected a compiled program with a while loop, found none")
    body = max(leaves, key=lambda b: len(comps[b]))
    kinds: collections.Counter = collections.Counter()
    for line in comps[body]:
        op = re.search(r"= \S+ ([a-z][\w\-]*)\(", line)
        if op and op.group(1) not in _BOOKKEEPING:
            kinds[op.group(1)] += 1
    return {"ops": sum(kinds.values()), "by_kind": dict(kinds.most_common())}


def _fit_program(w: Workload, diagnostics: bool) -> str:
    net, optimizer = w.net, optax.sgd(w.learning_rate)

    def train(key, x, y, params):
        return nnjax.fit(key, net, (x, y), loss=w.loss, optimizer=optimizer, epochs=w.epochs,
                         batch_size=w.batch_size, params=params, diagnostics=diagnostics)

    params = [{k: jnp.asarray(v) for k, v in layer.items()} for layer in w.init_params[0]]
    return jax.jit(train).lower(jax.random.key(0), w.x_train, w.y_train, params).compile().as_text()


def count_all(w: Workload) -> dict[str, dict]:
    """Kernels per step of ``nnjax.fit`` (with and without diagnostics) and of the hand-written scan."""
    scan = jax.jit(make_run(w)).lower(as_tuples(w.init_params[0]), w.x_train, w.y_train, jax.random.key(0))
    return {
        "nnjax.fit": inner_loop_ops(_fit_program(w, True)),
        "nnjax.fit (no diagnostics)": inner_loop_ops(_fit_program(w, False)),
        "hand-written lax.scan": inner_loop_ops(scan.compile().as_text()),
    }
