"""Floor 3: training: the optimizer table, the options record, the compiled loop, ``fit`` and
its plan, the one chunk runner, gradient diagnostics, populations, meshes and search."""
