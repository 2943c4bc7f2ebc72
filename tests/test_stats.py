"""`pet.bench.stats`: bootstrap intervals and paired comparisons on cases with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pet.bench.stats import (
    OVER_EXAMPLES,
    OVER_SEEDS,
    Metric,
    Run,
    _rowwise_correlation,
    bootstrap_mean,
    bootstrap_p_value,
    confusion_metric,
    mean_comparison,
    paired_comparison,
)
from pet.metrics import compute_metric

ACC = Metric("accuracy", 2)


def _runs(correct_per_seed: list[np.ndarray]) -> list[Run]:
    """Binary runs whose per-example correctness is given (gold all 1, pred 1 where correct)."""
    out = []
    for s, c in enumerate(correct_per_seed):
        gold = np.ones(len(c), dtype=np.int16)
        out.append(Run(s, float(np.mean(c)), gold, np.where(c, 1, 0).astype(np.int16)))
    return out


@pytest.mark.parametrize("n_labels", [2, 3, 5])
def test_confusion_metrics_equal_compute_metric(n_labels):
    rng = np.random.default_rng(n_labels)
    labels = [str(i) for i in range(n_labels)]
    for trial in range(25):
        n = int(rng.integers(3, 80))
        gold, pred = rng.integers(0, n_labels, n), rng.integers(0, n_labels, n)
        if trial % 5 == 0:
            pred[:] = gold[0]  # a constant prediction: undefined MCC is 0, unseen labels score F1 0
        conf = np.zeros((n_labels, n_labels))
        np.add.at(conf, (gold, pred), 1)
        for name in ("accuracy", "macro_f1", "mcc") + (("f1",) if n_labels == 2 else ()):
            want = compute_metric(name, [str(g) for g in gold], [str(p) for p in pred], labels=labels)
            assert confusion_metric(name, conf, pos_label=1) == pytest.approx(want, abs=1e-12), (name, trial)


def test_rowwise_correlations_equal_compute_metric():
    rng = np.random.default_rng(0)
    x = np.round(rng.random((6, 40)) * 5) / 5  # ties, as in STS-B's gold scores
    y = x + rng.normal(0, 0.3, x.shape)
    y[0] = 1.0  # a constant resample scores 0
    for name in ("pearson", "spearman"):
        got = _rowwise_correlation(name, x, y)
        assert got == pytest.approx([compute_metric(name, list(a), list(b)) for a, b in zip(x, y)], abs=1e-12)


def test_constant_difference_gives_a_zero_width_interval_at_that_difference():
    n = 200
    a = _runs([np.ones(n, bool)] * 3)  # always right
    b = _runs([np.zeros(n, bool)] * 3)  # always wrong
    c = paired_comparison(a, b, ACC, resamples=2000, seed=1)
    assert c.over == OVER_EXAMPLES and c.n_seeds == 3 and c.n_examples == n
    assert c.mean == c.low == c.high == 1.0 and not c.within_noise
    assert c.p_value == pytest.approx(2 / 2001)  # no replicate at or below 0
    # seeds only (no stored predictions): a per-seed difference of exactly 0.05
    sa = [Run(s, v + 0.05) for s, v in enumerate([0.6, 0.7, 0.9])]
    sb = [Run(s, v) for s, v in enumerate([0.6, 0.7, 0.9])]
    c = paired_comparison(sa, sb, ACC, seed=1)
    assert c.over == OVER_SEEDS and c.low == pytest.approx(0.05) and c.high == pytest.approx(0.05) and c.mean == pytest.approx(0.05)


def test_pure_noise_pair_covers_zero_with_a_large_p_value():
    rng = np.random.default_rng(7)
    n = 500
    # the same accuracy, errors on different examples: the observed difference is exactly 0
    base = rng.random((4, n)) < 0.7
    a = _runs(list(base))
    b = _runs([np.roll(c, 1) for c in base])
    c = paired_comparison(a, b, ACC, seed=3)
    assert c.mean == pytest.approx(0.0) and c.low < 0 < c.high and c.within_noise and c.p_value > 0.8
    # independent noise of the same rate
    b = _runs(list(rng.random((4, n)) < 0.7))
    c = paired_comparison(a, b, ACC, seed=3)
    assert c.low <= 0 <= c.high and c.p_value > 0.05
    # identical methods: every replicate is 0
    c = paired_comparison(a, a, ACC, seed=3)
    assert c.low == c.high == 0 and c.p_value == 1.0


def test_a_real_difference_is_detected():
    rng = np.random.default_rng(11)
    n = 800
    b = rng.random((3, n)) < 0.6
    a = b | (rng.random((3, n)) < 0.25)  # A fixes a quarter of B's errors
    c = paired_comparison(_runs(list(a)), _runs(list(b)), ACC, seed=0)
    assert 0 < c.low < c.mean < c.high and c.p_value < 0.01 and not c.within_noise


def test_bernoulli_mean_interval_matches_the_normal_approximation():
    """One seed, n predictions each right with probability 1/2: the bootstrap interval of the
    accuracy is p ± 1.96 sqrt(p(1-p)/n) within 0.003 (Monte-Carlo error of the 2.5% quantile
    with 4,000 resamples is about 0.0005)."""
    n = 2000
    correct = np.zeros(n, bool)
    correct[: n // 2] = True
    iv = bootstrap_mean(_runs([correct]), ACC, resamples=4000, seed=5)
    half = 1.96 * math.sqrt(0.25 / n)
    assert iv.over == OVER_EXAMPLES and iv.mean == 0.5
    assert iv.low == pytest.approx(0.5 - half, abs=0.003) and iv.high == pytest.approx(0.5 + half, abs=0.003)


def test_hierarchical_replicates_vary_more_than_either_level_alone():
    """The variance of a mean resampled at both levels is the seeds' part plus the examples'."""
    rng = np.random.default_rng(2)
    n = 300
    accs = [0.55, 0.7, 0.85]
    runs = _runs([rng.random(n) < p for p in accs])
    both = bootstrap_mean(runs, ACC, seed=0)
    seeds = bootstrap_mean([Run(r.seed, r.score) for r in runs], ACC, seed=0)
    one = bootstrap_mean(runs[1:2], ACC, seed=0)  # examples only
    assert seeds.over == OVER_SEEDS and both.over == OVER_EXAMPLES
    assert both.replicates.std() > seeds.replicates.std() and both.replicates.std() > one.replicates.std()
    want = math.sqrt(np.var([r.score for r in runs]) / 3 + np.mean([r.score * (1 - r.score) / n for r in runs]) / 3)
    assert both.replicates.std() == pytest.approx(want, rel=0.1)
    # reproducible: the same seed gives the same interval
    again = bootstrap_mean(runs, ACC, seed=0)
    assert (again.low, again.high) == (both.low, both.high)


def test_single_seed_without_predictions_has_no_interval():
    iv = bootstrap_mean([Run(13, 0.8)], ACC)
    assert iv.mean == 0.8 and math.isnan(iv.low) and math.isnan(iv.high) and iv.over == ""


def test_other_metrics_are_recomputed_per_resample():
    """MCC of a run that is perfect on every resample is 1; a regression run with pred = 2 * gold
    + 1 has Pearson 1 on every resample; a noisy MCC interval contains its point estimate."""
    n = 300
    gold = np.arange(n) % 3
    perfect = [Run(s, 1.0, gold, gold) for s in range(3)]
    iv = bootstrap_mean(perfect, Metric("mcc", 3), seed=0)
    assert iv.low == iv.high == 1.0
    scores = np.linspace(0, 5, n)
    reg = [Run(s, 1.0, scores, 2 * scores + 1) for s in range(2)]
    iv = bootstrap_mean(reg, Metric("pearson"), resamples=300, seed=0)
    assert iv.low == pytest.approx(1.0) and iv.high == pytest.approx(1.0)
    rng = np.random.default_rng(4)
    pred = np.where(rng.random(n) < 0.7, gold, (gold + 1) % 3)
    point = compute_metric("mcc", [str(g) for g in gold], [str(p) for p in pred], labels=["0", "1", "2"])
    iv = bootstrap_mean([Run(0, point, gold, pred)], Metric("mcc", 3), seed=0)
    assert iv.low < point < iv.high and iv.high - iv.low < 0.25


def test_mean_over_tasks_and_p_value_rule():
    t1 = paired_comparison(_runs([np.ones(50, bool)] * 2), _runs([np.r_[np.ones(45, bool), np.zeros(5, bool)]] * 2), ACC, seed=1)
    t2 = paired_comparison(*[[Run(s, v) for s, v in enumerate(x)] for x in ([0.5, 0.6], [0.2, 0.3])], ACC, seed=2)
    m = mean_comparison([t1, t2])
    assert m.mean == pytest.approx((0.1 + 0.3) / 2) and m.over == OVER_SEEDS and m.resamples == 2000
    assert m.low == pytest.approx(np.quantile((t1.replicates + t2.replicates) / 2, 0.025))
    assert bootstrap_p_value(np.array([-1.0, 1.0, 2.0, 3.0])) == pytest.approx(2 * 2 / 5)


def test_paired_comparison_refuses_different_test_examples():
    a = [Run(0, 1.0, np.array([0, 1]), np.array([0, 1]))]
    b = [Run(0, 0.5, np.array([1, 1]), np.array([0, 1]))]
    with pytest.raises(ValueError, match="gold labels differ"):
        paired_comparison(a, b, ACC)
    with pytest.raises(ValueError, match="same seed order"):
        paired_comparison([Run(0, 1.0), Run(1, 1.0)], [Run(1, 1.0), Run(0, 1.0)], ACC)
