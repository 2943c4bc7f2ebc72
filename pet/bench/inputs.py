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
when the cell uses any); ``task`` the task JSON file; ``patterns`` / ``verbalizers`` the PVP files;
``weights`` the model's weights (:func:`model_weights`: one SHA-256 over its ``.safetensors``
files), so that a model re-trained or re-downloaded in place, or another model under the same
folder name, makes the cell stale. Rows stored before ``weights`` was recorded, and cells whose
model is a hub id not in the local cache, have no ``weights`` entry: nothing to compare, kept.
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

#: The key (and role) of the model weights' checksum in ``inputs``.
WEIGHTS = "weights"

#: model as given -> its local folder (a hub id: its snapshot in the local cache), None if none
_MODEL_FOLDERS: dict[str, Path | None] = {}


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


def test_copies_training_file(spec: Any, root: Path, split: str) -> tuple[str, str] | None:
    """``(test file, training file)`` when a file of the test split ``split`` has the same content
    as a file the cells learn from (the train-side pool: unlabelled, train and dev files of every
    seed), else None: such a "test" score would be one on training data."""
    learned = {file_sha256(p): rel for rel, p in train_side_files(spec, root)}
    learned.pop(MISSING, None)
    for rel, p in _split_files(spec, root, split, None):
        sha = file_sha256(p)
        if sha != MISSING and sha in learned:
            return rel, learned[sha]
    return None


def split_source_files(spec: Any, root: Path, source: str, seed: int) -> dict[str, InputFile]:
    """The files a few-shot split was drawn from: ``source`` ``fixed`` -> the seed's train and
    dev files; ``none`` (K = 0) -> nothing; otherwise (``sampled``, ``sampled-total``) the
    train-side pool."""
    if source == "none":
        return {}
    if source == "fixed":
        return {**_files("train", _split_files(spec, root, "train", seed)), **_files("dev", _split_files(spec, root, "dev", seed))}
    return _files("train", train_side_files(spec, root))


def _model_folder(model: str) -> Path | None:
    """The local folder a model is loaded from: the folder itself, or for a hub id its snapshot in
    the local Hugging Face cache (looked up once, never downloaded); None when there is none."""
    p = Path(model).expanduser()
    if p.is_dir():
        return p
    if model not in _MODEL_FOLDERS:
        try:
            from huggingface_hub import snapshot_download

            _MODEL_FOLDERS[model] = Path(snapshot_download(model, local_files_only=True))
        except Exception:  # not cached here (or not a hub id at all): nothing to record
            _MODEL_FOLDERS[model] = None
    return _MODEL_FOLDERS[model]


def model_weights(model: str) -> InputFile | None:
    """The ``weights`` input of a model: the SHA-256 over the names and contents of the
    ``.safetensors`` files :mod:`pet.models.hf` loads (the folder and one level of subfolders,
    as in :func:`pet.bench.grid.model_identity`). Each file is read once per process while its
    size and modification time stay the same (:func:`file_sha256`). None for a model with no
    local folder or no ``.safetensors`` files."""
    folder = _model_folder(model) if model else None
    if folder is None:
        return None
    files = sorted(f for f in folder.rglob("*.safetensors") if f.is_file() and len(f.relative_to(folder).parts) <= 2)
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(folder).as_posix()}\0{file_sha256(f)}\n".encode("utf-8"))
    return InputFile(WEIGHTS, WEIGHTS, str(folder), h.hexdigest())


def cell_inputs(cell: Any, spec: Any, root: Path, split_source: str) -> dict[str, InputFile]:
    """Every file one cell reads, by key (see the module docstring)."""
    out: dict[str, InputFile] = {}
    weights = model_weights(getattr(cell, "model", "") or "")
    if weights is not None:
        out[WEIGHTS] = weights
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
    file, e.g. ``("data/tiny/test.csv", "test file changed")``; empty when nothing changed.
    ``weights`` counts only when both sides have it: rows stored before it was recorded (and a
    hub model not in the local cache) cannot be checked, and are kept."""
    out = []
    for key in sorted(set(stored) | set(current)):
        now = current.get(key)
        if key == WEIGHTS:
            if now is not None and key in stored and stored[key] != now.sha256:
                out.append((now.path, "model weights changed"))
            continue
        if now is None:
            out.append((key, f"{key.split(':')[0]} file no longer read"))
        elif key not in stored:
            out.append((now.path, f"{now.role} file newly read"))
        elif stored[key] != now.sha256:
            out.append((now.path, f"{now.role} file {'is missing' if now.sha256 == MISSING else 'changed'}"))
    return out
