"""Paths read from a saved config, confined to the folder they came from."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from ..errors import IntegrityError


def resolve_inside(folder: str | Path, relpath: object, what: str) -> Path:
    """``folder / relpath`` resolved, provided it stays inside ``folder``.

    ``relpath`` comes from a saved config (``what`` names it, e.g.
    ``"pet_config.json: $.predictor.members[0].model"``): it must be a non-empty relative path
    without ``..``, and no symbolic link on the way may lead out of the folder.
    """
    d = Path(folder)
    fix = "fix: a saved folder may only refer to files inside itself; re-save it, and do not load folders edited by others"
    if not isinstance(relpath, str) or not relpath.strip():
        raise IntegrityError(f"{what}: {relpath!r} is not a path; {fix}")
    if "\x00" in relpath:
        raise IntegrityError(f"{what}: {relpath!r} contains a NUL byte; {fix}")
    posix, win = PurePosixPath(relpath), PureWindowsPath(relpath)
    if posix.is_absolute() or win.is_absolute() or win.drive or relpath.startswith(("/", "\\", "~")):
        raise IntegrityError(f"{what}: '{relpath}' is an absolute path; {fix}")
    if ".." in posix.parts or ".." in win.parts:
        raise IntegrityError(f"{what}: '{relpath}' leads out of the folder (contains '..'); {fix}")
    root = d.resolve()
    target = (d / relpath).resolve()
    if target != root and root not in target.parents:
        raise IntegrityError(f"{what}: '{relpath}' resolves outside the folder (through a symbolic link); {fix}")
    return target


def looks_like_path(name: str) -> bool:
    """Whether ``name`` (a ``--model``, say) reads as a local path rather than a Hub id such as
    ``org/name``: absolute, starting with ``.`` or ``~`` (no Hub id does), or its first
    component exists here."""
    p = Path(name)
    return p.is_absolute() or name.startswith((".", "~")) or (bool(p.parts) and Path(p.parts[0]).exists())
