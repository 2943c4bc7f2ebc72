"""The report's tables (pandas DataFrames) over loaded rows (:func:`pet.bench.report.load_rows`).

Scores are fractions (0.843); ``std`` is the population standard deviation over seeds
(``numpy.std``, ddof=0, the convention of LM-BFF's ``tools/gather_result.py``). Intervals and
paired comparisons come from :mod:`pet.bench.stats` (hierarchical bootstrap over seeds x test
examples). No method is named here: what a method is comes from its registered family and
traits (``Method.baseline``, ``uses_unlabelled``, ``distils``; an unregistered method has none)
and from its rows (a method whose rows train no parameters is training-free).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..methods import available_methods, get_method
from ..metrics import REGRESSION_METRICS
from ..utils.resources import shipped_dir
from .rows import ResultRow
from .stats import (
    RESAMPLES,
    Metric,
    Run,
    bootstrap_mean,
    mean_comparison,
    paired_comparison,
    stream,
)
from .store import headline

KEY = ["task", "method", "k", "seed"]
TRAITS = ("baseline", "uses_unlabelled", "distils")
#: the ``task`` of a paired row that averages the differences over every task of a K
MEAN_OVER_TASKS = "mean over tasks"


def _pd():
    import pandas as pd

    return pd


def k_label(k: Any) -> str:
    if k is None or (isinstance(k, float) and math.isnan(k)):
        return "fixed"
    return str(int(k))


def k_sort(label: str) -> tuple:
    return (1, 0) if label == "fixed" else (0, int(label))


def seed_stats(values: Sequence[float]) -> dict:
    """n, mean, std (ddof=0), median, min and max of the non-missing values."""
    a = np.asarray([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))], dtype=float)
    if a.size == 0:
        return {"n": 0, "mean": math.nan, "std": math.nan, "median": math.nan, "min": math.nan, "max": math.nan}
    return {"n": int(a.size), "mean": float(a.mean()), "std": float(a.std()), "median": float(np.median(a)),
            "min": float(a.min()), "max": float(a.max())}


def aggregate(df, by: Sequence[str] = ("task", "method", "k_label", "stage", "pvp"), value: str = "score"):
    """Mean, std (ddof=0), median, min, max and n over seeds for every group in ``by``."""
    pd = _pd()
    if df is None or len(df) == 0:
        return pd.DataFrame(columns=[*by, "metric", "n", "mean", "std", "median", "min", "max", "seeds"])
    out = []
    for keys, g in df.groupby(list(by), sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        rec = dict(zip(by, keys))
        rec["metric"] = g["metric"].iloc[0]
        rec.update(seed_stats(list(g[value])))
        rec["seeds"] = " ".join(str(s) for s in sorted(g["seed"].unique()))
        if value == "score" and "accuracy" in g:
            acc = seed_stats(list(g["accuracy"]))
            rec["accuracy_mean"], rec["accuracy_std"] = acc["mean"], acc["std"]
        out.append(rec)
    return pd.DataFrame(out)


def headline_rows(df):
    """One row per (task, method, K, seed): the row that stands for the method in that cell
    (:func:`pet.bench.store.headline`: the stage the method marked final). A legacy
    ``mean-of-pvps`` row has no per-example predictions of its own."""
    if df is None or len(df) == 0:
        return df
    picks = [headline(g.to_dict("records")) for _, g in df.groupby(KEY, sort=False, dropna=False)]
    for p in picks:
        if p.get("stage") == "mean-of-pvps":
            p["predictions"] = None
    return _pd().DataFrame(picks).reset_index(drop=True)


# ----------------------------------------------------------------------------- methods


def method_traits(name: str) -> dict[str, bool]:
    """A registered method's traits; a method of family ``baseline`` is a baseline too; an
    unregistered method (a plugin's, in someone else's results) has none."""
    if name not in available_methods():
        return dict.fromkeys(TRAITS, False)
    m = get_method(name)
    out = {t: bool(getattr(m, t, False)) for t in TRAITS}
    out["baseline"] = out["baseline"] or m.family == "baseline"
    return out


def family(name: str) -> str:
    """A method's registered family (hard, soft, baseline); "other" when not registered."""
    return get_method(name).family if name in available_methods() else "other"


# ----------------------------------------------------------------------------- intervals


