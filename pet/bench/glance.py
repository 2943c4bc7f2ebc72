"""The report's "At a glance" summary: per task (and over tasks), the leading method and, for every
other method, whether it is within noise of the leader or behind it — read off the paired
comparisons (:func:`pet.bench.tables.paired_table`), so a reader need not scan every pair.

Rules (nothing here looks at method names):

* **Leader** of a task: the highest headline mean among the methods with the task's largest
  number of seeds (a method run on fewer seeds is compared with it, never crowned from a partial
  column). Over tasks: the highest mean of per-task means among the methods that have the largest
  number of seeds on every task of that K.
* Every other method is **within noise** of the leader when their paired 95% interval covers 0,
  **behind** when it lies below 0, **ahead** when above (possible only for a method run on fewer
  seeds, compared on the ones it shares), and **not compared** when they share fewer than
  :data:`MIN_SEEDS` seeds (a smoke test, not a result) or were never run on identical splits.
* Each comparison is read on its own: no correction for the number of methods compared.
"""

from __future__ import annotations

import math
from typing import Any

from .tables import MEAN_OVER_TASKS, _pd, k_sort

#: fewer shared seeds than this is a smoke test (docs/bench.md "What counts as a result")
MIN_SEEDS = 3
LEADER, TIED, BEHIND, AHEAD, NOT_COMPARED = "leader", "within noise", "behind", "ahead", "not compared"
COLUMNS = ["task", "k_label", "method", "status", "mean", "diff", "ci95_low", "ci95_high", "n_seeds", "leader"]


def glance_table(head_agg, paired):
    """One row per (task or ``mean over tasks``, K, method): its status against the leader,
    its mean, and ``diff`` = method − leader with the paired interval (fractions)."""
    pd = _pd()
    rows: list[dict] = []
    if head_agg is None or not len(head_agg):
        return pd.DataFrame(columns=COLUMNS)
    pairs = _pair_index(paired)
    for kl in sorted(set(head_agg["k_label"]), key=k_sort):
        sub = head_agg[head_agg["k_label"] == kl]
        tasks = list(dict.fromkeys(sub["task"]))
        for task in tasks:
            t = sub[sub["task"] == task]
            full = t[t["n"] == t["n"].max()]
            leader = full.loc[full["mean"].idxmax()]
            means = dict(zip(t["method"], t["mean"]))
            rows += _rows(task, kl, leader["method"], means, pairs)
        if len(tasks) > 1:
            rows += _over_tasks(sub, tasks, kl, pairs)
    return pd.DataFrame(rows, columns=COLUMNS)


def _pair_index(paired) -> dict:
    """(task, K, A, B) -> the paired row, in both orientations (B's view has diff and CI negated)."""
    out: dict = {}
    if paired is None or not len(paired):
        return out
    for _, r in paired.iterrows():
        key = (r["task"], r["k_label"])
        out[key + (r["method_a"], r["method_b"])] = (r["diff"], r["ci95_low"], r["ci95_high"], r["n_seeds"])
        out[key + (r["method_b"], r["method_a"])] = (-r["diff"], -r["ci95_high"], -r["ci95_low"], r["n_seeds"])
    return out


def _rows(task: str, kl: str, leader: str, means: dict, pairs: dict) -> list[dict]:
    out = [_row(task, kl, leader, LEADER, means[leader], 0.0, math.nan, math.nan, math.nan, leader)]
    for m, mean in means.items():
        if m == leader:
            continue
        p = pairs.get((task, kl, m, leader))
        if p is None or (not _nan(p[3]) and p[3] < MIN_SEEDS):
            out.append(_row(task, kl, m, NOT_COMPARED, mean, *(p[:4] if p else (math.nan,) * 4), leader))
            continue
        diff, low, high, n = p
        status = TIED if _nan(low) or low <= 0 <= high else (BEHIND if high < 0 else AHEAD)
        out.append(_row(task, kl, m, status, mean, diff, low, high, n, leader))
    return out


def _over_tasks(sub, tasks: list[str], kl: str, pairs: dict) -> list[dict]:
    """The mean-over-tasks rows: candidates run with each task's largest seed count everywhere."""
    complete = [m for m in dict.fromkeys(sub["method"])
                if all(len(t := sub[(sub["task"] == task) & (sub["method"] == m)]) and t["n"].iloc[0] == sub[sub["task"] == task]["n"].max()
                       for task in tasks)]
    if not complete:
        return []
    mean = {m: float(sub[sub["method"] == m]["mean"].mean()) for m in dict.fromkeys(sub["method"])
            if sub[sub["method"] == m]["task"].nunique() == len(tasks)}
    leader = max(complete, key=mean.__getitem__)
    return _rows(MEAN_OVER_TASKS, kl, leader, mean, pairs)


def _row(task, kl, method, status, mean, diff, low, high, n, leader) -> dict[str, Any]:
    return {"task": task, "k_label": kl, "method": method, "status": status, "mean": mean, "diff": diff,
            "ci95_low": low, "ci95_high": high, "n_seeds": n, "leader": leader}


def _nan(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))
