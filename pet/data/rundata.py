"""Everything one training run needs, with the test set kept apart: a registered task's few-shot
split (or K per class drawn from a user's own file), its unlabelled pool, its test set and PVPs.

    run = task_run_data("sst2", data_dir, k=16, seed=13, unlabelled_size=10000)
    run = own_run_data("reviews.csv", {"text_a": "review"}, "stars", k=8, seed=13,
                       patterns="p.json", verbalizers="v.json")

``pet train``, ``PetClassifier`` users and benchmark scripts call these; methods only ever see
``run.train``, ``run.dev`` and ``run.unlabelled``.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import ConfigError, DataError
from ..examples import Example
from ..prompts.spec import PVP
from .fewshot import check_shots, few_shot, load_examples, unlabelled_pool
from .owndata import own_data_task, read_own
from .registry import TaskSpec, load_task, task_pvps
from .stream import Source


@dataclass
class RunData:
    """A run's data: ``train``/``dev``/``unlabelled`` for fitting, ``test`` for evaluating."""

    task: TaskSpec
    train: list[Example]
    test: list[Example]
    pvps: list[PVP] = field(default_factory=list)
    dev: list[Example] = field(default_factory=list)
    unlabelled: list[Example] = field(default_factory=list)
    k: int | None = None
    seed: int = 13
    #: what the user should know about how the data was assembled (``pet train`` prints each as
    #: ``note: …``), e.g. test rows dropped because they are training examples
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (f"{self.task.name}: {len(self.train)} train, {len(self.dev)} dev, {len(self.test)} test, "
                f"{len(self.unlabelled)} unlabelled, {len(self.pvps)} PVP(s)")


def sample_k_per_class(examples: Sequence[Example], labels: Sequence[str], k: int, seed: int, where: str) -> tuple[list[Example], list[Example]]:
    """K examples per label (seeded, ``random.Random(seed)``) and the rest, in their order."""
    by: dict[str, list[Example]] = {lab: [] for lab in labels}
    for e in examples:
        if e.label not in by:
            raise DataError(f"{where}: label '{e.label}' ({e.guid}) is not one of the labels {list(labels)}; fix: add it to the verbalizer")
        by[e.label].append(e)
    rng = random.Random(seed)
    train: list[Example] = []
    for lab in labels:
        if len(by[lab]) < k:
            raise DataError(f"{where}: label '{lab}' has only {len(by[lab])} examples, {k} needed; fix: use a smaller --shots")
        train.extend(rng.sample(by[lab], k))
    rng.shuffle(train)
    chosen = {id(e) for e in train}
    return train, [e for e in examples if id(e) not in chosen]


def task_run_data(
    task: str | Path | TaskSpec,
    data_dir: str | Path | None = None,
    *,
    k: int | None = 16,
    seed: int = 13,
    unlabelled_size: int = 0,
    patterns: str | Path | None = None,
    verbalizers: str | Path | None = None,
    pvps: Sequence[str] | None = None,
    test_split: str = "test",
    needs_labelled: bool = True,
) -> RunData:
    """A registered task's few-shot split for (K, seed) (LM-BFF's fixed folders where they exist),
    up to ``unlabelled_size`` train-side texts outside it, its test split and PVPs. ``k=0``
    (no labelled examples) is for a method whose ``needs_labelled`` trait is False (pass it)."""
    t = load_task(task)
    train, dev = few_shot(t, data_dir, k=k, seed=seed, needs_labelled=needs_labelled)
    test = load_examples(t, test_split, data_dir, seed=seed)
    unl = unlabelled_pool(t, data_dir, exclude=train + dev, size=unlabelled_size, seed=seed) if unlabelled_size > 0 else []
    chosen = task_pvps(t, patterns, verbalizers, pvps, include_soft=True)
    return RunData(t, train, test, chosen, dev, unl, k, seed)


