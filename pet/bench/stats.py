"""Uncertainty of benchmark scores: bootstrap intervals and paired comparisons (numpy + scipy).

A method's score on a task at one K is the mean over seeds (each seed: its own K-shot split and
training run) of a metric over the test examples. Both levels are samples, so the interval
resamples both — a hierarchical bootstrap:

1. draw ``S`` seeds with replacement from the ``S`` seeds run;
2. for every drawn seed, draw its ``n`` test examples with replacement from that seed's stored
   per-example predictions and recompute the metric on them;
3. average over the drawn seeds. Repeat ``resamples`` times (2,000 by default).

The 95% interval is the percentile interval of those replicates. Rows stored without per-example
predictions (stores written before predictions were kept) resample seeds only (step 2 is
skipped), and say so (:data:`OVER_SEEDS`); a single seed without predictions gets no interval.

**Paired comparison** of methods A and B on identical splits (same task, K, seeds and test
examples): every replicate uses the *same* drawn seeds and the *same* drawn example indices for
both methods, and records ``mean_A - mean_B``. The interval is the percentile interval of those
differences; the p-value is the two-sided **bootstrap p-value**: twice the smaller share of
replicates on either side of zero, ``2 (min(#{d* <= 0}, #{d* >= 0}) + 1) / (B + 1)`` capped at 1
(so it is never exactly 0, and ``p < 0.05`` goes with a 95% interval that excludes 0).

How the metric is recomputed per replicate, fast and exactly:

- label metrics (accuracy, macro-F1, binary F1, MCC) depend only on the confusion matrix, and
  the counts of (gold, prediction) pairs in a resample of ``n`` examples are multinomial with
  the observed shares; the replicates draw those counts (jointly over the methods of a pair)
  and evaluate the metric on each drawn confusion matrix (:func:`confusion_metric`: the same
  definitions as :func:`pet.metrics.compute_metric`, which the tests check it against);
- regression metrics (Pearson, Spearman) resample example indices and compute the correlation
  row-wise (a constant resample scores 0, as in :func:`pet.metrics.compute_metric`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..metrics import REGRESSION_METRICS

RESAMPLES = 2000
CONFIDENCE = 0.95
LABEL_METRICS = ("accuracy", "macro_f1", "mcc", "f1")
#: what an interval resampled (the ``over`` of :class:`Interval`)
OVER_EXAMPLES = "seeds x test examples"
OVER_SEEDS = "seeds only"
_CHUNK = 4_000_000  # resampled values held at once (regression metrics)


@dataclass(frozen=True)
class Run:
    """One seed's evaluation of one method on a task's test set: its stored score and, when the
    row kept them, per-example gold and predicted label indices (regression: scores)."""

    seed: Any
    score: float
    gold: np.ndarray | None = None
    pred: np.ndarray | None = None

    @property
    def has_predictions(self) -> bool:
        return self.gold is not None and self.pred is not None and len(self.gold) == len(self.pred) > 0


@dataclass(frozen=True)
class Metric:
    """A metric by name (:data:`pet.metrics.METRICS`), with the number of labels and, for binary
    ``f1``, the index of the positive label."""

    name: str
    n_labels: int = 0
    pos_label: int | None = None


@dataclass
class Interval:
    """A point estimate with its bootstrap interval; ``over`` says what was resampled
    (:data:`OVER_EXAMPLES`, :data:`OVER_SEEDS`, or "" when there is no interval)."""

    mean: float
    low: float
    high: float
    over: str
    n_seeds: int
    n_examples: int | None
    resamples: int
    replicates: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))


@dataclass
class Comparison(Interval):
    """A paired difference ``A - B`` (``mean``) with its interval and two-sided p-value."""

    p_value: float = math.nan

    @property
    def within_noise(self) -> bool:
        """True when the interval covers 0 (or there is none)."""
        return not (self.low > 0 or self.high < 0)


def stream(*keys: Any) -> list[int]:
    """A reproducible random stream per group (e.g. task, K, method): independent draws per
    group, identical on every run."""
    return [zlib.crc32(str(k).encode("utf-8")) for k in keys]


# ----------------------------------------------------------------------------- metrics


def confusion_metric(name: str, confusion: np.ndarray, pos_label: int | None = None) -> np.ndarray:
    """A label metric of every confusion matrix in ``confusion`` ``[..., L, L]`` (rows gold,
    columns predicted); as :func:`pet.metrics.compute_metric` with every label in the label set
    (a label never seen scores F1 0; an undefined MCC is 0)."""
    c = np.asarray(confusion, dtype=np.float64)
    n = c.sum((-2, -1))
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    if name == "accuracy":
        return tp.sum(-1) / n
    gold, pred = c.sum(-1), c.sum(-2)
    if name == "mcc":  # Gorodkin's multi-class MCC, as sklearn.metrics.matthews_corrcoef
        cov_gp = tp.sum(-1) * n - (gold * pred).sum(-1)
        den = np.sqrt((n**2 - (pred * pred).sum(-1)) * (n**2 - (gold * gold).sum(-1)))
        return np.divide(cov_gp, den, out=np.zeros_like(cov_gp), where=den > 0)
    f1 = np.divide(2 * tp, gold + pred, out=np.zeros_like(tp), where=(gold + pred) > 0)
    if name == "macro_f1":
        return f1.mean(-1)
    if name == "f1":
        return f1[..., -1 if pos_label is None else pos_label]
    raise ValueError(f"{name} is not a label metric; use one of {', '.join(LABEL_METRICS)}")


def _rowwise_correlation(name: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if name == "spearman":
        from scipy.stats import rankdata

        x, y = rankdata(x, axis=-1), rankdata(y, axis=-1)
    x = x - x.mean(-1, keepdims=True)
    y = y - y.mean(-1, keepdims=True)
    den = np.sqrt((x * x).sum(-1) * (y * y).sum(-1))
    num = (x * y).sum(-1)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _resample_examples(metric: Metric, gold: np.ndarray, preds: Sequence[np.ndarray], m: int, rng: np.random.Generator) -> np.ndarray:
    """``[len(preds), m]``: the metric of every prediction array on ``m`` resamples of the
    examples, the same resampled examples for every array."""
    n = len(gold)
    if metric.name in REGRESSION_METRICS:
        out = np.empty((len(preds), m))
        step = max(1, _CHUNK // n)
        for lo in range(0, m, step):
            idx = rng.integers(0, n, size=(min(step, m - lo), n))
            for i, p in enumerate(preds):
                out[i, lo : lo + len(idx)] = _rowwise_correlation(metric.name, gold[idx], p[idx])
        return out
    n_labels = max(metric.n_labels, int(max(gold.max(), *(p.max() for p in preds))) + 1)
    code = gold.astype(np.int64)
    for p in preds:  # one joint cell per (gold, pred_1, ..., pred_k)
        code = code * n_labels + p
    cells, inverse = np.unique(code, return_inverse=True)
    counts = rng.multinomial(n, np.bincount(inverse) / n, size=m)  # [m, cells]
    out = np.empty((len(preds), m))
    for i in range(len(preds)):
        k = len(preds) - 1 - i  # pred_i's digit in the joint code
        g = cells // n_labels ** len(preds)
        p = (cells // n_labels**k) % n_labels
        onehot = np.zeros((len(cells), n_labels * n_labels))
        onehot[np.arange(len(cells)), g * n_labels + p] = 1.0
        conf = (counts @ onehot).reshape(m, n_labels, n_labels)
        out[i] = confusion_metric(metric.name, conf, metric.pos_label)
    return out


# ----------------------------------------------------------------------------- bootstrap


def _replicates(methods: Sequence[Sequence[Run]], metric: Metric, resamples: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """``[len(methods), resamples]`` replicate means over seeds (hierarchical when every run has
    predictions), the same draws for every method; and what was resampled."""
    n_seeds = len(methods[0])
    draws = rng.integers(0, n_seeds, size=(resamples, n_seeds))
    if not all(r.has_predictions for runs in methods for r in runs):
        scores = np.array([[r.score for r in runs] for runs in methods], dtype=np.float64)
        return scores[:, draws].mean(-1), OVER_SEEDS
    values = np.empty((len(methods), resamples, n_seeds))
    for s in range(n_seeds):
        gold = methods[0][s].gold
        if any(not np.array_equal(runs[s].gold, gold) for runs in methods):
            raise ValueError(f"seed {methods[0][s].seed}: the methods' gold labels differ; a paired comparison needs identical test examples")
        slots = draws == s
        if slots.any():
            values[:, slots] = _resample_examples(metric, gold, [runs[s].pred for runs in methods], int(slots.sum()), rng)
    return values.mean(-1), OVER_EXAMPLES


def _interval(cls, mean: float, reps: np.ndarray, over: str, runs: Sequence[Run], confidence: float, **kw) -> Interval:
    n_ex = len(runs[0].gold) if over == OVER_EXAMPLES else None
    if over == OVER_SEEDS and len(runs) < 2:  # one seed, nothing resampled: no interval
        return cls(mean, math.nan, math.nan, "", len(runs), n_ex, 0, np.empty(0), **kw)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(reps, [alpha, 1 - alpha])
    return cls(mean, float(low), float(high), over, len(runs), n_ex, len(reps), reps, **kw)


def bootstrap_mean(runs: Sequence[Run], metric: Metric, *, resamples: int = RESAMPLES, seed: Any = 0,
                   confidence: float = CONFIDENCE) -> Interval:
    """The mean score over ``runs`` (one per seed) with its hierarchical bootstrap interval."""
    if not runs:
        raise ValueError("bootstrap_mean: no runs")
    rng = np.random.default_rng(seed)
    reps, over = _replicates([runs], metric, resamples, rng)
    return _interval(Interval, float(np.mean([r.score for r in runs])), reps[0], over, runs, confidence)


def bootstrap_p_value(replicates: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "the difference is 0" (see the module docstring)."""
    reps = np.asarray(replicates)
    if reps.size == 0:
        return math.nan
    side = min(int((reps <= 0).sum()), int((reps >= 0).sum()))
    return float(min(1.0, 2 * (side + 1) / (reps.size + 1)))


