"""What per-layer gradient diagnostics cost: ``fit(diagnostics=True)`` against ``diagnostics=False``.

The workload is the digits classifier of the README: a 64-128-64-10 ReLU network, minibatches of 32,
plain SGD. Both variants are compiled once (warm-up, not timed); then they run alternately, so that
load on a shared machine hits both alike. The overhead is the median over the pairs of the ratio
on/off of two consecutive runs; the ratios of the medians and of the minima are printed too.

Usage::

    python benchmarks/diagnostics_overhead.py            # 20 epochs, 7 timed runs each
    python benchmarks/diagnostics_overhead.py --quick    # 3 epochs, 3 runs each
    python benchmarks/diagnostics_overhead.py --json     # one JSON line at the end
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import numpy as np
import optax

import nnjax


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Digits pixels scaled to [0, 1] and their labels."""
    data = nnjax.data.load_dataset("digits")
    return (data.x / 16.0).astype(np.float32), data.y


def timed_fit(net, x, y, optimizer, *, epochs: int, diagnostics: bool, seed: int) -> float:
    """Seconds for one ``fit`` call, results fetched to the host."""
    start = time.perf_counter()
    result = nnjax.fit(
        jax.random.key(seed), net, (x, y), loss="softmax_cross_entropy", optimizer=optimizer,
        epochs=epochs, batch_size=32, diagnostics=diagnostics,
    )
    jax.block_until_ready(result)
    return time.perf_counter() - start


def measure(epochs: int, repeats: int) -> dict:
    """Seconds per run with and without diagnostics, and their ratio (see the module docstring)."""
    x, y = load_digits()
    net = nnjax.MLP((64, 128, 64, 10), activation="relu", output="softmax")
    optimizer = optax.sgd(0.05)  # one object: the compiled program is reused across calls
    for diagnostics in (False, True):  # warm-up: compile both programs
        timed_fit(net, x, y, optimizer, epochs=epochs, diagnostics=diagnostics, seed=0)
    times: dict[bool, list[float]] = {False: [], True: []}
    for r in range(repeats):
        order = (False, True) if r % 2 == 0 else (True, False)
        for diagnostics in order:
            times[diagnostics].append(timed_fit(net, x, y, optimizer, epochs=epochs, diagnostics=diagnostics, seed=r + 1))
    off, on = statistics.median(times[False]), statistics.median(times[True])
    steps = epochs * -(-len(x) // 32)
    return {
        "workload": "digits 64-128-64-10 relu, batch 32, sgd",
        "backend": jax.default_backend(),
        "epochs": epochs,
        "steps": steps,
        "repeats": repeats,
        "median_s_off": off,
        "median_s_on": on,
        "us_per_step_off": 1e6 * off / steps,
        "us_per_step_on": 1e6 * on / steps,
        "overhead_ratio": statistics.median(on_ / off_ for on_, off_ in zip(times[True], times[False])),
        "ratio_of_medians": on / off,
        "min_s_off": min(times[False]),
        "min_s_on": min(times[True]),
        "overhead_ratio_of_minima": min(times[True]) / min(times[False]),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 epochs, 3 runs each")
    parser.add_argument("--json", action="store_true", help="print one JSON summary line last")
    args = parser.parse_args(argv)
    epochs, repeats = (3, 3) if args.quick else (args.epochs, args.repeats)
    out = measure(epochs, repeats)
    print(f"{out['workload']} on {out['backend']}: {out['epochs']} epochs = {out['steps']} steps, "
          f"median of {out['repeats']} runs after warm-up")
    print(f"  diagnostics=False: {out['median_s_off']:.3f} s ({out['us_per_step_off']:.0f} us/step)")
    print(f"  diagnostics=True:  {out['median_s_on']:.3f} s ({out['us_per_step_on']:.0f} us/step)")
    print(f"  overhead: {100 * (out['overhead_ratio'] - 1):+.1f}% (median of the paired runs' ratios "
          f"{out['overhead_ratio']:.3f}; ratio of medians {out['ratio_of_medians']:.3f}, of minima "
          f"{out['overhead_ratio_of_minima']:.3f})")
    if args.json:
        print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
