"""Package versions recorded with every result, so numbers can be traced to software."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
from pathlib import Path


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version  # imported here: `import pet` stays fast

    out = {"python": platform.python_version()}
    for name in ("pet-fewshot", "torch", "transformers", "accelerate", "peft", "scikit-learn"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """SHA-256 of this ``pet`` package's Python source (relative paths and contents), read once:
    ``import pet`` calls it, so it describes the code this process imported even if the files on
    disk change while it runs (a checkout moving on under a long benchmark)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode("utf-8") + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of the imported ``pet`` source (:func:`source_digest`) and the versions above: equal
    exactly when the same code on the same libraries would run. Work kept between runs
    (:mod:`pet.methods.resume`, :mod:`pet.training.checkpoint`) is reused only under an equal
    fingerprint."""
    h = hashlib.sha256(json.dumps(package_versions(), sort_keys=True).encode("utf-8"))
    h.update(source_digest().encode("utf-8"))
    return h.hexdigest()


def git_commit(start: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the repository holding the ``pet`` package, or (None, None).

    A copy of the source shipped elsewhere (``git archive``, a tree copied to a cluster or a GPU
    machine, with no ``.git`` or a stale one) says which commit it is with ``PET_GIT_COMMIT``:
    when set it wins, and rows record that commit and ``git_dirty`` None (unknown: nothing checks
    the copy against it)."""
    import subprocess

    if os.environ.get("PET_GIT_COMMIT"):
        return os.environ["PET_GIT_COMMIT"], None
    root = (start or Path(__file__).resolve().parents[2])
    if not (root / ".git").exists():
        return None, None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip() or None
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=30
        )
        dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
        return commit, dirty
    except (OSError, subprocess.SubprocessError):
        return None, None
