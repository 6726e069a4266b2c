"""Floor 2: the networks as pure functions: activations, initializers, losses (records that own
their targets, outputs and metrics), the MLP, the model protocol, the perceptron, the text model
and Flax interop. Nothing here trains; everything here is traceable."""
