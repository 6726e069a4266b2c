"""Floor 4: reading a run: host metrics (scikit-learn's), the gradient diagnosis, plots,
TensorBoard and the topology summary."""
