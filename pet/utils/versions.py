"""Package versions recorded with every result, so numbers can be traced to software."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("pet-fewshot", "torch", "transformers", "accelerate", "peft", "scikit-learn"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of this ``pet`` package's Python source (relative paths and contents) and the
    versions above: equal exactly when the same code on the same libraries would run. Work kept
    between runs (:mod:`pet.methods.resume`) is reused only under an equal fingerprint."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(json.dumps(package_versions(), sort_keys=True).encode("utf-8"))
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode("utf-8") + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()
