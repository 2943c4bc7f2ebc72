"""The report's "At a glance" summary (pet.bench.glance): leader per task and over tasks, and each
other method's status read off the paired comparisons, checked on hand-made tables."""

from __future__ import annotations

import math

import pandas as pd

from pet.bench.glance import glance_table
from pet.bench.markdown import glance
from pet.bench.tables import MEAN_OVER_TASKS


def _head(rows):
    return pd.DataFrame([{"task": t, "k_label": "16", "method": m, "n": n, "mean": mean} for t, m, n, mean in rows])


def _pair(task, a, b, diff, low, high, n=5):
    return {"task": task, "k_label": "16", "method_a": a, "method_b": b, "diff": diff, "ci95_low": low, "ci95_high": high, "n_seeds": n}


HEAD = _head([
    ("t1", "A", 5, 0.80), ("t1", "B", 5, 0.79), ("t1", "C", 5, 0.70), ("t1", "P", 2, 0.90), ("t1", "Q", 4, 0.83),
    ("t2", "A", 5, 0.60), ("t2", "B", 5, 0.66), ("t2", "C", 5, 0.65),
])
PAIRED = pd.DataFrame([
    _pair("t1", "B", "A", -0.01, -0.03, 0.01),        # within noise (stored as B − A: flipped to B vs leader A)
    _pair("t1", "A", "C", 0.10, 0.07, 0.13),          # C behind by 10
    _pair("t1", "P", "A", 0.10, 0.05, 0.15, n=2),     # 2 shared seeds: not compared, however large
    _pair("t1", "Q", "A", 0.03, 0.01, 0.05, n=4),     # fewer seeds but ahead on the 4 it shares
    _pair("t2", "B", "A", 0.06, 0.03, 0.09),
    _pair("t2", "B", "C", 0.01, -0.02, 0.04),
    _pair(MEAN_OVER_TASKS, "B", "A", 0.025, 0.0, 0.05),  # the interval touches 0: within noise
    _pair(MEAN_OVER_TASKS, "A", "C", 0.025, 0.01, 0.04),
])


def _status(gl, task):
    t = gl[gl["task"] == task]
    return dict(zip(t["method"], t["status"]))


def test_leaders_come_from_complete_columns_and_statuses_follow_the_paired_intervals():
    gl = glance_table(HEAD, PAIRED)
    assert _status(gl, "t1") == {"A": "leader", "B": "within noise", "C": "behind", "P": "not compared", "Q": "ahead"}
    c = gl[(gl["task"] == "t1") & (gl["method"] == "C")].iloc[0]
    assert (c["diff"], c["ci95_low"], c["ci95_high"]) == (-0.10, -0.13, -0.07)  # oriented method − leader
    assert _status(gl, "t2") == {"B": "leader", "A": "behind", "C": "within noise"}
    # over tasks: A 0.70, B 0.725, C 0.675 (P and Q are not on every task with full seeds)
    assert _status(gl, MEAN_OVER_TASKS) == {"B": "leader", "A": "within noise", "C": "not compared"}
    lead = gl[(gl["task"] == MEAN_OVER_TASKS) & (gl["status"] == "leader")].iloc[0]
    assert math.isclose(lead["mean"], 0.725)


def test_no_pair_means_not_compared_and_the_markdown_lists_every_status():
    gl = glance_table(HEAD, PAIRED[PAIRED["task"] != "t2"])
    assert set(_status(gl, "t2").values()) == {"leader", "not compared"}
    md = "\n".join(glance(glance_table(HEAD, PAIRED), lambda t: t))
    assert "## At a glance" in md
    assert "| t1 | **A** 80.0 (on fewer seeds, ahead of it: Q +3.0) | B -1.0 | C -10.0 | P |" in md
    assert "| *mean over tasks* | **B** 72.5 | A -2.5 | – | C |" in md
    assert glance(glance_table(HEAD.iloc[:0], None), str) == []
