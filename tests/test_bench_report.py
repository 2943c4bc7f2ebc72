"""`pet report`: aggregation numbers, tables and plots on a hand-made results store."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pet.bench.markdown import fmt_pct
from pet.bench.report import build_report, load_rows
from pet.bench.tables import aggregate, headline_rows
from pet.bench.store import ResultsStore

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
    g = t["gains"].iloc[0]
    assert g["method"] == "pet" and g["baseline"] == "cls-ft" and g["n_pairs"] == 3 and g["wins"] == 3
    diffs = np.array([0.2, 0.05, 0.1])
    assert g["gain_mean"] == pytest.approx(diffs.mean()) and g["gain_std"] == pytest.approx(diffs.std())
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
    assert "| sst2 | 16 | pet | cls-ft | 81.7 | 70.0 | +11.7 ± 6.2 | 3/3 |" in md
    assert "1 older rows" in md
    assert "different base model" in md and "roberta-large" in md
    assert "## Test sets" in md and "| sst2 | test | 872 | full |" in md


def test_report_writes_csv_markdown_and_valid_pngs(results, tmp_path):
    out = tmp_path / "out"
    rep = build_report(results, references=REPO / "data" / "references.csv", output=out)
    names = {p.relative_to(out).as_posix() for p in rep.files}
    for n in ("report.md", "headline.csv", "stages.csv", "pvps.csv", "gains.csv", "hard_soft.csv", "cost.csv", "rows.csv",
              "references.csv", "plots/score_vs_k.png", "plots/bars_k16.png", "plots/pvps_k16.png"):
        assert n in names, n
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
