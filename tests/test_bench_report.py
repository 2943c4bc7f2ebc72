"""`pet report`: aggregation numbers, tables and plots on a hand-made results store."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from pet.bench.markdown import fmt_pct
from pet.bench.report import build_report, load_rows
from pet.bench.stats import OVER_SEEDS
from pet.bench.store import ResultsStore
from pet.bench.tables import aggregate, headline_rows

REPO = Path(__file__).resolve().parent.parent
SEEDS = (13, 21, 42)

# (method, registered name, stage, pvp) -> scores for seeds 13, 21, 42
SCORES = {
    ("zero-shot", "zero-shot", "pvp", "p1:v"): (0.5, 0.6, 0.9),
    ("zero-shot", "zero-shot", "pvp", "p2:v"): (0.4, 0.5, 0.6),
    ("zero-shot", "zero-shot", "ensemble", None): (0.55, 0.65, 0.8),
    ("cls-ft", "cls-ft", "final", None): (0.6, 0.7, 0.8),
    ("pet", "pet", "pvp", "p1:v"): (0.7, 0.7, 0.7),
    ("pet", "pet", "pvp", "p2:v"): (0.6, 0.6, 0.8),
    ("pet", "pet", "ensemble", None): (0.72, 0.74, 0.76),
    ("pet", "pet", "distilled", None): (0.8, 0.75, 0.9),
    ("prompt-tuning", "prompt-tuning", "final", None): (0.55, 0.6, 0.65),
    ("prompt-ft", "prompt-ft", "pvp", "p1:v"): (0.6, 0.7, 0.8),
    ("prompt-ft", "prompt-ft", "pvp", "p2:v"): (0.8, 0.7, 0.9),
}


def _row(method, name, stage, pvp, seed, score, stamp="2026-01-02T00:00:00+00:00"):
    return {
        "task": "sst2", "method": method, "method_name": name, "stage": stage, "pvp": pvp, "k": 16, "seed": seed,
        "score": score, "metric": "accuracy", "metrics": {"accuracy": score}, "train_seconds": 2.0,
        "eval_examples_per_second": 50.0, "peak_memory_mb": 500.0, "trained_parameters": 1000 if name != "zero-shot" else 0,
        "cell_seconds": 10.0, "model": "tiny-mlm", "timestamp": stamp,
        "test": {"split": "test", "n": 872, "n_full": 872, "subset": False, "note": "full"},
        "versions": {"pet": "0.1.0"}, "machine": {"processor": "x86_64", "sched_cpus": 2}, "git_commit": None, "git_dirty": None,
    }


@pytest.fixture()
def results(tmp_path):
    st = ResultsStore(tmp_path / "res")
    # an older config of one cell, superseded by the rows below
    st.append_cell("old-zs-13", [_row("zero-shot", "zero-shot", "ensemble", None, 13, 0.1, stamp="2026-01-01T00:00:00+00:00")])
    cells: dict = {}
    for (method, name, stage, pvp), scores in SCORES.items():
        for seed, s in zip(SEEDS, scores):
            cells.setdefault((method, seed), []).append(_row(method, name, stage, pvp, seed, s))
    for (method, seed), rows in cells.items():
        assert st.append_cell(f"{method}-{seed}", rows)
    return tmp_path / "res"


def test_aggregate_mean_std_median(results):
    df, info = load_rows(results)
    assert info["superseded_rows"] == 1 and len(df) == 3 * sum(1 for _ in SCORES)
    head = headline_rows(df)
    assert dict(zip(head[head["seed"] == 13]["method"], head[head["seed"] == 13]["stage"])) == {
        "zero-shot": "ensemble", "cls-ft": "final", "pet": "distilled", "prompt-tuning": "final", "prompt-ft": "mean-of-pvps"}
    agg = aggregate(head, by=("task", "method", "k_label")).set_index("method")
    zs = np.array([0.55, 0.65, 0.8])
    assert agg.loc["zero-shot", "mean"] == pytest.approx(zs.mean())
    assert agg.loc["zero-shot", "std"] == pytest.approx(zs.std())  # ddof=0
    assert agg.loc["zero-shot", "median"] == pytest.approx(0.65)
    assert agg.loc["zero-shot", "n"] == 3 and agg.loc["zero-shot", "seeds"] == "13 21 42"
    assert agg.loc["pet", "mean"] == pytest.approx(np.mean([0.8, 0.75, 0.9]))
    assert agg.loc["pet", "min"] == pytest.approx(0.75) and agg.loc["pet", "max"] == pytest.approx(0.9)
    assert agg.loc["prompt-ft", "mean"] == pytest.approx(np.mean([0.7, 0.7, 0.85]))  # per-seed mean over its PVPs


def test_report_tables(results):
    rep = build_report(results, references=REPO / "data" / "references.csv", write=False)
    t = rep.tables
    pv = t["pvps"].set_index("method")
    assert pv.loc["zero-shot", "best_pvp"] == "p1:v" and pv.loc["zero-shot", "best_mean"] == pytest.approx(2 / 3)
    assert pv.loc["zero-shot", "worst_pvp"] == "p2:v" and pv.loc["zero-shot", "worst_mean"] == pytest.approx(0.5)
    assert pv.loc["zero-shot", "ensemble_mean"] == pytest.approx(2 / 3)
    assert pv.loc["pet", "best_pvp"] == "p1:v" and pv.loc["pet", "pvp_mean"] == pytest.approx((0.7 + 2 / 3) / 2)
    gains = t["gains"]
    assert set(gains["baseline"]) == {"cls-ft"} and "cls-ft" not in set(gains["method"])  # a baseline is not compared with itself
    g = gains[gains["method"] == "pet"].iloc[0]
    assert g["n_pairs"] == 3 and g["wins"] == 3 and g["ci_over"] == OVER_SEEDS
    diffs = np.array([0.2, 0.05, 0.1])
    assert g["gain_mean"] == pytest.approx(diffs.mean()) and g["gain_std"] == pytest.approx(diffs.std())
    sp = t["stage_pairs"]  # prompt-ft's headline is the mean of its PVPs, not a stage; cls-ft and prompt-tuning have one stage
    assert set(sp["method"]) == {"zero-shot", "pet"} and len(sp) == 2 + 3
    pe = sp[(sp["method"] == "pet") & (sp["stage_b"] == "ensemble")].iloc[0]
    assert pe["stage_a"] == "distilled" and pe["diff"] == pytest.approx(np.mean([0.08, 0.01, 0.14])) and pe["ci_over"] == OVER_SEEDS
    hs = t["hard_soft"].iloc[0]
    assert hs["hard_method"] == "pet" and hs["soft_method"] == "prompt-tuning" and hs["baseline_method"] == "cls-ft"
    assert hs["hard_minus_soft"] == pytest.approx(np.mean([0.8, 0.75, 0.9]) - 0.6)
    ref = t["references"]
    zs = ref[(ref["method"] == "zero-shot")].iloc[0]
    assert zs["published"] == pytest.approx(83.6) and zs["published_base_model"] == "roberta-large"
    # ours is matched by registered method and K; a training-free method's K=0 number matches any K
    assert zs["ours_n"] == 3 and zs["ours_mean"] == pytest.approx(100 * np.mean([0.55, 0.65, 0.8]))
    pft = ref[ref["method"] == "prompt-ft"].iloc[0]
    assert pft["published"] == pytest.approx(92.7) and pft["published_std"] == pytest.approx(0.9)

    md = rep.markdown
    assert "66.7 ± 10.3 (65.0)" in md  # zero-shot headline: mean ± std (median)
    # per-seed gains 0.20, 0.05, 0.10: a bootstrap over 3 seeds spans their range; † = over seeds only (no predictions stored)
    assert "| sst2 | 16 | pet | cls-ft | 81.7 | 70.0 | +11.7 ± 6.2 | [+5.0, +20.0]† | 3/3 |" in md
    assert "66.7 ± 10.3 (65.0) [55.0, 80.0]†" in md and "fewer than 5 seeds" in md
    assert "1 older rows" in md
    assert "different base model" in md and "roberta-large" in md
    assert "## Test sets" in md and "| sst2 | test | 872 | full |" in md


def test_report_writes_csv_markdown_and_valid_pngs(results, tmp_path):
    out = tmp_path / "out"
    rep = build_report(results, references=REPO / "data" / "references.csv", output=out)
    names = {p.relative_to(out).as_posix() for p in rep.files}
    for n in ("report.md", "headline.csv", "stages.csv", "pvps.csv", "gains.csv", "paired.csv", "stage_pairs.csv", "hard_soft.csv",
              "cost.csv", "rows.csv", "references.csv", "plots/bars_k16.png", "plots/pvps_k16.png"):
        assert n in names, n
    assert "plots/score_vs_k.png" not in names  # one K: bars, not points at a single tick
    for png in out.glob("plots/*.png"):
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
        import matplotlib.image as mpimg

        img = mpimg.imread(png)
        assert img.shape[0] > 100 and img.shape[1] > 100
    import pandas as pd

    head = pd.read_csv(out / "headline.csv")
    assert set(head["method"]) == {"zero-shot", "cls-ft", "pet", "prompt-tuning", "prompt-ft"}
    # writing again replaces the folder atomically
    rep2 = build_report(results, output=out, plots=False)
    assert not (out / "plots").exists() and (out / "report.md").is_file() and rep2.output == out


def test_empty_and_missing_store(tmp_path):
    from pet.errors import ConfigError

    with pytest.raises(ConfigError, match="no results store here"):
        build_report(tmp_path / "nothing")
    ResultsStore(tmp_path / "empty").append_cell("h", [])
    rep = build_report(tmp_path / "empty", write=False)
    assert "No complete rows" in rep.markdown


def test_fmt_pct():
    assert fmt_pct(0.8433, 0.0123, 0.85) == "84.3 ± 1.2 (85.0)"
    assert fmt_pct(float("nan")) == "–"
    assert math.isnan(float("nan"))


# ----------------------------------------------------------------------------- intervals, paired comparisons, provenance

N_TEST = 200
GOLD = (np.arange(N_TEST) % 2).astype(np.int16)


RESOLVED = {"steps": 250, "lr": 1e-5, "label_loss": "ce"}


def _pred_row(task, method, seed, pred, k=16, commit="a" * 40, dirty=False, test_sha="t" * 64, resolved=RESOLVED, name=None):
    from pet.bench.rows import encode_predictions

    score = float((pred == GOLD).mean())
    if resolved is not None:
        resolved = {**resolved, "seed": seed}  # every cell's training seed is its split's: not a changed default
    return {**_row(method, name or method, "final", None, seed, score), "task": task, "k": k, "final": True,
            "predictions": encode_predictions(["0", "1"], pred, GOLD), "inputs": {"test": f"{task}-{test_sha}"},
            "git_commit": commit, "git_dirty": dirty, "split": {"checksum": f"{task}-{k}-{seed}"}, "resolved_options": resolved}


def _pred_store(root: Path, ks=(16,), changes: dict | None = None) -> Path:
    """Two tasks x (cls-ft, pet, prompt-ft) x 3 seeds with stored predictions: pet fixes most of
    cls-ft's errors; prompt-ft makes as many errors as cls-ft, on other examples."""
    rng = np.random.default_rng(0)
    st = ResultsStore(root)
    for task in ("sst2", "cr"):
        for k in ks:
            for seed in SEEDS:
                right = rng.random(N_TEST) < 0.7
                preds = {"cls-ft": right, "pet": right | (rng.random(N_TEST) < 0.8), "prompt-ft": np.roll(right, 1)}
                for method, ok in preds.items():
                    pred = np.where(ok, GOLD, 1 - GOLD).astype(np.int16)
                    kw = (changes or {}).get((task, method, seed), {})
                    st.append_cell(f"{task}-{k}-{method}-{seed}", [_pred_row(task, method, seed, pred, k=k, **kw)])
    return root


