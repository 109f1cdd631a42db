"""The shared runner: fit, evaluate and predict for any task (device, precision, DDP, checkpoints)."""
