"""Methods: each registered once with its options dataclass and its ``fit`` (see
:mod:`pet.methods.base`). Importing this package registers the built-in methods."""

from . import adapet, cls_ft, pet, pet_setfit, prompt_ft, setfit, soft, zero_shot  # noqa: F401  (registration)
from .base import FitSetup, Fitted, Method, Stage, available_methods, get_method, register_method

__all__ = ["FitSetup", "Fitted", "Method", "Stage", "available_methods", "get_method", "register_method"]
