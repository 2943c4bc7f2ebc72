"""pet — few-shot text classification with Pattern-Verbalizer Pairs on masked language models."""

from __future__ import annotations

__version__ = "0.1.0"

from .utils.versions import snapshot_source as _snapshot_source

_snapshot_source()  # the code fingerprint of resumable work describes the source this process imported

from .errors import ConfigError, DataError, ModelError, PetError, SpecError  # noqa: E402
from .examples import Example
from .prompts.spec import PVP, Pattern, Verbalizer, load_patterns, load_verbalizers, make_pvps

__all__ = [
    "ConfigError",
    "DataError",
    "Example",
    "ModelError",
    "PVP",
    "Pattern",
    "FitSetup",
    "PetClassifier",
    "PetError",
    "PromptModel",
    "available_methods",
    "evaluate",
    "fit_evaluate",
    "get_method",
    "register_method",
    "SpecError",
    "Verbalizer",
    "load_patterns",
    "load_verbalizers",
    "make_pvps",
]


#: torch-heavy objects load lazily (``pet validate`` stays fast): name -> module
_LAZY = {
    "PromptModel": "models.prompt_model",
    "PetClassifier": "estimator.classifier",
    "evaluate": "evaluation.evaluator",
    "fit_evaluate": "evaluation.evaluator",
    "get_method": "methods",
    "register_method": "methods",
    "available_methods": "methods",
    "FitSetup": "methods",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(name)
