"""Run the benchmark suite: every workload for nnjax and every installed peer, side by side.

Usage (from the repository root)::

    python -m benchmarks.run                 # the full suite (minutes on 2 cores)
    python -m benchmarks.run --quick         # a smoke test: tiny epochs and data, a minute or two
    python -m benchmarks.run --workloads w1,w5 --peers nnjax,scan --repeats 9 --out /tmp/bench
    python -m benchmarks.run --first-call off  # skip the fresh-process first calls (the slowest part)

Per workload it first times every peer's first call in fresh child processes
(``benchmarks.first_call``: persistent compilation cache off, then with a warm
cache), then runs the in-process protocol (``benchmarks.protocol``: steady runs
and runs with freshly built, equal optimizer objects, in rotating order). It
writes ``results.json`` (machine, protocol, every run's times and compile counts) and
``results.md`` (one table per workload and the issue's targets) into ``--out``
(default ``benchmarks/results``), and prints the Markdown.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import jax

if __package__ in (None, ""):  # `python benchmarks/run.py`: make the repository importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from benchmarks import first_call, flops, peers as peer_lib, protocol, results, step_ops, workloads  # noqa: E402

__all__ = ["main", "parse_args", "run"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: few epochs, small data, 2 repetitions")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results"),
                        help="folder for results.json and results.md")
    parser.add_argument("--workloads", default="w1,w5,w2,w4", help="comma-separated subset of w1,w2,w4,w5")
    parser.add_argument("--peers", default="", help="comma-separated substrings: keep peers whose name contains one")
    parser.add_argument("--torch-threads", type=int, default=1, help="PyTorch intra-op threads (default 1)")
    parser.add_argument("--no-step-ops", action="store_true",
                        help="skip counting XLA operations per minibatch step (W1, W5)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per peer (default 5, quick 2)")
    parser.add_argument("--first-call", choices=("both", "cold", "off"), default=None,
                        help="first calls in fresh processes: with the persistent cache off and warm (both), "
                             "off only (cold), or none (off); default both, quick cold")
    parser.add_argument("--first-call-peers", default=None,
                        help="comma-separated substrings: time first calls only for peers whose name contains one "
                             "(default: every peer; quick: only the nnjax reference row and the hand-written scan)")
    parser.add_argument("--process-repeats", type=int, default=1,
                        help="fresh processes per peer and cache setting (default 1; the median is reported)")
    args = parser.parse_args(argv)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for w in args.workloads:
        if w not in workloads.NAMES:
            parser.error(f"--workloads: expected names from {', '.join(workloads.NAMES)}, got {w!r}")
    args.peers = [p.strip().lower() for p in args.peers.split(",") if p.strip()]
    args.repeats = args.repeats or (2 if args.quick else 5)
    if args.repeats < 1:
        parser.error(f"--repeats: expected at least 1, got {args.repeats}")
    if args.process_repeats < 1:
        parser.error(f"--process-repeats: expected at least 1, got {args.process_repeats}")
    args.first_call = args.first_call or ("cold" if args.quick else "both")
    if args.first_call_peers is None:
        args.first_call_peers = None if args.quick else []  # None: the quick default, exact reference rows
    else:
        args.first_call_peers = [p.strip().lower() for p in args.first_call_peers.split(",") if p.strip()]
    return args


def _selected(all_peers: list, filters: list[str], workload: str) -> list:
    chosen = [p for p in all_peers if workload in p.workloads]
    if filters:
        chosen = [p for p in chosen if p.family == "reference" or any(f in p.name.lower() for f in filters)]
    return chosen


def _first_call_peers(chosen: list, filters: list[str] | None, workload: str) -> list:
    """The peers whose first call runs in fresh processes (never the ``jnp.dot`` reference row)."""
    chosen = [p for p in chosen if p.family != "reference"]
    if filters is None:  # quick: the rows the ratios need
        keep = {results.REFERENCE.get(workload, "nnjax.fit"), results.SCAN}
        return [p for p in chosen if p.name in keep]
    return [p for p in chosen if not filters or any(f in p.name.lower() for f in filters)]


def run(args: argparse.Namespace) -> dict:
    """Measures the selected workloads and peers; returns the report (also written to ``args.out``)."""
    start = time.perf_counter()
    os.environ["NNJAX_BENCH_TORCH_THREADS"] = str(args.torch_threads)  # read when torch_peer is imported
    # No persistent compilation cache in this process (nnjax turns one on by default, the other peers
    # have none): its cold runs compile like everyone's; the warm-cache column measures the cache apart.
    first_call.apply_cache_env("off", os.environ)
    jax.config.update("jax_enable_compilation_cache", False)
    found, skipped = peer_lib.available()
    for s in skipped:
        print(f"note: peer module {s['module']} skipped, its library is missing ({s['reason']}); "
              "`pip install -e .[bench]` installs the peers", flush=True)
    all_peers = found + [flops.DOT_PEER]
    report = {
        "machine": results.machine(),
        "protocol": {"quick": args.quick, "repeats": args.repeats, "order": "rotating, one process",
                     "timing": "wall clock of a whole run (all epochs, all members), results waited for",
                     "persistent_cache": "off in this process; see first_call for the fresh processes",
                     "first_call": args.first_call, "process_repeats": args.process_repeats,
                     "first_call_peers": "quick default" if args.first_call_peers is None else args.first_call_peers,
                     "fresh": "each repetition also runs every peer once with freshly built, equal model and "
                              "optimizer objects"},
        "workloads": {}, "planned": [], "results": [], "skipped": skipped,
    }
    print(f"Machine: {results.machine_line(report['machine'])}", flush=True)
    for name in args.workloads:
        workload = workloads.build(name, quick=args.quick)
        chosen = _selected(all_peers, args.peers, name)
        print(f"{workload.title}: {len(chosen)} peers, {workload.epochs} epochs, {args.repeats} repetitions",
              flush=True)
        report["workloads"][name] = workload.describe()
        report["planned"] += [{"workload": name, "peer": p.name, "module": p.module} for p in chosen]
        fresh_process = {}
        if args.first_call != "off":
            fresh_process = first_call.measure(
                name, _first_call_peers(chosen, args.first_call_peers, name), quick=args.quick,
                warm=args.first_call == "both", repeats=args.process_repeats, log=lambda s: print(s, flush=True))
        rows = protocol.measure(workload, chosen, args.repeats, log=lambda s: print(s, flush=True))
        for row in rows:
            if row["peer"] in fresh_process:
                row["first_call"] = fresh_process[row["peer"]]
        report["results"] += rows
        if name in ("w1", "w5") and not args.no_step_ops:
            report.setdefault("step_ops", {})[name] = step_ops.count_all(workload)
    report["targets"] = results.targets(report)
    report["machine"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    report["wall_s"] = time.perf_counter() - start
    json_path, md_path = results.write(report, args.out)
    print(results.markdown(report))
    print(f"wrote {json_path} and {md_path} in {report['wall_s']:.0f} s")
    return report


def main(argv: list[str] | None = None) -> int:
    report = run(parse_args(argv))
    failed = [r for r in report["results"]
              if "error" in r or any("error" in c for c in r.get("first_call", {}).values())]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
