"""One exception family for everything a user can get wrong.

Every message names the file, field or JSON path at fault and says how to fix it; the CLI
prints ``str(error)`` on one line and exits non-zero (tracebacks only with ``--debug``).
"""

from __future__ import annotations


class PetError(Exception):
    """Base class of every error `pet` raises on bad input or configuration."""


class SpecError(PetError):
    """A pattern, verbalizer or template is malformed."""


class DataError(PetError):
    """A data file, task definition or split is missing or malformed."""


class ModelError(PetError):
    """A model or tokenizer cannot be loaded or does not fit the PVP."""


class ConfigError(PetError):
    """A run, training or benchmark configuration is invalid."""