def row_test_checksums(rec: dict) -> dict[str, str]:
    """What identifies a row's test set: the SHA-256 of the test file read (``inputs["test"]``)
    and of the test examples (``test["checksum"]``), whichever the row has."""
    inputs, test = rec.get("inputs"), rec.get("test")
    out = {"file": inputs.get("test") if isinstance(inputs, dict) else None,
           "examples": test.get("checksum") if isinstance(test, dict) else None}
    return {k: v for k, v in out.items() if v}


def _same_data(a: dict, b: dict) -> bool:
    """Two rows of one seed read the same split and test set (checksums both rows have agree)."""
    sa, sb = a.get("split"), b.get("split")
    split_a = sa.get("checksum") if isinstance(sa, dict) else None
    split_b = sb.get("checksum") if isinstance(sb, dict) else None
    if split_a and split_b and split_a != split_b:
        return False
    ta, tb = row_test_checksums(a), row_test_checksums(b)
    return all(ta[k] == tb[k] for k in ta.keys() & tb.keys())


def _run(rec: dict, labels: list[str] | None) -> Run:
    """One headline row as a :class:`Run`; label indices mapped into ``labels`` order."""
    p = rec.get("predictions")
    row = ResultRow(predictions=p if isinstance(p, dict) else None)
    if rec.get("metric") in REGRESSION_METRICS:
        return Run(rec["seed"], float(rec["score"]), row.gold_score_array(), row.pred_score_array())
    gold, pred = row.gold_array(), row.pred_array()
    if gold is not None and labels is not None and row.labels != labels:
        if not set(row.labels) <= set(labels):
            return Run(rec["seed"], float(rec["score"]))
        to = np.array([labels.index(x) for x in row.labels])
        gold, pred = to[gold], to[pred]
    return Run(rec["seed"], float(rec["score"]), gold, pred)


def _metric(recs: Sequence[dict]) -> tuple[Metric, list[str] | None]:
    """The group's metric, its label order (of the first row with predictions) and the positive
    label of binary F1 (``"1"`` if a label, else the last: :func:`pet.metrics.compute_metric`'s rule)."""
    labels = next((list(r["predictions"]["labels"]) for r in recs if isinstance(r.get("predictions"), dict)), None)
    pos = None if not labels else (labels.index("1") if "1" in labels else len(labels) - 1)
    return Metric(recs[0]["metric"], len(labels or []), pos), labels


def _scored(g) -> list[dict]:
    g = g[g["score"].notna()]
    return g.sort_values("seed").to_dict("records")


def headline_table(head, resamples: int = RESAMPLES):
    """Per task x method x K: the headline rows aggregated over seeds, with the registered name,
    family and traits, whether the method trains, its stage(s), and the 95% bootstrap interval
    of the mean (``ci95_low``, ``ci95_high``; ``ci_over`` says what was resampled)."""
    pd = _pd()
    agg = aggregate(head, by=("task", "method", "k_label"))
    extra = []
    for (task, method, kl), g in head.groupby(["task", "method", "k_label"], sort=False):
        recs = _scored(g)
        rec = {"task": task, "method": method, "k_label": kl, "method_name": g["method_name"].iloc[0],
               "stage": ",".join(sorted(set(g["stage"]))), "trains": bool(g["trained_parameters"].fillna(0).gt(0).any())}
        if recs:
            metric, labels = _metric(recs)
            iv = bootstrap_mean([_run(r, labels) for r in recs], metric, resamples=resamples, seed=stream(task, kl, method))
            rec.update(ci95_low=iv.low, ci95_high=iv.high, ci_over=iv.over, resamples=iv.resamples, n_examples=iv.n_examples)
        extra.append(rec)
    out = agg.merge(pd.DataFrame(extra), on=["task", "method", "k_label"], how="left")
    out["family"] = [family(m) for m in out["method_name"]]
    for t in TRAITS:
        out[t] = [method_traits(m)[t] for m in out["method_name"]]
    return out


def _ordered_pairs(methods: list[str], baseline: dict[str, bool]) -> list[tuple[str, str]]:
    """Every pair once, in the methods' order; a baseline goes second (the difference is then
    the other method's gain over it)."""
    return [(b, a) if baseline[a] and not baseline[b] else (a, b) for a, b in itertools.combinations(methods, 2)]


