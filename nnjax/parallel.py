"""Devices and hosts: the same ``fit`` code on one CPU, many devices, or many processes.

Two axes can be split over devices, with :mod:`jax.sharding` (a
:class:`~jax.sharding.Mesh` whose axes are named "population" and "data"):

* **population**: :func:`nnjax.fit_population` with ``mesh=make_mesh(population=k)``
  puts P/k members on each device; members never talk, so no communication.
* **data**: :func:`fit_data_parallel` (or ``fit_population`` with a "data" axis)
  splits every minibatch over the devices and keeps the parameters replicated;
  XLA inserts the all-reduce that sums the per-device gradient contributions.

Results agree with a single-device run to float32 rounding (sums are only
reassociated); shuffles and dropout masks do not depend on the sharding
(``jax_threefry_partitionable``).

Several processes (hosts) join with :func:`initialize` (a thin wrapper of
``jax.distributed.initialize``); afterwards ``jax.devices()`` lists every
process's devices, and :func:`fit_data_parallel` called with the same arguments
in every process trains one model over all of them, and
:func:`fit_population_distributed` splits a population's members over the
processes (each trains its share, the results are gathered into every
process). See ``docs/devices.md`` for SLURM and ``--coordinator`` launches.

Example:
  >>> import jax, optax, nnjax
  >>> from nnjax import parallel
  >>> data = nnjax.data.load_dataset("blobs")
  >>> mesh = parallel.make_mesh(data=len(jax.devices()))
  >>> result = parallel.fit_data_parallel(jax.random.key(0), nnjax.MLP((2, 1), output="sigmoid"),
  ...     (data.x, data.y), mesh=mesh, loss="binary_cross_entropy", optimizer=optax.sgd(0.1),
  ...     epochs=2, batch_size=8 * len(jax.devices()))
  >>> result.history["loss"].shape
  (2,)
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "add_launch_arguments",
    "batch_sharding",
    "constrain_population",
    "fit_data_parallel",
    "fit_population_distributed",
    "initialize",
    "initialize_from_args",
    "make_mesh",
    "member_share",
    "pad_population",
]


def make_mesh(population: int | None = None, data: int | None = None, *, devices: Sequence[Any] | None = None) -> Mesh:
    """A device mesh with axes ("population", "data") of the given sizes.

    With neither size given, every device goes to the population axis; with one
    given, the other takes the remaining devices. Axes of size 1 are kept, so
    ``make_mesh(population=8, data=1)`` and ``make_mesh(population=8)`` are alike.

    Args:
      population: devices along the population axis.
      data: devices along the data (batch) axis.
      devices: the devices to use (default: ``jax.devices()``, every process's).

    Raises:
      ValueError: when ``population * data`` is not the number of devices.

    Example:
      >>> import jax
      >>> dict(make_mesh(data=1, devices=jax.devices()[:1]).shape)
      {'population': 1, 'data': 1}
    """
    devices = list(jax.devices() if devices is None else devices)
    total = len(devices)
    if population is None and data is None:
        population = total
    if population is None:
        population = total // max(int(data), 1)
    if data is None:
        data = total // max(int(population), 1)
    population, data = int(population), int(data)
    if population < 1 or data < 1 or population * data != total:
        raise ValueError(
            f"population, data: expected positive sizes whose product is the number of devices ({total}), "
            f"got population={population}, data={data}"
        )
    return Mesh(np.array(devices, dtype=object).reshape(population, data), ("population", "data"))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """The sharding of the epoch's ``(steps, batch, ...)`` arrays: batch rows split over "data"."""
    return NamedSharding(mesh, PartitionSpec(None, "data"))


def constrain_population(tree: Any, mesh: Mesh) -> Any:
    """Inside ``jit``: every leaf's leading (member) axis split over the mesh's "population" axis."""
    sharding = NamedSharding(mesh, PartitionSpec("population"))
    return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, sharding), tree)


