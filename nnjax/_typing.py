"""Type aliases shared across nnjax."""

from typing import Any

import jax

PRNGKey = jax.Array
Params = Any  # a list of per-layer dicts {"w": (n_in, n_out), "b": (n_out,), ...}
State = Any  # batch-norm running statistics, a list of per-layer dicts
Array = jax.Array