def test_headline_and_paired_csv_with_stored_predictions(tmp_path):
    import pandas as pd

    from pet.bench.stats import OVER_EXAMPLES

    rep = build_report(_pred_store(tmp_path / "res"), output=tmp_path / "out", resamples=500)
    head = pd.read_csv(tmp_path / "out" / "headline.csv")
    assert {"ci95_low", "ci95_high", "ci_over", "resamples"} <= set(head.columns)
    assert (head["ci95_low"] < head["mean"]).all() and (head["mean"] < head["ci95_high"]).all()
    assert set(head["ci_over"]) == {OVER_EXAMPLES} and set(head["n_examples"]) == {N_TEST}
    paired = pd.read_csv(tmp_path / "out" / "paired.csv")
    assert list(paired.columns[:7]) == ["task", "method_a", "method_b", "diff", "ci95_low", "ci95_high", "p_value"]
    by = {(r.task, r.method_a, r.method_b): r for r in paired.itertuples()}
    # 3 pairs per task, the baseline second, plus the mean over the two tasks
    assert set(by) == {(t, a, b) for t in ("sst2", "cr", "mean over tasks")
                       for a, b in (("pet", "cls-ft"), ("prompt-ft", "cls-ft"), ("pet", "prompt-ft"))}
    pet = by[("sst2", "pet", "cls-ft")]
    assert pet.ci95_low > 0.1 and pet.p_value < 0.01 and pet.wins == 3
    noise = by[("sst2", "prompt-ft", "cls-ft")]
    assert noise.diff == pytest.approx(0.0) and noise.ci95_low < 0 < noise.ci95_high and noise.p_value > 0.5
    mean = by[("mean over tasks", "pet", "cls-ft")]
    assert mean.diff == pytest.approx((by[("sst2", "pet", "cls-ft")].diff + by[("cr", "pet", "cls-ft")].diff) / 2)
    section = rep.section("Paired comparisons")
    assert "| sst2 | 16 | prompt-ft | cls-ft | +0.0 |" in section and section.count("within noise") >= 3  # 2 tasks + their mean
    assert "| sst2 | 16 | pet | cls-ft |" in section and "pet better" in section and "]†" not in section
    assert "500 resamples" in rep.markdown and "over seeds × test examples" in rep.markdown
    assert not rep.warnings and "Warning" not in rep.markdown
    assert f"{'a' * 12} ({len(head) * 3} rows)" in rep.markdown  # the commit the rows come from


