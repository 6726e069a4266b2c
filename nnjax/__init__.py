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

from nnjax import activations, data, diagnostics, initializers, losses, optim, training
from nnjax.fitting import FitResult, fit
from nnjax.network import MLP, apply, apply_with_state, init, init_state, predict
from nnjax.training import EarlyStopping

__version__ = "0.1.0"

__all__ = [
    "EarlyStopping",
    "FitResult",
    "MLP",
    "activations",
    "data",
    "diagnostics",
    "fit",
    "optim",
    "training",
    "apply",
    "apply_with_state",
    "init",
    "init_state",
    "initializers",
    "losses",
    "predict",
]

# Populations, sweeps, devices and hosts (issue 6).
from nnjax import parallel, population, sweeps  # noqa: E402
from nnjax.population import best_index, fit_population, select  # noqa: E402
from nnjax.sweeps import SweepResult, sweep  # noqa: E402

__all__ += ["SweepResult", "best_index", "fit_population", "parallel", "population", "select", "sweep", "sweeps"]

# Diagnosing vanishing and exploding gradients (issue 5).
from nnjax.diagnose import Diagnosis, diagnose  # noqa: E402

__all__ += ["Diagnosis", "diagnose"]

# The perceptron and text models on token ids (issue 4).
from nnjax import perceptron, text  # noqa: E402

__all__ += ["perceptron", "text"]

# Checkpoints, run directories and plots; the `nnjax` command is nnjax.cli (issue 7).
from nnjax import checkpoint, plots, runs  # noqa: E402

__all__ += ["checkpoint", "plots", "runs"]

# scikit-learn estimators (issue 8); `nnjax.flax_interop` is imported on demand (it loads Flax).
from nnjax import sklearn  # noqa: E402

__all__ += ["sklearn"]
