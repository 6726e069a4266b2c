"""Data-parallel training of one model over every device of one or several processes.

Each minibatch is split over the devices of a mesh's "data" axis; the parameters are
replicated and XLA sums the gradient contributions across devices (an all-reduce). The script
trains the same model once on a single device and once data-parallel, and reports how far the
two results are apart (float32 rounding only) and what each cost.

One machine, 8 simulated CPU devices::

    python examples/data_parallel.py --quick --fake-devices 8

Two processes on this machine (run each line in its own terminal)::

    python examples/data_parallel.py --coordinator localhost:12355 --num-processes 2 --process-id 0
    python examples/data_parallel.py --coordinator localhost:12355 --num-processes 2 --process-id 1

Under SLURM (one task per node; JAX reads the job's environment): ``srun python
examples/data_parallel.py --slurm``. See docs/devices.md.
"""

from __future__ import annotations

import argparse
import os

import _common  # noqa: F401  (puts the source checkout on the path)

from nnjax import parallel


def launch_arguments(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = parallel.add_launch_arguments(argparse.ArgumentParser(add_help=False))
    parser.add_argument("--fake-devices", type=int, default=None,
                        help="simulate this many CPU devices per process (XLA_FLAGS)")
    parser.add_argument("--save", default=None, help="write the measurements to this .npz file (process 0)")
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> dict:
    launch, rest = launch_arguments(argv)
    if launch.fake_devices:  # read when the backend starts, so before any computation
        os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={launch.fake_devices}"
    multi = parallel.initialize_from_args(launch)  # before any other JAX call

    import jax
    import numpy as np
    import optax

    import nnjax

    args = _common.parse_args("data_parallel", "one model, every batch split over all devices", rest)
    main_process = jax.process_index() == 0
    data = nnjax.data.load_dataset("digits", n=512 if args.quick else None, seed=args.seed)
    _, x = nnjax.data.standardize(data.x)
    n_devices = len(jax.devices())
    batch = 8 * n_devices if args.quick else 32 * n_devices
    sizes = (64, 16, 10) if args.quick else (64, 128, 64, 10)  # quick: cheaper to compile
    net = nnjax.MLP(sizes, activation="relu", output="softmax", dropout=0.1)
    options = dict(loss="softmax_cross_entropy", optimizer=optax.sgd(0.05), epochs=3 if args.quick else 20,
                   batch_size=batch, validation=(x, data.y), diagnostics=False)
    key = jax.random.key(args.seed)
    mesh = parallel.make_mesh(population=1, data=n_devices)

    def data_parallel():
        return parallel.fit_data_parallel(key, net, (x, data.y), mesh=mesh, **options)

    def single_device():
        with jax.default_device(jax.local_devices()[0]):
            return nnjax.fit(key, net, (x, data.y), **options)

    _common.timed(data_parallel)
    sharded, dp_seconds = _common.timed(data_parallel)
    _common.timed(single_device)
    alone, one_seconds = _common.timed(single_device)

    loss_dp, loss_one = np.asarray(sharded.history["loss"]), np.asarray(alone.history["loss"])
    leaves = zip(jax.tree_util.tree_leaves(sharded.params), jax.tree_util.tree_leaves(alone.params))
    weight_gap = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in leaves)
    if main_process:
        _common.section(f"{jax.process_count()} process(es), {n_devices} devices "
                        f"({jax.devices()[0].platform}), batch {batch} = {batch // n_devices} rows per device")
        acc_one, acc_dp = (f"{float(r.history['val_accuracy'][-1]):.1%}" for r in (alone, sharded))
        _common.table(["run", "final loss", "val accuracy", "seconds"],
                      [["single device", float(loss_one[-1]), acc_one, one_seconds],
                       ["data parallel", float(loss_dp[-1]), acc_dp, dp_seconds]])
        rel = float(np.max(np.abs(loss_dp - loss_one) / np.abs(loss_one)))
        slower = "; at this size the per-step all-reduce costs more than splitting the small matrices saves"
        _common.conclude(
            f"the data-parallel run {'matches' if rel < 1e-4 else 'differs from'} the single-device run: epoch losses "
            f"agree to {rel:.1e} relative and the weights to {weight_gap:.1e} absolute "
            f"({'float32 rounding' if rel < 1e-4 else 'more than float32 rounding'}).",
            f"splitting each batch over {n_devices} devices took {dp_seconds:.2f} s against {one_seconds:.2f} s on one "
            f"device ({one_seconds / dp_seconds:.2f}x speed-up{slower if dp_seconds > one_seconds else ''}).",
        )
    measured = {"multi_process": multi, "loss": loss_dp, "single": loss_one, "weight_gap": weight_gap,
                "processes": jax.process_count(), "devices": n_devices}
    if launch.save and main_process:
        np.savez(launch.save, **measured)
    return measured


if __name__ == "__main__":
    main()
