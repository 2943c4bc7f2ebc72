"""The training layer: the one training loop (accelerate), its options, losses, and recipes for
prompt models and the sequence classifier."""