def _compare(by: dict, a: str, b: str, key: tuple, resamples: int):
    """Paired comparison of ``a`` and ``b`` on their shared seeds, or None when they share no
    seed or their splits / test sets differ."""
    seeds = sorted(set(by[a]) & set(by[b]))
    if not seeds or not all(_same_data(by[a][s], by[b][s]) for s in seeds):
        return None, seeds
    ra, rb = [by[a][s] for s in seeds], [by[b][s] for s in seeds]
    metric, labels = _metric(ra + rb)
    runs_a, runs_b = [_run(r, labels) for r in ra], [_run(r, labels) for r in rb]
    if any(x.has_predictions and y.has_predictions and not np.array_equal(x.gold, y.gold) for x, y in zip(runs_a, runs_b)):
        runs_a, runs_b = [Run(x.seed, x.score) for x in runs_a], [Run(y.seed, y.score) for y in runs_b]  # not the same examples
    return paired_comparison(runs_a, runs_b, metric, resamples=resamples, seed=stream(*key, a, b)), seeds


def paired_table(head, head_agg, resamples: int = RESAMPLES):
    """Every pair of methods on identical splits of a task (same task, K and seeds, same split
    and test checksums): ``diff`` = mean(A) - mean(B), its 95% paired bootstrap interval and
    p-value, plus per-seed wins and the std of the per-seed differences; and per K the mean
    over tasks of every pair compared on all of that K's tasks."""
    pd = _pd()
    baseline = dict(zip(head_agg["method"], head_agg["baseline"]))
    order = {m: i for i, m in enumerate(dict.fromkeys(head["method"]))}  # one orientation of each pair on every task
    rows, comps = [], {}
    for (task, kl), g in head.groupby(["task", "k_label"], sort=False):
        by = {m: {r["seed"]: r for r in _scored(gm)} for m, gm in g.groupby("method", sort=False)}
        for a, b in _ordered_pairs(sorted(by, key=order.__getitem__), baseline):
            c, seeds = _compare(by, a, b, (task, kl), resamples)
            if c is None:
                continue
            comps[(task, kl, a, b)] = c
            d = np.array([by[a][s]["score"] - by[b][s]["score"] for s in seeds])
            rows.append(_paired_row(task, kl, a, b, c, g["metric"].iloc[0], d, [by[a][s]["score"] for s in seeds], [by[b][s]["score"] for s in seeds]))
    for kl in dict.fromkeys(head["k_label"]):
        tasks = list(dict.fromkeys(head[head["k_label"] == kl]["task"]))
        pairs = dict.fromkeys((a, b) for (t, k, a, b) in comps if k == kl)
        for a, b in pairs if len(tasks) > 1 else ():
            if all((t, kl, a, b) in comps for t in tasks):
                c = mean_comparison([comps[(t, kl, a, b)] for t in tasks])
                rows.append(_paired_row(MEAN_OVER_TASKS, kl, a, b, c, "mean of the tasks' metrics", None, None, None))
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


PAIRED_COLUMNS = ["task", "method_a", "method_b", "diff", "ci95_low", "ci95_high", "p_value", "k_label", "metric",
                  "n_seeds", "n_examples", "ci_over", "resamples", "mean_a", "mean_b", "diff_std", "wins"]


def _paired_row(task, kl, a, b, c, metric, diffs, sa, sb) -> dict:
    return {"task": task, "method_a": a, "method_b": b, "diff": c.mean, "ci95_low": c.low, "ci95_high": c.high,
            "p_value": c.p_value, "k_label": kl, "metric": metric, "n_seeds": c.n_seeds, "n_examples": c.n_examples,
            "ci_over": c.over, "resamples": c.resamples,
            "mean_a": float(np.mean(sa)) if sa else math.nan, "mean_b": float(np.mean(sb)) if sb else math.nan,
            "diff_std": float(diffs.std()) if diffs is not None else math.nan,
            "wins": int((diffs > 0).sum()) if diffs is not None else None}


