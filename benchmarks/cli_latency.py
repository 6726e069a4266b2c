"""What a user waits for: the default ``nnjax train`` and ``nnjax --help``, wall clock, fresh processes.

Every round runs ``python -m nnjax train`` twice on one new, empty persistent-cache directory (the
first run compiles and fills it, the second reads it) and ``python -m nnjax --help`` once; each run
writes its own run directory. The table gives medians (min-max) over the rounds of the wall time
of the whole process (interpreter start to exit) and of the summary's ``train_seconds``.

Usage::

    python -m benchmarks.cli_latency                 # 3 rounds of the default run
    python -m benchmarks.cli_latency --rounds 5 --json out.json
    python -m benchmarks.cli_latency --train-args "--epochs 2 --no-plots"
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import statistics
import subprocess
import sys
import tempfile
import time


def _timed(argv: list[str], cache_dir: str) -> tuple[float, dict | None]:
    """Wall seconds of ``python -m nnjax ARGV`` and its ``--json`` summary (None without one)."""
    env = dict(os.environ, NNJAX_CACHE_DIR=cache_dir)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nnjax", *argv], env=env, capture_output=True, text=True,
                          timeout=900)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"nnjax {' '.join(argv)} exited with {done.returncode}: {done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return seconds, (json.loads(lines[-1]) if lines else None)


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cli_latency", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-args", default="", help="extra flags for nnjax train (default: none)")
    parser.add_argument("--json", default=None, help="also write the measurements here")
    args = parser.parse_args(argv)
    extra = shlex.split(args.train_args)
    rows: dict[str, list[float]] = {"nnjax --help": [], "nnjax train, empty cache": [], "nnjax train, second run": []}
    train_s: dict[str, list[float]] = {"nnjax train, empty cache": [], "nnjax train, second run": []}
    from benchmarks import results

    machine = results.machine()  # read before the runs: the load average at the start
    with tempfile.TemporaryDirectory() as scratch:
        for r in range(args.rounds):
            cache = str(pathlib.Path(scratch) / f"cache{r}")
            rows["nnjax --help"].append(_timed(["--help"], cache)[0])
            for kind in train_s:
                out = pathlib.Path(scratch) / f"run{r}-{len(train_s[kind])}-{kind.split()[-2]}"
                seconds, summary = _timed(["train", "--quiet", "--json", "--out", str(out), *extra], cache)
                rows[kind].append(seconds)
                train_s[kind].append(float(summary["train_seconds"]))
    report = {"machine": machine, "rounds": args.rounds, "train_args": extra, "wall_s": rows, "train_seconds": train_s}
    print(f"nnjax train {' '.join(extra)}; {results.machine_line(machine)}; medians of {args.rounds} rounds (min-max)")
    print("| process | wall s | of which training s |")
    print("| --- | --- | --- |")
    for kind, values in rows.items():
        print(f"| {kind} | {_cell(values)} | {_cell(train_s[kind]) if kind in train_s else '-'} |")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
