"""Smoke tests: every script in examples/ runs with --quick and writes the plots it promises.

Scripts are discovered automatically (``examples/*.py`` except names starting with "_"), so a new
example is tested as soon as it exists. Each runs in its own Python process with a timeout and
``--out`` pointing at a temporary folder. A script "promises" every ``name.png`` literal in its
source; those files must exist afterwards (anywhere under ``--out``), and a script that mentions
".png" at all must write at least one PNG. Scripts built on ``examples/_common.py`` must also
print their conclusions.

Without pytest-xdist the selected scripts run two at a time (they are independent processes and
mostly single-threaded compilation); under xdist each test runs its own script.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ALL_SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
# Examples that tests/test_examples_issue*.py or test_diagnose.py already run in-process with --quick (with stronger
# assertions on their numbers): running them again here would only double the suite's time.
IN_PROCESS = {
    "perceptron", "single_neuron", "spam_vs_ham",  # test_examples_issue4.py
    "init_depth_statistics",  # test_examples_issue5.py
    "vanishing_gradients", "exploding_gradients",  # test_diagnose.py, on its compiled fixtures
    "random_starts", "hyperparameter_sweep",  # test_examples_issue6.py
}
SCRIPTS = [p for p in ALL_SCRIPTS if p.stem not in IN_PROCESS]
TIMEOUT_S = 180  # generous: a --quick run takes seconds, but the machine may be shared
PARALLEL = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2
_PNG_LITERAL = re.compile(r"""["']([\w.\-]+\.png)["']""")


def promised_pngs(source: str) -> set[str]:
    """The PNG file names written as string literals in a script's source."""
    return set(_PNG_LITERAL.findall(source))


def test_promised_pngs_parses_literals():
    source = 'save(fig, out, "loss.png")\nname = f"{x}.png"\npath = out / \'a-b_1.png\''
    assert promised_pngs(source) == {"loss.png", "a-b_1.png"}


def test_examples_are_discovered():
    print(f"[examples] {len(SCRIPTS)} scripts: {', '.join(p.name for p in SCRIPTS)}")
    assert SCRIPTS, f"expected example scripts in {EXAMPLES}"
    mine = {"activations.py", "softmax_digits.py", "regression_diabetes.py", "gd_vs_sgd.py",
            "regularization.py", "zero_init_symmetry.py", "lr_schedules.py", "adam_vs_sgd.py"}
    assert mine <= {p.name for p in SCRIPTS}


def test_every_example_has_a_smoke_test():
    """Each script runs here, in a test_examples_issue*.py file or in test_diagnose.py that names it."""
    here = pathlib.Path(__file__).parent
    files = [*here.glob("test_examples_issue*.py"), here / "test_diagnose.py"]
    elsewhere = " ".join(p.read_text() for p in files)
    for script in ALL_SCRIPTS:
        assert script in SCRIPTS or f'"{script.stem}"' in elsewhere, f"{script.name} has no smoke test"


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("JAX_PLATFORMS", "cpu")
    env["MPLBACKEND"] = "Agg"
    # --quick runs are dominated by XLA compilation; skipping LLVM's optimisations roughly halves
    # it for these small programs (the examples' numbers barely change, and only timings slow down).
    env["XLA_FLAGS"] = " ".join(filter(None, [env.get("XLA_FLAGS"), "--xla_backend_optimization_level=0"]))
    return env


def _run(script: pathlib.Path, workdir: pathlib.Path) -> tuple[subprocess.CompletedProcess | None, pathlib.Path]:
    """Runs ``script --quick --out workdir/out``; ``None`` for a run that timed out."""
    out = workdir / "out"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(
            [sys.executable, str(script), "--quick", "--out", str(out)],
            cwd=workdir, env=_environment(), capture_output=True, text=True, timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        proc = None
    return proc, out


class _ExampleRuns:
    """Starts example runs on a small thread pool and hands out their results."""

    def __init__(self, root: pathlib.Path, workers: int):
        self.root = root
        self.pool = ThreadPoolExecutor(max_workers=workers)
        self.futures: dict[pathlib.Path, Future] = {}

    def start(self, scripts) -> None:
        for script in scripts:
            if script not in self.futures:
                self.futures[script] = self.pool.submit(_run, script, self.root / script.stem)

    def result(self, script: pathlib.Path):
        self.start([script])
        return self.futures[script].result()


@pytest.fixture(scope="module")
def example_runs(request, tmp_path_factory):
    runs = _ExampleRuns(tmp_path_factory.mktemp("examples"), PARALLEL)
    if PARALLEL > 1:  # queue every selected script now so that two run at any time
        selected = [item.callspec.params["script"] for item in request.session.items
                    if getattr(item, "callspec", None) and "script" in item.callspec.params]
        runs.start(selected)
    yield runs
    runs.pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_runs_quick(script: pathlib.Path, example_runs):
    proc, out = example_runs.result(script)
    if proc is None:
        pytest.fail(f"{script.name} --quick ran longer than {TIMEOUT_S} s")
    tail = f"\n--- stdout (tail)\n{proc.stdout[-3000:]}\n--- stderr (tail)\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"{script.name} --quick exited with {proc.returncode}{tail}"
    assert proc.stdout.strip(), f"{script.name} printed nothing{tail}"

    source = script.read_text()
    written = {p.name for p in out.rglob("*.png")} if out.exists() else set()
    missing = promised_pngs(source) - written
    assert not missing, f"{script.name}: expected {sorted(missing)} under --out, found {sorted(written)}{tail}"
    if ".png" in source:
        assert written, f"{script.name} mentions PNG plots but wrote none under --out{tail}"
    if "import _common" in source:
        assert "Conclusions:" in proc.stdout, f"{script.name}: expected its printed conclusions{tail}"
