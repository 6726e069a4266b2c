"""Type aliases shared across nnjax."""

from typing import Any

import jax

PRNGKey = jax.Array
Params = Any  # a list of per-layer dicts {"w": (n_in, n_out), "b": (n_out,), ...}
State = Any  # batch-norm running statistics, a list of per-layer dicts
Array = jax.Array

# Token ids shared by the text encoder (nnjax.data.BagOfWords) and the embedding model
# (nnjax.nn.text): 0 pads a short text, 1 stands for a word outside the vocabulary.
PAD_ID = 0
UNKNOWN_ID = 1
