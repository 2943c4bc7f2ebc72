"""Reports over a results folder: aggregation, Markdown + CSV tables, published references.

Scores are stored as fractions (0.843) and shown as percentages with one decimal (84.3), as
in the LM-BFF and PET papers; ``std`` is the population standard deviation over seeds
(``numpy.std``, ddof=0), the convention of LM-BFF's ``tools/gather_result.py``; the median is
shown in parentheses.

Sections: run metadata; test sets (full / subset / missing per task); headline results per
task x method x K (each method's headline stage: the stage the method marks final, the one
its saved classifier predicts with); every stage; single PVPs vs their ensemble; hard vs soft prompts; PET gain over cls-ft
(paired by seed); cost; published numbers side by side (clearly labelled as another base
model).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError
from ..utils.io import atomic_directory, check_output_not_input
from ..methods import available_methods, get_method
from ..utils.resources import shipped_dir
from .plots import write_plots
from .store import ResultsStore, headline

#: Methods whose gain over cls-ft the report computes (paired by task, K and seed).
PET_METHODS = ("pet", "ipet")
#: Methods that use no labelled examples: published K = 0 numbers match ours at any K.
NO_TRAINING_METHODS = frozenset({"zero-shot"})

KEY = ["task", "method", "k", "seed"]


def _pd():
    import pandas as pd

    return pd


# ----------------------------------------------------------------------------- loading


def load_rows(results_dir: str | Path, only_hashes: set[str] | None = None) -> tuple[Any, dict]:
    """(DataFrame of the current rows, info) from a results folder.

    Current rows: for every (task, method, K, seed) only the rows of the newest config hash
    (the one written last); older hashes (a changed config) are counted in ``info["superseded_rows"]``.
    """
    pd = _pd()
    root = Path(results_dir)
    store = ResultsStore(root)
    if not store.path.is_file():
        raise ConfigError(f"{store.path}: no results store here; fix: pass the folder `pet bench` wrote (its --results)")
    scan = store.scan()
    info = {
        "results": str(root),
        "incomplete_rows": scan.incomplete_writes,
        "corrupt_lines": scan.corrupt_lines,
        "partial_tail": scan.partial_tail,
        "duplicate_cells": scan.duplicate_cells,
        "superseded_rows": 0,
    }
    if not scan.rows:
        return pd.DataFrame(), info
    rows = scan.rows
    if only_hashes is not None:
        info["other_experiment_rows"] = sum(1 for r in rows if r.get("config_hash") not in only_hashes)
        rows = [r for r in rows if r.get("config_hash") in only_hashes]
        if not rows:
            return pd.DataFrame(), info
    df = pd.DataFrame(rows)
    df["_order"] = range(len(df))
    df["k"] = df["k"].astype(object).where(df["k"].notna(), None)
    # grid points of a model selection: only for the selection table and the dev-vs-test plot;
    # every other table uses the selected rows (rows stored before selection existed count as selected)
    if "selected" in df:
        grid = df["selected"].eq(False)
        info["grid_rows"] = df[grid].copy()
        df = df[~grid].copy()
    newest = (  # the store is append-only: the config written last is the newest
        df.groupby(KEY + ["config_hash"], dropna=False)["_order"].max().reset_index()
        .sort_values("_order")
        .groupby(KEY, dropna=False)
        .tail(1)
    )
    keep = set(newest["config_hash"])
    info["superseded_rows"] = int((~df["config_hash"].isin(keep)).sum())
    df = df[df["config_hash"].isin(keep)].copy()
    df["pvp"] = df["pvp"].fillna("")
    if "method_name" not in df:
        df["method_name"] = df["method"]
    df["accuracy"] = [m.get("accuracy") if isinstance(m, dict) else None for m in df.get("metrics", [None] * len(df))]
    df["k_label"] = [_k_label(k) for k in df["k"]]
    return df.sort_values("_order").reset_index(drop=True), info


def _k_label(k: Any) -> str:
    if k is None or (isinstance(k, float) and math.isnan(k)):
        return "fixed"
    return str(int(k))


def _k_sort(label: str) -> tuple:
    return (1, 0) if label == "fixed" else (0, int(label))


# ----------------------------------------------------------------------------- aggregation


def _stats(values: Sequence[float]) -> dict:
    import numpy as np

    a = np.asarray([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))], dtype=float)
    if a.size == 0:
        return {"n": 0, "mean": float("nan"), "std": float("nan"), "median": float("nan"), "min": float("nan"), "max": float("nan")}
    return {
        "n": int(a.size),
        "mean": float(a.mean()),
        "std": float(a.std()),  # ddof=0, as LM-BFF's gather_result.py
        "median": float(np.median(a)),
        "min": float(a.min()),
        "max": float(a.max()),
    }


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
        rec.update(_stats(list(g[value])))
        rec["seeds"] = " ".join(str(s) for s in sorted(g["seed"].unique()))
        if value == "score" and "accuracy" in g:
            acc = _stats(list(g["accuracy"]))
            rec["accuracy_mean"] = acc["mean"]
            rec["accuracy_std"] = acc["std"]
        out.append(rec)
    res = pd.DataFrame(out)
    return res


def headline_rows(df):
    """One row per (task, method, K, seed): the row that stands for the method in that cell
    (:func:`pet.bench.store.headline`: the stage the method marked final)."""
    if df is None or len(df) == 0:
        return df
    picks = [headline(g.to_dict("records")) for _, g in df.groupby(KEY, sort=False, dropna=False)]
    pd = _pd()
    return pd.DataFrame(picks).reset_index(drop=True)


def pvp_table(df):
    """Per (task, method, K): best and worst single PVP (by mean over seeds), the mean over
    PVPs, and the PVP ensemble."""
    pd = _pd()
    rows = []
    if df is None or len(df) == 0:
        return pd.DataFrame()
    single = df[(df["stage"] == "pvp") & (df["pvp"] != "")]
    for (task, method, kl), g in single.groupby(["task", "method", "k_label"], sort=False):
        per = aggregate(g, by=("pvp",))
        per = per.sort_values("mean", ascending=False)
        best, worst = per.iloc[0], per.iloc[-1]
        ens = df[(df["task"] == task) & (df["method"] == method) & (df["k_label"] == kl) & (df["stage"] == "ensemble")]
        e = _stats(list(ens["score"])) if len(ens) else None
        rows.append(
            {
                "task": task,
                "method": method,
                "k_label": kl,
                "metric": g["metric"].iloc[0],
                "n_pvps": len(per),
                "best_pvp": best["pvp"],
                "best_mean": best["mean"],
                "best_std": best["std"],
                "worst_pvp": worst["pvp"],
                "worst_mean": worst["mean"],
                "worst_std": worst["std"],
                "pvp_mean": float(per["mean"].mean()),
                "ensemble_mean": e["mean"] if e else float("nan"),
                "ensemble_std": e["std"] if e else float("nan"),
                "ensemble_minus_best": (e["mean"] - best["mean"]) if e else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def _family(method_name: str) -> str:
    """A method's registered family (hard, soft, baseline); "other" for a name not registered
    in this process (e.g. a plugin's, in a report of someone else's results)."""
    return get_method(method_name).family if method_name in available_methods() else "other"


def hard_soft_table(head_agg):
    """Per (task, K): the best hard-prompt method vs the best soft-prompt method (and cls-ft)."""
    pd = _pd()
    if head_agg is None or len(head_agg) == 0:
        return pd.DataFrame()
    rows = []
    for (task, kl), g in head_agg.groupby(["task", "k_label"], sort=False):
        rec: dict[str, Any] = {"task": task, "k_label": kl, "metric": g["metric"].iloc[0]}
        for fam in ("hard", "soft", "baseline"):
            sub = g[g["family"] == fam].sort_values("mean", ascending=False)
            if len(sub):
                rec[f"{fam}_method"] = sub.iloc[0]["method"]
                rec[f"{fam}_mean"] = sub.iloc[0]["mean"]
                rec[f"{fam}_std"] = sub.iloc[0]["std"]
            else:
                rec[f"{fam}_method"] = ""
                rec[f"{fam}_mean"] = float("nan")
                rec[f"{fam}_std"] = float("nan")
        rec["hard_minus_soft"] = rec["hard_mean"] - rec["soft_mean"]
        rows.append(rec)
    return pd.DataFrame(rows)


def gain_table(head, baseline: str = "cls-ft", methods: Sequence[str] = PET_METHODS):
    """PET (and iPET) gain over ``baseline``, paired by (task, K, seed): mean ± std of the
    per-seed differences, and how many seeds PET wins."""
    pd = _pd()
    if head is None or len(head) == 0:
        return pd.DataFrame()
    base = head[head["method_name"] == baseline]
    rows = []
    for m in sorted(set(head["method"])):
        sub = head[head["method"] == m]
        if not len(sub) or sub["method_name"].iloc[0] not in methods:
            continue
        for (task, kl), g in sub.groupby(["task", "k_label"], sort=False):
            b = base[(base["task"] == task) & (base["k_label"] == kl)]
            if not len(b):
                continue
            for bm in sorted(set(b["method"])):
                bb = b[b["method"] == bm].set_index("seed")["score"]
                gg = g.set_index("seed")["score"]
                seeds = sorted(set(bb.index) & set(gg.index))
                if not seeds:
                    continue
                diffs = [float(gg[s] - bb[s]) for s in seeds]
                st = _stats(diffs)
                rows.append(
                    {
                        "task": task,
                        "k_label": kl,
                        "method": m,
                        "baseline": bm,
                        "metric": g["metric"].iloc[0],
                        "n_pairs": len(seeds),
                        "method_mean": float(gg[seeds].mean()),
                        "baseline_mean": float(bb[seeds].mean()),
                        "gain_mean": st["mean"],
                        "gain_std": st["std"],
                        "wins": sum(d > 0 for d in diffs),
                    }
                )
    return pd.DataFrame(rows)


def cost_table(df):
    """Per (task, method, K): mean cell wall time, headline train time, eval throughput,
    peak memory and trained parameters."""
    pd = _pd()
    if df is None or len(df) == 0:
        return pd.DataFrame()
    rows = []
    head = headline_rows(df)
    for (task, method, kl), g in df.groupby(["task", "method", "k_label"], sort=False):
        cells = g.drop_duplicates(subset=["seed"])
        h = head[(head["task"] == task) & (head["method"] == method) & (head["k_label"] == kl)]
        eps = [v for v in g["eval_examples_per_second"] if v]
        rows.append(
            {
                "task": task,
                "method": method,
                "k_label": kl,
                "cells": len(cells),
                "cell_seconds_mean": float(cells["cell_seconds"].mean()),
                "train_seconds_mean": float(h["train_seconds"].mean()) if len(h) else float("nan"),
                "eval_examples_per_second": float(sum(eps) / len(eps)) if eps else float("nan"),
                "peak_memory_mb": float(g["peak_memory_mb"].max()),
                "cell_peak_rss_mb": float(g["cell_peak_rss_mb"].max()) if "cell_peak_rss_mb" in g else float("nan"),
                "trained_parameters": int(g["trained_parameters"].max()),
            }
        )
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
                rec["points_dev_test_pearson"] = float(pts["dev_score"].corr(pts["score"])) if len(tested) > 2 else float("nan")
        out.append(rec)
    return pd.DataFrame(out) if out else None


def selection_summary(sel):
    """Per (task, method, K): FewNLU's criteria — mean ± std test score of the chosen points
    (stability), mean dev score, and the dev-test correlation over the splits."""
    pd = _pd()
    rows = []
    for (task, method, k), g in sel.groupby(["task", "method", "k"], sort=False, dropna=False):
        st = _stats(list(g["test_score"].astype(float)))
        corr = g["dev_score"].astype(float).corr(g["test_score"].astype(float), method="spearman") if len(g) > 2 else float("nan")
        rows.append({"task": task, "method": method, "k": k, "selection": g["selection"].iloc[0], "splits": len(g),
                     "test_mean": st["mean"], "test_std": st["std"], "dev_mean": float(g["dev_score"].astype(float).mean()),
                     "dev_test_spearman": corr})
    return pd.DataFrame(rows)


def dev_test_scatter(sel, path: Path) -> Path:
    """Dev score vs test score of the chosen points, one colour per method, with Pearson's r."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for method, g in sel.groupby("method", sort=False):
        x, y = 100 * g["dev_score"].astype(float), 100 * g["test_score"].astype(float)
        r = x.corr(y) if len(g) > 2 else float("nan")
        ax.scatter(x, y, label=f"{method} (r={r:.2f})" if r == r else method, s=22)
    lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
    hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("dev score of the chosen point (%)")
    ax.set_ylabel("test score (%)")
    ax.set_title("model selection: dev vs test per split")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def shipped_references() -> Path:
    """The published numbers shipped with pet (``data/references.csv``)."""
    return shipped_dir("references") / "references.csv"


