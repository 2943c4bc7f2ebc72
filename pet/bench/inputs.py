"""What a cell reads, by content: the SHA-256 of every input file (issue 19).

A cell's config hash is the key of what was *asked for*; the files it then reads can change
under the same hash (a corrected label in a test file, an edited PVP file). Every row records
``inputs``: a key per file -> SHA-256 of its content. The key is the file's role (``task``,
``patterns``, ``verbalizers``, ``train``, ``dev``, ``test``, ``unlabelled``), or
``role:path`` when a role reads several files (path relative to the data root). The driver
compares the stored checksums with the files as they are now (:func:`changed_inputs`) and
recomputes (or, asked to, refuses) a cell whose inputs changed.

Roles: ``train`` / ``dev`` are the files the few-shot split was drawn from (the fixed LM-BFF
files of the seed, or the task's whole train-side pool when the split is sampled); ``test`` the
test split's files; ``unlabelled`` the train-side pool the unlabelled examples come from (only
when the cell uses any); ``task`` the task JSON file; ``patterns`` / ``verbalizers`` the PVP files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: (resolved path, size, mtime_ns) -> sha256: a file is read once per process while unchanged
_SHA_CACHE: dict[tuple[str, int, int], str] = {}

#: The checksum recorded for a file that does not exist (so that its appearance is a change).
MISSING = "missing"


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's content (``MISSING`` if there is no such file), cached while the file's
    size and modification time stay the same."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return MISSING
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


@dataclass(frozen=True)
class InputFile:
    """One file a cell reads: its key in ``inputs``, its role, where it is, its checksum."""

    key: str
    role: str
    path: str
    sha256: str


def _files(role: str, paths: list[tuple[str, Path]]) -> dict[str, InputFile]:
    """``role`` alone as the key for one file, ``role:relpath`` for each of several."""
    out = {}
    for rel, p in paths:
        key = role if len(paths) == 1 else f"{role}:{rel}"
        out[key] = InputFile(key, role, str(p), file_sha256(p))
    return out


def _split_files(spec: Any, root: Path, split: str, seed: int | None) -> list[tuple[str, Path]]:
    out = []
    for fs in spec.splits.get(split, ()):
        if fs.extra:
            continue
        rel = fs.relpath(spec.folder, seed if fs.seeded else None)
        out.append((rel, root / rel))
    return out


def train_side_files(spec: Any, root: Path) -> list[tuple[str, Path]]:
    """The files :func:`pet.data.unlabelled_pool` and sampled splits read (mirrors
    ``pet.data.fewshot._train_side``): the unlabelled files, then train and dev of every seed."""
    out = _split_files(spec, root, "unlabelled", None)
    for split in ("train", "dev"):
        if any(fs.seeded for fs in spec.splits.get(split, ())):
            for s in spec.seeds:
                out += _split_files(spec, root, split, s)
        else:
            out += _split_files(spec, root, split, None)
    return out


def split_source_files(spec: Any, root: Path, source: str, seed: int) -> dict[str, InputFile]:
    """The files a few-shot split was drawn from: ``source`` ``fixed`` -> the seed's train and
    dev files; ``none`` (K = 0) -> nothing; otherwise (``sampled``, ``sampled-total``) the
    train-side pool."""
    if source == "none":
        return {}
    if source == "fixed":
        return {**_files("train", _split_files(spec, root, "train", seed)), **_files("dev", _split_files(spec, root, "dev", seed))}
    return _files("train", train_side_files(spec, root))


def cell_inputs(cell: Any, spec: Any, root: Path, split_source: str) -> dict[str, InputFile]:
    """Every file one cell reads, by key (see the module docstring)."""
    out: dict[str, InputFile] = {}
    if spec.path is not None:
        out.update(_files("task", [(Path(spec.path).name, Path(spec.path))]))
    out.update(_files("patterns", [(Path(cell.patterns_file).name, Path(cell.patterns_file))]))
    out.update(_files("verbalizers", [(Path(cell.verbalizers_file).name, Path(cell.verbalizers_file))]))
    out.update(split_source_files(spec, root, split_source, cell.seed))
    out.update(_files("test", _split_files(spec, root, cell.test_split, None)))
    if cell.unlabelled != 0:
        out.update(_files("unlabelled", train_side_files(spec, root)))
    return out


def checksums(inputs: dict[str, InputFile]) -> dict[str, str]:
    """The ``inputs`` field of a row: key -> SHA-256."""
    return {k: f.sha256 for k, f in sorted(inputs.items())}


def changed_inputs(stored: dict[str, str], current: dict[str, InputFile]) -> list[tuple[str, str]]:
    """What differs between a row's stored ``inputs`` and the files now: ``(file, what)`` per
    file, e.g. ``("data/tiny/test.csv", "test file changed")``; empty when nothing changed."""
    out = []
    for key in sorted(set(stored) | set(current)):
        now = current.get(key)
        if now is None:
            out.append((key, f"{key.split(':')[0]} file no longer read"))
        elif key not in stored:
            out.append((now.path, f"{now.role} file newly read"))
        elif stored[key] != now.sha256:
            out.append((now.path, f"{now.role} file {'is missing' if now.sha256 == MISSING else 'changed'}"))
    return out
