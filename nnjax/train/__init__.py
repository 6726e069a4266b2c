"""Floor 3: training: the optimizer table, the options record, the compiled loop, ``fit`` and
its plan, the one chunk runner, gradient diagnostics, populations, meshes and search."""

# The search package registers what fit(learning_rate="auto") runs (fitting.RATE_FINDER).
from nnjax.train import search as search  # noqa: E402
