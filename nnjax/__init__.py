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

from nnjax import (
    activations,
    checkpoint,
    data,
    diagnostics,
    initializers,
    losses,
    optim,
    parallel,
    perceptron,
    plots,
    population,
    runs,
    sklearn,
    sweeps,
    text,
    training,
)
from nnjax.diagnose import Diagnosis, diagnose
from nnjax.fitting import FitResult, fit
from nnjax.network import MLP, apply, apply_with_state, init, init_state, predict
from nnjax.population import best_index, fit_population, select
from nnjax.sweeps import SweepResult, sweep
from nnjax.training import EarlyStopping

# nnjax.flax_interop and nnjax.cli are imported on demand (Flax and argparse set-up are not free).

__version__ = "0.1.0"

__all__ = [
    "Diagnosis",
    "EarlyStopping",
    "FitResult",
    "MLP",
    "SweepResult",
    "activations",
    "apply",
    "apply_with_state",
    "best_index",
    "checkpoint",
    "data",
    "diagnose",
    "diagnostics",
    "fit",
    "fit_population",
    "init",
    "init_state",
    "initializers",
    "losses",
    "optim",
    "parallel",
    "perceptron",
    "plots",
    "population",
    "predict",
    "runs",
    "select",
    "sklearn",
    "sweep",
    "sweeps",
    "text",
    "training",
]
