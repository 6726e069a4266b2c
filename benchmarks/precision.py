"""float32 against mixed precision (bfloat16 compute), side by side in one process.

For W1 (digits, 64-128-64-10, batch 32) and W2 (MNIST-shaped synthetic 784-512-512-10, batch
128, a subset of its rows) it trains ``nnjax.fit`` with ``diagnostics=False`` from the workload's
initial weights, once to compile and then ``--repeats`` times per precision, the two precisions
interleaved so that a change in the machine's load hits both alike. It prints the median
milliseconds per epoch, the compile time and the test accuracy of each.

Run: ``python -m benchmarks.precision`` (``--quick`` for a smoke run). On a CPU bfloat16 is
usually no faster (XLA's CPU matmuls convert it); the speed-up is an accelerator's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import jax
import numpy as np
import optax

import nnjax
from benchmarks import workloads

PRECISIONS = {"float32": None, "bfloat16": "bfloat16"}


def _time(fn) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def measure(name: str, *, epochs: int, repeats: int, rows: int | None = None, quick: bool = False) -> list[dict]:
    """The rows (one per precision) of workload ``name`` trained ``epochs`` epochs, ``repeats`` times."""
    w = workloads.build(name, quick=quick)
    x, y = w.x_train[:rows], w.y_train[:rows]
    optimizer = optax.sgd(w.learning_rate)
    params = jax.tree.map(np.asarray, list(w.init_params[0]))
    runs = {}
    for label, compute in PRECISIONS.items():
        net = dataclasses.replace(w.net, compute_dtype=compute)

        def fit(net=net, seed=0):
            return nnjax.fit(jax.random.key(seed), net, (x, y), loss=w.loss, optimizer=optimizer, epochs=epochs,
                             batch_size=w.batch_size, params=params, diagnostics=False)

        first = _time(fit)
        runs[label] = {"net": net, "fit": fit, "first_s": first, "times": []}
    for r in range(repeats):  # interleaved: float32, bfloat16, float32, ...
        for label, run in runs.items():
            run["times"].append(_time(lambda: run["fit"](seed=r + 1)))
    out = []
    for label, run in runs.items():
        result = run["fit"]()
        logits = nnjax.apply(result.params, w.x_test, run["net"])
        median = statistics.median(run["times"])
        out.append({
            "workload": name, "precision": label, "n_train": len(x), "epochs": epochs, "repeats": repeats,
            "ms_per_epoch": 1e3 * median / epochs, "min_ms_per_epoch": 1e3 * min(run["times"]) / epochs,
            "compile_s": max(run["first_s"] - median, 0.0),
            "test_accuracy": float(np.mean(np.asarray(logits).argmax(-1) == w.y_test)),
        })
    return out


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--w1-epochs", type=int, default=10)
    parser.add_argument("--w2-epochs", type=int, default=2)
    parser.add_argument("--w2-rows", type=int, default=12000, help="training rows of W2 (of 60000)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON lines")
    args = parser.parse_args(argv)
    rows = measure("w1", epochs=1 if args.quick else args.w1_epochs, repeats=args.repeats, quick=args.quick)
    rows += measure("w2", epochs=1 if args.quick else args.w2_epochs, repeats=args.repeats,
                    rows=None if args.quick else args.w2_rows, quick=args.quick)
    device = jax.devices()[0]
    print(f"# {device.platform} {getattr(device, 'device_kind', '')}, jax {jax.__version__}")
    print(f"{'workload':8} {'precision':9} {'rows':>6} {'ms/epoch':>9} {'min':>9} {'compile s':>9} {'test acc':>8}")
    for row in rows:
        print(f"{row['workload']:8} {row['precision']:9} {row['n_train']:6d} {row['ms_per_epoch']:9.1f} "
              f"{row['min_ms_per_epoch']:9.1f} {row['compile_s']:9.2f} {row['test_accuracy']:8.4f}")
        if args.json:
            print(json.dumps(row))
    return rows


if __name__ == "__main__":
    main()
