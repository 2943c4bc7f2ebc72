"""pet — few-shot text classification with Pattern-Verbalizer Pairs on masked language models."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import ConfigError, DataError, ModelError, PetError, SpecError
from .examples import Example
from .spec import PVP, Pattern, Verbalizer, load_patterns, load_verbalizers, make_pvps

__all__ = [
    "ConfigError",
    "DataError",
    "Example",
    "ModelError",
    "PVP",
    "Pattern",
    "PetError",
    "PromptModel",
    "SpecError",
    "Verbalizer",
    "load_patterns",
    "load_verbalizers",
    "make_pvps",
]


def __getattr__(name: str):
    # torch-heavy objects load lazily so `pet validate` stays fast
    if name == "PromptModel":
        from .model import PromptModel

        return PromptModel
    if name == "PetClassifier":
        from .classifier import PetClassifier

        return PetClassifier
    raise AttributeError(name)
