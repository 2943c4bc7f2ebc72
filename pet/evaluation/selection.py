"""Model selection: none, the split's dev set (LM-BFF), or cross-validation / multi-splits over
the labelled set (FewNLU), and the choice of a grid point per split.

    selection: none          fixed hyper-parameters, no dev data used (PET; "true few-shot")
    selection: dev           fit on train, score the split's dev set (best checkpoint with
                             eval_every); the grid point with the best dev score is chosen
    selection: cv:N          stratified N-fold cross-validation over train ∪ dev: each grid
                             point's score is its mean held-out fold score; the chosen point is
                             re-fitted on all labelled data and tested once
    selection: multisplit:N  N seeded stratified random halves of train ∪ dev (train / held-out),
                             otherwise as cv

The test set plays no part in any of it: the runner reads it only for the rows of a fitted
model, and the choice reads only dev scores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

from ..errors import ConfigError, DataError
from ..examples import Example

MODES = ("none", "dev", "cv", "multisplit")
_SELECTION = re.compile(r"^(none|dev|cv:(\d+)|multisplit:(\d+))$")


@dataclass(frozen=True)
class Selection:
    mode: str  # none | dev | cv | multisplit
    n: int = 0  # folds / splits for cv and multisplit

    def __str__(self) -> str:
        return self.mode if self.mode in ("none", "dev") else f"{self.mode}:{self.n}"

    @property
    def uses_folds(self) -> bool:
        return self.mode in ("cv", "multisplit")


def parse_selection(text: Any, where: str = "selection") -> Selection:
    """``"none"``, ``"dev"``, ``"cv:4"``, ``"multisplit:4"`` -> :class:`Selection`."""
    m = _SELECTION.match(str(text).strip()) if isinstance(text, str) else None
    if not m:
        raise ConfigError(f"{where}: {text!r} is not a selection; fix: use none, dev, cv:N or multisplit:N (N ≥ 2)")
    if m.group(2) or m.group(3):
        n = int(m.group(2) or m.group(3))
        if n < 2:
            raise ConfigError(f"{where}: {text!r} needs N ≥ 2; fix: e.g. cv:4")
        return Selection("cv" if m.group(2) else "multisplit", n)
    return Selection(m.group(1))


def folds(labelled: Sequence[Example], selection: Selection, seed: int) -> list[tuple[list[Example], list[Example]]]:
    """(fit, held-out) pairs over ``labelled``: stratified K folds (``cv``: every example held
    out exactly once) or stratified random halves (``multisplit``), seeded with ``seed``."""
    labelled = list(labelled)
    y = [e.label for e in labelled]
    counts = {lab: y.count(lab) for lab in set(y)}
    need = selection.n if selection.mode == "cv" else 2
    small = [lab for lab, c in counts.items() if c < need]
    if small:
        raise DataError(f"selection {selection}: label '{small[0]}' has only {counts[small[0]]} labelled examples, "
                        f"fewer than {need}; fix: use fewer folds, or selection: dev")
    X = np.zeros((len(labelled), 1))
    if selection.mode == "cv":
        splitter = StratifiedKFold(n_splits=selection.n, shuffle=True, random_state=seed)
    else:
        splitter = StratifiedShuffleSplit(n_splits=selection.n, test_size=0.5, random_state=seed)
    return [([labelled[i] for i in a], [labelled[i] for i in b]) for a, b in splitter.split(X, y)]


def choose(points: Sequence[Sequence[dict]]) -> dict[str, int]:
    """Per stage key, the index of the grid point with the best ``dev_score`` (the earliest on
    ties). ``points[i]`` are grid point i's rows (each with ``key`` and ``dev_score``)."""
    best: dict[str, tuple[float, int]] = {}
    for i, rows in enumerate(points):
        for r in rows:
            d = r.get("dev_score")
            if d is None or (isinstance(d, float) and np.isnan(d)):
                continue
            k = r["key"]
            if k not in best or d > best[k][0]:
                best[k] = (float(d), i)
    return {k: i for k, (_, i) in best.items()}
