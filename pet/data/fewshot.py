"""Splits of a registered task: whole splits, few-shot (train, dev) splits, unlabelled pools.

With K=16 and one of the task's seeds the fixed LM-BFF/RLPrompt ``16-<seed>`` folders are used
as they are; any other K (or seed) is drawn by balanced, seeded sampling from the task's
train-side pool and, given ``out_dir``, written to disk with a SHA-256 checksum file so that
every method sees identical examples.
"""

from __future__ import annotations

import hashlib
import logging
import random
from pathlib import Path
from typing import Iterable

from ..errors import DataError
from ..examples import Example
from ..utils.io import atomic_write_json, atomic_write_text
from ..utils.jsonio import read_json
from .registry import TaskSpec, load_task, resolve_data_dir
from .tables import read_examples, read_file, write_examples

log = logging.getLogger(__name__)


def _seed_check(task: TaskSpec, split: str, seed: int | None) -> None:
    if seed is None:
        raise DataError(
            f"{task.path or task.name}: $.splits.{split}: the {split} files depend on the seed; "
            f"fix: pass --seed (one of {', '.join(map(str, task.seeds))})"
        )


def _load_split(
    task: TaskSpec, split: str, root: Path, seed: int | None, include_extra: bool = False, drop_labels: bool = False
) -> list[Example]:
    if split not in task.splits:
        note = ""
        if split == "test" and task.test_note:
            note = f" ({task.test_note})"
        elif split == "unlabelled" and task.unlabelled_note:
            note = f" ({task.unlabelled_note})"
        elif split in ("train", "dev"):
            note = " (draw one with few_shot / --k, which samples from the train-side pool)"
        raise DataError(
            f"{task.path or task.name}: $.splits.{split}: task '{task.name}' has no {split} split{note}; "
            f"fix: use one of {', '.join(task.splits)}"
        )
    out: list[Example] = []
    for fs in task.splits[split]:
        if fs.extra and not include_extra:
            continue
        if fs.seeded:
            _seed_check(task, split, seed)
        rel = fs.relpath(task.folder, seed if fs.seeded else None)
        prefix = f"{task.name}-{split}" + (f"-{seed}" if fs.seeded else "")
        if len(task.splits[split]) > 1:
            prefix += f"-f{task.splits[split].index(fs)}"
        exs = read_file(root / rel, fs, task.label_ids, prefix, task.clean, drop_labels or fs.label is None, task.empty_text, regression=task.regression)
        for e in exs:
            e.meta["file"] = rel  # relative to the data root: portable in logs and manifests
        out.extend(exs)
    return out


def load_examples(
    task: str | Path | TaskSpec, split: str, data_dir: str | Path | None = None, seed: int | None = None
) -> list[Example]:
    """All examples of one split (train/dev/test/unlabelled or a task-specific extra split).

    ``unlabelled`` is the task's whole train-side pool with labels removed (gold labels kept in
    ``meta["gold_label"]``); use ``unlabelled_pool`` to exclude the labelled examples.
    """
    t = load_task(task)
    root = resolve_data_dir(data_dir)
    if split == "unlabelled":
        return [_strip(e) for e in _train_side(t, root)]
    return _load_split(t, split, root, seed)


def _strip(e: Example) -> Example:
    meta = dict(e.meta)
    if e.label is not None:
        meta["gold_label"] = e.label
    return Example(fields=dict(e.fields), label=None, guid=e.guid, meta=meta)


def _key(e: Example) -> tuple[tuple[str, str], ...]:
    """Identity of an example for de-duplication and exclusion: its text, field by field."""
    return tuple(sorted((k, " ".join(v.split()).lower()) for k, v in e.fields.items()))


def _train_side(task: TaskSpec, root: Path, include_extra: bool = False) -> list[Example]:
    """Every train-side example (labelled where the file has labels), de-duplicated by text.

    Sources, in order: the task's ``unlabelled`` pool files, then the train and dev files of
    every seed (LM-BFF's k-shot dev sets are drawn from the official training set too).
    """
    out: list[Example] = []
    seen: set = set()

    def add(exs: list[Example]) -> None:
        for e in exs:
            k = _key(e)
            if k not in seen:
                seen.add(k)
                out.append(e)

    if "unlabelled" in task.splits:
        add(_load_split(task, "unlabelled", root, None, include_extra=include_extra))
    for split in ("train", "dev"):
        if split not in task.splits:
            continue
        if any(fs.seeded for fs in task.splits[split]):
            for s in task.seeds:
                add(_load_split(task, split, root, s))
        else:
            add(_load_split(task, split, root, None))
    return out


# ----------------------------------------------------------------------------- few-shot



def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


CHECKSUM_FILE = "SHA256SUMS"
MANIFEST_FILE = "manifest.json"