def own_run_data(
    data: str | Path | Source,
    text_fields: dict[str, str],
    label_field: str,
    *,
    k: int,
    seed: int = 13,
    patterns: str | Path | None = None,
    verbalizers: str | Path | None = None,
    pvps: Sequence[str] | None = None,
    test: str | Path | Source | None = None,
    unlabelled: str | Path | Source | None = None,
    unlabelled_size: int | None = None,
    needs_labelled: bool = True,
) -> RunData:
    """K per class drawn (seeded) from a user's labelled file or ``hf:`` dataset (its ``train``
    split unless a :class:`Source` names another); the rest (or ``test``: a file, or an ``hf:``
    dataset's ``test`` split) is the test set; ``unlabelled`` is optional text (same columns).
    A ``test`` that is the labelled source itself is refused; its rows with the same text as a
    drawn training example are dropped, with a note in ``RunData.notes``.
    ``k=0`` (no labelled examples) is for a method whose ``needs_labelled`` trait is False."""
    check_shots(k, needs_labelled)
    if (patterns is None) != (verbalizers is None):
        raise ConfigError("own data needs both --patterns FILE and --verbalizers FILE (or neither, for cls-ft); fix: pass both")
    if test is not None:
        _check_not_same_source(data, test)
    chosen: list[PVP] = []
    labels = None
    if patterns is not None:
        chosen = task_pvps(None, patterns, verbalizers, pvps, include_soft=True)
        labels = chosen[0].verbalizer.label_ids
    spec, examples = own_data_task(data, text_fields, label_field, labels=labels)
    train, rest = sample_k_per_class(examples, spec.label_ids, k, seed, str(data))
    notes: list[str] = []
    if test is None:
        test_examples = rest
    else:
        test_examples = read_own(test, text_fields, label_field, labels=spec.label_ids, default_split="test")
        test_examples, dropped = drop_training_texts(test_examples, train)
        if dropped and not test_examples:
            raise DataError(f"{test}: every test example is also one of the {len(train)} training examples drawn from {data}; "
                            "fix: give a test file that does not repeat the training data, or drop --test (the examples not drawn are then tested)")
        if dropped:
            notes.append(f"{test}: {dropped} test example{'s' if dropped != 1 else ''} with the same text as a training example drawn "
                         f"from {data} {'were' if dropped != 1 else 'was'} dropped; {len(test_examples)} are tested")
    if not test_examples:
        raise DataError(f"{data}: no examples left for testing after drawing {k} per class; fix: pass --test FILE or a smaller --shots")
    unl = read_own(unlabelled, text_fields, None)[:unlabelled_size] if unlabelled is not None else []
    return RunData(spec, train, test_examples, chosen, [], unl, k, seed, notes)


def _text_key(e: Example) -> tuple:
    return tuple(sorted(e.fields.items()))


def drop_training_texts(test: Sequence[Example], train: Sequence[Example]) -> tuple[list[Example], int]:
    """``test`` without the examples whose text fields equal a training example's (whatever
    their label: the model has seen that text), and how many were dropped. Dropping rather than
    refusing: a test file that shares a few texts with the labelled file is common (duplicates
    in a corpus, a test file cut from the same pool) and the rest of it is still a fair test."""
    seen = {_text_key(e) for e in train}
    kept = [e for e in test if _text_key(e) not in seen]
    return kept, len(test) - len(kept)


def _check_not_same_source(data: str | Path | Source, test: str | Path | Source) -> None:
    """Refuse a test source that is the labelled source itself: the same file (also through a
    symlink or hard link), or the same ``hf:`` dataset split."""
    d, t = Source.of(data, default_split="train"), Source.of(test, default_split="test")
    if d.is_hf or t.is_hf:
        same = d.is_hf and t.is_hf and d.spec == t.spec and d.describe() == t.describe()
    else:
        try:
            same = os.path.samefile(d.spec, t.spec)
        except OSError:  # a missing file: the reader says so
            same = False
    if same:
        also = "" if d.spec == t.spec else f" ({t.spec} is the same file as {d.spec})"
        raise DataError(f"--test {t.describe() if t.is_hf else t.spec}: it is the labelled data itself{also}, so the training examples "
                        "would be tested; fix: drop --test (the examples not drawn for training are then tested) or give a separate test file")
