"""Floor 5: files of a run: checkpoints (checksummed), run directories, the preprocessing a saved
model reads raw data with, and loading a saved run as a model."""