def verify_split_dir(out_dir: str | Path) -> None:
    """Check ``train.jsonl``/``dev.jsonl`` against ``SHA256SUMS``; raise ``DataError`` on mismatch."""
    d = Path(out_dir)
    sums = d / CHECKSUM_FILE
    if not sums.is_file():
        raise DataError(f"{sums}: checksum file missing; fix: delete {d} and sample again")
    for line in sums.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        f = d / name.strip()
        if not f.is_file():
            raise DataError(f"{f}: listed in {CHECKSUM_FILE} but missing; fix: delete {d} and sample again")
        if _sha256(f) != digest.strip():
            raise DataError(f"{f}: SHA-256 does not match {CHECKSUM_FILE} (file was modified); fix: delete {d} and sample again")


def load_split_dir(out_dir: str | Path) -> tuple[list[Example], list[Example]]:
    """(train, dev) from a folder written by ``few_shot``, after verifying the checksums."""
    d = Path(out_dir)
    verify_split_dir(d)
    return read_examples(d / "train.jsonl"), read_examples(d / "dev.jsonl")


def check_shots(k: int | None, needs_labelled: bool = True) -> None:
    """K (``--shots``) must be 1 or more, or 0 for a method that fits without labelled examples
    (``needs_labelled=False``: zero-shot, zero-shot iPET); a one-line ``DataError`` otherwise."""
    if k is None or k > 0 or (k == 0 and not needs_labelled):
        return
    if k < 0:
        raise DataError(f"--shots {k} (k): must be 0 or more; fix: pass a positive --shots")
    raise DataError("--shots 0 (k=0): no labelled examples, but this method trains on them; fix: pass --shots 1 or more "
                    "(--shots 0 is for methods that start without labelled examples, e.g. --method ipet or zero-shot)")


def _fixed_available(task: TaskSpec, root: Path, k: int | None, seed: int) -> bool:
    if "train" not in task.splits:
        return False
    train = task.splits["train"]
    seeded = any(fs.seeded for fs in train)
    if k is None:
        return True
    if not seeded or k != task.k_shot:
        return False
    return all((root / fs.relpath(task.folder, seed)).is_file() for fs in train)


def few_shot(
    task: str | Path | TaskSpec,
    data_dir: str | Path | None = None,
    k: int | None = 16,
    seed: int = 13,
    out_dir: str | Path | None = None,
    dev_k: int | None = None,
    total: int | None = None,
    balanced: bool = False,
    needs_labelled: bool = True,
) -> tuple[list[Example], list[Example]]:
    """The (train, dev) few-shot split for K examples per class and a seed.

    ``total`` (|T|) takes that many labelled examples in all, with no dev set; ``k`` is then
    ignored. Drawn uniformly at random from the train-side pool with ``seed`` (not per class),
    or — ``balanced=True``, PET's rule — the *first* ``|T|/|L|`` examples of each label in the
    pool's stored order (the remainder to the first labels, PET's ``eq_div``): the same set for
    every seed (PET paper, Appendix C; timoschick/pet ``cli.py`` l.237-245 with
    ``--split_examples_evenly``, ``pet/utils.py`` ``eq_div``).

    K equal to the task's ``k_shot`` with a seed that has a fixed folder -> those files as
    published (LM-BFF/RLPrompt ``16-<seed>``). ``k=None`` -> the task's fixed train/dev files
    (e.g. FewGLUE for BoolQ/CB). Otherwise K (train) + ``dev_k`` (dev, default K) per class are
    drawn, without overlap, from the train-side pool with ``random.Random(seed)``.
    With ``out_dir`` the split is written there (``train.jsonl``, ``dev.jsonl``,
    ``manifest.json``, ``SHA256SUMS``); if the folder already holds the same split it is
    verified and read back instead, so every method sees identical examples.

    ``k=0`` is PET's |T| = 0: no labelled examples (``([], [])``, no folder written). Only a
    method that fits without them may ask for it: pass its ``needs_labelled`` trait
    (``get_method(name).needs_labelled``); with ``needs_labelled=True`` K = 0 is a ``DataError``.
    """
    t = load_task(task)
    if total is None:
        check_shots(k, needs_labelled)
        if k == 0:
            return [], []
    root = resolve_data_dir(data_dir)
    dk = k if dev_k is None else dev_k
    params = {"task": t.name, "k": k, "dev_k": dk, "seed": seed} if total is None else {"task": t.name, "total": total, "seed": seed}
    if total is not None and balanced:  # the same set for every seed: the seed is not part of it
        params = {"task": t.name, "total": total, "balanced": True}
    if out_dir is not None and (Path(out_dir) / MANIFEST_FILE).is_file():
        d = Path(out_dir)
        man = read_json(d / MANIFEST_FILE, error=DataError)
        if {x: man.get(x) for x in params} != params:
            raise DataError(
                f"{d / MANIFEST_FILE}: holds a split for {({x: man.get(x) for x in params})}, not {params}; "
                f"fix: use another output folder or delete this one"
            )
        return load_split_dir(d)

    if total is not None:
        if total < 1:
            raise DataError(f"total={total}: must be at least 1; fix: pass a positive |T|")
        pool = [e for e in _train_side(t, root) if e.label is not None]
        if len(pool) < total:
            raise DataError(f"task '{t.name}': only {len(pool)} labelled train-side examples, |T|={total} needed; fix: use a smaller |T|")
        picked = _first_per_label(t, pool, total) if balanced else random.Random(seed).sample(pool, total)
        tag = f"{t.name}-t{total}" + ("-balanced" if balanced else f"-s{seed}")
        train = [Example(fields=e.fields, label=e.label, guid=f"{tag}-train-{i}", meta={**e.meta, "orig_guid": e.guid})
                 for i, e in enumerate(picked)]
        if out_dir is not None:
            source = "first-per-label-total" if balanced else "sampled-total"
            _write_split_dir(Path(out_dir), train, [], {**params, "source": source, "n_train": len(train), "n_dev": 0})
        return train, []
    if _fixed_available(t, root, k, seed):
        source = "fixed"
        train = _load_split(t, "train", root, seed)
        dev = _load_split(t, "dev", root, seed) if "dev" in t.splits else []
    else:
        if k is None:
            raise DataError(f"task '{t.name}': has no fixed train split; fix: pass --k to sample one")
        source = "sampled"
        train, dev = _sample(t, root, k, dk, seed)
    if out_dir is not None:
        _write_split_dir(Path(out_dir), train, dev, {**params, "source": source, "n_train": len(train), "n_dev": len(dev)})
    return train, dev


