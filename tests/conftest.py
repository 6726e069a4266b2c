"""Test configuration: fake CPU devices, fresh keys with a printed seed, strict checks."""

import os
import pathlib
import runpy
import zlib

# Eight fake CPU devices for the sharding tests; must be set before jax is imported.
# The suite is compile-bound (small programs, many shapes): XLA's backend optimisation
# level 0 compiles about 40% faster and changes no semantics.
os.environ.setdefault(
    "XLA_FLAGS", "--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0"
)
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Hermetic tests: no persistent compilation cache unless a test turns it on in a subprocess.
os.environ.setdefault("NNJAX_CACHE_DIR", "off")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def seed(request) -> int:
    """A seed derived from the test's name, printed so a failure can be replayed."""
    # Deterministic per test; set NNJAX_TEST_SEED to draw other inputs.
    value = (zlib.crc32(request.node.nodeid.encode()) + int(os.environ.get("NNJAX_TEST_SEED", 0))) % 2**31
    print(f"[seed] {request.node.nodeid}: {value}")
    return value


@pytest.fixture
def key(seed):
    """A fresh jax PRNG key for the test."""
    return jax.random.key(seed)


@pytest.fixture
def rng(seed):
    """A NumPy generator for drawing test inputs."""
    return np.random.default_rng(seed)


EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def run_example(monkeypatch, tmp_path, capsys):
    """Runs ``examples/<name>.py``'s ``main(["--quick", ...])`` in this process; returns (measured, printed)."""
    monkeypatch.syspath_prepend(str(EXAMPLES))  # the scripts import their helper module _common

    def run(name: str, *extra: str) -> tuple[dict, str]:
        namespace = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name=f"example_{name}")
        measured = namespace["main"](["--quick", "--out", str(tmp_path), "--seed", "1", *extra])
        printed = capsys.readouterr().out
        assert "Conclusions:" in printed
        return measured, printed

    return run


@pytest.fixture
def run_processes():
    """Starts commands side by side and waits for them all: ``run(commands, env) -> logs``.

    A process still running after ``timeout`` seconds fails the test (and every process is killed);
    so does a non-zero exit, with every process's output in the message.
    """
    import subprocess

    def run(commands: list[list[str]], env: dict, timeout: float = 240) -> list[str]:
        procs = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for c in commands]
        logs = []
        for p in procs:
            try:
                logs.append(p.communicate(timeout=timeout)[0])
            except subprocess.TimeoutExpired:
                for q in procs:
                    q.kill()
                pytest.fail(f"the {len(procs)}-process run did not finish in {timeout} s:\n" + "\n".join(logs))
        assert all(p.returncode == 0 for p in procs), "\n----\n".join(logs)
        return logs

    return run


@pytest.fixture(autouse=True, scope="module")
def _fresh_jit_caches():
    """Each test file starts with JAX's in-memory caches empty. A worker that kept every program of
    the whole suite crashed twice inside XLA's CPU compiler near the end of a run (a segmentation
    fault in backend_compile_and_load, in two different tests); no test relies on a program compiled
    by another file (compile-once tests compile and count within one file)."""
    import jax

    jax.clear_caches()
    yield
