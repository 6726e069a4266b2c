"""Tests of sharding over devices and processes (nnjax.parallel).

tests/conftest.py fakes 8 CPU devices (``--xla_force_host_platform_device_count=8``).
"""

import argparse
import os
import socket
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

import nnjax
from nnjax import parallel, population

FIT = dict(loss="softmax_cross_entropy", epochs=2, batch_size=16, diagnostics=False)
LR = np.array([0.05, 0.1, 0.2, 0.3, 0.4, 0.5], np.float32)  # 6 members: pads to a multiple of 4 and 8
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


def test_population_sharded_over_devices_equals_one_device(problem, one_device_population):
    mesh = parallel.make_mesh(population=8)
    sharded = _population(problem, mesh)
    assert sharded.history["loss"].shape == (len(LR), FIT["epochs"])
    # The members were computed on all 8 devices (6 members padded to 8), not gathered on one.
    assert len(sharded.params[0]["w"].sharding.device_set) == 8
    _assert_results_close(sharded, one_device_population)


def test_population_and_batch_sharded_together_equal_one_device(problem, one_device_population):
    mesh = parallel.make_mesh(population=4, data=2)
    sharded = _population(problem, mesh)
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


_WORKER = """
import os, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["JAX_PLATFORMS"] = "cpu"
from nnjax import parallel
port, pid, inputs, out = sys.argv[1:5]
parallel.initialize(f"localhost:{port}", 2, int(pid))
import jax, numpy as np, optax, nnjax
assert jax.process_count() == 2 and len(jax.devices()) == 4, (jax.process_count(), jax.devices())
d = np.load(inputs)
net = nnjax.MLP((5, 8, 3), dropout=0.2)
result = parallel.fit_data_parallel(jax.random.key(int(d["seed"])), net, (d["x"], d["y"]),
    optimizer=optax.sgd(0.1), validation=(d["xv"], d["yv"]), loss="softmax_cross_entropy",
    epochs=2, batch_size=16, diagnostics=False)
if jax.process_index() == 0:
    np.savez(out, loss=result.history["loss"], val_loss=result.history["val_loss"],
             w0=result.params[0]["w"], w1=result.params[1]["w"])
print("process", jax.process_index(), "done")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process(problem, one_device_fit, tmp_path):
    x, y, xv, yv, _, seed = problem
    np.savez(tmp_path / "inputs.npz", x=x, y=y, xv=xv, yv=yv, seed=seed)
    (tmp_path / "worker.py").write_text(textwrap.dedent(_WORKER))
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    port = _free_port()
    procs = [
        subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), str(port), str(i),
                          str(tmp_path / "inputs.npz"), str(tmp_path / "out.npz")],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)
    ]
    logs = []
    for p in procs:
        try:
            logs.append(p.communicate(timeout=180)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("the 2-process run did not finish in 180 s:\n" + "\n".join(logs))
    assert all(p.returncode == 0 for p in procs), "\n----\n".join(logs)
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(out["loss"], one_device_fit.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(out["val_loss"], one_device_fit.history["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(out["w0"], one_device_fit.params[0]["w"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["w1"], one_device_fit.params[1]["w"], rtol=1e-5, atol=1e-6)
