"""nnjax: feed-forward neural networks as pure JAX functions.

The whole training run -- epochs of reshuffled minibatches, optax updates,
validation, early stopping, a NaN guard and per-layer gradient diagnostics --
compiles into one XLA program, and ``jax.vmap`` trains populations of models.

The package is built in floors, each importing only the floors below it (see
``docs/architecture.md``): ``nnjax._base`` (checks, files, cache), ``nnjax.data`` and
``nnjax.nn`` (datasets; networks, losses, models), ``nnjax.train`` (the compiled loop,
``fit``, populations, search), ``nnjax.report`` (metrics, diagnosis, plots),
``nnjax.io`` (checkpoints, run directories), ``nnjax.sklearn`` and ``nnjax.text``
(faces), ``nnjax.cli`` (the command). This module is only a facade: the names below
load on first use, and the module paths of earlier versions (``nnjax.training``,
``nnjax.population``, ...) import the modules where they live now.

Example:
  >>> import jax, optax, nnjax
  >>> data = nnjax.data.load_dataset("xor")
  >>> net = nnjax.MLP((2, 8, 1), activation="tanh", output="sigmoid")
  >>> result = nnjax.fit(jax.random.key(0), net, (data.x, data.y),
  ...                    loss="binary_cross_entropy", optimizer=optax.adam(0.05),
  ...                    epochs=50, batch_size=32)
  >>> result.history["loss"].shape
  (50,)
"""

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from typing import TYPE_CHECKING, Any

# The one table: every public module path (nnjax.<name>) and the module that holds it.
# Submodules load on first use (PEP 562), so ``import nnjax`` and ``nnjax --help`` cost no JAX
# import until something that needs JAX is touched.
MODULES = {
    "activations": "nnjax.nn.activations",
    "initializers": "nnjax.nn.initializers",
    "losses": "nnjax.nn.losses",
    "network": "nnjax.nn.network",
    "model": "nnjax.nn.model",
    "perceptron": "nnjax.nn.perceptron",
    "flax_interop": "nnjax.nn.flax_interop",
    "checks": "nnjax._base.checks",
    "cache": "nnjax._base.cache",
    "xla_options": "nnjax._base.xla_options",
    "optim": "nnjax.train.optim",
    "training": "nnjax.train.loop",
    "fitting": "nnjax.train.fitting",
    "progress": "nnjax.train.runner",
    "diagnostics": "nnjax.train.diagnostics",
    "population": "nnjax.train.population",
    "parallel": "nnjax.train.parallel",
    "sweeps": "nnjax.train.sweeps",
    "search": "nnjax.train.search",
    "metrics": "nnjax.report.metrics",
    "diagnose": "nnjax.report.diagnosis",
    "plots": "nnjax.report.plots",
    "tensorboard": "nnjax.report.tensorboard",
    "describe": "nnjax.report.summary",
    "checkpoint": "nnjax.io.checkpoint",
    "runs": "nnjax.io.runs",
    "saved": "nnjax.io.saved",
    "run_history": "nnjax.io.run_history",
    "data": "nnjax.data",
    "sklearn": "nnjax.sklearn",
    "text": "nnjax.text",
    "nn": "nnjax.nn",
    "train": "nnjax.train",
    "report": "nnjax.report",
    "io": "nnjax.io",
}

# Paths of earlier versions below the top level.
_OLD_PATHS = {
    "nnjax.data.validation": "nnjax._base.validation",
    "nnjax.data.hyperparameters": "nnjax._base.checks",
}

