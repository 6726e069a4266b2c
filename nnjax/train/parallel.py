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

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from nnjax.train import population
from nnjax.train.fitting import fit
from nnjax.train.options import Options, is_auto, takes_settings
from nnjax.train.mesh import (add_launch_arguments, batch_sharding, constrain_population, initialize,
                              initialize_from_args, make_mesh, pad_population)

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

@takes_settings
def fit_data_parallel(key: jax.Array, net: Any, data: tuple[Any, Any], options: Options | None = None, *,
                      mesh: Mesh | None = None, params: Any = None, resume: Any = None, progress: Any = False,
                      progress_every: int | None = None, **settings: Any):
    """:func:`nnjax.fit` with every minibatch split over the mesh's "data" axis.

    Parameters and optimiser state are replicated; each device computes the
    loss and gradient contributions of its rows and XLA all-reduces them, so
    the result equals ``nnjax.fit(key, net, data, options)`` to float32
    rounding. In a multi-process run (after :func:`initialize`) call it in every
    process with the same arguments; the mesh then spans all processes.

    Args:
      key: the run key.
      net: the topology.
      data: ``(x, y)``, the full training set (the same in every process).
      options: the settings (an :class:`~nnjax.train.options.Options`; keywords replace its fields).
      mesh: a mesh with a "data" axis (default: every device on it).
      params, resume, progress, progress_every: as in :func:`nnjax.fit`.
      **settings: the fields of :class:`~nnjax.train.options.Options`; ``batch_size`` must be a
        multiple of the "data" axis size, and ``batch_sharding`` is set from ``mesh``.

    Returns:
      The :class:`~nnjax.FitResult` (its arrays replicated over the mesh).

    Raises:
      ValueError: for a mesh without a "data" axis or a batch that does not split evenly.
    """
    mesh = make_mesh(data=len(jax.devices())) if mesh is None else mesh
    if "data" not in mesh.axis_names:
        raise ValueError(f"mesh: expected an axis named 'data', got axes {mesh.axis_names}")
    shards = mesh.shape["data"]
    options = Options.of(options, **settings)
    if options.batch_size % shards:
        raise ValueError(f"batch_size: expected a multiple of the {shards} devices on the mesh's 'data' axis, "
                         f"got {options.batch_size}")
    if options.batch_sharding is not None:
        raise ValueError("batch_sharding: set by fit_data_parallel from mesh; pass mesh instead")
    return fit(key, net, data, options, batch_sharding=batch_sharding(mesh), params=params, resume=resume,
               progress=progress, progress_every=progress_every)


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
      **population_kwargs: :func:`nnjax.fit_population`'s keywords (``options``, ``optimizer``, ``loss``,
        ``epochs``, ``batch_size``, per-member ``learning_rate`` / ``l1`` / ``l2`` / ``dropout`` /
        ``init_scale`` arrays of shape ``(P,)``, a stacked ``resume``, ...). ``mesh`` is refused:
        each process uses its own devices. ``learning_rate="auto"`` is found once from the whole
        population (:func:`nnjax.population.found_rate`), the same rate in every process.

    Returns:
      The population's :class:`~nnjax.FitResult` (leading axis P), the same in every process.

    Raises:
      ValueError: for ``mesh``, or for what :func:`nnjax.fit_population` refuses.
    """
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
    settings = {k: v for k, v in population_kwargs.items() if k in Options.__dataclass_fields__}
    whole = Options.of(population_kwargs.get("options"), **settings) if settings or "options" in population_kwargs \
        else None
    if whole is not None and is_auto(whole.learning_rate):  # one rate from the whole population, in every process
        population_kwargs = {**population_kwargs,
                             "learning_rate": population.found_rate(keys, net, data, whole).learning_rate}

    def take(value):
        return jax.tree.map(lambda a: a[mine], value)

    def per_member(value):
        return value is not None and not callable(value) and np.ndim(value) >= 1

    local_kwargs = dict(population_kwargs)
    for name in population.MEMBER_SETTINGS:  # per-member numbers: sliced with the members
        if per_member(local_kwargs.get(name)):
            local_kwargs[name] = np.asarray(local_kwargs[name])[mine]
    options = local_kwargs.get("options")
    if options is not None:  # the same numbers inside a record
        local_kwargs["options"] = options.replace(**{name: np.asarray(getattr(options, name))[mine]
                                                     for name in population.MEMBER_SETTINGS
                                                     if hasattr(options, name) and per_member(getattr(options, name))})
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
