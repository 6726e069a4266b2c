"""The peers: one module per library, each exposing ``PEERS``, a tuple of :class:`~benchmarks.peers.base.Peer`.

A module whose library is not installed is skipped with a note (see :func:`available`).
"""

from __future__ import annotations

import dataclasses
import importlib

from benchmarks.peers.base import Peer, Trainer

__all__ = ["MODULES", "Peer", "Trainer", "available"]

#: Peer modules in table order; the nnjax rows come first.
MODULES = (
    "nnjax_peer",
    "handwritten_scan",
    "jit_step_loop",
    "flax_linen_peer",
    "flax_nnx_peer",
    "equinox_peer",
    "torch_peer",
    "sklearn_peer",
)


def available(modules: tuple[str, ...] = MODULES) -> tuple[list[Peer], list[dict]]:
    """The peers whose libraries import, and a note ``{"module", "reason"}`` for each that does not."""
    peers, skipped = [], []
    for name in modules:
        try:
            module = importlib.import_module(f"benchmarks.peers.{name}")
        except ImportError as err:  # the library is not installed: skip it, say why
            skipped.append({"module": name, "reason": f"{type(err).__name__}: {err}"})
            continue
        peers.extend(dataclasses.replace(p, module=name) for p in module.PEERS)
    return peers, skipped
