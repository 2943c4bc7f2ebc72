"""Package versions recorded with every result, so numbers can be traced to software."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
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


def git_commit(start: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the repository holding the ``pet`` package, or (None, None).

    A copy of the source shipped elsewhere (``git archive``, a tree copied to a cluster or a GPU
    machine, with no ``.git`` or a stale one) says which commit it is with ``PET_GIT_COMMIT``:
    when set it wins, and rows record that commit and ``git_dirty`` None (unknown: nothing checks
    the copy against it)."""
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


@functools.lru_cache(maxsize=1)
def saved_by() -> dict[str, str | None]:
    """What work kept between runs records about the code that made it: its
    :func:`code_fingerprint` (compared before reuse) and git commit (to name it when it differs)."""
    return {"code": code_fingerprint(), "commit": git_commit()[0]}


def other_code_message(path, saved: dict) -> str:
    """The warning for saved work that matches the run but was made by other code or libraries."""
    commit = saved.get("commit")
    made = f"commit {commit[:12]}" if commit else f"code fingerprint {str(saved.get('code'))[:12]}"
    return (f"{path}: saved by other pet code or library versions ({made}; this run: "
            f"{(saved_by()['commit'] or saved_by()['code'])[:12]}), so it is not reused and is trained again; "
            "to reuse it, run the code that made it (e.g. from a git worktree of that commit, started from its root)")
