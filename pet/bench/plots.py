"""PNG plots of a results folder (matplotlib, Agg backend: no display needed).

- ``score_vs_k.png``: one panel per task, the headline score of every method against K,
  mean with std error bars over seeds;
- ``bars_k<K>.png``: per K, grouped bars (task x method) with std error bars;
- ``pvps_k<K>.png``: per K, every single PVP's mean score next to the ensemble, per task.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _k_sort(label: str) -> tuple:
    return (1, 0) if label == "fixed" else (0, int(label))


def write_plots(df, agg, out_dir: str | Path) -> list[Path]:
    """Write all plots for the rows ``df`` and ``agg``, their headline rows aggregated per
    (task, method, k_label) (``pet.bench.report.aggregate``); returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [score_vs_k(agg, out / "score_vs_k.png")]
    for kl in sorted(set(agg["k_label"]), key=_k_sort):
        paths.append(task_bars(agg[agg["k_label"] == kl], out / f"bars_k{kl}.png", title=f"K = {kl}"))
    pv = df[df["stage"].isin(["pvp", "ensemble"])]
    for kl in sorted(set(pv["k_label"]), key=_k_sort) if len(pv) else []:
        p = pvp_spread(pv[pv["k_label"] == kl], out / f"pvps_k{kl}.png", title=f"single PVPs vs ensemble, K = {kl}")
        if p:
            paths.append(p)
    return paths


def score_vs_k(agg, path: Path) -> Path:
    plt = _plt()
    tasks = list(dict.fromkeys(agg["task"]))
    ks = sorted(set(agg["k_label"]), key=_k_sort)
    n = len(tasks)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    methods = list(dict.fromkeys(agg["method"]))
    fig, axes = plt.subplots(rows, cols, figsize=(max(6.0, 4.2 * cols), 3.2 * rows + 0.3 * math.ceil(len(methods) / 3)), squeeze=False)
    offsets = {m: (j - (len(methods) - 1) / 2) * 0.06 for j, m in enumerate(methods)}  # keep error bars apart
    for i, task in enumerate(tasks):
        ax = axes[i // cols][i % cols]
        t = agg[agg["task"] == task]
        for m in methods:
            x = t[t["method"] == m]
            if not len(x):
                continue
            x = x.assign(_o=[ks.index(k) for k in x["k_label"]]).sort_values("_o")
            ax.errorbar(x["_o"] + offsets[m], 100 * x["mean"], yerr=100 * x["std"], marker="o", capsize=3, label=m)
        ax.set_xticks(range(len(ks)))
        ax.set_xticklabels(ks)
        ax.set_xlabel("K (examples per class)")
        ax.set_ylabel(f"{t['metric'].iloc[0]} (%)")
        ax.set_title(task)
        ax.grid(alpha=0.3)
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for a in axes.flat:
        h, lab = a.get_legend_handles_labels()
        for hh, ll in zip(h, lab):
            if ll not in labels:
                handles.append(hh)
                labels.append(ll)
    ncol = min(3 if cols == 1 else 6, max(1, len(labels)))
    fig.legend(handles, labels, loc="lower center", ncol=ncol, frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0.06 * math.ceil(len(labels) / ncol) / rows if labels else 0, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def task_bars(agg, path: Path, title: str = "") -> Path:
    plt = _plt()
    import numpy as np

    tasks = list(dict.fromkeys(agg["task"]))
    methods = list(dict.fromkeys(agg["method"]))
    width = 0.8 / max(1, len(methods))
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(tasks) * max(1, len(methods)) * 0.5 + 2), 3.8))
    xs = np.arange(len(tasks))
    for j, m in enumerate(methods):
        means, stds = [], []
        for t in tasks:
            x = agg[(agg["task"] == t) & (agg["method"] == m)]
            means.append(100 * x["mean"].iloc[0] if len(x) else np.nan)
            stds.append(100 * x["std"].iloc[0] if len(x) else 0.0)
        ax.bar(xs + (j - (len(methods) - 1) / 2) * width, means, width, yerr=stds, capsize=2, label=m)
    ax.set_xticks(xs)
    ax.set_xticklabels(tasks)
    ax.set_ylabel("score (%)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(4, len(methods)), loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pvp_spread(df: Any, path: Path, title: str = "") -> Path | None:
    """Per task and method: each single PVP's mean (dots) and the ensemble's mean (cross)."""
    plt = _plt()
    groups = list(dict.fromkeys(zip(df["task"], df["method"])))
    groups = [g for g in groups if ((df["task"] == g[0]) & (df["method"] == g[1]) & (df["stage"] == "pvp")).any()]
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(groups) + 2), 3.8))
    for i, (task, method) in enumerate(groups):
        g = df[(df["task"] == task) & (df["method"] == method)]
        singles = g[g["stage"] == "pvp"].groupby("pvp")["score"].mean()
        ax.scatter([i] * len(singles), 100 * singles.values, color="tab:blue", alpha=0.7, label="single PVP" if i == 0 else None)
        ens = g[g["stage"] == "ensemble"]["score"]
        if len(ens):
            ax.scatter([i], [100 * ens.mean()], color="tab:red", marker="x", s=60, label="ensemble" if i == 0 else None)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{t}\n{m}" for t, m in groups], fontsize=8)
    ax.set_ylabel("score (%)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