def pad_population(tree: Any, size: int, multiple: int) -> Any:
    """Pads every leaf's leading axis from ``size`` to a multiple of ``multiple`` by repeating row 0.

    The extra members train like member 0 and are sliced off afterwards, so a
    population of any size fills a mesh.
    """
    padded = -(-size // multiple) * multiple
    if padded == size:
        return tree

    def pad(a):
        extra = jnp.repeat(a[:1], padded - size, axis=0)
        return jnp.concatenate([a, extra], axis=0)

    return jax.tree.map(pad, tree)


def fit_data_parallel(key: jax.Array, net: Any, data: tuple[Any, Any], *, mesh: Mesh | None = None, **fit_kwargs: Any):
    """:func:`nnjax.fit` with every minibatch split over the mesh's "data" axis.

    Parameters and optimiser state are replicated; each device computes the
    loss and gradient contributions of its rows and XLA all-reduces them, so
    the result equals ``nnjax.fit(key, net, data, **fit_kwargs)`` to float32
    rounding. In a multi-process run (after :func:`initialize`) call it in every
    process with the same arguments; the mesh then spans all processes.

    Args:
      key: the run key.
      net: the topology.
      data: ``(x, y)``, the full training set (the same in every process).
      mesh: a mesh with a "data" axis (default: every device on it).
      **fit_kwargs: :func:`nnjax.fit`'s keywords; ``batch_size`` must be a
        multiple of the "data" axis size.

    Returns:
      The :class:`~nnjax.FitResult` (its arrays replicated over the mesh).

    Raises:
      ValueError: for a mesh without a "data" axis or a batch that does not split evenly.
    """
    from nnjax.fitting import fit  # floor 3; imported here so nnjax.parallel stays importable early

    mesh = make_mesh(data=len(jax.devices())) if mesh is None else mesh
    if "data" not in mesh.axis_names:
        raise ValueError(f"mesh: expected an axis named 'data', got axes {mesh.axis_names}")
    shards = mesh.shape["data"]
    batch_size = fit_kwargs.get("batch_size")
    if isinstance(batch_size, int) and batch_size % shards:
        raise ValueError(
            f"batch_size: expected a multiple of the {shards} devices on the mesh's 'data' axis, got {batch_size}"
        )
    if "batch_sharding" in fit_kwargs:
        raise ValueError("batch_sharding: set by fit_data_parallel from mesh; pass mesh instead")
    return fit(key, net, data, batch_sharding=batch_sharding(mesh), **fit_kwargs)


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_ids: Sequence[int] | None = None,
    cpu_collectives: str | None = "gloo",
) -> None:
    """Joins this process to a multi-process JAX run (``jax.distributed.initialize``).

    Call it first, before any other JAX call. With no arguments JAX detects
    the cluster (SLURM, Open MPI, Kubernetes, ...); otherwise give all three of
    ``coordinator_address`` ("host:port" of process 0), ``num_processes`` and
    ``process_id``. On CPUs, cross-process collectives need an implementation:
    ``cpu_collectives="gloo"`` (set it to None to leave JAX's setting alone).

    Raises:
      ValueError: when only some of the three launch values are given.
    """
    given = [v is not None for v in (coordinator_address, num_processes, process_id)]
    if any(given) and not all(given):
        raise ValueError(
            "coordinator_address, num_processes, process_id: expected all three (or none, to detect the cluster), "
            f"got {coordinator_address!r}, {num_processes!r}, {process_id!r}"
        )
    if cpu_collectives is not None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id,
        local_device_ids=local_device_ids,
    )


def add_launch_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds ``--coordinator HOST:PORT``, ``--num-processes N`` and ``--process-id I`` to a parser.

    Each also reads an environment variable (``NNJAX_COORDINATOR``,
    ``NNJAX_NUM_PROCESSES``, ``NNJAX_PROCESS_ID``) when the flag is absent.
    """
    env = os.environ.get
    parser.add_argument("--coordinator", default=env("NNJAX_COORDINATOR"),
                        help="host:port of process 0 (multi-process runs)")
    parser.add_argument("--num-processes", type=int, default=env("NNJAX_NUM_PROCESSES"),
                        help="number of processes in the run")
    parser.add_argument("--process-id", type=int, default=env("NNJAX_PROCESS_ID"),
                        help="this process's index, 0 .. num-processes - 1")
    parser.add_argument("--slurm", action="store_true", help="detect the launch values from SLURM")
    return parser


def initialize_from_args(args: argparse.Namespace) -> bool:
    """Calls :func:`initialize` from :func:`add_launch_arguments`'s flags; False for a 1-process run."""
    if getattr(args, "slurm", False):
        initialize()
        return True
    if args.coordinator is None and args.num_processes is None and args.process_id is None:
        return False
    initialize(args.coordinator, args.num_processes, args.process_id)
    return True


#: fit_population's per-member numbers: sliced with the members when given one per member.
_MEMBER_VALUES = ("learning_rate", "l1", "l2", "dropout", "init_scale")


