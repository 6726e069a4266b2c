"""The package's floors hold: imports only go down, no private names cross modules, and every
public module path of earlier versions still imports (as the module that holds it now)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pathlib
import subprocess
import sys

import pytest

import nnjax

PACKAGE = pathlib.Path(nnjax.__file__).resolve().parent

# A folder's rank: a module may import its own folder and folders of lower rank only.
RANKS = {"_base": 0, "data": 1, "nn": 1, "train": 2, "report": 3, "io": 4, "sklearn": 5, "text": 5, "cli": 6}


def _folder(module: str) -> str | None:
    """The floor folder of ``nnjax.<folder>...`` (``text`` for the nnjax.text face); None for the facade."""
    parts = module.split(".")
    if parts[0] != "nnjax" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: pathlib.Path) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) of every ``import``/``from ... import`` in a file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found.extend((a.name, [], node.lineno) for a in node.names)
    return found


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if p.name not in ("__init__.py", "__main__.py") or p.parent != PACKAGE)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down(path):
    here = _module_name(path)
    folder = _folder(here)
    assert folder in RANKS, f"{here}: a module outside the floor folders {sorted(RANKS)}"
    for module, names, line in _imports(path):
        targets = [_folder(module)]
        if module == "nnjax":  # the facade: only a floor folder itself, or the version
            targets = [name for name in names if name != "__version__"]
            assert names and all(t in RANKS for t in targets), (
                f"{here}:{line}: imports {names or 'the facade'} from the facade 'nnjax'; import the module that "
                "holds the name")
        for target in targets:
            if target is None or target == folder:
                continue
            assert target in RANKS, f"{here}:{line}: imports {module}, a path outside the floor folders (an old alias?)"
            assert RANKS[target] < RANKS[folder], (
                f"{here}:{line}: imports {module} {names} (floor {RANKS[target]}) from floor {RANKS[folder]}: "
                "imports only go down")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_name_crosses_modules(path):
    here = _module_name(path)
    for module, names, line in _imports(path):
        if not module.startswith("nnjax"):
            continue
        package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
        for name in names:
            if not name.startswith("_") or name == "__version__":
                continue
            # a private module of the module's own package is that package's own business
            is_module = importlib.util.find_spec(f"{module}.{name}") is not None
            assert is_module and module == package, f"{here}:{line}: imports the private name {name} of {module}"


@pytest.mark.parametrize("name", sorted(nnjax.MODULES))
def test_public_module_paths_import_the_module_that_holds_them(name):
    old = importlib.import_module(f"nnjax.{name}")
    new = importlib.import_module(nnjax.MODULES[name])
    if name == "diagnose":  # the module path that is also the function: a callable module
        assert old.Diagnosis is new.Diagnosis and callable(old)
    else:
        assert old is new
    assert getattr(nnjax, name) is old


def test_old_nested_paths_still_import():
    from nnjax.data import hyperparameters, validation

    assert validation.check_features is nnjax.data.check_features
    assert hyperparameters.check_positive_int is nnjax.data.check_positive_int


def test_diagnose_is_callable_whatever_was_imported_first():
    # A fresh process, so that the import order is the user's: the module first, then the call.
    code = (
        "import numpy as np, importlib, nnjax\n"
        "from nnjax.diagnose import Diagnosis\n"
        "for name in nnjax.MODULES:\n"
        "    if name not in ('flax_interop', 'sklearn', 'tensorboard', 'plots'):\n"
        "        importlib.import_module('nnjax.' + name)\n"
        "h = {'loss': np.linspace(1, 0.5, 6), 'skipped': np.zeros(6), 'grad_norm': np.ones(6),\n"
        "     **{k: np.full((6, 3), 0.1) for k in ('layer_grad_norm', 'layer_weight_norm', 'layer_update_ratio',\n"
        "                                          'layer_grad_above_1', 'layer_nonfinite')},\n"
        "     'dead_units': np.zeros((6, 2)), 'saturated_units': np.zeros((6, 2))}\n"
        "d = nnjax.diagnose(h)\n"
        "assert isinstance(d, Diagnosis), type(d)\n"
        "import nnjax.diagnose as module\n"
        "assert module(h).verdict == d.verdict\n"
        "print(d.verdict)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() in ("healthy", "vanishing", "exploding")


def test_every_public_name_of_the_facade_resolves():
    for name in nnjax.__all__:
        assert getattr(nnjax, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'fitt'"):
        nnjax.fitt  # noqa: B018