def paired_comparison(runs_a: Sequence[Run], runs_b: Sequence[Run], metric: Metric, *, resamples: int = RESAMPLES,
                      seed: Any = 0, confidence: float = CONFIDENCE) -> Comparison:
    """``mean(A) - mean(B)`` over the same seeds (``runs_a[i]`` and ``runs_b[i]`` share seed,
    split and test examples), its paired bootstrap interval and p-value."""
    if len(runs_a) != len(runs_b) or not runs_a:
        raise ValueError(f"paired_comparison: {len(runs_a)} runs of A but {len(runs_b)} of B; pass one run per shared seed, in the same order")
    if [r.seed for r in runs_a] != [r.seed for r in runs_b]:
        raise ValueError("paired_comparison: the runs of A and B are not in the same seed order")
    rng = np.random.default_rng(seed)
    reps, over = _replicates([runs_a, runs_b], metric, resamples, rng)
    diff = float(np.mean([r.score for r in runs_a]) - np.mean([r.score for r in runs_b]))
    out = _interval(Comparison, diff, reps[0] - reps[1], over, runs_a, confidence)
    out.p_value = bootstrap_p_value(out.replicates)
    return out


def mean_comparison(comparisons: Sequence[Comparison], confidence: float = CONFIDENCE) -> Comparison:
    """The mean of several paired differences (e.g. over tasks), each task's replicates
    resampled independently; the interval and p-value come from the mean replicates. Every
    comparison must have the same number of resamples."""
    if not comparisons or any(not c.over for c in comparisons):
        return Comparison(math.nan, math.nan, math.nan, "", 0, None, 0)
    if len({c.replicates.size for c in comparisons}) != 1:
        raise ValueError("mean_comparison: the comparisons have different numbers of resamples")
    reps = np.mean([c.replicates for c in comparisons], axis=0)
    over = OVER_EXAMPLES if all(c.over == OVER_EXAMPLES for c in comparisons) else OVER_SEEDS
    alpha = (1 - confidence) / 2
    low, high = np.quantile(reps, [alpha, 1 - alpha])
    mean = float(np.mean([c.mean for c in comparisons]))
    n_seeds = min(c.n_seeds for c in comparisons)
    return Comparison(mean, float(low), float(high), over, n_seeds, None, reps.size, reps, p_value=bootstrap_p_value(reps))