@pytest.mark.parametrize("change, message", [
    ({"commit": "b" * 40}, "2 git commits"),
    ({"dirty": True}, "uncommitted changes"),
    ({"test_sha": "u" * 64}, "task sst2: the headline rows were evaluated on 2 different test sets"),
    ({"resolved": {**RESOLVED, "steps": 1000, "label_loss": "decoupled"}},
     "task sst2, method pet: the headline rows ran with 2 different option sets once defaults are filled in — "
     'label_loss ("ce" vs "decoupled"), steps (1000 vs 250)'),
])
def test_mixed_provenance_warns_in_markdown_and_on_stderr(tmp_path, capsys, change, message):
    from pet.bench.report import ProvenanceWarning
    from pet.cli import main

    res = _pred_store(tmp_path / "res", changes={("sst2", "pet", 42): change})
    with pytest.warns(ProvenanceWarning, match=re.escape(message)):
        rep = build_report(res, write=False, resamples=200)
    assert any(message in w for w in rep.warnings) and "> **Warning:** " in rep.markdown and message in rep.markdown
    assert main(["report", str(res), "--quiet", "--no-plots", "--resamples", "200", "--output", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and message in err
    if "test sets" in message:  # the pair no longer has identical splits at the changed seed
        paired = rep.tables["paired"]
        assert not ((paired["task"] == "sst2") & (paired["method_a"] == "pet")).any()


def test_labels_of_one_method_are_compared_separately(tmp_path):
    """Two labelled variants of one method (prompt-ft and prompt-ft-supcon) differ in their options
    by design: each label's rows are compared among themselves only."""
    st = ResultsStore(tmp_path / "res")
    for seed in SEEDS:
        for label, extra in (("prompt-ft", {}), ("prompt-ft-supcon", {"contrastive_weight": 1.0})):
            st.append_cell(f"{label}-{seed}", [_pred_row("sst2", label, seed, GOLD.copy(), resolved={**RESOLVED, **extra}, name="prompt-ft")])
    assert not build_report(tmp_path / "res", write=False, resamples=200).warnings


def test_a_pair_is_oriented_alike_on_every_task_so_its_mean_over_tasks_exists(tmp_path):
    """Methods first stored in another order on one task (as cells computed at different times
    are) still give one orientation per pair, and so a mean-over-tasks row for it."""
    st = ResultsStore(tmp_path / "res")
    rng = np.random.default_rng(1)
    for task, methods in (("sst2", ("a", "b")), ("cr", ("b", "a"))):
        for seed in SEEDS:
            for m in methods:
                pred = np.where(rng.random(N_TEST) < 0.7, GOLD, 1 - GOLD).astype(np.int16)
                st.append_cell(f"{task}-{m}-{seed}", [_pred_row(task, m, seed, pred)])
    paired = build_report(tmp_path / "res", write=False, resamples=200).tables["paired"]
    assert len({(r.method_a, r.method_b) for r in paired.itertuples()}) == 1
    assert (paired["task"] == "mean over tasks").sum() == 1


def test_the_options_a_selection_chose_per_split_are_not_a_changed_default(tmp_path):
    """LM-BFF's grid picks lr and batch size on each split's dev set: its rows differ in those
    (their ``grid_point``) by design, and only there; any other difference is still warned about."""
    def store(root, other_steps=None):
        st = ResultsStore(root)
        for seed, (bs, lr) in zip(SEEDS, ((2, 5e-5), (4, 5e-5), (4, 1e-5))):
            steps = other_steps if (other_steps and seed == SEEDS[-1]) else 250
            row = _pred_row("sst2", "grid", seed, GOLD.copy(), resolved={**RESOLVED, "batch_size": bs, "lr": lr, "steps": steps})
            st.append_cell(f"grid-{seed}", [{**row, "grid_point": {"batch_size": bs, "lr": lr}, "selection": "dev", "selected": True}])
        return root

    assert not build_report(store(tmp_path / "a"), write=False, resamples=200).warnings
    with pytest.warns(Warning):
        warned = build_report(store(tmp_path / "b", other_steps=1000), write=False, resamples=200).warnings
    assert len(warned) == 1 and "steps (1000 vs 250)" in warned[0] and "batch_size" not in warned[0] and "lr" not in warned[0]


def test_rows_without_resolved_options_are_not_compared(tmp_path):
    """Rows written before rows recorded their resolved options cannot show a changed default."""
    res = _pred_store(tmp_path / "res", changes={("sst2", "pet", 42): {"resolved": None}})
    rep = build_report(res, write=False, resamples=200)
    assert not rep.warnings


def test_an_option_added_later_is_not_a_changed_default(tmp_path):
    """Rows computed after a method gained an option record it; older rows do not. That option is
    not compared (its default keeps the older rows' behaviour), while an option both have and
    differ in is still warned about."""
    added = {**RESOLVED, "normalize_embeddings": False}
    assert not build_report(_pred_store(tmp_path / "a", changes={("sst2", "pet", 42): {"resolved": added}}),
                            write=False, resamples=200).warnings
    with pytest.warns(Warning):
        warned = build_report(_pred_store(tmp_path / "b", changes={("sst2", "pet", 42): {"resolved": {**added, "steps": 1000}}}),
                              write=False, resamples=200).warnings
    assert len(warned) == 1 and "steps (1000 vs 250)" in warned[0] and "normalize_embeddings" not in warned[0]


def test_cli_rejects_too_few_resamples(tmp_path, capsys):
    from pet.cli import main

    assert main(["report", str(_pred_store(tmp_path / "res")), "--resamples", "5", "--quiet"]) == 2
    assert "--resamples 5" in capsys.readouterr().err


def test_plots_name_the_metric_and_the_error_bars(tmp_path):
    from pet.bench.plots import error_caption

    rep = build_report(_pred_store(tmp_path / "res", ks=(4, 16)), output=tmp_path / "out", resamples=200)
    names = {p.relative_to(tmp_path / "out").as_posix() for p in rep.files}
    assert {"plots/score_vs_k.png", "plots/bars_k4.png", "plots/bars_k16.png"} <= names  # two K: a curve over K
    head = rep.tables["headline"]
    assert error_caption(head) == "error bars: 95% bootstrap interval of the mean over seeds × test examples, 200 resamples"
    old = head.assign(ci_over=OVER_SEEDS)
    assert "over seeds only" in error_caption(old)
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt

    from pet.bench.plots import _metric_axis

    fig, ax = plt.subplots()
    ax.set_xticks([0, 1])
    _metric_axis(ax, head.assign(metric=["mcc" if t == "cr" else "accuracy" for t in head["task"]]), ["sst2", "cr"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["sst2\n(accuracy)", "cr\n(mcc)"]
    _metric_axis(ax, head, ["sst2", "cr"])
    assert ax.get_ylabel() == "accuracy (%)"
    plt.close(fig)


def test_the_report_lists_every_machine_and_version_the_rows_ran_on(tmp_path):
    """Rows from a 2-core CPU and from a GPU machine: the metadata names both, with row counts,
    not just the last row's machine."""
    st = ResultsStore(tmp_path / "res")
    for seed in SEEDS:
        for m, machine, torch in (("a", {"processor": "x86_64", "sched_cpus": 2}, "2.13.0+cpu"),
                                  ("b", {"processor": "x86_64", "sched_cpus": 16, "gpu": "NVIDIA H200"}, "2.11.0+cu130")):
            r = _pred_row("sst2", m, seed, GOLD.copy())
            st.append_cell(f"{m}-{seed}", [{**r, "machine": machine, "versions": {"torch": torch, "python": "3.12"}}])
    md = build_report(tmp_path / "res", write=False, resamples=200).markdown
    n = len(SEEDS)
    assert (f"- Machine(s): x86_64, 2 CPU cores available, no GPU ({n} rows); "
            f"x86_64, 16 CPU cores available, GPU NVIDIA H200 ({n} rows);") in md
    assert f"- Package versions: python 3.12; torch 2.13.0+cpu ({n} rows), 2.11.0+cu130 ({n} rows)\n" in md
