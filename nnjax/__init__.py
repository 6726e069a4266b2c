"""nnjax: feed-forward neural networks as pure JAX functions.

The whole training run -- epochs of reshuffled minibatches, optax updates,
validation, early stopping, a NaN guard and per-layer gradient diagnostics --
compiles into one XLA program, and ``jax.vmap`` trains populations of models.

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
from typing import TYPE_CHECKING, Any

# Submodules and names load on first use (PEP 562), so ``import nnjax`` and ``nnjax --help``
# cost no JAX import until something that needs JAX is touched.
_SUBMODULES = (
    "activations", "cache", "checkpoint", "checks", "data", "describe", "diagnostics", "initializers", "losses",
    "metrics", "model", "optim", "parallel", "perceptron", "plots", "population", "runs", "saved", "sklearn", "sweeps",
    "tensorboard", "text", "training", "xla_options",
)
_NAMES = {
    "Diagnosis": "nnjax.diagnose",
    "SavedModel": "nnjax.saved",
    "load": "nnjax.saved",
    "Summary": "nnjax.describe",
    "summary": "nnjax.describe",
    "diagnose": "nnjax.diagnose",
    "EarlyStopping": "nnjax.training",
    "FitResult": "nnjax.fitting",
    "fit": "nnjax.fitting",
    "MLP": "nnjax.network",
    "Model": "nnjax.model",
    "apply": "nnjax.network",
    "apply_with_state": "nnjax.network",
    "init": "nnjax.network",
    "init_state": "nnjax.network",
    "predict": "nnjax.network",
    "best_index": "nnjax.population",
    "fit_population": "nnjax.population",
    "select": "nnjax.population",
    "SweepResult": "nnjax.sweeps",
    "sweep": "nnjax.sweeps",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from nnjax import (activations, cache, checkpoint, checks, data, describe, diagnostics, initializers, losses,
                       metrics, model, optim, parallel, perceptron, plots, population, runs, saved, sklearn, sweeps,
                       tensorboard, text, training)
    from nnjax.describe import Summary, summary
    from nnjax.saved import SavedModel, load
    from nnjax.diagnose import Diagnosis, diagnose
    from nnjax.fitting import FitResult, fit
    from nnjax.model import Model
    from nnjax.network import MLP, apply, apply_with_state, init, init_state, predict
    from nnjax.population import best_index, fit_population, select
    from nnjax.sweeps import SweepResult, sweep
    from nnjax.training import EarlyStopping


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"nnjax.{name}")
    else:
        raise AttributeError(f"module 'nnjax' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__version__ = "0.1.0"

__all__ = [
    "Diagnosis",
    "EarlyStopping",
    "FitResult",
    "MLP",
    "Model",
    "SavedModel",
    "Summary",
    "SweepResult",
    "activations",
    "apply",
    "apply_with_state",
    "best_index",
    "cache",
    "checkpoint",
    "checks",
    "data",
    "describe",
    "diagnose",
    "diagnostics",
    "fit",
    "fit_population",
    "init",
    "init_state",
    "initializers",
    "load",
    "losses",
    "metrics",
    "model",
    "optim",
    "parallel",
    "perceptron",
    "plots",
    "population",
    "predict",
    "runs",
    "saved",
    "select",
    "sklearn",
    "summary",
    "sweep",
    "sweeps",
    "tensorboard",
    "text",
    "training",
]
