"""Populations: many models in one compiled program, against training them one after another.

Workload: the digits classifier (1437 training images, 64-128-64-10 ReLU, softmax
cross-entropy), minibatches of 32, plain SGD with learning rate 0.05, 20 epochs,
32 seeds. Three ways to train the 32 models:

* ``nnjax.fit_population``: one ``jax.jit(jax.vmap(nnjax.fit))`` program;
* a Python loop of 32 ``nnjax.fit`` calls (one compiled program, reused);
* a Python loop of 32 PyTorch models (eager, the textbook loop), when ``import torch`` works.

Then the population cost for sizes 1, 8, 32 and 128. Every variant is compiled
(warmed up) first; the runs then alternate between variants, so load on a shared
machine hits them alike, and the medians are reported with their ratios. nnjax
runs with ``diagnostics=False`` (PyTorch records no per-layer statistics either).

Usage::

    python benchmarks/population.py            # the full workload, 3 timed repeats
    python benchmarks/population.py --quick    # 4 seeds, 2 epochs, sizes 1 and 4
    python benchmarks/population.py --json     # one JSON line at the end
    python benchmarks/population.py --cpu-devices 2   # also: the population split over 2 CPU devices

On a machine shared with other work, wall times swing with the load; the CPU time of this
process (all its threads) does not, so both are reported. PyTorch runs with one intra-op thread
(``--torch-threads``), its fastest setting for these small matrices.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

import jax
import numpy as np
import optax

try:
    import nnjax
except ImportError:  # run from a source checkout without installing the package
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    import nnjax

SIZES = (64, 128, 64, 10)
BATCH, LR = 32, 0.05


def digits() -> tuple[np.ndarray, np.ndarray]:
    """The standardised training part (80 %, stratified) of the digits data."""
    ds = nnjax.data.load_dataset("digits")
    (x, y), _ = nnjax.data.split(0, ds.x, ds.y, fractions=(0.8, 0.2), stratify=ds.y)
    return nnjax.data.Standardizer.fit(x).transform(x).astype(np.float32), np.asarray(y, np.int32)


class Workload:
    def __init__(self, epochs: int):
        self.x, self.y = digits()
        self.epochs = epochs
        self.net = nnjax.MLP(SIZES, activation="relu", output="softmax")
        self.optimizer = optax.sgd(LR)  # one object: every call reuses one compiled program
        self.options = dict(loss="softmax_cross_entropy", epochs=epochs, batch_size=BATCH, diagnostics=False)

    def population(self, members: int, seed: int, mesh=None, chunk_size=None) -> tuple[float, float]:
        keys = jax.random.split(jax.random.key(seed), members)
        start = _clock()
        result = nnjax.fit_population(keys, self.net, (self.x, self.y), optimizer=self.optimizer, mesh=mesh,
                                      chunk_size=chunk_size, **self.options)
        jax.block_until_ready(result)
        self.last_loss = float(np.mean(result.history["loss"][:, -1]))
        return _elapsed(start)

    def sequential(self, members: int, seed: int) -> tuple[float, float]:
        keys = jax.random.split(jax.random.key(seed), members)
        start = _clock()
        for k in keys:
            jax.block_until_ready(nnjax.fit(k, self.net, (self.x, self.y), optimizer=self.optimizer, **self.options))
        return _elapsed(start)

    def torch_loop(self, members: int, seed: int) -> tuple[float, float]:
        import torch

        x, y = torch.from_numpy(self.x), torch.from_numpy(self.y).long()
        start = _clock()
        for m in range(members):
            torch.manual_seed(seed * 1000 + m)
            layers = []
            for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
                layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < len(SIZES) - 2 else [])
            model = torch.nn.Sequential(*layers)
            opt = torch.optim.SGD(model.parameters(), lr=LR)
            loss_fn = torch.nn.CrossEntropyLoss()
            for _ in range(self.epochs):
                perm = torch.randperm(len(x))
                for s in range(0, len(x), BATCH):
                    idx = perm[s : s + BATCH]
                    opt.zero_grad()
                    loss_fn(model(x[idx]), y[idx]).backward()
                    opt.step()
        return _elapsed(start)


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _elapsed(start: tuple[float, float]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) since ``start``."""
    return time.perf_counter() - start[0], time.process_time() - start[1]


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def measure(variants: dict, repeats: int) -> dict[str, dict[str, float]]:
    """Median wall and CPU seconds of each variant: one warm-up call each, then ``repeats`` alternating rounds.

    CPU seconds (``time.process_time``, every thread of this process) hardly move when other
    processes load the machine; wall seconds do, so both are reported.
    """
    for fn in variants.values():
        fn(0)
    times = {name: [] for name in variants}
    for r in range(repeats):
        names = list(variants) if r % 2 == 0 else list(variants)[::-1]
        for name in names:
            times[name].append(variants[name](r + 1))
    return {name: {"wall": statistics.median(t[0] for t in ts), "cpu": statistics.median(t[1] for t in ts)}
            for name, ts in times.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 seeds, 2 epochs, sizes 1 and 4")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 3, quick 1)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch loop")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="PyTorch intra-op threads (default 1: fastest for these small matrices, and "
                             "several threads thrash on a loaded 2-core machine)")
    parser.add_argument("--chunk-size", type=int, default=4,
                        help="also time the population trained in vmapped groups of this size (0: skip)")
    parser.add_argument("--cpu-devices", type=int, default=None,
                        help="split the CPU into this many XLA devices and add a population sharded over them")
    parser.add_argument("--json", action="store_true", help="print one JSON summary line at the end")
    args = parser.parse_args(argv)
    if args.cpu_devices:  # read when the backend starts: before the first computation
        os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.cpu_devices}"
    members, epochs = (4, 2) if args.quick else (32, 20)
    sizes = (1, 4) if args.quick else (1, 8, 32, 128)
    repeats = args.repeats or (1 if args.quick else 3)
    w = Workload(epochs)
    device = f"{jax.devices()[0].platform} x{len(jax.devices())} ({jax.devices()[0].device_kind})"
    print(f"population benchmark: {members} seeds of digits {'-'.join(map(str, SIZES))}, batch {BATCH}, "
          f"SGD {LR}, {epochs} epochs, {len(w.x)} examples; {device}; median of {repeats}")

    variants = {
        "population (one program)": lambda s: w.population(members, s),
        "nnjax.fit loop": lambda s: w.sequential(members, s),
    }
    if args.chunk_size:
        variants[f"population, groups of {args.chunk_size}"] = lambda s: w.population(members, s, chunk_size=args.chunk_size)
    if len(jax.devices()) > 1 and members % len(jax.devices()) == 0:
        mesh = nnjax.parallel.make_mesh(population=len(jax.devices()))
        variants[f"population over {len(jax.devices())} devices"] = lambda s: w.population(members, s, mesh)
    with_torch = not args.no_torch and torch_available()
    if with_torch:
        import torch

        torch.set_num_threads(args.torch_threads)
        variants["PyTorch loop"] = lambda s: w.torch_loop(members, s)
    medians = measure(variants, repeats)
    pop = medians["population (one program)"]
    print(f"\n{members} models (median wall s | median CPU s of this process; ratio to the population):")
    for name, t in medians.items():
        print(f"  {name:26s} wall {t['wall']:8.3f} s  {t['wall'] / pop['wall']:6.2f}x   "
              f"cpu {t['cpu']:8.3f} s  {t['cpu'] / pop['cpu']:6.2f}x")
    print(f"  (final training loss, mean over the population: {w.last_loss:.4f})")
    if not with_torch:
        print("  PyTorch loop: not run (import torch failed or --no-torch)")
    else:
        print(f"  (torch {torch.__version__}, {torch.get_num_threads()} threads)")

    scaling = measure({p: (lambda s, p=p: w.population(p, s)) for p in sizes}, repeats)
    print("\npopulation size scaling:")
    base = scaling[sizes[0]]
    for p, t in scaling.items():
        print(f"  P={p:4d}  wall {t['wall']:8.3f} s ({t['wall'] / base['wall']:7.2f}x P=1)   "
              f"cpu {t['cpu']:8.3f} s ({t['cpu'] / base['cpu']:7.2f}x P=1, {t['cpu'] / p * 1e3:7.2f} ms per model)")

    summary = {
        "members": members, "epochs": epochs, "device": device, "repeats": repeats,
        "seconds": medians, "scaling_seconds": {str(p): t for p, t in scaling.items()},
    }
    print("\nratios (wall | cpu):")
    for name, label in (("nnjax.fit loop", "sequential"), ("PyTorch loop", "torch")):
        if name not in medians:
            continue
        ratio = {k: medians[name][k] / pop[k] for k in ("wall", "cpu")}
        summary[f"{label}_over_population"] = ratio
        verdict = "population faster" if ratio["cpu"] > 1 else "population slower"
        print(f"  {name} / population = {ratio['wall']:.2f} | {ratio['cpu']:.2f}  ({verdict} by CPU time)")
    top = scaling[sizes[-1]]
    print(f"  P={sizes[-1]} / P={sizes[0]} = {top['wall'] / base['wall']:.2f} | {top['cpu'] / base['cpu']:.2f} "
          f"(perfectly parallel: 1; compute-bound serial: {sizes[-1] / sizes[0]:.0f})")
    if args.json:
        print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