def gain_table(paired, head_agg):
    """Each method's gain over the trained baselines: the paired rows (per task) whose B is a
    baseline that trains parameters (``Method.baseline`` and its rows train something — a
    training-free reference such as zero-shot is a floor, not the baseline to beat) and whose A
    is not a baseline."""
    pd = _pd()
    if paired is None or not len(paired):
        return pd.DataFrame()
    info = head_agg.drop_duplicates("method").set_index("method")
    trained_base = {m for m in info.index if info.loc[m, "baseline"] and info.loc[m, "trains"]}
    keep = paired["method_b"].isin(trained_base) & ~paired["method_a"].map(info["baseline"]).fillna(False).astype(bool)
    keep &= paired["task"] != MEAN_OVER_TASKS
    g = paired[keep]
    return pd.DataFrame({
        "task": g["task"], "k_label": g["k_label"], "method": g["method_a"], "baseline": g["method_b"], "metric": g["metric"],
        "n_pairs": g["n_seeds"], "method_mean": g["mean_a"], "baseline_mean": g["mean_b"], "gain_mean": g["diff"],
        "gain_std": g["diff_std"], "ci95_low": g["ci95_low"], "ci95_high": g["ci95_high"], "p_value": g["p_value"],
        "ci_over": g["ci_over"], "wins": g["wins"],
    }).reset_index(drop=True)


# ----------------------------------------------------------------------------- other tables


def pvp_table(df):
    """Per (task, method, K): best and worst single PVP (by mean over seeds), the mean over
    PVPs, and the PVP ensemble."""
    pd = _pd()
    if df is None or len(df) == 0:
        return pd.DataFrame()
    rows = []
    single = df[(df["stage"] == "pvp") & (df["pvp"] != "")]
    for (task, method, kl), g in single.groupby(["task", "method", "k_label"], sort=False):
        per = aggregate(g, by=("pvp",)).sort_values("mean", ascending=False)
        best, worst = per.iloc[0], per.iloc[-1]
        ens = df[(df["task"] == task) & (df["method"] == method) & (df["k_label"] == kl) & (df["stage"] == "ensemble")]
        e = seed_stats(list(ens["score"])) if len(ens) else None
        rows.append({
            "task": task, "method": method, "k_label": kl, "metric": g["metric"].iloc[0], "n_pvps": len(per),
            "best_pvp": best["pvp"], "best_mean": best["mean"], "best_std": best["std"],
            "worst_pvp": worst["pvp"], "worst_mean": worst["mean"], "worst_std": worst["std"],
            "pvp_mean": float(per["mean"].mean()),
            "ensemble_mean": e["mean"] if e else math.nan, "ensemble_std": e["std"] if e else math.nan,
            "ensemble_minus_best": (e["mean"] - best["mean"]) if e else math.nan,
        })
    return pd.DataFrame(rows)


def hard_soft_table(head_agg):
    """Per (task, K): the best method of each family (hard prompts, soft prompts, baselines)."""
    pd = _pd()
    if head_agg is None or len(head_agg) == 0:
        return pd.DataFrame()
    rows = []
    for (task, kl), g in head_agg.groupby(["task", "k_label"], sort=False):
        rec: dict[str, Any] = {"task": task, "k_label": kl, "metric": g["metric"].iloc[0]}
        for fam in ("hard", "soft", "baseline"):
            sub = g[g["family"] == fam].sort_values("mean", ascending=False)
            top = sub.iloc[0] if len(sub) else None
            rec[f"{fam}_method"] = top["method"] if top is not None else ""
            rec[f"{fam}_mean"] = top["mean"] if top is not None else math.nan
            rec[f"{fam}_std"] = top["std"] if top is not None else math.nan
        rec["hard_minus_soft"] = rec["hard_mean"] - rec["soft_mean"]
        rows.append(rec)
    return pd.DataFrame(rows)


