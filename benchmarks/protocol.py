"""The measurement protocol: build every trainer, one cold run each, then timed repetitions in rotating order.

* Cold run: each peer's first ``train`` in this process (compilation included);
  ``compile_s`` is that run's time minus the median steady-state time.
* Repetition ``r`` (1..repeats) runs the peers in the order of the list rotated
  by ``r``, so that slow drifts of a shared machine's load hit every peer alike.
  Each peer's turn is one steady run (the same model and optimizer objects as
  before) and one fresh run (``train_fresh``: new, equal objects, as a notebook
  cell or a loop over seeds builds them), in alternating order.
* Every run trains from the same initial weights with the repetition's seed for
  the shuffles, and waits for its results; the XLA compilations of every run are
  counted (:mod:`benchmarks.compiles`).
"""

from __future__ import annotations

import gc
import statistics
import time
import traceback
from typing import Callable

from benchmarks.compiles import counting
from benchmarks.peers.base import Peer, Trainer
from benchmarks.workloads import Workload, train_flops

__all__ = ["measure", "rotated", "summarise"]


def rotated(items: list, r: int) -> list:
    """``items`` rotated left by ``r`` places."""
    if not items:
        return []
    r %= len(items)
    return items[r:] + items[:r]


def _timed(trainer: Trainer, seed: int, fresh: bool = False) -> tuple[float, dict]:
    """Seconds of one run, and what it compiled."""
    with counting() as count:
        start = time.perf_counter()
        (trainer.train_fresh if fresh else trainer.train)(seed)
        seconds = time.perf_counter() - start
    return seconds, count.as_dict()


def _compiles(counts: list[dict]) -> dict:
    """The median compile count and seconds over runs (the most compiles seen, too)."""
    return {"compiles": statistics.median(c["compiles"] for c in counts),
            "compile_s": statistics.median(c["compile_s"] for c in counts),
            "max_compiles": max(c["compiles"] for c in counts)}


def summarise(workload: Workload, peer: Peer, first_s: float, times: list[float], accuracy: float,
              fresh_times: list[float] | None = None, counts: dict | None = None, fresh_objects: str = "") -> dict:
    """One row of results: medians, ranges, compile time and counts, throughput.

    ``counts`` holds the compile counts of the cold run (``"first"``) and of the
    steady and fresh runs (lists, one per repetition).
    """
    median = statistics.median(times)
    per_epoch = 1e3 / workload.epochs
    flops = train_flops(workload) * workload.epochs * workload.members
    row = {
        "workload": workload.key,
        "peer": peer.name,
        "library": peer.library,
        "family": peer.family,
        "module": peer.module,
        "first_run_s": first_s,
        "compile_s": max(0.0, first_s - median),
        "times_s": times,
        "median_s": median,
        "min_s": min(times),
        "max_s": max(times),
        "ms_per_epoch": median * per_epoch,
        "ms_per_epoch_min": min(times) * per_epoch,
        "ms_per_epoch_max": max(times) * per_epoch,
        "gflops": flops / median / 1e9,
        "test_accuracy": accuracy,
        "fresh_objects": fresh_objects,
    }
    if fresh_times:
        row.update(fresh_times_s=fresh_times, fresh_median_s=statistics.median(fresh_times),
                   fresh_min_s=min(fresh_times), fresh_max_s=max(fresh_times))
    if counts:
        row["compiles_first_in_process"] = counts["first"]
        row["compiles_steady"] = _compiles(counts["steady"])
        if counts.get("fresh"):
            row["compiles_fresh"] = _compiles(counts["fresh"])
    return row


def measure(workload: Workload, peers: list[Peer], repeats: int, log: Callable[[str], None] = print) -> list[dict]:
    """Runs the protocol for ``workload``; returns one result dict per peer (with ``"error"`` if it failed)."""
    trainers: dict[str, Trainer] = {}
    failed: dict[str, str] = {}

    def attempt(peer: Peer, what: Callable[[], object]):
        try:
            return what()
        except Exception as err:  # a broken peer is reported in its row, the others go on
            failed[peer.name] = f"{type(err).__name__}: {err}"
            log(f"  {peer.name}: FAILED ({failed[peer.name]})\n{traceback.format_exc(limit=3)}")
            trainers.pop(peer.name, None)
            return None

    for peer in peers:
        trainer = attempt(peer, lambda: peer.make(workload))
        if trainer is not None:
            trainers[peer.name] = trainer
    first: dict[str, float] = {}
    counts: dict[str, dict] = {}
    for peer in peers:  # cold runs: compile and warm up
        if peer.name in trainers:
            value = attempt(peer, lambda: _timed(trainers[peer.name], 0))
            if value is not None:
                first[peer.name] = value[0]
                counts[peer.name] = {"first": value[1], "steady": [], "fresh": []}
                log(f"  {peer.name}: first run {value[0]:.3f} s, {value[1]['compiles']} compiles")
    times: dict[str, list[float]] = {name: [] for name in trainers}
    fresh_times: dict[str, list[float]] = {name: [] for name in trainers}
    for r in range(1, repeats + 1):
        for peer in rotated([p for p in peers if p.name in trainers], r):
            for fresh in ((False, True) if r % 2 else (True, False)):
                if peer.name not in trainers:
                    break
                gc.collect()  # no peer pays for another's garbage
                value = attempt(peer, lambda: _timed(trainers[peer.name], r, fresh))
                if value is not None:
                    (fresh_times if fresh else times)[peer.name].append(value[0])
                    counts[peer.name]["fresh" if fresh else "steady"].append(value[1])
    rows = []
    for peer in peers:
        if peer.name in trainers:
            accuracy = attempt(peer, trainers[peer.name].accuracy)
        if peer.name in trainers:
            rows.append(summarise(workload, peer, first[peer.name], times[peer.name], accuracy,
                                  fresh_times[peer.name], counts[peer.name], trainers[peer.name].fresh_objects))
        else:
            rows.append({"workload": workload.key, "peer": peer.name, "library": peer.library,
                         "family": peer.family, "module": peer.module, "error": failed.get(peer.name, "unknown failure")})
    return rows
