"""`pet report`: paired comparisons between the stages of one method (stage_pairs.csv and its
Markdown section) on hand-built stores with per-example predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pet.bench.report import build_report
from pet.bench.rows import encode_predictions
from pet.bench.stage_pairs import COLUMNS, stage_names
from pet.bench.stats import OVER_EXAMPLES, OVER_SEEDS
from pet.bench.store import ResultsStore

N = 200
GOLD = (np.arange(N) % 2).astype(np.int16)
SEEDS = (13, 21, 42)
RESAMPLES = 500


def _row(method, stage, seed, right, pvp=None, key=None, final=False):
    pred = np.where(right, GOLD, 1 - GOLD).astype(np.int16)
    score = float(right.mean())
    return {
        "task": "sst2", "method": method, "method_name": method, "stage": stage, "pvp": pvp, "key": key or stage,
        "final": final, "k": 16, "seed": seed, "score": score, "metric": "accuracy", "metrics": {"accuracy": score},
        "predictions": encode_predictions(["0", "1"], pred, GOLD), "inputs": {"test": "sst2-test-sha"},
        "split": {"checksum": f"sst2-16-{seed}"}, "test": {"split": "test", "n": N, "n_full": N, "subset": False, "note": "full"},
        "train_seconds": 1.0, "eval_examples_per_second": 50.0, "peak_memory_mb": 100.0, "trained_parameters": 10,
        "cell_seconds": 5.0, "model": "tiny-mlm", "timestamp": "2026-01-02T00:00:00+00:00", "versions": {"pet": "0.1.0"},
        "machine": {"processor": "x86_64", "sched_cpus": 2}, "git_commit": "a" * 40, "git_dirty": False,
    }


def _store(root: Path, with_pet: bool = True) -> Path:
    """pet: pvp[p1:v], pvp[p1:v]#1 (a repetition), pvp[p2:v] (seeds 13 and 21 only), ensemble,
    distilled (final). Per seed the ensemble is right on 140 of 200 examples, the distilled stage
    on exactly the same ones, pvp[p1:v] on 120 of those 140 (exactly 10 points fewer).
    cls-ft: one stage only."""
    rng = np.random.default_rng(0)
    st = ResultsStore(root)
    for seed in SEEDS:
        order = rng.permutation(N)
        ens = np.zeros(N, dtype=bool)
        ens[order[:140]] = True
        p1 = np.zeros(N, dtype=bool)
        p1[order[:120]] = True
        rows = [_row("pet", "pvp", seed, p1, pvp="p1:v", key="pvp[p1:v]"),
                _row("pet", "pvp", seed, rng.random(N) < 0.6, pvp="p1:v", key="pvp[p1:v]#1")]
        if seed != 42:
            rows.append(_row("pet", "pvp", seed, rng.random(N) < 0.6, pvp="p2:v", key="pvp[p2:v]"))
        rows += [_row("pet", "ensemble", seed, ens), _row("pet", "distilled", seed, ens.copy(), final=True)]
        if with_pet:
            st.append_cell(f"pet-{seed}", rows)
        st.append_cell(f"cls-ft-{seed}", [_row("cls-ft", "final", seed, rng.random(N) < 0.65, final=True)])
    return root


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stage_pairs")
    rep = build_report(_store(tmp / "res"), output=tmp / "out", plots=False, resamples=RESAMPLES)
    return rep, tmp / "out"


def _pairs(rep) -> dict:
    sp = rep.tables["stage_pairs"]
    return {(r.method, r.stage_a, r.stage_b): r for r in sp.itertuples()}


def test_identical_stages_differ_by_zero_with_a_zero_width_interval(report):
    r = _pairs(report[0])[("pet", "distilled", "ensemble")]
    assert r.mean_a == pytest.approx(0.7) and r.mean_b == pytest.approx(0.7)
    assert r.diff == 0.0 and r.ci95_low == 0.0 and r.ci95_high == 0.0
    assert r.p_value == 1.0 and r.n_seeds == 3 and r.ci_over == OVER_EXAMPLES


def test_a_constant_difference_is_recovered_inside_its_interval(report):
    r = _pairs(report[0])[("pet", "distilled", "pvp[p1:v]")]
    assert r.diff == pytest.approx(0.1) and r.mean_a - r.mean_b == pytest.approx(0.1)
    assert 0 < r.ci95_low < 0.1 < r.ci95_high  # A is right wherever B is: every replicate difference >= 0
    assert r.p_value < 0.01 and r.n_seeds == 3


def test_same_bootstrap_and_seeding_as_the_method_pairs(report):
    """The interval is stats.paired_comparison's on the same runs, seeded with stream(task, K, method, A, B)."""
    from pet.bench.report import load_rows
    from pet.bench.stats import paired_comparison, stream
    from pet.bench.tables import _metric, _run

    df, _ = load_rows(report[1].parent / "res")
    g = df[df["method"] == "pet"]
    a = g[g["key"] == "distilled"].sort_values("seed").to_dict("records")
    b = g[g["key"] == "pvp[p1:v]#1"].sort_values("seed").to_dict("records")
    metric, labels = _metric(a + b)
    c = paired_comparison([_run(x, labels) for x in a], [_run(x, labels) for x in b], metric, resamples=RESAMPLES,
                          seed=stream("sst2", "16", "pet", "distilled", "pvp[p1:v]#1"))
    r = _pairs(report[0])[("pet", "distilled", "pvp[p1:v]#1")]
    assert (r.diff, r.ci95_low, r.ci95_high, r.p_value) == (c.mean, c.low, c.high, c.p_value)


