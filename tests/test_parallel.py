"""Tests of sharding over devices and processes (nnjax.parallel).

tests/conftest.py fakes 8 CPU devices (``--xla_force_host_platform_device_count=8``).
"""

import argparse
import os
import socket
import sys
import zlib
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

import nnjax
from nnjax import parallel, population

FIT = dict(loss="softmax_cross_entropy", epochs=2, batch_size=16, diagnostics=False)
LR = np.array([0.05, 0.1, 0.2, 0.3, 0.4, 0.5], np.float32)  # 6 members: pads to a multiple of 4
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def problem():
    seed = (zlib.crc32(f"{__name__}::problem".encode()) + int(os.environ.get("NNJAX_TEST_SEED", 0))) % 2**31
    print(f"[seed] {__name__}::problem: {seed}")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(80, 5)).astype(np.float32)
    y = (x[:, 0] - x[:, 3] > 0).astype(np.int32) + (x[:, 1] > 0.7).astype(np.int32)
    net = nnjax.MLP((5, 8, 3), dropout=0.2)
    return x[:64], y[:64], x[64:], y[64:], net, int(rng.integers(2**31))


def _population(problem, mesh=None):
    x, y, xv, yv, net, seed = problem
    keys = jax.random.split(jax.random.key(seed), len(LR))
    return population.fit_population(keys, net, (x, y), optimizer="sgd", learning_rate=LR,
                                     validation=(xv, yv), mesh=mesh, **FIT)


@pytest.fixture(scope="module")
def one_device_population(problem):
    assert len(jax.devices()) == 8, "tests/conftest.py should fake 8 CPU devices"
    return _population(problem)


@pytest.fixture(scope="module")
def one_device_fit(problem):
    x, y, xv, yv, net, seed = problem
    return nnjax.fit(jax.random.key(seed), net, (x, y), optimizer=optax.sgd(0.1), validation=(xv, yv), **FIT)


def _assert_results_close(a, b):
    for name in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(np.asarray(a.history[name]), np.asarray(b.history[name]), rtol=1e-5, atol=1e-6)
    jax.tree.map(lambda u, v: np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-5, atol=1e-6),
                 a.params, b.params)


def test_make_mesh_shapes_and_errors():
    assert parallel.make_mesh().shape == {"population": 8, "data": 1}
    assert parallel.make_mesh(data=2).shape == {"population": 4, "data": 2}
    assert parallel.make_mesh(population=2, data=4).devices.size == 8
    with pytest.raises(ValueError, match=r"expected positive sizes whose product is the number of devices \(8\)"):
        parallel.make_mesh(population=3, data=2)


def test_population_and_batch_sharded_together_equal_one_device(problem, one_device_population):
    # 6 members padded to 8, split over 4 devices; each member's batches split over 2 more.
    mesh = parallel.make_mesh(population=4, data=2)
    sharded = _population(problem, mesh)
    assert sharded.history["loss"].shape == (len(LR), FIT["epochs"])
    assert len(sharded.params[0]["w"].sharding.device_set) == 8  # computed on every device, not gathered on one
    _assert_results_close(sharded, one_device_population)


def test_data_parallel_fit_all_reduces_and_equals_one_device(problem, one_device_fit):
    x, y, xv, yv, net, seed = problem
    mesh = parallel.make_mesh(population=1, data=8)

    def run(key):
        return parallel.fit_data_parallel(key, net, (x, y), mesh=mesh, optimizer=optax.sgd(0.1),
                                          validation=(xv, yv), **FIT)

    compiled = jax.jit(run).lower(jax.random.key(seed)).compile()
    hlo = compiled.as_text()
    # Each device holds 16 / 8 = 2 rows of a batch; the gradients are summed across devices.
    assert "all-reduce" in hlo
    assert "f32[2,5]" in hlo
    result = compiled(jax.random.key(seed))
    _assert_results_close(result, one_device_fit)


def test_data_parallel_rejects_uneven_batches(problem):
    x, y, _, _, net, seed = problem
    mesh = parallel.make_mesh(population=1, data=8)
    with pytest.raises(ValueError, match="batch_size: expected a multiple of the 8 devices"):
        parallel.fit_data_parallel(jax.random.key(seed), net, (x, y), mesh=mesh, optimizer=optax.sgd(0.1),
                                   **{**FIT, "batch_size": 12})
    with pytest.raises(ValueError, match="batch_size: expected a multiple of the 2 devices"):
        population.fit_population(jax.random.split(jax.random.key(seed), 4), net, (x, y), optimizer="sgd",
                                  mesh=parallel.make_mesh(population=4, data=2), **{**FIT, "batch_size": 15})
    with pytest.raises(ValueError, match="mesh: expected an axis named 'data'"):
        mesh1 = jax.sharding.Mesh(np.array(jax.devices()), ("population",))
        parallel.fit_data_parallel(jax.random.key(seed), net, (x, y), mesh=mesh1, optimizer=optax.sgd(0.1), **FIT)


def test_launch_arguments(monkeypatch):
    monkeypatch.setenv("NNJAX_NUM_PROCESSES", "4")
    parser = parallel.add_launch_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--coordinator", "node0:1234", "--process-id", "3"])
    assert (args.coordinator, args.num_processes, args.process_id) == ("node0:1234", 4, 3)
    monkeypatch.delenv("NNJAX_NUM_PROCESSES")
    plain = parallel.add_launch_arguments(argparse.ArgumentParser())
    assert parallel.initialize_from_args(plain.parse_args([])) is False
    with pytest.raises(ValueError, match="expected all three"):
        parallel.initialize("localhost:1", None, 0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_equal_one_process(tmp_path, run_processes):
    # The documented launcher (examples/data_parallel.py) in two local processes of 2 CPU devices each,
    # joined by jax.distributed with gloo CPU collectives. Each process also trains the same model on one
    # local device without any sharding; process 0 saves both.
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["JAX_PLATFORMS"] = "cpu"
    # Two CPU devices per process, set here rather than with the example's --fake-devices (which would replace
    # XLA_FLAGS): the suite's cheaper compilation (optimisation level 0, as in tests/conftest.py) applies too.
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0"
    port = _free_port()
    logs = run_processes([[sys.executable, str(ROOT / "examples" / "data_parallel.py"), "--quick",
                           "--coordinator", f"localhost:{port}", "--num-processes", "2", "--process-id", str(i),
                           "--out", str(tmp_path), "--save", str(tmp_path / "out.npz")] for i in range(2)], env)
    out = np.load(tmp_path / "out.npz")
    assert (int(out["processes"]), int(out["devices"])) == (2, 4), logs[0]
    np.testing.assert_allclose(out["loss"], out["single"], rtol=1e-5)
    assert float(out["weight_gap"]) < 1e-5
    assert "matches the single-device run" in logs[0]
