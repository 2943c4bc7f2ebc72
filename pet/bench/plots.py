"""PNG plots of a report (matplotlib, Agg backend: no display needed).

- ``score_vs_k.png`` (only when the results have two or more K): one panel per task, the
  headline score of every method against K;
- ``bars_k<K>.png``: per K, grouped bars (task x method);
- ``pvps_k<K>.png``: per K, every single PVP's mean score next to the ensemble, per task;
- ``dev_vs_test.png``: with model selection, dev vs test score of the chosen points.

The y axis names the metric (per panel, or per task on the x axis when tasks differ); error
bars are the 95% bootstrap intervals of the headline table (:mod:`pet.bench.stats`), and every
figure's caption says so.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .stats import OVER_EXAMPLES, OVER_SEEDS
from .tables import k_sort


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def write_plots(df, agg, out_dir: str | Path, selection=None) -> list[Path]:
    """Write every plot for the rows ``df`` and ``agg``, the headline table
    (:func:`pet.bench.tables.headline_table`); returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ks = sorted(set(agg["k_label"]), key=k_sort)
    paths = [score_vs_k(agg, out / "score_vs_k.png")] if len(ks) > 1 else []
    for kl in ks:
        paths.append(task_bars(agg[agg["k_label"] == kl], out / f"bars_k{kl}.png", title=f"K = {kl}"))
    pv = df[df["stage"].isin(["pvp", "ensemble"])]
    for kl in sorted(set(pv["k_label"]), key=k_sort) if len(pv) else []:
        p = pvp_spread(pv[pv["k_label"] == kl], out / f"pvps_k{kl}.png", title=f"single PVPs vs ensemble, K = {kl}")
        if p:
            paths.append(p)
    if selection is not None and len(selection):
        paths.append(dev_test_scatter(selection, out / "dev_vs_test.png"))
    return paths


def error_caption(agg) -> str:
    """What the error bars are, from the intervals' ``ci_over`` and ``resamples``."""
    over = set(agg["ci_over"].dropna()) - {""} if "ci_over" in agg else set()
    if not over:
        return "no error bars: one seed and no stored per-example predictions"
    res = int(agg["resamples"].max())
    if over == {OVER_EXAMPLES}:
        what = "over seeds × test examples"
    elif over == {OVER_SEEDS}:
        what = "over seeds only (no per-example predictions stored)"
    else:
        what = "over seeds × test examples (seeds only where no per-example predictions were stored, see report.md)"
    return f"error bars: 95% bootstrap interval of the mean {what}, {res:,} resamples"


def _yerr(x) -> tuple[list[float], list[float]]:
    """Asymmetric error bars (percent) from ``ci95_low`` / ``ci95_high``; 0 where there is none."""
    lo, hi = [], []
    for _, r in x.iterrows():
        ok = "ci95_low" in r and not (math.isnan(r["ci95_low"]) or math.isnan(r["ci95_high"]))
        lo.append(100 * (r["mean"] - r["ci95_low"]) if ok else 0.0)
        hi.append(100 * (r["ci95_high"] - r["mean"]) if ok else 0.0)
    return lo, hi


def _metric_axis(ax, agg, tasks: list[str]) -> None:
    """The y label names the metric; when tasks differ in metric, each task's tick names its own."""
    metric = {t: agg[agg["task"] == t]["metric"].iloc[0] for t in tasks}
    if len(set(metric.values())) == 1:
        ax.set_ylabel(f"{next(iter(metric.values()))} (%)")
        ax.set_xticklabels(tasks)
    else:
        ax.set_ylabel("task metric (%), see tick labels")
        ax.set_xticklabels([f"{t}\n({metric[t]})" for t in tasks], fontsize=8)


