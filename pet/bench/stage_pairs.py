"""Paired comparisons between the stages of one method (``report/stage_pairs.csv``).

Per (task, K, method) with more than one stage: the stage that stands for the method (A, the
headline row of each cell, :func:`pet.bench.store.headline`) against every other stage (B) of
that method — each PVP's model, the ensemble, an iPET generation — on the seeds both have, with
the same paired bootstrap, resamples and seeding convention as the between-method table
(:func:`pet.bench.tables.paired_table`). A stage is named by its row's ``key`` (``pvp[p1:v]``,
``pvp[p1:v]#1`` for a repetition, ``ensemble``, ``distilled``); rows stored before keys existed
get ``stage[pvp]`` (repeats in one cell numbered ``#1``, ``#2`` … in stored order, as the keys
are). A legacy ``mean-of-pvps`` headline is an average, not a stored stage: it is not compared.
Rows without per-example predictions resample seeds only (``ci_over`` = "seeds only").
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .stats import RESAMPLES
from .store import headline
from .tables import _compare

COLUMNS = ["task", "k_label", "method", "stage_a", "stage_b", "metric", "mean_a", "mean_b", "diff",
           "ci95_low", "ci95_high", "p_value", "n_seeds", "ci_over"]


def _scored(r: dict) -> bool:
    s = r.get("score")
    return s is not None and not (isinstance(s, float) and math.isnan(s))


def stage_names(recs: list[dict]) -> list[str]:
    """A readable, unique name per row of one cell: its ``key``, else ``stage[pvp]``; a name
    repeated in the cell gets ``#1``, ``#2`` … from its second occurrence on."""
    out, seen = [], {}
    for r in recs:
        key = r.get("key")
        if not isinstance(key, str) or not key:
            pvp = r.get("pvp")
            key = f"{r.get('stage')}[{pvp}]" if isinstance(pvp, str) and pvp else str(r.get("stage"))
        n = seen.get(key, 0)
        seen[key] = n + 1
        out.append(key if n == 0 else f"{key}#{n}")
    return out


def _by_stage(g) -> tuple[dict[str, dict], dict[str, dict]]:
    """(stage name -> {seed: row}, final stage name -> {seed: row}) over one method's scored rows."""
    by: dict[str, dict] = {}
    finals: dict[str, dict] = {}
    for seed, cell in g.groupby("seed", sort=False):
        recs = cell.to_dict("records")
        head = headline(recs)
        for name, r in zip(stage_names(recs), recs):
            if not _scored(r):
                continue
            by.setdefault(name, {})[seed] = r
            if r is head:
                finals.setdefault(name, {})[seed] = r
    return by, finals


def _method_pairs(task: str, kl: str, method: str, g, resamples: int) -> list[dict[str, Any]]:
    by, finals = _by_stage(g)
    rows = []
    for a, final in finals.items():
        for b, other in by.items():
            if b == a:
                continue
            c, seeds = _compare({a: final, b: other}, a, b, (task, kl, method), resamples)
            if c is None:
                continue
            rows.append({"task": task, "k_label": kl, "method": method, "stage_a": a, "stage_b": b, "metric": g["metric"].iloc[0],
                         "mean_a": float(np.mean([final[s]["score"] for s in seeds])),
                         "mean_b": float(np.mean([other[s]["score"] for s in seeds])),
                         "diff": c.mean, "ci95_low": c.low, "ci95_high": c.high, "p_value": c.p_value,
                         "n_seeds": c.n_seeds, "ci_over": c.over})
    return rows


def stage_pairs_table(df, resamples: int = RESAMPLES):
    """Every (task, K, method)'s final stage A against each of its other stages B, paired by
    seed: ``diff`` = mean(A) − mean(B) over the shared seeds, its 95% paired bootstrap interval
    and two-sided bootstrap p-value (columns :data:`COLUMNS`)."""
    import pandas as pd

    rows: list[dict] = []
    if df is not None and len(df):
        for (task, kl, method), g in df.groupby(["task", "k_label", "method"], sort=False):
            rows += _method_pairs(task, kl, method, g, resamples)
    return pd.DataFrame(rows, columns=COLUMNS)