def _first_per_label(task: TaskSpec, pool: list[Example], total: int) -> list[Example]:
    """PET's balanced |T|: the first ``eq_div(total, |L|)[i]`` examples of label ``i`` in pool order."""
    n = len(task.label_ids)
    quota = dict(zip(task.label_ids, [total // n + 1] * (total % n) + [total // n] * (n - total % n)))
    out: list[Example] = []
    for e in pool:
        if quota.get(e.label, 0) > 0:
            quota[e.label] -= 1
            out.append(e)
    short = {lab: q for lab, q in quota.items() if q > 0}
    if short:
        lab = next(iter(short))
        raise DataError(f"task '{task.name}': label '{lab}' ({task.labels[lab]}) has too few labelled train-side examples for a balanced "
                        f"|T|={total} ({short[lab]} missing); fix: use a smaller |T|")
    return out


def _sample(task: TaskSpec, root: Path, k: int, dev_k: int, seed: int) -> tuple[list[Example], list[Example]]:
    pool = [e for e in _train_side(task, root) if e.label is not None]
    by_label: dict[str, list[Example]] = {lab: [] for lab in task.label_ids}
    for e in pool:
        by_label[e.label].append(e)
    need = k + dev_k
    for lab, exs in by_label.items():
        if len(exs) < need:
            raise DataError(
                f"task '{task.name}': label '{lab}' ({task.labels[lab]}) has only {len(exs)} labelled train-side examples, "
                f"{need} needed (k={k} train + {dev_k} dev); fix: use a smaller --k (or dev_k)"
            )
    rng = random.Random(seed)
    train: list[Example] = []
    dev: list[Example] = []
    for lab in task.label_ids:
        picked = rng.sample(by_label[lab], need)
        train.extend(picked[:k])
        dev.extend(picked[k:])
    rng.shuffle(train)
    rng.shuffle(dev)
    tag = f"{task.name}-k{k}-s{seed}"
    train = [Example(fields=e.fields, label=e.label, guid=f"{tag}-train-{i}", meta={**e.meta, "orig_guid": e.guid}) for i, e in enumerate(train)]
    dev = [Example(fields=e.fields, label=e.label, guid=f"{tag}-dev-{i}", meta={**e.meta, "orig_guid": e.guid}) for i, e in enumerate(dev)]
    return train, dev


def _write_split_dir(d: Path, train: list[Example], dev: list[Example], manifest: dict) -> None:
    d.mkdir(parents=True, exist_ok=True)
    h_train = write_examples(d / "train.jsonl", train)
    h_dev = write_examples(d / "dev.jsonl", dev)
    atomic_write_json(d / MANIFEST_FILE, manifest)
    # The checksum file goes last: its presence marks the folder complete.
    atomic_write_text(d / CHECKSUM_FILE, f"{h_train}  train.jsonl\n{h_dev}  dev.jsonl\n")


# ----------------------------------------------------------------------------- unlabelled pool


def unlabelled_pool(
    task: str | Path | TaskSpec,
    data_dir: str | Path | None = None,
    exclude: Iterable[Example] = (),
    size: int | None = 10000,
    seed: int = 0,
    include_extra: bool = False,
) -> list[Example]:
    """Up to ``size`` unlabelled train-side examples (labels removed), minus ``exclude`` (by text).

    Shuffled with ``seed``. When fewer than ``size`` exist, a warning gives the task's
    ``unlabelled_note`` and the actual size (LM-BFF tasks only have the k-shot folders).
    """
    t = load_task(task)
    root = resolve_data_dir(data_dir)
    excl = {_key(e) for e in exclude}
    pool = [_strip(e) for e in _train_side(t, root, include_extra=include_extra) if _key(e) not in excl]
    random.Random(seed).shuffle(pool)
    if size is not None and len(pool) < size:
        log.warning(
            "task %s: unlabelled pool has %d examples (asked for %d)%s",
            t.name, len(pool), size, f"; {t.unlabelled_note}" if t.unlabelled_note else "",
        )
    return pool if size is None else pool[:size]