def load_references(path: str | Path):
    """Published numbers: CSV with task, method, k, score, std, source, base_model (and
    optional metric, note). Scores are percentages as printed in the papers."""
    pd = _pd()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: references file not found; fix: pass --references data/references.csv or omit it")
    refs = pd.read_csv(p, dtype={"task": str, "method": str})
    missing = {"task", "method", "k", "score", "source", "base_model"} - set(refs.columns)
    if missing:
        raise ConfigError(f"{p}: missing column(s) {', '.join(sorted(missing))}; fix: use the header task,method,k,score,std,metric,source,base_model,note")
    refs["k_label"] = [_k_label(int(k)) if not (isinstance(k, float) and math.isnan(k)) else "fixed" for k in refs["k"]]
    return refs


def references_table(head_agg, refs, model_names: Sequence[str]):
    """Published numbers next to ours for the same task, method and K (ours by registered
    method name; the best label of that method when several)."""
    pd = _pd()
    if refs is None or len(refs) == 0:
        return pd.DataFrame()
    tasks = set(head_agg["task"]) if head_agg is not None and len(head_agg) else set()
    rows = []
    for _, r in refs.iterrows():
        if tasks and r["task"] not in tasks:
            continue
        if head_agg is not None and len(head_agg):
            same = (head_agg["task"] == r["task"]) & (head_agg["method_name"] == r["method"])
            if not (r["method"] in NO_TRAINING_METHODS and r["k_label"] == "0"):
                same &= head_agg["k_label"] == r["k_label"]  # a training-free method matches |T| = 0 at any K
            ours = head_agg[same]
        else:
            ours = pd.DataFrame()
        if len(ours):
            best = ours.sort_values("mean", ascending=False).iloc[0]
            our_mean, our_std, our_n, our_method = best["mean"], best["std"], best["n"], best["method"]
        else:
            our_mean = our_std = float("nan")
            our_n, our_method = 0, ""
        rows.append(
            {
                "task": r["task"],
                "method": r["method"],
                "k": r["k_label"],
                "published": float(r["score"]),
                "published_std": float(r["std"]) if "std" in r and not pd.isna(r["std"]) else float("nan"),
                "published_metric": r.get("metric", ""),
                "published_base_model": r["base_model"],
                "source": r["source"],
                "ours_method": our_method,
                "ours_mean": 100 * our_mean if not math.isnan(our_mean) else float("nan"),
                "ours_std": 100 * our_std if not math.isnan(our_std) else float("nan"),
                "ours_n": our_n,
                "ours_base_model": ", ".join(model_names),
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- formatting


def fmt_pct(mean: float, std: float | None = None, median: float | None = None) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    s = f"{100 * mean:.1f}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        s += f" ± {100 * std:.1f}"
    if median is not None and not (isinstance(median, float) and math.isnan(median)):
        s += f" ({100 * median:.1f})"
    return s


def _fmt_params(n: int) -> str:
    n = int(n)
    return f"{n / 1e6:.2f}M" if n >= 100_000 else f"{n:,}"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def esc(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(esc(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


@dataclass
class Report:
    markdown: str
    output: Path | None = None
    files: list[Path] = field(default_factory=list)
    tables: dict = field(default_factory=dict)

    def section(self, title: str) -> str:
        """The Markdown section whose heading starts with ``## title`` (empty if absent)."""
        start = self.markdown.find(f"## {title}")
        if start < 0:
            return ""
        end = self.markdown.find("\n## ", start + 3)
        return self.markdown[start:] if end < 0 else self.markdown[start : end + 1]


def _task_notes(root: Path, df) -> dict:
    notes: dict[str, dict] = {}
    p = root / "tasks.json"
    if p.is_file():
        try:
            notes = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            notes = {}
    if df is not None and len(df):
        for task, g in df.groupby("task", sort=False):
            t = g["test"].iloc[0] if "test" in g else {}
            if isinstance(t, dict):
                n = notes.setdefault(task, {})
                n.update(
                    {
                        "test_split": t.get("split"),
                        "has_test": True,
                        "n_test": t.get("n"),
                        "n_full": t.get("n_full"),
                        "test_subset": bool(t.get("subset")),
                        "test_note": t.get("note") or n.get("test_note", ""),
                    }
                )
    return notes


def build_report(
    results_dir: str | Path,
    references: str | Path | None = None,
    output: str | Path | None = None,
    plots: bool = True,
    write: bool = True,
    only_hashes: set[str] | None = None,
) -> Report:
    """Aggregate a results folder; with ``write`` put report.md, CSVs and PNG plots in
    ``output`` (default ``<results>/report``), replacing that folder atomically.
    ``only_hashes`` restricts the report to those config hashes (``pet report --experiment``)."""
    root = Path(results_dir)
    df, info = load_rows(root, only_hashes)
    notes = _task_notes(root, df)
    refs = load_references(references) if references else None
    tables: dict[str, Any] = {}

    if len(df):
        head = headline_rows(df)
        head_agg = aggregate(head, by=("task", "method", "k_label"))
        head_agg["method_name"] = [head[head["method"] == m]["method_name"].iloc[0] for m in head_agg["method"]]
        head_agg["family"] = [_family(m) for m in head_agg["method_name"]]
        head_agg["stage"] = [
            ",".join(sorted(set(head[(head["task"] == t) & (head["method"] == m) & (head["k_label"] == kl)]["stage"])))
            for t, m, kl in zip(head_agg["task"], head_agg["method"], head_agg["k_label"])
        ]
        stages = aggregate(df)
        selection = selection_table(df, info.get("grid_rows"))
        tables = {
            "headline": head_agg,
            "stages": stages,
            "pvps": pvp_table(df),
            "hard_soft": hard_soft_table(head_agg),
            "gains": gain_table(head),
            "cost": cost_table(df),
            "selection": selection,
        }
        models = sorted(set(df["model"]))
    else:
        head = head_agg = None
        models = []
    if refs is not None:
        tables["references"] = references_table(head_agg, refs, models)

    md = _markdown(root, df, info, notes, tables, models)
    rep = Report(markdown=md, tables=tables)
    if not write:
        return rep

    out = Path(output) if output else root / "report"
    check_output_not_input(out, [root / "results.jsonl", root / "errors.jsonl"])  # never replace the store itself
    with atomic_directory(out, overwrite=True, marker="report.md", what="report folder") as tmp:
        (tmp / "report.md").write_text(md, encoding="utf-8")
        for name, t in tables.items():
            if t is not None and len(t):
                t.to_csv(tmp / f"{name}.csv", index=False)
        if len(df):
            flat = df.drop(columns=[c for c in ("_order",) if c in df]).copy()
            for c in ("metrics", "options", "split", "test", "unlabelled", "versions", "machine", "extra", "model_id", "pvps"):
                if c in flat:
                    flat[c] = [json.dumps(v, sort_keys=True, default=str) for v in flat[c]]
            flat.to_csv(tmp / "rows.csv", index=False)
        if plots and len(df):
            write_plots(df, aggregate(head, by=("task", "method", "k_label")), tmp / "plots")
            if selection is not None and len(selection):
                dev_test_scatter(selection, tmp / "plots" / "dev_vs_test.png")
    rep.output = out
    rep.files = sorted(p for p in out.rglob("*") if p.is_file())
    return rep


def _markdown(root: Path, df, info: dict, notes: dict, tables: dict, models: list[str]) -> str:
    lines: list[str] = [f"# Benchmark report: `{root.name}`", ""]
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if not len(df):
        lines += ["No complete rows in the results store yet.", ""]
        return "\n".join(lines)
    n_cells = df.drop_duplicates(subset=["config_hash"]).shape[0]
    versions = df["versions"].iloc[-1] if "versions" in df else {}
    commits = sorted({str(c) for c in df.get("git_commit", []) if c})
    machine = df["machine"].iloc[-1] if "machine" in df else {}
    total_secs = df.drop_duplicates(subset=["config_hash"])["cell_seconds"].sum()
    lines += [
        f"Generated {now} from `{root}`: {len(df)} rows in {n_cells} cells "
        f"({df['timestamp'].min()} … {df['timestamp'].max()}).",
        "",
        f"- Model(s): {', '.join(f'`{m}`' for m in models)}",
        f"- Package versions: {', '.join(f'{k} {v}' for k, v in (versions or {}).items())}",
        f"- Git commit(s): {', '.join(c[:12] for c in commits) or 'not recorded'}"
        + (" (working tree had uncommitted changes)" if any(bool(x) for x in df.get("git_dirty", [])) else ""),
        f"- Machine: {machine.get('processor', '?')}, {machine.get('sched_cpus', machine.get('cpu_count', '?'))} CPU cores available"
        + (f", GPU {machine['gpu']}" if machine.get("gpu") else ", no GPU")
        + f"; total compute in cells: {total_secs / 60:.1f} min",
        "- Scores: percent; `mean ± std (median)` over seeds; std is the population std (ddof=0, as LM-BFF's gather_result.py).",
    ]
    if info.get("superseded_rows"):
        lines.append(f"- {info['superseded_rows']} older rows (cells re-run after a config change) are ignored; the newest config of each cell is shown.")
    if info.get("other_experiment_rows"):
        lines.append(f"- {info['other_experiment_rows']} rows of other configurations (not in the experiment file's current grid) are left out.")
    if info.get("incomplete_rows") or info.get("partial_tail") or info.get("corrupt_lines"):
        lines.append(f"- The store holds an interrupted write ({info['incomplete_rows']} rows without their cell marker); ignored.")
    lines.append("")

    # test sets
    lines += ["## Test sets", ""]
    trow = []
    for task in sorted(notes):
        n = notes[task]
        if not n.get("has_test", True):
            status = "**missing here** (no results)"
        elif task not in set(df["task"]):
            status = "no results yet" + (" (subset)" if n.get("test_subset") else "")
        elif n.get("test_subset"):
            status = "**subset**"
        else:
            status = "full"
        size = f"{n.get('n_test')}" + (f" of {n.get('n_full')}" if n.get("n_full") and n.get("n_test") != n.get("n_full") else "") if n.get("n_test") else "–"
        trow.append([task, n.get("test_split", "test"), size, status, n.get("test_note", "")])
    lines += [md_table(["task", "split", "examples", "status", "note"], trow), ""]
    subset_tasks = {t for t, n in notes.items() if n.get("test_subset")}

    def tname(t: str) -> str:
        return f"{t}*" if t in subset_tasks else t

    # headline
    head = tables["headline"]
    lines += ["## Results (headline stage per method)", ""]
    lines.append("Each method's headline stage is the one the method marks final (what its saved classifier predicts with: "
                 "`distilled` for PET, the PVP `ensemble` for zero-shot and prompt-ft with several PVPs; rows recorded before "
                 "that mark: `final` > `distilled` > `ensemble` > `mean-of-pvps`). "
                 "`*` = evaluated on a subset of the official test set (see above).")
    lines.append("")
    methods = list(dict.fromkeys(head["method"]))
    for kl in sorted(set(head["k_label"]), key=_k_sort):
        sub = head[head["k_label"] == kl]
        rows = []
        for task in dict.fromkeys(sub["task"]):
            t = sub[sub["task"] == task]
            r = [tname(task), t["metric"].iloc[0]]
            for m in methods:
                x = t[t["method"] == m]
                r.append(fmt_pct(x["mean"].iloc[0], x["std"].iloc[0], x["median"].iloc[0]) + (f" [n={x['n'].iloc[0]}]" if len(x) and x["n"].iloc[0] < sub["n"].max() else "") if len(x) else "–")
            rows.append(r)
        lines += [f"### K = {kl}", "", md_table(["task", "metric", *methods], rows), ""]
    if "accuracy_mean" in head:
        acc_rows = []
        for _, r in head.iterrows():
            if r["metric"] != "accuracy" and not (isinstance(r.get("accuracy_mean"), float) and math.isnan(r["accuracy_mean"])):
                acc_rows.append([tname(r["task"]), r["method"], r["k_label"], r["metric"], fmt_pct(r["mean"], r["std"]), fmt_pct(r["accuracy_mean"], r["accuracy_std"])])
        if acc_rows:
            lines += ["Secondary metric (accuracy) where the main metric is not accuracy:", "",
                      md_table(["task", "method", "K", "metric", "score", "accuracy"], acc_rows), ""]

    # all stages
    st = tables["stages"]
    sel = tables.get("selection")
    if sel is not None and len(sel):
        summ = selection_summary(sel)
        lines += ["## Model selection", "",
                  "Rows above are the chosen grid points only. Per task × method × K: the test score of the point chosen on "
                  "dev (or by cross-validation) per split, its stability over splits, and how well dev predicts test "
                  "(Spearman over splits; FewNLU's criteria). Per split: `selection.csv`; plot: `plots/dev_vs_test.png`.", "",
                  md_table(["task", "method", "K", "selection", "splits", "test", "dev", "dev-test ρ"],
                           [[r["task"], r["method"], _k_label(r["k"]), r["selection"], r["splits"], fmt_pct(r["test_mean"], r["test_std"]),
                             fmt_pct(r["dev_mean"]), "–" if r["dev_test_spearman"] != r["dev_test_spearman"] else f"{r['dev_test_spearman']:.2f}"]
                            for _, r in summ.iterrows()]), ""]
    lines += ["## All stages", ""]
    rows = [
        [tname(r["task"]), r["method"], r["k_label"], r["stage"], r["pvp"] or "", fmt_pct(r["mean"], r["std"], r["median"]), r["n"]]
        for _, r in st.iterrows()
    ]
    lines += [md_table(["task", "method", "K", "stage", "PVP", "score", "seeds"], rows), ""]

    # PVPs
    pv = tables["pvps"]
    lines += ["## Single PVPs vs the PVP ensemble", ""]
    if len(pv):
        rows = [
            [
                tname(r["task"]), r["method"], r["k_label"], r["n_pvps"],
                f"{r['best_pvp']}: {fmt_pct(r['best_mean'], r['best_std'])}",
                f"{r['worst_pvp']}: {fmt_pct(r['worst_mean'], r['worst_std'])}",
                fmt_pct(r["pvp_mean"]), fmt_pct(r["ensemble_mean"], r["ensemble_std"]),
                f"{100 * r['ensemble_minus_best']:+.1f}" if not math.isnan(r["ensemble_minus_best"]) else "–",
            ]
            for _, r in pv.iterrows()
        ]
        lines += [md_table(["task", "method", "K", "PVPs", "best PVP", "worst PVP", "mean of PVPs", "ensemble", "ensemble − best"], rows), ""]
    else:
        lines += ["No per-PVP rows.", ""]

    # hard vs soft
    hs = tables["hard_soft"]
    lines += ["## Hard vs soft prompts", ""]
    if len(hs) and (hs["soft_method"] != "").any():
        rows = [
            [tname(r["task"]), r["k_label"], f"{r['hard_method']} {fmt_pct(r['hard_mean'], r['hard_std'])}" if r["hard_method"] else "–",
             f"{r['soft_method']} {fmt_pct(r['soft_mean'], r['soft_std'])}" if r["soft_method"] else "–",
             f"{r['baseline_method']} {fmt_pct(r['baseline_mean'], r['baseline_std'])}" if r["baseline_method"] else "–",
             f"{100 * r['hard_minus_soft']:+.1f}" if not math.isnan(r["hard_minus_soft"]) else "–"]
            for _, r in hs.iterrows()
        ]
        lines += [md_table(["task", "K", "best hard prompt", "best soft prompt", "cls-ft", "hard − soft"], rows), ""]
    else:
        soft = sorted(m for m in available_methods() if get_method(m).family == "soft")
        lines += [f"No soft-prompt methods ({', '.join(soft)}) in these results.", ""]

    # gains
    gn = tables["gains"]
    lines += ["## PET gain over cls-ft (paired by seed)", ""]
    if len(gn):
        rows = [
            [tname(r["task"]), r["k_label"], r["method"], r["baseline"], fmt_pct(r["method_mean"]), fmt_pct(r["baseline_mean"]),
             f"{100 * r['gain_mean']:+.1f} ± {100 * r['gain_std']:.1f}", f"{r['wins']}/{r['n_pairs']}"]
            for _, r in gn.iterrows()
        ]
        lines += [md_table(["task", "K", "method", "baseline", "method", "baseline", "gain", "wins"], rows), ""]
    else:
        lines += ["Needs both `pet`/`ipet` and `cls-ft` rows for the same task, K and seeds.", ""]

    # cost
    co = tables["cost"]
    lines += ["## Cost", ""]
    rows = [
        [r["task"], r["method"], r["k_label"], r["cells"], f"{r['cell_seconds_mean']:.1f}", f"{r['train_seconds_mean']:.1f}",
         f"{r['eval_examples_per_second']:.0f}" if not math.isnan(r["eval_examples_per_second"]) else "–",
         f"{r['peak_memory_mb']:.0f}", f"{r['cell_peak_rss_mb']:.0f}" if not math.isnan(r["cell_peak_rss_mb"]) else "–",
         _fmt_params(r["trained_parameters"])]
        for _, r in co.iterrows()
    ]
    lines += [md_table(["task", "method", "K", "cells", "cell s (mean)", "train s (headline)", "eval ex/s", "peak MB (method)", "cell RSS MB", "trained params"], rows), ""]

    # references
    if "references" in tables:
        rf = tables["references"]
        lines += ["## Published numbers (different base model)", ""]
        lines.append("**Not comparable one-to-one**: the published numbers come from a different (larger) base model "
                     f"(see `base model`), other hyper-parameter searches and, for PET, |T| = total labelled examples rather than K per class. "
                     f"Ours: {', '.join(models)}.")
        lines.append("")
        if len(rf):
            rows = [
                [r["task"], r["method"], r["k"], f"{r['published']:.1f}" + (f" ± {r['published_std']:.1f}" if not math.isnan(r["published_std"]) else ""),
                 r["published_metric"], r["published_base_model"],
                 (f"{r['ours_mean']:.1f} ± {r['ours_std']:.1f} ({r['ours_method']}, n={r['ours_n']})" if r["ours_n"] else "–"), r["source"]]
                for _, r in rf.iterrows()
            ]
            lines += [md_table(["task", "method", "K / |T|", "published", "metric", "base model", "ours", "source"], rows), ""]
        else:
            lines += ["No published numbers for these tasks in the references file.", ""]
    lines += ["## Files", "", "`headline.csv`, `stages.csv`, `pvps.csv`, `hard_soft.csv`, `gains.csv`, `cost.csv`, `rows.csv`"
              + (", `references.csv`" if "references" in tables else "") + "; plots in `plots/`.", ""]
    return "\n".join(lines)
