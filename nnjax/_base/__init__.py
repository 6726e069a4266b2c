"""Floor 1: what every other floor uses and nothing of nnjax's own does: type aliases, atomic
files, the one set of setting and array checks, XLA options and the compilation cache.
NumPy and the standard library only, except the cache and XLA options (JAX's configuration)."""
