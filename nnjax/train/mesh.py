"""Device meshes for populations and data parallelism, and joining a multi-process run.

A :class:`~jax.sharding.Mesh` names two axes: "population" (members split over devices, no
communication) and "data" (every minibatch split over devices, gradients all-reduced by XLA).
:func:`make_mesh` builds one, :func:`batch_sharding`, :func:`constrain_population` and
:func:`pad_population` place arrays on it, and :func:`initialize` joins a ``jax.distributed``
run. The training functions that use a mesh live in :mod:`nnjax.train.parallel`.

Example:
  >>> import jax
  >>> from nnjax.train import mesh
  >>> m = mesh.make_mesh(data=len(jax.devices()))
  >>> m.axis_names
  ('data',)
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "add_launch_arguments",
    "batch_sharding",
    "constrain_population",
    "initialize",
    "initialize_from_args",
    "make_mesh",
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
