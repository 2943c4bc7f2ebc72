"""STS-B-style regression through two label words (LM-BFF): KL training to [1 - y', y'] and
Pearson/Spearman from p(high)."""

from __future__ import annotations

import numpy as np
import pytest

from pet.data.registry import load_task, task_pvps
from pet.evaluation import evaluate
from pet.examples import Example
from pet.methods import FitSetup, get_method
from pet.methods.base import regression_targets
from pet.metrics import regression_scores

pytestmark = pytest.mark.usefixtures("one_thread")


def _examples():
    pairs = [("a man plays a guitar", "a man plays music", 4.2), ("a cat sleeps", "the stock market fell", 0.2),
             ("two dogs run", "dogs are running", 3.6), ("a woman cooks", "a plane lands", 0.8),
             ("kids play football", "children play soccer", 4.8), ("it rains", "the sun shines", 1.4)]
    return [Example({"text_a": a, "text_b": b}, "1" if y >= 2.5 else "0", f"s{i}", {"score": y}) for i, (a, b, y) in enumerate(pairs)]


def test_regression_targets_are_lmbffs_interpolation():
    task = load_task("stsb")
    setup = FitSetup("m", list(task.label_ids), regression=task.regression)
    t = regression_targets(_examples(), setup)
    hi, lo = task.label_ids.index(task.regression["high_label"]), task.label_ids.index(task.regression["low_label"])
    np.testing.assert_allclose(t[:, hi], [0.84, 0.04, 0.72, 0.16, 0.96, 0.28])
    np.testing.assert_allclose(t[:, lo] + t[:, hi], 1.0)
    assert regression_targets(_examples(), FitSetup("m", ["0", "1"])) is None


@pytest.mark.parametrize("method", ["prompt-ft", "cls-ft"])
def test_regression_task_trains_with_kl_and_reports_pearson(tiny_bert_dir, method):
    task = load_task("stsb")
    pvps = [] if method == "cls-ft" else task_pvps(task)[:1]
    setup = FitSetup(tiny_bert_dir, list(task.label_ids), pvps, seed=1, max_length=48, regression=task.regression)
    fitted = get_method(method).fit(_examples(), [], {"steps": 3, "lr": 1e-3}, setup)
    log = next(iter(fitted.logs.values()))
    assert all("kl" in e and "ce" not in e for e in log.entries) and log.config["temperature"] == 1.0
    (row,) = [r for r in evaluate(fitted, _examples(), task) if r["final"]]
    assert task.metric == "pearson" and set(row["metrics"]) >= {"pearson", "accuracy"}
    # independent: Pearson of p(high)-interpolated scores against the gold scores
    lp = fitted.predictor.predict_log_proba(_examples())
    expected = np.corrcoef(regression_scores(task, lp), [e.meta["score"] for e in _examples()])[0, 1]
    assert row["score"] == pytest.approx(expected, abs=1e-9)