def _save(fig, path: Path, caption: str, bottom: float = 0.0) -> Path:
    fig.text(0.5, 0.005, caption, ha="center", va="bottom", fontsize=7, color="dimgray", wrap=True)
    fig.tight_layout(rect=(0, max(0.05, bottom), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def score_vs_k(agg, path: Path) -> Path:
    plt = _plt()
    tasks = list(dict.fromkeys(agg["task"]))
    ks = sorted(set(agg["k_label"]), key=k_sort)
    cols = min(3, len(tasks))
    rows = math.ceil(len(tasks) / cols)
    methods = list(dict.fromkeys(agg["method"]))
    fig, axes = plt.subplots(rows, cols, figsize=(max(6.0, 4.2 * cols), 3.2 * rows + 0.8 + 0.3 * math.ceil(len(methods) / 3)), squeeze=False)
    offsets = {m: (j - (len(methods) - 1) / 2) * 0.06 for j, m in enumerate(methods)}  # keep error bars apart
    for i, task in enumerate(tasks):
        ax = axes[i // cols][i % cols]
        t = agg[agg["task"] == task]
        for m in methods:
            x = t[t["method"] == m]
            if len(x):
                x = x.assign(_o=[ks.index(k) for k in x["k_label"]]).sort_values("_o")
                ax.errorbar(x["_o"] + offsets[m], 100 * x["mean"], yerr=_yerr(x), marker="o", capsize=3, label=m)
        ax.set_xticks(range(len(ks)))
        ax.set_xticklabels(ks)
        ax.set_xlabel("K (examples per class)")
        ax.set_ylabel(f"{t['metric'].iloc[0]} (%)")
        ax.set_title(task)
        ax.grid(alpha=0.3)
    for j in range(len(tasks), rows * cols):
        axes[j // cols][j % cols].axis("off")
    handles, labels = [], []
    for a in axes.flat:
        for h, lab in zip(*a.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    ncol = min(3 if cols == 1 else 6, max(1, len(labels)))
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.03), ncol=ncol, frameon=False, fontsize=8)
    return _save(fig, path, error_caption(agg), bottom=(0.04 + 0.06 * math.ceil(len(labels) / ncol)) / rows)


def task_bars(agg, path: Path, title: str = "") -> Path:
    """Grouped bars: one group per task, one bar per method, with the interval as error bar."""
    plt = _plt()
    import numpy as np

    tasks = list(dict.fromkeys(agg["task"]))
    methods = list(dict.fromkeys(agg["method"]))
    width = 0.8 / max(1, len(methods))
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(tasks) * max(1, len(methods)) + 2), 4.2))
    xs = np.arange(len(tasks))
    for j, m in enumerate(methods):
        x = agg[agg["method"] == m].set_index("task").reindex(tasks)
        lo, hi = _yerr(x)
        ax.bar(xs + (j - (len(methods) - 1) / 2) * width, 100 * x["mean"], width, yerr=[lo, hi], capsize=2, label=m)
    ax.set_xticks(xs)
    _metric_axis(ax, agg, tasks)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(4, len(methods)), loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    return _save(fig, path, error_caption(agg), bottom=0.06)


def pvp_spread(df: Any, path: Path, title: str = "") -> Path | None:
    """Per task and method: each single PVP's mean over seeds (dots) and the ensemble's (cross)."""
    plt = _plt()
    groups = list(dict.fromkeys(zip(df["task"], df["method"])))
    groups = [g for g in groups if ((df["task"] == g[0]) & (df["method"] == g[1]) & (df["stage"] == "pvp")).any()]
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(groups) + 2), 3.8))
    metrics = {}
    for i, (task, method) in enumerate(groups):
        g = df[(df["task"] == task) & (df["method"] == method)]
        metrics[task] = g["metric"].iloc[0]
        singles = g[g["stage"] == "pvp"].groupby("pvp")["score"].mean()
        ax.scatter([i] * len(singles), 100 * singles.values, color="tab:blue", alpha=0.7, label="single PVP" if i == 0 else None)
        ens = g[g["stage"] == "ensemble"]["score"]
        if len(ens):
            ax.scatter([i], [100 * ens.mean()], color="tab:red", marker="x", s=60, label="ensemble" if i == 0 else None)
    ax.set_xticks(range(len(groups)))
    one = len(set(metrics.values())) == 1
    ax.set_xticklabels([f"{t}\n{m}" + ("" if one else f"\n({metrics[t]})") for t, m in groups], fontsize=8)
    ax.set_ylabel(f"{next(iter(metrics.values()))} (%)" if one else "task metric (%), see tick labels")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path, "points: mean over seeds of each single PVP (blue) and of the PVP ensemble (red); no error bars")


def dev_test_scatter(sel, path: Path) -> Path:
    """Dev score vs test score of the chosen points, one colour per method, with Pearson's r."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.7))
    for method, g in sel.groupby("method", sort=False):
        x, y = 100 * g["dev_score"].astype(float), 100 * g["test_score"].astype(float)
        r = x.corr(y) if len(g) > 2 else float("nan")
        ax.scatter(x, y, label=method if math.isnan(r) else f"{method} (r={r:.2f})", s=22)
    lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
    hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("dev score of the chosen point (%)")
    ax.set_ylabel("test score (%)")
    ax.set_title("model selection: dev vs test per split")
    ax.legend(fontsize=7)
    return _save(fig, path, "one point per split (task x method x K x seed); dashed: dev = test")