def test_pairs_by_seed_and_names_stages_by_key(report):
    pairs = _pairs(report[0])
    assert [k[2] for k in pairs if k[0] == "pet"] == ["pvp[p1:v]", "pvp[p1:v]#1", "pvp[p2:v]", "ensemble"]
    assert pairs[("pet", "distilled", "pvp[p2:v]")].n_seeds == 2  # pvp[p2:v] has no seed 42


def test_a_method_with_one_stage_has_no_rows(report):
    sp = report[0].tables["stage_pairs"]
    assert len(sp) == 4 and set(sp["method"]) == {"pet"}


def test_csv_columns_and_markdown_section(report):
    import pandas as pd

    rep, out = report
    assert list(pd.read_csv(out / "stage_pairs.csv").columns) == COLUMNS
    section = rep.section("Stages of one method (paired)")
    assert "| sst2 | 16 | pet | distilled | ensemble | +0.0 | [+0.0, +0.0] | 1.000 | 3 | within noise |" in section
    line = next(x for x in section.splitlines() if "| distilled | pvp[p1:v] |" in x)
    assert "| +10.0 |" in line and line.endswith("| 3 | distilled better |")
    assert "`stage_pairs.csv`" in rep.section("Files")


def test_no_section_and_no_csv_without_a_pair(tmp_path):
    rep = build_report(_store(tmp_path / "res", with_pet=False), output=tmp_path / "out", plots=False, resamples=RESAMPLES)
    assert len(rep.tables["stage_pairs"]) == 0 and list(rep.tables["stage_pairs"].columns) == COLUMNS
    assert rep.section("Stages of one method") == "" and "Stages of one method" not in rep.markdown
    assert not (tmp_path / "out" / "stage_pairs.csv").exists()


def test_rows_without_predictions_or_keys_fall_back(tmp_path):
    """Rows stored before keys, `final` marks and predictions: names from stage[pvp] (a repeat
    numbered #1), the legacy headline rule for A, intervals over seeds only."""
    st = ResultsStore(tmp_path / "res")
    scores = [("pvp", "p1:v", (0.6, 0.7, 0.8)), ("pvp", "p1:v", (0.5, 0.5, 0.5)), ("ensemble", None, (0.7, 0.7, 0.9))]
    for i, seed in enumerate(SEEDS):
        rows = []
        for stage, pvp, sc in scores:
            r = {k: v for k, v in _row("old", stage, seed, np.ones(N, dtype=bool)).items() if k not in ("key", "final", "predictions")}
            rows.append({**r, "pvp": pvp, "score": sc[i], "metrics": {"accuracy": sc[i]}})
        st.append_cell(f"old-{seed}", rows)
    sp = build_report(tmp_path / "res", write=False, resamples=RESAMPLES).tables["stage_pairs"]
    assert list(zip(sp["stage_a"], sp["stage_b"])) == [("ensemble", "pvp[p1:v]"), ("ensemble", "pvp[p1:v]#1")]
    assert set(sp["ci_over"]) == {OVER_SEEDS} and set(sp["n_seeds"]) == {3}
    assert sp["diff"].tolist() == pytest.approx([0.2 / 3, 2.3 / 3 - 0.5])  # ensemble 0.7, 0.7, 0.9 against each PVP row
    assert sp["ci95_low"].iloc[0] == pytest.approx(0.0) and sp["ci95_high"].iloc[0] == pytest.approx(0.1)  # per-seed diffs 0.1, 0, 0.1


def test_stage_names():
    recs = [{"key": "pvp[a:v]"}, {"stage": "pvp", "pvp": "a:v"}, {"stage": "pvp", "pvp": "a:v"}, {"key": float("nan"), "stage": "ensemble"}]
    assert stage_names(recs) == ["pvp[a:v]", "pvp[a:v]#1", "pvp[a:v]#2", "ensemble"]
