"""The report's Markdown: one function per section, over the tables of :mod:`pet.bench.tables`.

Scores are shown as percentages with one decimal (84.3), as in the LM-BFF and PET papers, as
``mean ± std (median)`` over seeds followed by the 95% bootstrap interval ``[low, high]``
(:mod:`pet.bench.stats`); ``†`` marks an interval over seeds only (rows stored without
per-example predictions). ``*`` marks a task evaluated on a subset of its test set.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .glance import AHEAD, BEHIND, LEADER, MIN_SEEDS, NOT_COMPARED, TIED
from .stats import OVER_SEEDS
from .tables import MEAN_OVER_TASKS, k_label, k_sort, selection_summary

SEEDS_ONLY_MARK = "†"
WITHIN_NOISE = "within noise"


def _nan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt_pct(mean: float, std: float | None = None, median: float | None = None) -> str:
    """``84.3 ± 1.2 (85.0)`` from fractions; "–" when there is no mean."""
    if _nan(mean):
        return "–"
    s = f"{100 * mean:.1f}"
    if not _nan(std):
        s += f" ± {100 * std:.1f}"
    if not _nan(median):
        s += f" ({100 * median:.1f})"
    return s


def fmt_ci(low: float, high: float, over: str | None = None, signed: bool = False) -> str:
    """``[82.1, 86.4]`` (percent), ``†`` when over seeds only; "" when there is no interval."""
    if _nan(low) or _nan(high):
        return ""
    f = "{:+.1f}" if signed else "{:.1f}"
    return f"[{f.format(100 * low)}, {f.format(100 * high)}]" + (SEEDS_ONLY_MARK if over == OVER_SEEDS else "")


def fmt_params(n: int) -> str:
    n = int(n)
    return f"{n / 1e6:.2f}M" if n >= 100_000 else f"{n:,}"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def esc(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(esc(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def interval_note(resamples: int) -> str:
    """What the intervals are, in one sentence."""
    return (f"Intervals: 95% bootstrap percentile intervals over seeds × test examples ({resamples:,} resamples: seeds drawn "
            f"with replacement, then each drawn seed's test examples with replacement, the metric recomputed); "
            f"`{SEEDS_ONLY_MARK}` = over seeds only (rows stored without per-example predictions).")


# ----------------------------------------------------------------------------- sections


def render(root: Path, df, info: dict, notes: dict, tables: dict, models: list[str], prov: dict, resamples: int,
           plots: bool = True) -> str:
    """The whole report (``plots``: whether PNG plots are written beside it)."""
    lines: list[str] = [f"# Benchmark report: `{root.name}`", ""]
    if df is None or not len(df):
        damage = [f"The store holds {info['damage']}; ignored.", ""] if info.get("damage") else []
        return "\n".join(lines + ["No complete rows in the results store yet.", "", *damage])
    subset = {t for t, n in notes.items() if n.get("test_subset")}

    def tname(t: str) -> str:
        return f"{t}*" if t in subset else t

    lines += metadata(root, df, info, models, prov, resamples)
    lines += test_sets(df, notes)
    lines += glance(tables.get("glance"), tname)
    lines += headline(tables["headline"], tname)
    lines += selection(tables.get("selection"), plots)
    lines += stages(tables["stages"], tname)
    lines += pvps(tables["pvps"], tname)
    lines += hard_soft(tables["hard_soft"], tname)
    lines += paired(tables["paired"], tname)
    lines += stage_pairs(tables.get("stage_pairs"), tname)
    lines += gains(tables["gains"], tname)
    lines += cost(tables["cost"])
    if "references" in tables:
        lines += references(tables["references"], models)
    names = [f"`{n}.csv`" for n, t in tables.items() if t is not None and len(t)] + ["`rows.csv`"]
    lines += ["## Files", "", ", ".join(names) + ("; plots in `plots/`." if plots else "."), ""]
    return "\n".join(lines)


def _counted(values, sep: str = ", ") -> str:
    """``a (3 rows), b (1 row)``, most frequent first; one value alone without its count."""
    counts = Counter(values)
    if len(counts) == 1:
        return next(iter(counts))
    return sep.join(f"{v} ({n} row{'s' if n != 1 else ''})" for v, n in counts.most_common())


def _machines(df) -> str:
    """Each machine the rows ran on (processor, cores, GPU), with its row count."""
    def describe(m) -> str:
        m = m if isinstance(m, dict) else {}
        return (f"{m.get('processor', '?')}, {m.get('sched_cpus', m.get('cpu_count', '?'))} CPU cores available"
                + (f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"))
    return _counted((describe(m) for m in df["machine"]), sep="; ") if "machine" in df else "not recorded"


def _versions(df) -> str:
    """Each package's version(s) over the rows; a package that differs between rows lists each
    version with its row count."""
    rows = [v for v in df["versions"] if isinstance(v, dict)] if "versions" in df else []
    names = list(dict.fromkeys(k for v in rows for k in v))
    return "; ".join(f"{k} {_counted(v.get(k, '?') for v in rows)}" for k in names) or "not recorded"


def metadata(root: Path, df, info: dict, models: list[str], prov: dict, resamples: int) -> list[str]:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    n_cells = df.drop_duplicates(subset=["config_hash"]).shape[0]
    total_secs = df.drop_duplicates(subset=["config_hash"])["cell_seconds"].sum()
    commits = ", ".join(f"{c[:12]} ({n} rows)" for c, n in prov["commits"].items()) or "not recorded"
    lines = [
        f"Generated {now} from `{root}`: {len(df)} rows in {n_cells} cells ({df['timestamp'].min()} … {df['timestamp'].max()}).",
        "",
        f"- Model(s): {', '.join(f'`{m}`' for m in models)}",
        f"- Package versions: {_versions(df)}",
        f"- Git commit(s) of the rows: {commits}" + (f"; {prov['dirty_rows']} rows from a working tree with uncommitted changes" if prov["dirty_rows"] else ""),
        f"- Machine(s): {_machines(df)}; total compute in cells: {total_secs / 60:.1f} min",
        "- Scores: percent; `mean ± std (median)` over seeds; std is the population std (ddof=0, as LM-BFF's gather_result.py).",
        "- " + interval_note(resamples),
    ]
    if info.get("superseded_rows"):
        lines.append(f"- {info['superseded_rows']} older rows (cells re-run after a config change) are ignored; the newest config of each cell is shown.")
    if info.get("other_experiment_rows"):
        lines.append(f"- {info['other_experiment_rows']} rows of other configurations (not in the experiment file's current grid) are left out.")
    if info.get("damage"):
        lines.append(f"- The store holds {info['damage']}; ignored.")
    lines.append("")
    for w in prov["warnings"]:
        lines += [f"> **Warning:** {w}", ""]
    return lines


def test_sets(df, notes: dict) -> list[str]:
    rows = []
    tasks = set(df["task"])
    for task in sorted(notes):
        n = notes[task]
        if not n.get("has_test", True):
            status = "**missing here** (no results)"
        elif task not in tasks:
            status = "no results yet" + (" (subset)" if n.get("test_subset") else "")
        else:
            status = "**subset**" if n.get("test_subset") else "full"
        size = "–"
        if n.get("n_test"):
            size = f"{n.get('n_test')}" + (f" of {n.get('n_full')}" if n.get("n_full") and n.get("n_test") != n.get("n_full") else "")
        rows.append([task, n.get("test_split", "test"), size, status, n.get("test_note", "")])
    return ["## Test sets", "", md_table(["task", "split", "examples", "status", "note"], rows), ""]


def _trait_legend(head) -> str:
    marks = []
    for m in dict.fromkeys(head["method"]):
        r = head[head["method"] == m].iloc[0]
        t = [w for w, on in (("baseline", r.get("baseline")), ("uses unlabelled text", r.get("uses_unlabelled")),
                             ("distils", r.get("distils")), ("trains nothing", not r.get("trains", True))) if on is True]
        if t:
            marks.append(f"`{m}`: {', '.join(t)}")
    return ("Methods: " + "; ".join(marks) + ".") if marks else ""


def headline(head, tname) -> list[str]:
    lines = ["## Results (headline stage per method)", "",
             ("Each method's headline stage is the one the method marks final (what its saved classifier predicts with; rows "
             "recorded before that mark: `final` > `distilled` > `ensemble` > `mean-of-pvps`). Cells: `mean ± std (median)` "
             f"over seeds, then the 95% bootstrap interval of the mean (`{SEEDS_ONLY_MARK}`: over seeds only). "
             "`*` = evaluated on a subset of the official test set (see above)."), ""]
    legend = _trait_legend(head)
    lines += [legend, ""] if legend else []
    methods = list(dict.fromkeys(head["method"]))
    for kl in sorted(set(head["k_label"]), key=k_sort):
        sub = head[head["k_label"] == kl]
        rows = []
        for task in dict.fromkeys(sub["task"]):
            t = sub[sub["task"] == task]
            r = [tname(task), t["metric"].iloc[0]]
            for m in methods:
                x = t[t["method"] == m]
                if not len(x):
                    r.append("–")
                    continue
                x = x.iloc[0]
                cell = fmt_pct(x["mean"], x["std"], x["median"])
                ci = fmt_ci(x.get("ci95_low"), x.get("ci95_high"), x.get("ci_over"))
                r.append(cell + (f" {ci}" if ci else "") + (f" [n={x['n']}]" if x["n"] < sub["n"].max() else ""))
            rows.append(r)
        lines += [f"### K = {kl}", "", md_table(["task", "metric", *methods], rows), ""]
    acc = [[tname(r["task"]), r["method"], r["k_label"], r["metric"], fmt_pct(r["mean"], r["std"]), fmt_pct(r["accuracy_mean"], r["accuracy_std"])]
           for _, r in head.iterrows() if "accuracy_mean" in head and r["metric"] != "accuracy" and not _nan(r["accuracy_mean"])]
    if acc:
        lines += ["Secondary metric (accuracy) where the main metric is not accuracy:", "",
                  md_table(["task", "method", "K", "metric", "score", "accuracy"], acc), ""]
    return lines


def selection(sel, plots: bool = True) -> list[str]:
    if sel is None or not len(sel):
        return []
    summ = selection_summary(sel)
    rows = [[r["task"], r["method"], k_label(r["k"]), r["selection"], r["splits"], fmt_pct(r["test_mean"], r["test_std"]), fmt_pct(r["dev_mean"]),
             "–" if _nan(r["dev_test_spearman"]) else f"{r['dev_test_spearman']:.2f}"] for _, r in summ.iterrows()]
    return ["## Model selection", "",
            ("Rows above are the chosen grid points only. Per task × method × K: the test score of the point chosen on "
            "dev (or by cross-validation) per split, its stability over splits, and how well dev predicts test "
            "(Spearman over splits; FewNLU's criteria). Per split: `selection.csv`" + ("; plot: `plots/dev_vs_test.png`." if plots else ".")), "",
            md_table(["task", "method", "K", "selection", "splits", "test", "dev", "dev-test ρ"], rows), ""]


def stages(st, tname) -> list[str]:
    rows = [[tname(r["task"]), r["method"], r["k_label"], r["stage"], r["pvp"] or "", fmt_pct(r["mean"], r["std"], r["median"]), r["n"]]
            for _, r in st.iterrows()]
    return ["## All stages", "", md_table(["task", "method", "K", "stage", "PVP", "score", "seeds"], rows), ""]


def pvps(pv, tname) -> list[str]:
    lines = ["## Single PVPs vs the PVP ensemble", ""]
    if not len(pv):
        return lines + ["No per-PVP rows.", ""]
    rows = [[tname(r["task"]), r["method"], r["k_label"], r["n_pvps"], f"{r['best_pvp']}: {fmt_pct(r['best_mean'], r['best_std'])}",
             f"{r['worst_pvp']}: {fmt_pct(r['worst_mean'], r['worst_std'])}", fmt_pct(r["pvp_mean"]), fmt_pct(r["ensemble_mean"], r["ensemble_std"]),
             "–" if _nan(r["ensemble_minus_best"]) else f"{100 * r['ensemble_minus_best']:+.1f}"] for _, r in pv.iterrows()]
    return lines + [md_table(["task", "method", "K", "PVPs", "best PVP", "worst PVP", "mean of PVPs", "ensemble", "ensemble − best"], rows), ""]


def hard_soft(hs, tname) -> list[str]:
    lines = ["## Hard vs soft prompts", ""]
    if not len(hs) or not (hs["soft_method"] != "").any():
        return lines + ["No soft-prompt methods in these results.", ""]

    def best(r, fam: str) -> str:
        return f"{r[f'{fam}_method']} {fmt_pct(r[f'{fam}_mean'], r[f'{fam}_std'])}" if r[f"{fam}_method"] else "–"

    rows = [[tname(r["task"]), r["k_label"], best(r, "hard"), best(r, "soft"), best(r, "baseline"),
             "–" if _nan(r["hard_minus_soft"]) else f"{100 * r['hard_minus_soft']:+.1f}"] for _, r in hs.iterrows()]
    return lines + [md_table(["task", "K", "best hard prompt", "best soft prompt", "best baseline", "hard − soft"], rows), ""]


def verdict(r, a: str = "method_a", b: str = "method_b") -> str:
    """"within noise" when the paired interval covers 0 (or there is none), else who is ahead
    (named by the row's columns ``a`` and ``b``)."""
    if _nan(r["ci95_low"]) or r["ci95_low"] <= 0 <= r["ci95_high"]:
        return WITHIN_NOISE
    return f"{r[a]} better" if r["diff"] > 0 else f"{r[b]} better"


def glance(gl, tname) -> list[str]:
    """The "At a glance" section (:mod:`pet.bench.glance`); empty when there is nothing to compare."""
    if gl is None or not len(gl):
        return []
    lines = ["## At a glance", "",
             ("Per task, the leading method (highest mean among the methods with the task's full seed count; over tasks: "
              "the highest mean of per-task means among the methods complete on every task) and every other method: "
              f"**{TIED}** when its paired 95% interval against the leader covers 0, **{BEHIND}** by the difference shown "
              f"(method − leader, points) when the interval lies below 0, *{NOT_COMPARED}* when they share fewer than "
              f"{MIN_SEEDS} seeds (a smoke test) or no identical splits. Each comparison on its own: no correction for "
              "the number of methods. Table: `glance.csv`."), ""]
    for kl in sorted(set(gl["k_label"]), key=k_sort):
        sub = gl[gl["k_label"] == kl]
        rows = []
        for task in dict.fromkeys(sub["task"]):
            t = sub[sub["task"] == task]
            lead = t[t["status"] == LEADER].iloc[0]
            cell = f"**{lead['method']}** {100 * lead['mean']:.1f}"
            if (t["status"] == AHEAD).any():
                cell += f" (on fewer seeds, ahead of it: {_glance_names(t[t['status'] == AHEAD])})"
            rows.append([f"*{MEAN_OVER_TASKS}*" if task == MEAN_OVER_TASKS else tname(task), cell,
                         _glance_names(t[t["status"] == TIED]), _glance_names(t[t["status"] == BEHIND]),
                         ", ".join(t[t["status"] == NOT_COMPARED]["method"]) or "–"])
        lines += [f"### K = {kl}", "", md_table(["task", "leader", TIED, BEHIND, NOT_COMPARED], rows), ""]
    return lines


def _glance_names(t) -> str:
    """``method ±diff`` (points against the leader), best first."""
    return ", ".join(f"{r['method']} {100 * r['diff']:+.1f}" for _, r in t.sort_values("diff", ascending=False).iterrows()) or "–"


def few_seeds_caution(pr) -> list[str]:
    """A caution when comparisons rest on fewer than 5 seeds without per-example predictions."""
    few = pr[(pr["ci_over"] == OVER_SEEDS) & (pr["n_seeds"] < 5)]
    if not len(few):
        return []
    return [(f"Caution: {len(few)} comparisons rest on fewer than 5 seeds without per-example predictions; a bootstrap over "
             "so few values cannot reach beyond their range, so those intervals are too narrow and their p-values too small."), ""]


def paired(pr, tname) -> list[str]:
    lines = ["## Paired comparisons (identical splits)", ""]
    if pr is None or not len(pr):
        return lines + ["No two methods share a task, K, seeds and test set.", ""]
    res = int(pr["resamples"].max())
    lines += [(f"Every pair of methods run on the same task, K, seeds, splits and test examples: A − B in points, the 95% paired "
              f"bootstrap interval (the same resampled seeds and test examples for both methods, {res:,} resamples; "
              f"`{SEEDS_ONLY_MARK}`: over seeds only), and the two-sided bootstrap p-value. **{WITHIN_NOISE}**: the interval covers 0. "
              f"`{MEAN_OVER_TASKS}`: the mean difference over every task of that K, each task resampled on its own."), ""]
    lines += few_seeds_caution(pr)
    rows = [[tname(r["task"]) if r["task"] != MEAN_OVER_TASKS else f"*{MEAN_OVER_TASKS}*", r["k_label"], r["method_a"], r["method_b"],
             f"{100 * r['diff']:+.1f}", fmt_ci(r["ci95_low"], r["ci95_high"], r["ci_over"], signed=True) or "–",
             "–" if _nan(r["p_value"]) else f"{r['p_value']:.3f}", verdict(r)] for _, r in pr.iterrows()]
    return lines + [md_table(["task", "K", "A", "B", "A − B", "95% CI", "p", "verdict"], rows), ""]


def stage_pairs(sp, tname) -> list[str]:
    """The final stage of each method against its other stages (only when there is a pair)."""
    if sp is None or not len(sp):
        return []
    lines = ["## Stages of one method (paired)", "",
             ("Per task × K × method: the stage that stands for the method (A) against each of its other stages (B) on the "
              f"seeds both have, with the method comparisons' paired bootstrap: A − B in points, its 95% interval and p-value "
              f"(**{WITHIN_NOISE}**: the interval covers 0; `{SEEDS_ONLY_MARK}`: over seeds only). Stages are named by their key; "
              "all rows in `stage_pairs.csv`."), ""]
    lines += few_seeds_caution(sp)
    rows = [[tname(r["task"]), r["k_label"], r["method"], r["stage_a"], r["stage_b"], f"{100 * r['diff']:+.1f}",
             fmt_ci(r["ci95_low"], r["ci95_high"], r["ci_over"], signed=True) or "–",
             "–" if _nan(r["p_value"]) else f"{r['p_value']:.3f}", r["n_seeds"], verdict(r, "stage_a", "stage_b")]
            for _, r in sp.iterrows()]
    return lines + [md_table(["task", "K", "method", "A (final)", "B", "A − B", "95% CI", "p", "seeds", "verdict"], rows), ""]


def gains(gn, tname) -> list[str]:
    lines = ["## Gain over the trained baselines (paired by seed)", ""]
    if gn is None or not len(gn):
        return lines + ["Needs a baseline method that trains (e.g. `cls-ft`) and another method on the same task, K and seeds.", ""]
    lines += [("Every method that is not a baseline against every baseline that trains parameters (a training-free reference "
              "such as zero-shot is a floor, not the baseline to beat): mean ± std of the per-seed differences, the paired "
              "95% interval, and the seeds the method wins."), ""]
    rows = [[tname(r["task"]), r["k_label"], r["method"], r["baseline"], fmt_pct(r["method_mean"]), fmt_pct(r["baseline_mean"]),
             f"{100 * r['gain_mean']:+.1f} ± {100 * r['gain_std']:.1f}", fmt_ci(r["ci95_low"], r["ci95_high"], r["ci_over"], signed=True) or "–",
             f"{r['wins']}/{r['n_pairs']}"] for _, r in gn.iterrows()]
    return lines + [md_table(["task", "K", "method", "baseline", "method", "baseline", "gain", "95% CI", "wins"], rows), ""]


def cost(co) -> list[str]:
    rows = [[r["task"], r["method"], r["k_label"], r["cells"], f"{r['cell_seconds_mean']:.1f}", f"{r['train_seconds_mean']:.1f}",
             "–" if _nan(r["eval_examples_per_second"]) else f"{r['eval_examples_per_second']:.0f}", f"{r['peak_memory_mb']:.0f}",
             "–" if _nan(r["cell_peak_rss_mb"]) else f"{r['cell_peak_rss_mb']:.0f}", fmt_params(r["trained_parameters"])] for _, r in co.iterrows()]
    head = ["task", "method", "K", "cells", "cell s (mean)", "train s (headline)", "eval ex/s", "peak MB (method)", "cell RSS MB", "trained params"]
    return ["## Cost", "", md_table(head, rows), ""]


def references(rf, models: list[str]) -> list[str]:
    lines = ["## Published numbers (different base model)", "",
             ("**Not comparable one-to-one**: the published numbers come from a different (larger) base model (see `base model`), "
             "other hyper-parameter searches and, for PET, |T| = total labelled examples rather than K per class. "
             f"Ours: {', '.join(models)}."), ""]
    if not len(rf):
        return lines + ["No published numbers for these tasks in the references file.", ""]
    rows = [[r["task"], r["method"], r["k"], f"{r['published']:.1f}" + ("" if _nan(r["published_std"]) else f" ± {r['published_std']:.1f}"),
             r["published_metric"], r["published_base_model"],
             f"{r['ours_mean']:.1f} ± {r['ours_std']:.1f} ({r['ours_method']}, n={r['ours_n']})" if r["ours_n"] else "–", r["source"]]
            for _, r in rf.iterrows()]
    return lines + [md_table(["task", "method", "K / |T|", "published", "metric", "base model", "ours", "source"], rows), ""]

