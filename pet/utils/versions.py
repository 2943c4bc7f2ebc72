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


#: Modules that only present results or parse a command line (``pet/``-relative; a folder ends
#: in ``/``). They cannot change what training computes from its recorded inputs, so editing them
#: leaves :func:`source_digest` — and the saved work it guards — unchanged.
PRESENTATION_ONLY = ("cli/", "bench/eta.py", "bench/glance.py", "bench/markdown.py", "bench/plots.py",
                     "bench/report.py", "bench/tables.py", "estimator/modelcard.py")


def _code_of(source: bytes) -> bytes:
    """What a module computes, without its comments and docstrings: the dump of its syntax tree
    with every module, class and function docstring removed (source that does not parse: its
    bytes). Rewording documentation leaves this unchanged; any change to code changes it."""
    import ast

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False).encode("utf-8")


def _sources(root: Path) -> tuple[tuple[str, bytes], ...]:
    """(relative path, bytes) of each ``*.py`` file under ``root`` outside
    :data:`PRESENTATION_ONLY`, in path order."""
    out = []
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).as_posix()
        if not any(rel == x or (x.endswith("/") and rel.startswith(x)) for x in PRESENTATION_ONLY):
            out.append((rel, p.read_bytes()))
    return tuple(out)


def _digest(sources: tuple[tuple[str, bytes], ...]) -> str:
    h = hashlib.sha256()
    for rel, source in sources:
        h.update(rel.encode("utf-8") + b"\0" + _code_of(source) + b"\0")
    return h.hexdigest()


def source_digest_of(root: Path) -> str:
    """SHA-256 of the code under package folder ``root``: each ``*.py`` file's relative path and
    :func:`_code_of` its source, in path order, skipping :data:`PRESENTATION_ONLY`."""
    return _digest(_sources(root))


@functools.lru_cache(maxsize=1)
def snapshot_source() -> tuple[tuple[str, bytes], ...]:
    """This ``pet`` package's source as read once: ``import pet`` calls it (reading files only,
    no parsing), so :func:`source_digest` describes the code this process imported even if the
    files on disk change while it runs (a checkout moving on under a long benchmark)."""
    return _sources(Path(__file__).resolve().parents[1])


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """:func:`source_digest_of` this ``pet`` package as imported (:func:`snapshot_source`).
    Comments, docstrings and the command-line and report modules (:data:`PRESENTATION_ONLY`) are
    not part of it: a commit that changes only those keeps saved partial work usable."""
    return _digest(snapshot_source())


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of the imported ``pet`` code (:func:`source_digest`) and the versions above: equal
    exactly when the same training code on the same libraries would run. Work kept between runs
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
