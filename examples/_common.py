"""Helpers shared by the example scripts: arguments, output folder, plots, timing, conclusions.

Every example is run as ``python examples/<name>.py [--quick] [--out DIR] [--seed N]``:

* ``--quick`` shrinks data, widths and epochs so the script finishes in seconds (the smoke tests
  in ``tests/test_examples.py`` run every example this way); it also compiles the way the test
  suite does, without LLVM's optimisation passes (:func:`quick_compiles`);
* ``--out`` is where the PNG plots go (default ``runs/examples/<name>/``, ignored by git);
* ``--seed`` seeds every random draw of the run.

The scripts print what they measure and end with conclusions computed from those measurements.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
from typing import Any, Callable

os.environ.setdefault("MPLBACKEND", "Agg")  # plots go to files; no display is needed

_REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
try:  # run from a source checkout without installing the package
    import nnjax  # noqa: F401
except ImportError:  # pragma: no cover - depends on how the script is started
    sys.path.insert(0, str(_REPO_ROOT))


def parse_args(name: str, description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """Parses ``--quick``, ``--out`` and ``--seed``, and creates the output folder.

    Args:
      name: the example's name; the default output folder is ``runs/examples/<name>``.
      description: one line on what the example shows (``--help`` prints it).
      argv: the arguments (default: ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(prog=f"{name}.py", description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes: runs in a few seconds")
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path("runs") / "examples" / name,
        help="folder for the PNG plots (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw (default: 0)")
    args = parser.parse_args(argv)
    if args.quick:
        quick_compiles()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"== {name}: {description}")
    print(f"   quick={args.quick} seed={args.seed} out={args.out}")
    return args


QUICK_XLA_FLAG = "--xla_backend_optimization_level=0"


def quick_compiles() -> None:
    """For ``--quick``: XLA's CPU compiler skips LLVM's optimisation passes (``QUICK_XLA_FLAG``).

    A quick run is a few small training programs, each compiled once and run for a few
    milliseconds, so its wait is the compiler's: without the passes the examples' programs compile
    in about half the time and run a little slower. The test suite compiles every example this
    way (``tests/conftest.py``, ``tests/test_examples.py``), so a quick run is what the tests check.
    XLA reads ``XLA_FLAGS`` once, when JAX's backend starts: call this before the first JAX
    computation (later, or when ``XLA_FLAGS`` already sets a level, it changes nothing).
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {QUICK_XLA_FLAG}".strip()


def run_each(runs: dict[str, Callable[[], Any]], workers: int = 2) -> dict[str, Any]:
    """Calls every ``name -> function`` of ``runs``, ``workers`` at a time in threads; results by name,
    in ``runs``' order.

    For independent fits of programs that differ in structure (one topology or optimizer each):
    each first call traces its program (Python, one thread at a time) and then compiles it in XLA,
    which releases the GIL, so two compiles proceed at once on two cores. The results are those of
    calling the functions one after another: each fit has its own key and data.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {name: pool.submit(fn) for name, fn in runs.items()}
        return {name: future.result() for name, future in futures.items()}


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, out: pathlib.Path, filename: str) -> pathlib.Path:
    """Writes ``fig`` as ``out / filename`` (PNG), closes it and prints the path."""
    path = pathlib.Path(out) / filename
    fig.savefig(path, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    print(f"saved {path}")
    return path


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``(fn(*args, **kwargs), seconds)``, waiting for every array of the result to be computed."""
    import jax

    start = time.perf_counter()
    result = jax.block_until_ready(fn(*args, **kwargs))
    return result, time.perf_counter() - start


def section(title: str) -> None:
    """Prints a section heading."""
    print(f"\n-- {title}")


def table(header: list[str], rows: list[list[Any]]) -> None:
    """Prints rows as an aligned text table (floats with 4 significant digits)."""

    def cell(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    cells = [header] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for r in cells:
        print("  " + "  ".join(c.rjust(w) for c, w in zip(r, widths)))


def conclude(*statements: str) -> None:
    """Prints the conclusions (each built by the caller from measured numbers)."""
    print("\nConclusions:")
    for s in statements:
        print(f"  * {s}")
