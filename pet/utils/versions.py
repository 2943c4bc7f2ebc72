"""Package versions recorded with every result, so numbers can be traced to software."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("pet-fewshot", "torch", "transformers", "accelerate", "peft", "scikit-learn"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
