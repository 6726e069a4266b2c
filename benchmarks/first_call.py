"""The first call in a fresh process: what a user waits for when a script or a notebook starts.

Run as a child process, one peer and one workload::

    python -m benchmarks.first_call --peer nnjax.fit --workload w1 --cache off
    python -m benchmarks.first_call --peer "hand-written lax.scan" --workload w5 --quick --cache /tmp/jaxcache

it imports the libraries and builds the workload (not timed: imports are
excluded, and building the workload draws the initial weights with
``nnjax.init``, so JAX's backend is already up), then times the peer's first
``train`` from just before the call until its results are ready (compilation
included), counts what it compiled, and prints one JSON line.

``--cache off`` switches JAX's persistent compilation cache off before JAX is
imported (``JAX_ENABLE_COMPILATION_CACHE=false``, no ``JAX_COMPILATION_CACHE_DIR``,
``NNJAX_CACHE_DIR=off`` for nnjax's own default cache) and once more through
``jax.config`` after the imports; ``--cache DIR`` points both JAX's and nnjax's cache
at ``DIR`` and stores every program, however quick to compile (minimum compile
time and entry size 0), so a second process finds them all. The JSON line
records the cache settings the call ran with and the cache hits and misses it saw.

:func:`measure` runs those children from the suite (``benchmarks.run``): per peer a
cold process, and optionally a warm pair (one process fills a new cache
directory, the next one is timed), in rotating order.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable

ROOT = pathlib.Path(__file__).resolve().parent.parent

__all__ = ["apply_cache_env", "cache_env", "main", "measure"]


def cache_env(cache: str) -> dict[str, str | None]:
    """Environment settings for ``--cache off`` or ``--cache DIR`` (``None``: remove the variable)."""
    if cache == "off":
        return {"JAX_ENABLE_COMPILATION_CACHE": "false", "JAX_COMPILATION_CACHE_DIR": None, "NNJAX_CACHE_DIR": "off"}
    return {"JAX_ENABLE_COMPILATION_CACHE": "true", "JAX_COMPILATION_CACHE_DIR": cache, "NNJAX_CACHE_DIR": cache,
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


def apply_cache_env(cache: str, env) -> None:
    """Sets (or removes) the variables of :func:`cache_env` in the mapping ``env`` (``os.environ``, a copy)."""
    for name, value in cache_env(cache).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.first_call", description=__doc__.splitlines()[0])
    parser.add_argument("--peer", required=True, help="the peer's row name, or a substring of exactly one")
    parser.add_argument("--workload", required=True, help="w1, w2, w4 or w5")
    parser.add_argument("--module", default="", help="the peer module under benchmarks.peers (default: search all)")
    parser.add_argument("--quick", action="store_true", help="the workload's --quick size")
    parser.add_argument("--cache", default="off", help='"off" (default) or a persistent cache directory')
    return parser.parse_args(argv)


def _cache_state() -> dict:
    import jax

    return {"enabled": bool(jax.config.jax_enable_compilation_cache),
            "dir": jax.config.jax_compilation_cache_dir or None,
            "nnjax_cache_dir": os.environ.get("NNJAX_CACHE_DIR")}


def _find_peer(name: str, module: str, workload: str):
    from benchmarks import flops, peers as peer_lib

    found, _ = peer_lib.available((module,) if module else peer_lib.MODULES)
    found = [p for p in found + [flops.DOT_PEER] if workload in p.workloads]
    exact = [p for p in found if p.name == name]
    matches = exact or [p for p in found if name.lower() in p.name.lower()]
    if len(matches) != 1:
        names = ", ".join(repr(p.name) for p in found)
        raise SystemExit(f"--peer: expected one of {names} (or a substring of exactly one), got {name!r}")
    return matches[0]


def main(argv: list[str] | None = None) -> dict:
    """The child: one first call, printed as a JSON line (also returned)."""
    args = _parse(argv)
    apply_cache_env(args.cache, os.environ)  # before JAX is imported: it reads them at import
    import jax  # noqa: E402  (deliberately after the environment is set)

    from benchmarks import compiles, workloads

    if args.cache == "off":
        jax.config.update("jax_enable_compilation_cache", False)  # whatever an import may have switched on
    workload = workloads.build(args.workload, quick=args.quick)
    peer = _find_peer(args.peer, args.module, args.workload)
    trainer = peer.make(workload)
    before = _cache_state()
    with compiles.counting() as count:
        start = time.perf_counter()
        trainer.train(0)
        seconds = time.perf_counter() - start
    report = {
        "peer": peer.name, "workload": args.workload, "quick": args.quick, "first_call_s": seconds,
        "compiles": count.as_dict(), "cache": {"requested": args.cache, "before": before, "after": _cache_state()},
        "test_accuracy": trainer.accuracy() if peer.family != "reference" else None,
    }
    print(json.dumps(report), flush=True)
    return report


def _child(peer, workload: str, quick: bool, cache: str, timeout: float) -> dict:
    """Runs one child process; returns its JSON report or ``{"error": ...}``."""
    command = [sys.executable, "-m", "benchmarks.first_call", "--peer", peer.name, "--workload", workload,
               "--cache", cache] + (["--module", peer.module] if peer.module else []) + (["--quick"] if quick else [])
    env = dict(os.environ)
    apply_cache_env(cache, env)
    try:
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit status {proc.returncode}: {proc.stderr.strip()[-400:]}"}
    return json.loads(lines[-1])


def _summary(runs: list[dict]) -> dict:
    good = [r for r in runs if "error" not in r]
    if not good:
        return {"error": runs[0]["error"] if runs else "not run", "runs": runs}
    return {"median_s": statistics.median(r["first_call_s"] for r in good),
            "compiles": statistics.median(r["compiles"]["compiles"] for r in good),
            "compile_s": statistics.median(r["compiles"]["compile_s"] for r in good),
            "cache_hits": statistics.median(r["compiles"]["cache_hits"] for r in good),
            "cache_enabled": any(r["cache"]["after"]["enabled"] for r in good),
            "runs": runs, **({"error": next(r["error"] for r in runs if "error" in r)} if len(good) < len(runs) else {})}


def measure(workload: str, peers: list, *, quick: bool, warm: bool, repeats: int = 1, timeout: float = 900.0,
            log: Callable[[str], None] = print) -> dict[str, dict]:
    """First calls of ``peers`` in fresh processes: ``{peer name: {"cold": summary, "warm": summary}}``.

    Each repetition runs every peer's cold child (and, with ``warm``, a child that
    fills a new cache directory and a timed child that reads it) in the list
    order rotated by the repetition, one process at a time.
    """
    from benchmarks.protocol import rotated

    runs = {p.name: {"cold": [], "warm": [], "fill": []} for p in peers}
    for r in range(repeats):
        for peer in rotated(list(peers), r):
            runs[peer.name]["cold"].append(_child(peer, workload, quick, "off", timeout))
            if warm:
                cache_dir = tempfile.mkdtemp(prefix="nnjax-bench-cache-")
                try:
                    runs[peer.name]["fill"].append(_child(peer, workload, quick, cache_dir, timeout))
                    runs[peer.name]["warm"].append(_child(peer, workload, quick, cache_dir, timeout))
                finally:
                    shutil.rmtree(cache_dir, ignore_errors=True)
            cold = runs[peer.name]["cold"][-1]
            note = cold.get("error") or f"{cold['first_call_s']:.2f} s, {cold['compiles']['compiles']} compiles"
            if warm and "error" not in runs[peer.name]["warm"][-1]:
                note += f"; warm cache {runs[peer.name]['warm'][-1]['first_call_s']:.2f} s"
            log(f"  {peer.name}: first call in a fresh process {note}")
    return {name: {kind: _summary(v) for kind, v in kinds.items() if v} for name, kinds in runs.items()}


if __name__ == "__main__":
    main()
