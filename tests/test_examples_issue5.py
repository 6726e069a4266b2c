"""Smoke tests: the deep-network examples run with --quick, write their plot and print measured conclusions.

They run in-process. The vanishing/exploding examples are smoke-tested in tests/test_diagnose.py, on top of
the fixtures that compile their experiments (tests/test_examples.py runs every example as a script as well).
"""

import importlib.util
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_example(name: str):
    """The module ``examples/<name>.py``, imported once per process under a fixed name."""
    module_name = f"nnjax_example_{name}"
    if module_name not in sys.modules:
        if str(ROOT / "examples") not in sys.path:
            sys.path.append(str(ROOT / "examples"))  # the examples import their helpers, examples/_common.py
        spec = importlib.util.spec_from_file_location(module_name, ROOT / "examples" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def check_png(path: pathlib.Path) -> None:
    assert path.is_file(), f"expected a plot at {path}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000  # a drawn figure, not an empty canvas


def test_init_depth_statistics_example(tmp_path, capsys):
    found = load_example("init_depth_statistics").main(["--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    check_png(tmp_path / "init_depth_statistics.png")
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0] in ("tanh", "relu"):
            rows[parts[0], parts[1]] = parts[4]  # activation, init, layer 1, last layer, verdict
    assert len(rows) == 10
    # He init keeps ReLU activations' variance steady (x0.9..x1.1 per layer); a small fixed normal does not
    assert rows["relu", "he_normal"] == "steady" and "he_normal" in found["steady"]["relu"]
    assert rows["relu", "normal"] == "shrinking" and rows["tanh", "normal"] == "shrinking"
    assert rows["relu", "zeros"] == "zero" and rows["tanh", "zeros"] == "zero"
    # the printed verdicts agree with the returned variances
    for (activation, init), variances in found["results"].items():
        assert (rows[activation, init] == "steady") == (init in found["steady"][activation])
        assert variances.shape == (12,)
    assert re.search(r"\* relu: variance steady with [^\n]*he_normal", out)