def cost_table(df, head):
    """Per (task, method, K): mean cell wall time, headline train time, eval throughput, peak
    memory and trained parameters."""
    pd = _pd()
    if df is None or len(df) == 0:
        return pd.DataFrame()
    rows = []
    for (task, method, kl), g in df.groupby(["task", "method", "k_label"], sort=False):
        cells = g.drop_duplicates(subset=["seed"])
        h = head[(head["task"] == task) & (head["method"] == method) & (head["k_label"] == kl)]
        eps = [v for v in g["eval_examples_per_second"] if v]
        rows.append({
            "task": task, "method": method, "k_label": kl, "cells": len(cells),
            "cell_seconds_mean": float(cells["cell_seconds"].mean()),
            "train_seconds_mean": float(h["train_seconds"].mean()) if len(h) else math.nan,
            "eval_examples_per_second": float(sum(eps) / len(eps)) if eps else math.nan,
            "peak_memory_mb": float(g["peak_memory_mb"].max()),
            "cell_peak_rss_mb": float(g["cell_peak_rss_mb"].max()) if "cell_peak_rss_mb" in g else math.nan,
            "trained_parameters": int(g["trained_parameters"].fillna(0).max()),
        })
    return pd.DataFrame(rows)


def selection_table(df, grid):
    """Per split (task, method, K, seed): the chosen grid point of the final stage, its dev score
    and its test score, the number of points, and — where the grid points were tested too
    (selection dev) — the best and mean test score over the points (what choosing on test would
    have given, for the record: it is never used)."""
    pd = _pd()
    if df is None or not len(df) or "dev_score" not in df:
        return None
    chosen = df[df["final"].eq(True) & df["dev_score"].notna()] if "final" in df else df.iloc[0:0]
    out = []
    for _, r in chosen.iterrows():
        rec = {"task": r["task"], "method": r["method"], "k": r["k"], "seed": r["seed"], "stage": r["stage"], "selection": r.get("selection"),
               "chosen": json.dumps((r.get("options") or {}) if not r.get("grid_point") else r["grid_point"], sort_keys=True),
               "dev_score": r["dev_score"], "test_score": r["score"], "points": len(r["grid"]) if isinstance(r.get("grid"), list) else 1}
        if grid is not None and len(grid):
            pts = grid[(grid["task"] == r["task"]) & (grid["method"] == r["method"]) & (grid["seed"] == r["seed"])
                       & (grid["k"].astype(str) == str(r["k"])) & (grid["stage"] == r["stage"]) & (grid["pvp"].fillna("") == (r["pvp"] or ""))]
            tested = pts["score"].dropna()
            if len(tested):
                rec["points_test_best"] = float(tested.max())
                rec["points_test_mean"] = float(tested.mean())
                rec["points_dev_test_pearson"] = float(pts["dev_score"].corr(pts["score"])) if len(tested) > 2 else math.nan
        out.append(rec)
    return pd.DataFrame(out) if out else None


def selection_summary(sel):
    """Per (task, method, K): FewNLU's criteria — mean ± std test score of the chosen points
    (stability), mean dev score, and the dev-test correlation over the splits."""
    pd = _pd()
    rows = []
    for (task, method, k), g in sel.groupby(["task", "method", "k"], sort=False, dropna=False):
        st = seed_stats(list(g["test_score"].astype(float)))
        corr = g["dev_score"].astype(float).corr(g["test_score"].astype(float), method="spearman") if len(g) > 2 else math.nan
        rows.append({"task": task, "method": method, "k": k, "selection": g["selection"].iloc[0], "splits": len(g),
                     "test_mean": st["mean"], "test_std": st["std"], "dev_mean": float(g["dev_score"].astype(float).mean()),
                     "dev_test_spearman": corr})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- published numbers


def shipped_references() -> Path:
    """The published numbers shipped with pet (``data/references.csv``)."""
    return shipped_dir("references") / "references.csv"


#: The columns of a references file; the first six are required.
REFERENCE_COLUMNS = ("task", "method", "k", "score", "source", "base_model", "std", "metric", "note")


def _reference_number(p: Path, line: int, column: str, value: str, integer: bool = False) -> float:
    """A number of a references file, or a one-line ConfigError naming the line and column."""
    try:
        x = float(value)
        ok = math.isfinite(x) and (not integer or (x >= 0 and x == int(x)))
    except ValueError:
        ok = False
    if not ok:
        want = "a whole number of examples >= 0 (empty: a fixed training set)" if integer else "a finite number"
        raise ConfigError(f"{p}: line {line}, column {column}: {value!r} is not {want}; fix: correct that value")
    return int(x) if integer else x


