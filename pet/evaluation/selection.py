"""Model selection: none, the split's dev set (LM-BFF), or cross-validation / multi-splits over
the labelled set (FewNLU), and the choice of a grid point per split.

    selection: none          fixed hyper-parameters, no dev data used (PET; "true few-shot")
    selection: dev           fit on train, score the split's dev set (best checkpoint with
                             eval_every); the grid point with the best dev score is chosen
    selection: cv:N:refit    stratified, seeded N-fold cross-validation over train ∪ dev: each
      (= cv:N)               grid point's score is its mean held-out fold score; the chosen
                             point is re-fitted on all labelled data and tested once
    selection: cv:N:mean-of-folds
                             FewNLU's cross-validation (Zheng et al. 2022): N contiguous folds of
                             train ∪ dev in stored order (FewNLU fewnlu/cli.py l.140-153, 224-228);
                             every fold model is also tested and the reported test score is the
                             mean of the chosen point's N fold models' test scores — no re-fit
                             (FewNLU fewnlu/cli.py l.397-426: test results appended per fold)
    selection: multisplit:N[:refit|:mean-of-folds]
                             N seeded stratified random halves of train ∪ dev (train /
                             held-out), otherwise as cv (FewNLU's multi-split also tests every
                             split's model: mean-of-folds)

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
#: what a fold selection reports: the chosen point re-fitted on all labelled data (ours), or the
#: mean test score of the chosen point's fold models (FewNLU's)
REPORTS = ("refit", "mean-of-folds")
_SELECTION = re.compile(r"^(none|dev|(cv|multisplit):(\d+)(?::(refit|mean-of-folds))?)$")
#: the pattern experiment files are validated against (kept beside the parser that reads it)
SELECTION_PATTERN = _SELECTION.pattern


@dataclass(frozen=True)
class Selection:
    mode: str  # none | dev | cv | multisplit
    n: int = 0  # folds / splits for cv and multisplit
    report: str = "refit"  # cv / multisplit: refit | mean-of-folds

    def __str__(self) -> str:
        if self.mode in ("none", "dev"):
            return self.mode
        # "cv:4" (the refit variant) keeps its old spelling, so stored rows and hashes stay valid
        return f"{self.mode}:{self.n}" + ("" if self.report == "refit" else f":{self.report}")

    @property
    def uses_folds(self) -> bool:
        return self.mode in ("cv", "multisplit")

    @property
    def refits(self) -> bool:
        """Whether the chosen point is re-fitted on all labelled data (else its fold models' mean test score is reported)."""
        return self.uses_folds and self.report == "refit"


def parse_selection(text: Any, where: str = "selection") -> Selection:
    """``"none"``, ``"dev"``, ``"cv:4"`` (= ``"cv:4:refit"``), ``"cv:4:mean-of-folds"``,
    ``"multisplit:4[:…]"`` -> :class:`Selection`."""
    m = _SELECTION.match(str(text).strip()) if isinstance(text, str) else None
    if not m:
        raise ConfigError(f"{where}: {text!r} is not a selection; fix: use none, dev, cv:N, cv:N:mean-of-folds (FewNLU) "
                          "or multisplit:N (N ≥ 2)")
    if m.group(2):
        n = int(m.group(3))
        if n < 2:
            raise ConfigError(f"{where}: {text!r} needs N ≥ 2; fix: e.g. cv:4")
        return Selection(m.group(2), n, m.group(4) or "refit")
    return Selection(m.group(1))


def folds(labelled: Sequence[Example], selection: Selection, seed: int) -> list[tuple[list[Example], list[Example]]]:
    """(fit, held-out) pairs over ``labelled``: stratified K folds (``cv``: every example held
    out exactly once) or stratified random halves (``multisplit``), seeded with ``seed``.

    ``cv:N:mean-of-folds`` uses FewNLU's folds instead: N contiguous blocks of ``labelled`` in
    its order, ``round(n / N)`` examples each and the rest in the last (FewNLU fewnlu/cli.py
    l.140-153), neither shuffled nor stratified; ``seed`` plays no part.
    """
    labelled = list(labelled)
    if selection.mode == "cv" and selection.report == "mean-of-folds":
        return contiguous_folds(labelled, selection.n)
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


def contiguous_folds(labelled: Sequence[Example], n: int) -> list[tuple[list[Example], list[Example]]]:
    """FewNLU's cross-validation folds: fold ``i`` holds out ``labelled[i·s : (i+1)·s]`` with
    ``s = round(len / n)`` (the last fold takes the rest) and fits on everything else."""
    labelled = list(labelled)
    size = round(len(labelled) / n)
    if size < 1:
        raise DataError(f"selection cv:{n}:mean-of-folds: {len(labelled)} labelled examples cannot make {n} folds; fix: use fewer folds")
    out = []
    for i in range(n):
        lo, hi = i * size, (len(labelled) if i == n - 1 else (i + 1) * size)
        out.append((labelled[:lo] + labelled[hi:], labelled[lo:hi]))
    return out


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
