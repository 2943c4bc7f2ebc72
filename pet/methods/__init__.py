"""Methods: thin recipes over the scoring model and the one training loop."""