def load_references(path: str | Path):
    """Published numbers: CSV with task, method, k, score, std, source, base_model (and
    optional metric, note). Scores are percentages as printed in the papers. A malformed file
    (a quote never closed, more fields than the header, a K or score that is not a number) is a
    one-line ConfigError naming the line and the column."""
    import csv
    import io

    from ..utils.jsonio import read_text

    pd = _pd()
    p = Path(path)
    text = read_text(p, ConfigError, missing="references file not found; fix: pass --references data/references.csv or omit it")
    header_fix = f"fix: use the header {','.join(REFERENCE_COLUMNS[:4] + ('std', 'metric', 'source', 'base_model', 'note'))}"
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[dict] = []
    header: list[str] | None = None
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1  # the line the record starts on; the next one's
            if not any(f.strip() for f in row):
                continue  # a blank line
            if header is None:
                header = row
                missing = set(REFERENCE_COLUMNS[:6]) - set(row)
                if missing:
                    raise ConfigError(f"{p}: missing column(s) {', '.join(sorted(missing))}; {header_fix}")
                dup = sorted({c for c in row if row.count(c) > 1})
                if dup:
                    raise ConfigError(f"{p}: line {line}: column {dup[0]!r} appears twice in the header; {header_fix}")
                continue
            if len(row) > len(header):
                raise ConfigError(f"{p}: line {line}: {len(row)} fields but the header has {len(header)}; "
                                  "fix: quote a field that holds a comma, or remove the extra fields")
            rec = {c: (v if v != "" else math.nan) for c, v in zip(header, row + [""] * (len(header) - len(row)))}
            for c in ("task", "method", "score"):
                if not isinstance(rec[c], str) or not rec[c].strip():
                    raise ConfigError(f"{p}: line {line}, column {c}: empty; fix: fill it in or remove the line")
            k = rec["k"] if isinstance(rec["k"], str) else None
            rec["k"] = math.nan if k is None else _reference_number(p, line, "k", k, integer=True)
            rec["score"] = _reference_number(p, line, "score", rec["score"])
            if isinstance(rec.get("std"), str):
                rec["std"] = _reference_number(p, line, "std", rec["std"])
            rec["k_label"] = k_label(None if k is None else rec["k"])
            records.append(rec)
    except csv.Error as e:
        if "end of data" in str(e):
            raise ConfigError(f"{p}: line {start}: a quoted field is never closed (the file ends inside it); "
                              "fix: close the quote, and write a quote inside a field as \"\"") from None
        raise ConfigError(f"{p}: line {reader.line_num}: malformed CSV ({e}); "
                          "fix: quote the whole field, and write a quote inside a field as \"\"") from None
    if header is None:
        raise ConfigError(f"{p}: the references file is empty; {header_fix}")
    return pd.DataFrame(records, columns=[*header, "k_label"])


def references_table(head_agg, refs, model_names: Sequence[str]):
    """Published numbers next to ours for the same task, method and K (ours by registered
    method name; the best label of that method when several). A published K = 0 number
    matches our rows of that method that train nothing, at any K."""
    pd = _pd()
    if refs is None or len(refs) == 0:
        return pd.DataFrame()
    have = head_agg is not None and len(head_agg)
    tasks = set(head_agg["task"]) if have else set()
    rows = []
    for _, r in refs.iterrows():
        if tasks and r["task"] not in tasks:
            continue
        ours = pd.DataFrame()
        if have:
            same = (head_agg["task"] == r["task"]) & (head_agg["method_name"] == r["method"])
            at_k = head_agg["k_label"] == r["k_label"]
            ours = head_agg[same & (at_k | ~head_agg["trains"])] if r["k_label"] == "0" else head_agg[same & at_k]
        best = ours.sort_values("mean", ascending=False).iloc[0] if len(ours) else None
        rows.append({
            "task": r["task"], "method": r["method"], "k": r["k_label"], "published": float(r["score"]),
            "published_std": float(r["std"]) if "std" in r and not pd.isna(r["std"]) else math.nan,
            "published_metric": r.get("metric", ""), "published_base_model": r["base_model"], "source": r["source"],
            "ours_method": best["method"] if best is not None else "",
            "ours_mean": 100 * best["mean"] if best is not None else math.nan,
            "ours_std": 100 * best["std"] if best is not None else math.nan,
            "ours_n": int(best["n"]) if best is not None else 0,
            "ours_base_model": ", ".join(model_names),
        })
    return pd.DataFrame(rows)
