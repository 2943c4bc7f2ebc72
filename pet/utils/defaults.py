"""Defaults shared across layers, written once."""

#: Longest input in tokens when neither the task nor the options say otherwise (LM-BFF's
#: single-sentence setting; tasks set their own ``max_length``).
DEFAULT_MAX_LENGTH = 256
#: Examples per forward pass when scoring.
DEFAULT_EVAL_BATCH_SIZE = 32
#: Seed of splits and training when none is given (LM-BFF's first split seed).
DEFAULT_SEED = 13
