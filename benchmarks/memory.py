"""Peak memory and time per row of a fit on large data: how big a data set a machine can train on.

Each size runs in a fresh child process: ``N x 100`` float32 features (N normal rows, labels
from a linear rule over 10 classes), an MLP 100-64-10 (ReLU, softmax cross-entropy), minibatches
of 1024, plain SGD, 2 epochs, the defaults otherwise (diagnostics on). The child reports its
peak resident set size (``ru_maxrss``), its resident size just before the data was made (JAX
and nnjax imported, the backend up), the data's size, and the fit's wall time (the first call,
compilation included, and a second call of the same fit). ``peak / data`` is the figure that says
how many copies of the data a fit holds at once; ``(peak - base) / data`` leaves out the
interpreter and the libraries. The peak is counted from after the data was made (the kernel's
count is restarted through ``/proc/self/clear_refs``), which leaves out what drawing the data cost
(on the device: the random bits and the normal draw, 3x the data; the earlier table's device rows
counted it). Host data comes in two rows: ``np.empty``'s array
(16-byte aligned, which the CPU device copies) and :func:`nnjax.data.empty`'s (64-byte aligned,
read in place).

Usage::

    python -m benchmarks.memory                  # N = 1M and 4M (about 0.4 and 1.6 GB of data)
    python -m benchmarks.memory --quick          # N = 50k and 200k
    python -m benchmarks.memory --sizes 1000000 --json out.json
    python -m benchmarks.memory --device         # also: data drawn on the device, never on the host
    python -m benchmarks.memory --no-aligned     # without the rows of aligned host data

The largest data set a machine of M bytes trains on is about ``(M - base) / ((peak - base) / data)``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import time

SIZES = (1_000_000, 4_000_000)
QUICK_SIZES = (50_000, 200_000)
FEATURES, BATCH, EPOCHS = 100, 1024, 2


def _rss_now() -> int:
    """The resident set size now, in bytes (Linux /proc; 0 where unreadable)."""
    try:
        fields = pathlib.Path("/proc/self/statm").read_text().split()
        return int(fields[1]) * resource.getpagesize()
    except OSError:
        return 0


def _status_bytes(field: str) -> int:
    """A ``/proc/self/status`` size field (``VmHWM``, ``VmRSS``) in bytes; 0 where unreadable."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_peak() -> bool:
    """Restarts the kernel's peak-RSS count (``VmHWM``) from the current RSS (Linux 4.0+)."""
    try:
        pathlib.Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child(n: int, device: bool = False, aligned: bool = False) -> dict:
    """One fit on ``n`` rows in this process; the measurements as a dict.

    ``device``: the data drawn on the device (``jax.random``), never on the host: a fit on device arrays.
    ``aligned``: the host data in an array from :func:`nnjax.data.empty` (64-byte aligned), which the
    CPU device reads in place; otherwise ``np.empty``'s (16-byte aligned), which it copies.
    """
    import jax
    import numpy as np
    import optax

    import nnjax

    nnjax.init(jax.random.key(0), nnjax.MLP((2, 2)))  # the backend up before the baseline
    base = _rss_now()
    if device:  # drawn on the device: the data never exists on the host
        x = jax.jit(lambda k: jax.random.normal(k, (n, FEATURES), np.float32))(jax.random.key(0))
        y = jax.jit(lambda a: jax.numpy.argmax(a[:, :10] + 0.5 * a[:, 10:20], axis=1).astype(np.int32))(x)
        jax.block_until_ready((x, y))
    else:
        rng = np.random.default_rng(0)
        x = nnjax.data.empty((n, FEATURES), np.float32) if aligned else np.empty((n, FEATURES), np.float32)
        for start in range(0, n, 1 << 18):  # drawn in chunks: no float64 copy of the whole data
            x[start:start + (1 << 18)] = rng.standard_normal((min(1 << 18, n - start), FEATURES), np.float32)
        y = np.argmax(x[:, :10] + 0.5 * x[:, 10:20], axis=1).astype(np.int32)
    data_bytes = x.nbytes + y.nbytes
    net = nnjax.MLP((FEATURES, 64, 10))
    after_data = _rss_now()
    fit_peak_known = _reset_peak()  # the fit's own peak, not the data generation's
    times = []
    for _ in range(2):
        t = time.perf_counter()
        result = nnjax.fit(jax.random.key(0), net, (x, y), loss="softmax_cross_entropy", optimizer=optax.sgd(0.05),
                           epochs=EPOCHS, batch_size=BATCH)
        jax.block_until_ready(result.params)
        times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux; since the reset
    fit_peak = _status_bytes("VmHWM") if fit_peak_known else 0
    data = data_bytes
    return {"n": n, "device_data": device, "aligned": aligned, "data_bytes": data, "peak_rss_bytes": peak,
            "base_rss_bytes": base, "after_data_rss_bytes": after_data, "fit_peak_rss_bytes": fit_peak,
            "peak_over_data": peak / data, "added_over_data": (peak - base) / data,
            "fit_peak_over_data": (fit_peak - base) / data if fit_peak else float("nan"),
            "first_fit_s": times[0], "second_fit_s": times[1],
            "us_per_row_epoch": 1e6 * times[1] / (n * EPOCHS),
            "final_loss": float(result.history["loss"][-1]), "nnjax": str(pathlib.Path(nnjax.__file__).parent)}


