"""One exception family for everything a user can get wrong.

Every message names the file, field or JSON path at fault and says how to fix it; the CLI
prints ``str(error)`` on one line and exits with status 2 (tracebacks only with ``--debug``).
Anything that is not a ``PetError`` is a bug in pet: the CLI reports it as an internal error
(exit status 1).
"""

from __future__ import annotations


class PetError(Exception):
    """Base class of every error `pet` raises on bad input or configuration."""


class SpecError(PetError):
    """A pattern, verbalizer or template is malformed."""


class DataError(PetError, ValueError):
    """A data file, task definition or split is missing or malformed."""


class ModelError(PetError):
    """A model or tokenizer cannot be loaded or does not fit the PVP."""


class IntegrityError(ModelError):
    """A saved folder fails its checks: a file changed since it was saved, a path leads outside
    the folder, or it holds pickle weights (see ``pet.estimator.manifest``)."""


class ConfigError(PetError, ValueError):
    """A run, training or benchmark configuration is invalid."""


class UsageError(ConfigError):
    """A command-line flag or an output/input path is unusable (out of range, output would
    overwrite an input, unwritable location, …)."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a
    one-line error quotes of a library's exception."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
