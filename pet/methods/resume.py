"""Resumable fits: trained models a method keeps on disk so an interrupted fit does not redo them.

A PET cell trains 3 repetitions × 3–6 PVP models before it distils (hours on a CPU); killed
after the tenth model, it would start again from the first. With ``FitSetup.resume_dir`` set,
PET, iPET and pet-setfit (:mod:`pet.methods.pet`) save each trained member there, under its slot
``gen<g>-<PVP index>-<repetition>``, and a later fit with the same folder loads it instead of
training it again.

Shared members. Methods that differ only after the ensemble (PET's ``[CLS]`` student, pet-setfit's
SetFit student, PET with other distillation options, iPET's first generation) train the very same
members on a split. With ``FitSetup.members_dir`` set, members are filed there instead, each
under its fingerprint (:func:`member_name`), so whichever fit trains a member first saves it and
the others load it. ``pet bench`` gives every cell its own folder for the rest
(``<results>/partial/<config hash>``, see :func:`pet.bench.cells.resume_folder`) and one members
folder per store (``<results>/partial/members``); it removes a cell's folder once the cell's rows
are in the store, and a split's members once no cell of the run that could use them is left
(``--keep-members`` keeps them for a later run; :mod:`pet.bench.driver`).

A member is one folder ``<key>/`` written atomically (under a temporary name, renamed when
complete): ``model.safetensors`` (the masked LM's weights, tied weights handled by safetensors'
``save_model``), ``arrays.npz`` (the member's log-probabilities on the unlabelled pool) and ``member.json`` (the training log, a fingerprint
of what it was trained on and that record itself, with :func:`pet.utils.versions.code_fingerprint`
and the git commit of the code that trained it; :mod:`pet.utils.provenance` words the warnings
when saved work is not reused). A member whose fingerprints differ, or whose files do not load, is trained again — a resumed fit equals an uninterrupted one because each member's training seeds
itself (:func:`pet.training.loop.seed_everything`) and does not depend on the others having run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..examples import Example
from ..utils.provenance import other_code_message, other_inputs_message, saved_by
from ..utils.versions import code_fingerprint

log = logging.getLogger(__name__)

MEMBER_FILE = "member.json"
WEIGHTS_FILE = "model.safetensors"
ARRAYS_FILE = "arrays.npz"


def examples_fingerprint(examples: Sequence[Example]) -> str:
    """SHA-256 over the examples' ids, fields and labels, in order (what a member trained on)."""
    h = hashlib.sha256()
    for e in examples:
        h.update(json.dumps([e.guid, e.fields, e.label], sort_keys=True, ensure_ascii=False, default=str).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def fingerprint(what: dict) -> str:
    """SHA-256 of ``what`` as canonical JSON: the key under which saved work is reused."""
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def member_name(fp: str) -> str:
    """A member's folder name in a shared members folder: its fingerprint's first 24 hex digits
    (the full fingerprint in ``member.json`` is checked before anything is reused)."""
    return fp[:24]


def model_fingerprint(name_or_path: str) -> str:
    """What a base model *is*, for deciding whether saved work was trained from it: a local folder
    is identified by the SHA-256 of its files' names and contents (so ``../shared/models/x``,
    its absolute path and a copy of it are the same model, and a folder whose weights changed is
    not); a hub id by itself."""
    root = Path(name_or_path)
    if not root.is_dir():
        return str(name_or_path)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    return _folder_digest(tuple((p.relative_to(root).as_posix(), str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files))


@functools.lru_cache(maxsize=16)
def _folder_digest(files: tuple) -> str:
    """SHA-256 over (relative name, content) of ``files``; cached on their paths, sizes and mtimes."""
    h = hashlib.sha256()
    for rel, path, _, _ in files:
        h.update(rel.encode("utf-8") + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return "sha256:" + h.hexdigest()


@dataclass
class SavedMember:
    """A member read back: its log-probabilities on the pool and its training log (a dict)."""

    pool_lp: np.ndarray | None
    log: dict


class MemberStore:
    """The trained members of one fit, under ``root`` (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _dir(self, key: str) -> Path:
        return self.root / key

    def _saved(self, key: str) -> dict | None:
        """Member ``key``'s ``member.json``, or None when it is absent or unreadable."""
        try:
            return json.loads((self._dir(key) / MEMBER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def has(self, key: str, fingerprint: str, inputs: dict | None = None) -> bool:
        """Whether member ``key`` is saved for ``fingerprint`` by this code. Saved for other
        ``inputs`` (the record the fingerprint hashes) or by other code: a warning says which."""
        saved = self._saved(key)
        if saved is None:
            return False
        if saved.get("fingerprint") != fingerprint:
            message = other_inputs_message(self._dir(key), saved.get("inputs"), inputs)
            if message:
                log.warning("%s", message)
            return False
        if saved.get("code") != code_fingerprint():  # trained by other code or libraries: not reused
            log.warning("%s", other_code_message(self._dir(key), saved))
            return False
        return True

    def save(self, key: str, fingerprint: str, module: Any, log_: dict, pool_lp: np.ndarray | None, inputs: dict | None = None) -> None:
        """Write member ``key`` atomically: its folder appears only once every file is written.
        ``inputs``: the record ``fingerprint`` hashes, kept so a mismatch can be explained."""
        from safetensors.torch import save_model

        same = self._saved(key)
        if same is not None and same.get("fingerprint") == fingerprint and same.get("code") == code_fingerprint():
            return  # another fit sharing the folder saved this very member meanwhile: left as it is (it may be loading it)
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(f".{key}.tmp-*"):  # left by a writer killed mid-save
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{key}.tmp-{os.getpid()}-"))
        try:
            save_model(module, str(tmp / WEIGHTS_FILE))
            np.savez(tmp / ARRAYS_FILE, **({} if pool_lp is None else {"pool_lp": pool_lp}))
            (tmp / MEMBER_FILE).write_text(json.dumps({"fingerprint": fingerprint, **saved_by(), "inputs": inputs, "log": log_}, default=str), encoding="utf-8")
            final = self._dir(key)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def load(self, key: str, fingerprint: str, module: Any, inputs: dict | None = None) -> SavedMember | None:
        """Load member ``key``'s weights into ``module`` (a freshly built model of the same
        architecture) and return its arrays and log; None (and the member is trained again) when
        it is absent, was trained on something else, or does not load."""
        if not self.has(key, fingerprint, inputs):
            return None
        from safetensors.torch import load_model

        d = self._dir(key)
        try:
            load_model(module, str(d / WEIGHTS_FILE), strict=True)
            with np.load(d / ARRAYS_FILE) as z:
                arrays = {k: z[k] for k in z.files}
            meta = json.loads((d / MEMBER_FILE).read_text(encoding="utf-8"))
        except Exception as e:  # noqa: BLE001 — a damaged member is trained again, not fatal
            log.warning("%s: cannot resume this trained member (%s: %s); training it again", d, type(e).__name__, str(e).splitlines()[0] if str(e) else "")
            shutil.rmtree(d, ignore_errors=True)  # so that the member trained again is saved in its place
            return None
        return SavedMember(arrays.get("pool_lp"), meta["log"])