def measure(n: int, device: bool = False, aligned: bool = False) -> dict:
    """:func:`child` in a fresh process (peak memory is per process)."""
    flags = (["--device"] if device else []) + (["--aligned"] if aligned else [])
    proc = subprocess.run([sys.executable, "-m", "benchmarks.memory", "--child", str(n), *flags], capture_output=True,
                          text=True, cwd=pathlib.Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        return {"n": n, "error": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}")
    parser.add_argument("--sizes", default="", help="comma-separated row counts (default: %s)" % (SIZES,))
    parser.add_argument("--json", default=None, help="also write the measurements here")
    parser.add_argument("--device", action="store_true",
                        help="also fit on data drawn on the device (never on the host)")
    parser.add_argument("--no-aligned", action="store_true", help="leave out the rows of 64-byte aligned host data")
    parser.add_argument("--aligned", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        row = child(args.child, args.device, args.aligned)
        print(json.dumps(row), flush=True)
        return row
    sizes = [int(s) for s in args.sizes.split(",") if s] or list(QUICK_SIZES if args.quick else SIZES)
    from benchmarks import results

    machine = results.machine()
    rows = [measure(n) for n in sizes]
    rows += [] if args.no_aligned else [measure(n, aligned=True) for n in sizes]
    rows += [measure(n, device=True) for n in sizes] if args.device else []
    print(f"fit of N x {FEATURES} float32 rows, MLP {FEATURES}-64-10, batch {BATCH}, {EPOCHS} epochs; "
          f"{results.machine_line(machine)}")
    print("| N | data | data MB | peak RSS MB | peak / data | (peak - base) / data | first fit s | us per row per epoch |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if "error" in r:
            print(f"| {r['n']} | error: {r['error'].splitlines()[-1] if r['error'] else '?'} |")
            continue
        kind = "device" if r["device_data"] else "NumPy, aligned" if r.get("aligned") else "NumPy"
        print(f"| {r['n']} | {kind} | {r['data_bytes'] / 1e6:.0f} | {r['peak_rss_bytes'] / 1e6:.0f} | "
              f"{r['peak_over_data']:.2f} | {r['added_over_data']:.2f} | "
              f"{r['first_fit_s']:.2f} | {r['us_per_row_epoch']:.2f} |")
    report = {"machine": machine, "features": FEATURES, "batch_size": BATCH, "epochs": EPOCHS, "rows": rows}
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