def member_share(size: int, process_index: int, process_count: int) -> np.ndarray:
    """The members that process ``process_index`` trains: a contiguous block of ``ceil(size / count)``.

    Every process trains the same number of members, so that the gathered arrays have one
    shape; when ``size`` is not a multiple of the count, the last blocks repeat the last member
    (trained twice, gathered once).

    Example:
      >>> [member_share(5, i, 3).tolist() for i in range(3)]
      [[0, 1], [2, 3], [4, 4]]
    """
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index: expected 0 .. {process_count - 1}, got {process_index}")
    share = math.ceil(size / process_count)
    return np.minimum(np.arange(process_index * share, (process_index + 1) * share), size - 1)


def _to_host(tree: Any) -> Any:
    """NumPy leaves; PRNG keys as their key data (collectives move plain numbers)."""
    def leaf(a):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a = jax.random.key_data(a)
        return np.asarray(a)
    return jax.tree.map(leaf, tree)


def _from_host(tree: Any, like: Any) -> Any:
    def leaf(a, template):
        if jax.dtypes.issubdtype(template.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(jnp.asarray(a), impl=jax.random.key_impl(template))
        return jnp.asarray(a)
    return jax.tree.map(leaf, tree, like)


def fit_population_distributed(
    keys: jax.Array,
    net: Any,
    data: tuple[Any, Any],
    *,
    process_index: int | None = None,
    process_count: int | None = None,
    gather: Callable[[Any], Any] | None = None,
    **population_kwargs: Any,
):
    """Trains a population split over the processes of a ``jax.distributed`` run; every process gets it all.

    Call it in every process with the same arguments (the same keys, data and settings), after
    :func:`initialize`. Process ``i`` trains the members :func:`member_share` gives it with
    :func:`nnjax.fit_population` on its own devices (no communication while training), then one
    all-gather (``jax.experimental.multihost_utils.process_allgather``) hands every process the
    whole population. Member ``j`` is the member ``j`` that one process training all members
    computes (to float32 rounding, as any population member matches its own ``fit``).

    Args:
      keys: stacked run keys of the whole population, shape ``(P,)``.
      net: the topology.
      data: ``(x, y)``, the same in every process.
      process_index, process_count: this process and the number of processes (default:
        ``jax.process_index()`` and ``jax.process_count()``); given to test the split in one process.
      gather: ``gather(local_tree) -> tree`` stacking every process's tree on a new leading axis
        (default: ``process_allgather``; NumPy leaves, PRNG keys as key data).
      **population_kwargs: :func:`nnjax.fit_population`'s keywords (``optimizer``, ``loss``,
        ``epochs``, ``batch_size``, per-member ``learning_rate`` / ``l1`` / ``l2`` / ``dropout`` /
        ``init_scale`` arrays of shape ``(P,)``, a stacked ``resume``, ...). ``mesh`` is refused:
        each process uses its own devices.

    Returns:
      The population's :class:`~nnjax.FitResult` (leading axis P), the same in every process.

    Raises:
      ValueError: for ``mesh``, or for what :func:`nnjax.fit_population` refuses.
    """
    from nnjax import population

    if "mesh" in population_kwargs:
        raise ValueError("mesh: not accepted by fit_population_distributed (each process trains its members on its "
                         "own devices); use fit_population(mesh=...) for one process's devices")
    index = jax.process_index() if process_index is None else process_index
    count = jax.process_count() if process_count is None else process_count
    resume = population_kwargs.get("resume")
    if keys is None and resume is not None:
        keys = resume.key
    size = population.population_size(keys)
    mine = member_share(size, index, count)

    def take(value):
        return jax.tree.map(lambda a: a[mine], value)

    local_kwargs = dict(population_kwargs)
    for name in _MEMBER_VALUES:
        value = local_kwargs.get(name)
        if value is not None and not callable(value) and np.ndim(value) >= 1:
            local_kwargs[name] = np.asarray(value)[mine]
    if resume is not None:
        local_kwargs["resume"] = take(resume)
    local = population.fit_population(take(keys), net, data, **local_kwargs)
    if count == 1:
        return local
    if gather is None:
        from jax.experimental import multihost_utils

        gather = multihost_utils.process_allgather
    stacked = gather(_to_host(local))  # (count, share, ...) per leaf
    whole = jax.tree.map(lambda a: np.reshape(np.asarray(a), (-1,) + np.shape(a)[2:])[:size], stacked)
    return _from_host(whole, local)