# The public names of ``nnjax.<name>`` and the module that defines each.
NAMES = {
    "Diagnosis": "nnjax.report.diagnosis",
    "SavedModel": "nnjax.io.saved",
    "load": "nnjax.io.saved",
    "Summary": "nnjax.report.summary",
    "summary": "nnjax.report.summary",
    "EarlyStopping": "nnjax.train.options",
    "Options": "nnjax.train.options",
    "Stop": "nnjax.train.runner",
    "FitResult": "nnjax.train.fitting",
    "fit": "nnjax.train.fitting",
    "MLP": "nnjax.nn.network",
    "Model": "nnjax.nn.model",
    "apply": "nnjax.nn.network",
    "apply_with_state": "nnjax.nn.network",
    "init": "nnjax.nn.network",
    "init_state": "nnjax.nn.network",
    "predict": "nnjax.nn.network",
    "best_index": "nnjax.train.population",
    "fit_population": "nnjax.train.population",
    "select": "nnjax.train.population",
    "SweepResult": "nnjax.train.sweeps",
    "sweep": "nnjax.train.sweeps",
    "lr_find": "nnjax.train.search",
    "pbt": "nnjax.train.search",
    "successive_halving": "nnjax.train.search.halving",
}

# A module path that is also a function's name: ``nnjax.diagnose`` is the module of earlier
# versions and the function ``diagnose(history)``. It is one callable module, so it is both,
# whatever was imported first.
_CALLABLE_MODULES = {"nnjax.diagnose": "diagnose"}

_ALIASES = {f"nnjax.{name}": target for name, target in MODULES.items() if target != f"nnjax.{name}"}
_ALIASES.update(_OLD_PATHS)


class _CallableModule(types.ModuleType):
    """A module path that forwards to the module it names and, called, to one of its functions."""

    def __init__(self, name: str, target: types.ModuleType, function: str):
        super().__init__(name, target.__doc__)
        self.__dict__["_target"], self.__dict__["_function"] = target, function

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_target"], name)

    def __dir__(self) -> list[str]:
        return dir(self.__dict__["_target"])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.__dict__["_target"], self.__dict__["_function"])(*args, **kwargs)


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module path (``nnjax.training``) as the module that lives on (``nnjax.train.loop``):
    one module object under both names, so patches and ``isinstance`` checks see one thing."""

    def __init__(self) -> None:
        self._specs: dict[str, Any] = {}

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname in _ALIASES:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec: Any) -> types.ModuleType:
        module = importlib.import_module(_ALIASES[spec.name])
        if spec.name in _CALLABLE_MODULES:
            return _CallableModule(spec.name, module, _CALLABLE_MODULES[spec.name])
        self._specs[spec.name] = module.__spec__  # the import system writes the alias's spec over it
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        spec = self._specs.pop(module.__spec__.name, None)
        if spec is not None:
            module.__spec__ = spec


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from nnjax import data, io, nn, report, sklearn, text, train
    from nnjax._base import cache, checks, xla_options
    from nnjax.io import checkpoint, runs, saved
    from nnjax.io.saved import SavedModel, load
    from nnjax.nn import activations, flax_interop, initializers, losses, model, network, perceptron
    from nnjax.nn.model import Model
    from nnjax.nn.network import MLP, apply, apply_with_state, init, init_state, predict
    from nnjax.report import metrics, plots, tensorboard
    from nnjax.report import summary as describe
    from nnjax.report.diagnosis import Diagnosis, diagnose
    from nnjax.report.summary import Summary, summary
    from nnjax.train import diagnostics, optim, parallel, population, search, sweeps
    from nnjax.train import fitting, loop as training, runner as progress
    from nnjax.train.fitting import FitResult, fit
    from nnjax.train.options import EarlyStopping, Options
    from nnjax.train.runner import Stop
    from nnjax.train.population import best_index, fit_population, select
    from nnjax.train.sweeps import SweepResult, sweep
    from nnjax.train.search.halving import successive_halving


def __getattr__(name: str) -> Any:
    if name in NAMES:
        value = getattr(importlib.import_module(NAMES[name]), name)
    elif name in MODULES:
        value = importlib.import_module(f"nnjax.{name}")
    else:
        raise AttributeError(f"module 'nnjax' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__version__ = "0.1.0"

__all__ = sorted({*NAMES, *MODULES})
