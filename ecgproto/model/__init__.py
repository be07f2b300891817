"""The model: network, losses, training loops, projection, model files."""
