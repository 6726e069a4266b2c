"""What a user waits for: the README quick start's fits in fresh processes, cold and warm disk cache.

Each process imports nnjax (not timed), then times three ``nnjax.fit`` calls written as the README
writes them (a fresh ``optax.sgd(0.05)`` and a fresh ``MLP`` every call) and counts the backend
compiles each call triggered. The first process starts from an empty persistent compilation cache,
the next ones find it filled. Several rounds, each with its own cache directory, give medians.

Usage::

    python -m benchmarks.quickstart_latency            # 3 rounds
    python -m benchmarks.quickstart_latency --rounds 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, time
import jax, optax, nnjax
compiles = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, secs, **kw: compiles.append(secs) if event == "/jax/core/compile/backend_compile_duration" else None)
data = nnjax.data.load_dataset("digits")
(x_tr, y_tr), (x_te, y_te) = nnjax.data.split(0, data.x, data.y, fractions=(0.8, 0.2))
scaler = nnjax.data.Standardizer.fit(x_tr)
x_tr, x_te = scaler.transform(x_tr), scaler.transform(x_te)
out = []
for call in range(3):
    before, t0 = len(compiles), time.perf_counter()
    net = nnjax.MLP((64, 128, 64, 10), activation="relu", output="softmax", init="he_normal")
    result = nnjax.fit(jax.random.key(call), net, (x_tr, y_tr), loss="softmax_cross_entropy",
                       optimizer=optax.sgd(0.05), epochs=20, batch_size=32, validation=(x_te, y_te))
    accuracy = float(result.history["val_accuracy"][-1])
    out.append({"seconds": time.perf_counter() - t0, "compiles": len(compiles) - before,
                "compile_seconds": sum(compiles[before:]), "val_accuracy": accuracy})
print("RESULT " + json.dumps(out))
"""


def _child(cache_dir: str | None) -> list[dict]:
    env = dict(os.environ, NNJAX_CACHE_DIR=cache_dir or "off")
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.split("RESULT ", 1)[1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quickstart_latency", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the measurements here")
    args = parser.parse_args(argv)
    rows: dict[str, list[list[dict]]] = {"no cache": [], "cold cache": [], "warm cache": []}
    for _ in range(args.rounds):  # the three kinds side by side in every round
        rows["no cache"].append(_child(None))
        with tempfile.TemporaryDirectory() as cache:
            rows["cold cache"].append(_child(cache))
            rows["warm cache"].append(_child(cache))
    import jax

    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"jax {jax.__version__}, {jax.default_backend()}", "rounds": args.rounds, "rows": rows}
    print(f"README quick start, 20 epochs on digits; {report['machine']}; medians of {args.rounds} rounds "
          "(min-max)")
    print("| process | call | wall s | backend compiles | compile s |")
    print("| --- | --- | --- | --- | --- |")
    for kind, rounds in rows.items():
        for call in range(3):
            secs = [r[call]["seconds"] for r in rounds]
            comp = [r[call]["compiles"] for r in rounds]
            csecs = [r[call]["compile_seconds"] for r in rounds]
            print(f"| {kind} | {call + 1} | {statistics.median(secs):.3f} ({min(secs):.3f}-{max(secs):.3f}) | "
                  f"{statistics.median(comp):g} | {statistics.median(csecs):.3f} |")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
