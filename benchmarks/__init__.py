"""Benchmarks: nnjax against hand-written JAX loops and the libraries people use today.

``python -m benchmarks.run`` runs every workload for every installed peer, side by side
in one process, and writes ``results.json`` and ``results.md``; see ``docs/benchmarks.md``.
"""
