"""The data of a cell under the few-shot protocol, identical for every method of a (task, K, seed):

- the few-shot split comes from :func:`pet.data.few_shot` with ``out_dir`` set to
  ``<results>/splits/<task>/k<K>-seed<seed>``: the fixed LM-BFF/RLPrompt files where they exist,
  else seeded balanced sampling; either way the split is written there once with SHA-256
  checksums, and every method (and every later run) reads the same verified files. Beside them
  ``sources.json`` records the checksums of the files the split was drawn from: when those
  change, the folder is moved aside (``<folder>.before-<sha>``) and the split is drawn again.
- the test set is the task's whole test split (``test_split``; optionally ``test_limit``
  examples drawn with a fixed seed, flagged as a subset in every row and report);
- the unlabelled pool is :func:`pet.data.unlabelled_pool` minus the split's train and dev
  examples, ``unlabelled`` examples at most, shuffled with the cell's seed.

:class:`DataCache` keeps the last of each in memory and says which files a cell reads
(:meth:`DataCache.inputs`, see :mod:`pet.bench.inputs`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..data import load_examples, load_task, unlabelled_pool
from ..data.fewshot import CHECKSUM_FILE, MANIFEST_FILE, _fixed_available, few_shot
from ..data.registry import resolve_data_dir
from ..examples import Example
from ..utils.io import atomic_write_json
from .inputs import InputFile, cell_inputs, checksums, split_source_files

log = logging.getLogger(__name__)

#: Beside a split's files: the checksums of the files it was drawn from.
SOURCES_FILE = "sources.json"
#: The "split" of K = 0: no labelled examples, nothing read or written.
NO_SPLIT = "none"


def examples_checksum(examples: Sequence[Example]) -> str:
    """SHA-256 of the examples' texts and labels (order-sensitive)."""
    h = hashlib.sha256()
    for e in examples:
        h.update(json.dumps([e.fields, e.label], sort_keys=True, ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


@dataclass
class SplitInfo:
    train: list[Example]
    dev: list[Example]
    checksum: str  # SHA-256 of the split folder's SHA256SUMS file (covers train.jsonl and dev.jsonl)
    source: str  # fixed | sampled | sampled-total | first-per-label-total | none (K = 0)
    folder: str  # relative to the results folder
    redrawn: bool = False  # its source files had changed: drawn again in this run


def split_folder(results: Path, task: str, k: int | None, seed: int, total: bool = False, balanced: bool = False) -> Path:
    if total:  # PET's balanced |T| is the same set for every seed
        return results / "splits" / task / (f"total{k}-balanced" if balanced else f"total{k}-seed{seed}")
    return results / "splits" / task / (f"k{k}-seed{seed}" if k is not None else f"fixed-seed{seed}")


def split_source(spec: Any, root: Path, folder: Path, k: int | None, seed: int, total: bool) -> str:
    """How the split of ``folder`` was (or will be) drawn: its manifest's ``source``, else what
    :func:`pet.data.few_shot` would do now."""
    if k == 0:
        return NO_SPLIT
    man = folder / MANIFEST_FILE
    if man.is_file():
        return json.loads(man.read_text(encoding="utf-8")).get("source", "sampled")
    if total:
        return "sampled-total"  # (or first-per-label-total: either is drawn from the train-side pool)
    return "fixed" if _fixed_available(spec, root, k, seed) else "sampled"


@contextlib.contextmanager
def _folder_lock(d: Path) -> Iterator[None]:
    d.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(d) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _sources_changed(d: Path, now: dict[str, str]) -> bool:
    f = d / SOURCES_FILE
    if not (d / CHECKSUM_FILE).is_file() or not f.is_file():
        return False  # no split yet, or one written before sources were recorded: kept as it is
    return json.loads(f.read_text(encoding="utf-8")) != now


def prepare_split(task: str, data_dir: str | None, k: int | None, seed: int, results: Path, name: str | None = None,
                  total: bool = False, balanced: bool = False) -> SplitInfo:
    """The cell's few-shot split, created once under the results folder (under a file lock) and
    read back, checksum-verified, by every method; drawn again when its source files changed.
    K = 0: no labelled examples (an empty split; no folder)."""
    if k == 0:
        return SplitInfo([], [], hashlib.sha256(b"").hexdigest(), NO_SPLIT, "")
    spec, root = load_task(task), resolve_data_dir(data_dir)
    d = split_folder(results, name or task, k, seed, total, balanced)
    redrawn = False
    with _folder_lock(d):
        sources = checksums(split_source_files(spec, root, split_source(spec, root, d, k, seed, total), seed))
        if _sources_changed(d, sources):
            aside = d.with_name(f"{d.name}.before-{hashlib.sha256((d / CHECKSUM_FILE).read_bytes()).hexdigest()[:12]}")
            log.warning("%s: the files this split was drawn from changed; drawing it again (old split kept in %s)", d, aside.name)
            if aside.exists():
                import shutil

                shutil.rmtree(aside)
            d.rename(aside)
            redrawn = True
        train, dev = few_shot(task, data_dir, k=k, seed=seed, out_dir=d, total=k if total else None, balanced=balanced)
        if not (d / SOURCES_FILE).is_file():
            now = checksums(split_source_files(spec, root, split_source(spec, root, d, k, seed, total), seed))
            atomic_write_json(d / SOURCES_FILE, now)
    checksum = hashlib.sha256((d / CHECKSUM_FILE).read_bytes()).hexdigest()
    source = json.loads((d / MANIFEST_FILE).read_text(encoding="utf-8")).get("source", "")
    return SplitInfo(train, dev, checksum, source, str(d.relative_to(results)), redrawn)


@dataclass
class TestInfo:
    examples: list[Example]
    split: str
    n_full: int
    limit: int | None
    subset: bool  # a subset of the official test set (task-level flag, or test_limit applied)
    note: str
    checksum: str


def prepare_test(task: str, data_dir: str | None, split: str, limit: int | None) -> TestInfo:
    spec = load_task(task)
    exs = load_examples(spec, split, data_dir)
    n_full = len(exs)
    if limit is not None and limit < n_full:
        idx = sorted(random.Random(0).sample(range(n_full), limit))
        exs = [exs[i] for i in idx]
    note = spec.test_note
    split_notes = [fs.note for fs in spec.splits.get(split, ()) if fs.note]
    if split != "test" and split_notes:
        note = f"split '{split}': {split_notes[0]}"
    subset = bool(spec.test_subset) or split != "test" or len(exs) < n_full
    return TestInfo(exs, split, n_full, limit, subset, note, examples_checksum(exs))


@dataclass
class DataCache:
    """A run's data: splits, test sets and pools, keeping the latest of each in memory (it
    travels with every cell to the executor)."""

    data_dir: str | None
    results: Path
    _splits: dict = field(default_factory=dict, repr=False)
    _tests: dict = field(default_factory=dict, repr=False)
    _pools: dict = field(default_factory=dict, repr=False)

    def split(self, cell: Any) -> SplitInfo:
        balanced = _balanced(cell)
        key = (cell.task, cell.k, cell.seed, cell.k_total, balanced)
        if key not in self._splits:
            self._splits[key] = prepare_split(cell.task_ref or cell.task, self.data_dir, cell.k, cell.seed, self.results,
                                              name=cell.task, total=cell.k_total, balanced=balanced)
        return self._splits[key]

    def test(self, cell: Any) -> TestInfo:
        key = (cell.task, cell.test_split, cell.test_limit)
        if key not in self._tests:  # keep one task in memory
            self._tests = {key: prepare_test(cell.task_ref or cell.task, self.data_dir, cell.test_split, cell.test_limit)}
        return self._tests[key]

    def pool(self, cell: Any, split: SplitInfo) -> tuple[list[Example], str]:
        key = (cell.task, cell.k, cell.seed, cell.unlabelled)
        if key not in self._pools:
            pool: list[Example] = [] if cell.unlabelled == 0 else unlabelled_pool(
                cell.task_ref or cell.task, self.data_dir, exclude=[*split.train, *split.dev], size=cell.unlabelled, seed=cell.seed)
            self._pools = {key: (pool, examples_checksum(pool))}
        return self._pools[key]

    def inputs(self, cell: Any) -> dict[str, InputFile]:
        """Every file ``cell`` reads, as the files are now (nothing is drawn or written)."""
        spec, root = load_task(cell.task_ref or cell.task), resolve_data_dir(self.data_dir)
        folder = split_folder(self.results, cell.task, cell.k, cell.seed, cell.k_total, _balanced(cell))
        return cell_inputs(cell, spec, root, split_source(spec, root, folder, cell.k, cell.seed, cell.k_total))


def _balanced(cell: Any) -> bool:
    """PET's |T| (``k_mode: total_balanced``): the first |T|/|L| examples per label."""
    return cell.config.get("k_mode") == "total_balanced"
