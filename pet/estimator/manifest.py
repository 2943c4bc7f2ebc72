"""Integrity and containment checks for saved folders (a saved classifier, a saved model).

* ``write_manifest(folder)``: ``manifest.json`` with the SHA-256 and size of every other file
  that loading reads, written last (after ``pet_config.json``). Left out, because nothing loads
  them and other tools change them: the model card ``README.md`` (the Hub's "edit model card",
  a bot's metadata PR), the Hub's ``.gitattributes``, ``.gitignore``, and the ``.git/`` folder
  of a ``git clone`` (and ``.cache/`` of ``hf download --local-dir``), all at the top level.
* ``verify_manifest(folder)``: every file listed is there and unchanged, and nothing else is
  there; otherwise a one-line ``IntegrityError`` naming the changed / missing / extra file.
* ``resolve_inside(folder, relpath, what)`` (from :mod:`pet.utils.paths`, where predictors use it
  too): a path read from a saved config, resolved inside the folder.
* ``refuse_pickle(folder)``: pickle files (``pytorch_model.bin``, ``*.pt``, ``*.pkl``, …) are
  refused: loading a pickle runs code. Only safetensors weights are trusted.

The manifest detects files edited, truncated, added or lost after saving (by hand, a tool or a
broken copy). It is a checksum, not a signature: whoever can edit the folder can rewrite the
manifest too, which is why loading also confines every path to the folder and never unpickles.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Iterable

from ..errors import IntegrityError
from ..utils.paths import resolve_inside

__all__ = ["UNCHECKED_DIRS", "UNCHECKED_FILES", "read_manifest", "refuse_pickle", "resolve_inside", "sha256_file", "verify_manifest", "write_manifest"]

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
#: top-level files outside the manifest: never loaded, edited by the Hub and git
UNCHECKED_FILES = frozenset({"README.md", ".gitattributes", ".gitignore"})
#: top-level folders outside the manifest: version control and download caches
UNCHECKED_DIRS = frozenset({".git", ".cache"})

#: File name endings that hold pickles (torch.save, joblib, numpy object arrays, …).
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz")
#: Endings never sniffed for pickle content (their first bytes may look like a pickle header).
_NOT_SNIFFED = (".safetensors", ".json", ".jsonl", ".txt", ".model", ".md", ".csv", ".tsv", ".vocab", ".merges")

_REFIX = "fix: re-save the folder with `pet train --output DIR --overwrite` (or PetClassifier.save), or restore the original files"


def _files(folder: Path) -> Iterable[Path]:
    """Every entry below ``folder`` except folders and the unchecked top-level files and folders,
    sorted; symbolic links are returned too."""
    for dirpath, dirnames, filenames in os.walk(folder):
        d = Path(dirpath)
        top = d == Path(folder)
        if top:
            dirnames[:] = [n for n in dirnames if n not in UNCHECKED_DIRS]
            filenames = [n for n in filenames if n not in UNCHECKED_FILES]
        dirnames.sort()
        for name in sorted(filenames) + [n for n in dirnames if (d / n).is_symlink()]:
            yield d / name


def _rel(folder: Path, p: Path) -> str:
    return p.relative_to(folder).as_posix()


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _check_no_links(folder: Path) -> None:
    for p in _files(folder):
        if p.is_symlink():
            raise IntegrityError(
                f"{folder}: {_rel(folder, p)} is a symbolic link; a saved folder holds only plain files; "
                "fix: replace the link by the file it points to, or re-save the folder"
            )


def write_manifest(folder: str | Path) -> Path:
    """Write ``folder/manifest.json``: SHA-256 and size of every other file. Call it last."""
    from ..utils.io import atomic_write_json

    d = Path(folder)
    _check_no_links(d)
    files = {}
    for p in _files(d):
        rel = _rel(d, p)
        if rel == MANIFEST_FILE:
            continue
        files[rel] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    out = d / MANIFEST_FILE
    atomic_write_json(out, {"format": MANIFEST_FORMAT, "algorithm": "sha256", "files": files}, what="manifest")
    return out


def read_manifest(folder: str | Path) -> dict[str, dict]:
    """The ``files`` table of ``folder/manifest.json`` (checked for shape), one-line errors."""
    from ..utils.jsonio import read_json

    d = Path(folder)
    mf = d / MANIFEST_FILE
    if not mf.is_file() or mf.is_symlink():
        raise IntegrityError(
            f"{d}: no {MANIFEST_FILE}, so its files cannot be checked; "
            "fix: re-save it with this pet version (a folder from an older version or someone else must be re-saved by you)"
        )
    data = read_json(mf, IntegrityError)
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("algorithm") != "sha256" or not isinstance(files, dict):
        raise IntegrityError(f"{mf}: $: not a pet manifest (needs \"algorithm\": \"sha256\" and a \"files\" object); {_REFIX}")
    for rel, entry in files.items():
        ok = isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and isinstance(entry.get("size"), int)
        if not ok:
            raise IntegrityError(f"{mf}: $.files.{rel}: needs \"sha256\" (string) and \"size\" (integer); {_REFIX}")
    return files


def verify_manifest(folder: str | Path) -> None:
    """Check every file of ``folder`` against its manifest; one-line ``IntegrityError`` naming
    the first changed / missing / extra file (and how many more problems there are)."""
    d = Path(folder)
    files = read_manifest(d)
    _check_no_links(d)
    problems: list[str] = []
    for rel, entry in files.items():
        if rel in UNCHECKED_FILES:  # format 2 listed the card; it is never loaded, so never checked
            continue
        p = resolve_inside(d, rel, f"{d / MANIFEST_FILE}: $.files")
        if not p.is_file():
            problems.append(f"{rel} is listed in {MANIFEST_FILE} but missing")
        elif p.stat().st_size != entry["size"] or sha256_file(p) != entry["sha256"]:
            problems.append(f"{rel} changed since the folder was saved (SHA-256 differs from {MANIFEST_FILE})")
    present = {_rel(d, p) for p in _files(d)} - {MANIFEST_FILE}
    for rel in sorted(present - set(files)):
        problems.append(f"{rel} is not in {MANIFEST_FILE} (added after saving)")
    if problems:
        more = f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
        raise IntegrityError(f"{d}: {problems[0]}{more}; {_REFIX}")


def _is_pickle(p: Path) -> bool:
    name = p.name.lower()
    if name.endswith(PICKLE_SUFFIXES):
        return True
    if name.endswith(_NOT_SNIFFED):
        return False
    try:
        with open(p, "rb") as f:
            head = f.read(2)
        if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # pickle protocol 2-5 header
            return True
        if head == b"PK" and zipfile.is_zipfile(p):  # torch.save's zip format holds data.pkl
            with zipfile.ZipFile(p) as z:
                return any(n.endswith(".pkl") for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
    return False


def refuse_pickle(folder: str | Path) -> None:
    """One-line ``IntegrityError`` if any file below ``folder`` is a pickle: loading one runs
    arbitrary code, so pet only loads safetensors weights."""
    d = Path(folder)
    for p in _files(d):
        if p.is_file() and _is_pickle(p):
            raise IntegrityError(
                f"{d}: {_rel(d, p)} is a pickle file, and loading a pickle can run arbitrary code; pet only loads "
                "safetensors weights; fix: convert the weights to model.safetensors where you trust the file "
                "(save_pretrained(..., safe_serialization=True)) and delete the pickle"
            )
