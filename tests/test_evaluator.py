"""The one evaluator (in memory = one chunk of the streamed one), per-example predictions in rows,
the task's metric list declared once, method traits, and options declared once (same_option,
custom checks) for the soft-prompt and demonstration configs."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from pet.data.registry import load_task
from pet.errors import ConfigError, DataError
from pet.evaluation.evaluator import (
    PREDICTION_KEYS,
    evaluate,
    evaluate_chunks,
    without_predictions,
    zero_shot_summary,
)
from pet.examples import Example
from pet.methods import Fitted, Stage, available_methods, get_method
from pet.methods.base import register_method
from pet.metrics import COMMON_METRICS, compute_metric, metric_names
from pet.options import Options, option, same_option


class Scored:
    """A predictor whose label log-probs are a fixed function of the text (no model: fast)."""

    def __init__(self, labels, shift=0.0):
        self.labels, self.shift, self.calls = labels, shift, []

    def predict_log_proba(self, examples, progress=False, cache=None):
        self.calls.append(len(examples))
        z = np.array([[np.sin(len(e.fields["text_a"]) * (j + 1) + self.shift) for j in range(len(self.labels))] for e in examples])
        return z - np.log(np.exp(z).sum(1, keepdims=True))


def _fitted(labels, n_stages=2):
    stages = [Stage("pvp", Scored(labels, shift=i), pvp=f"p{i}:v", extra={"template": "{text_a} {mask}"}) for i in range(n_stages)]
    return Fitted("fake", list(labels), Options(), stages, stages[-1].key, model="m")


def _examples(labels, n=23):
    return [Example({"text_a": "x" * (i + 1)}, labels[(i * 7) % len(labels)], f"e{i}") for i in range(n)]


def test_rows_carry_per_example_predictions_that_the_metrics_agree_with():
    task = load_task("sst2")
    labels = ["1", "0"]  # the fitted labels' order differs from the task's: pred/gold index fitted.labels
    fitted, exs = _fitted(labels), _examples(labels)
    rows = evaluate(fitted, exs, task)
    assert [r["key"] for r in rows] == ["pvp[p0:v]", "pvp[p1:v]"] and [r["final"] for r in rows] == [False, True]
    for r, st in zip(rows, fitted.stages):
        lp = st.predictor.predict_log_proba(exs)
        assert r["pred"].dtype.kind == "i" and r["gold"].dtype.kind == "i"
        np.testing.assert_array_equal(r["pred"], lp.argmax(1))
        np.testing.assert_array_equal(r["gold"], [labels.index(e.label) for e in exs])
        assert r["metrics"]["accuracy"] == pytest.approx(float(np.mean(r["pred"] == r["gold"])))
        gold, pred = [labels[i] for i in r["gold"]], [labels[i] for i in r["pred"]]
        assert r["metrics"]["macro_f1"] == pytest.approx(compute_metric("macro_f1", gold, pred, labels=task.label_ids))
        assert r["n"] == len(exs) and r["score"] == r["metrics"]["accuracy"] and "pred_score" not in r
    assert set(without_predictions(rows[0])) == set(rows[0]) - set(PREDICTION_KEYS)


def test_chunked_evaluation_equals_in_memory_evaluation():
    task = load_task("trec")
    labels = list(task.label_ids)
    fitted, exs = _fitted(labels, 3), _examples(labels, 31)
    whole = evaluate(fitted, exs, task)
    chunked = evaluate_chunks(fitted, (exs[i : i + 4] for i in range(0, len(exs), 4)), task)
    assert fitted.stages[0].predictor.calls[-8:] == [4] * 7 + [3]  # really scored chunk by chunk
    for a, b in zip(whole, chunked):
        assert a["metrics"] == b["metrics"] and a["n"] == b["n"] == 31
        np.testing.assert_array_equal(a["pred"], b["pred"])
        np.testing.assert_array_equal(a["gold"], b["gold"])
    report = zero_shot_summary(chunked, fitted, task, "test")
    assert [p["pattern"] for p in report["pvps"]] == ["p0", "p1", "p2"] and report["n"] == 31


def test_regression_rows_carry_scores_and_correlations_from_them():
    task = load_task("stsb")
    labels = list(task.label_ids)
    exs = [Example({"text_a": "y" * (i + 2), "text_b": "z"}, labels[i % 2], f"s{i}", {"score": float(i % 5)}) for i in range(12)]
    fitted = _fitted(labels, 1)
    (row,) = evaluate(fitted, exs, task)
    assert row["pred_score"].dtype == np.float64 and row["pred_score"].shape == (12,)
    np.testing.assert_array_equal(row["gold_score"], [e.meta["score"] for e in exs])
    assert row["score"] == pytest.approx(np.corrcoef(row["pred_score"], row["gold_score"])[0, 1])
    (chunked,) = evaluate_chunks(fitted, [exs[:5], exs[5:]], task)
    np.testing.assert_allclose(chunked["pred_score"], row["pred_score"])
    assert chunked["metrics"] == pytest.approx(row["metrics"])


def test_metric_list_is_declared_once_without_repeats():
    mrpc = load_task("mrpc")  # metric f1, extra accuracy: accuracy is also a common metric
    assert metric_names(mrpc) == ["f1", "accuracy", "macro_f1"]
    assert metric_names(mrpc, common=False) == ["f1", "accuracy"]
    labels = list(mrpc.label_ids)
    exs = [Example({"text_a": "q" * (i + 1), "text_b": "r"}, labels[i % 2], f"m{i}") for i in range(10)]
    (row,) = evaluate(_fitted(labels, 1), exs, mrpc)
    assert list(row["metrics"]) == metric_names(mrpc) and set(COMMON_METRICS) <= set(row["metrics"])


@pytest.mark.parametrize(
    "exs,pattern",
    [
        ([], r"dev: no examples to evaluate; fix:"),
        ([Example({"text_a": "a"}, None, "u1")], r"dev: example 'u1' has no label; fix:"),
        ([Example({"text_a": "a"}, "7", "u2")], r"dev: example 'u2': label '7' is not one of \['0', '1'\]; fix:"),
    ],
)
def test_bad_evaluation_input_is_one_line_with_a_fix(exs, pattern):
    with pytest.raises(DataError, match=pattern):
        evaluate(_fitted(["0", "1"], 1), exs, load_task("sst2"), split="dev")


def test_method_traits_of_the_built_in_methods():
    traits = {n: (m.baseline, m.uses_unlabelled, m.distils) for n in available_methods() for m in [get_method(n)]}
    assert traits["cls-ft"] == traits["zero-shot"] == (True, False, False)
    assert traits["pet"] == traits["ipet"] == (False, True, True)
    for name in ("prompt-ft", "prompt-tuning", "p-tuning", "p-tuning-ft", "deep-prompt"):
        assert traits[name] == (False, False, False), name
    m = register_method("trait-probe", "baseline", Options, lambda *a: None, needs_pvps=False, replace=True)
    assert (m.baseline, m.uses_unlabelled, m.distils) == (False, False, False)  # keyword defaults


def test_same_option_and_custom_checks_come_from_one_declaration():
    from dataclasses import dataclass

    from pet.methods.soft import PromptTuningOptions, PTuningFTOptions
    from pet.methods.zero_shot import ZeroShotOptions
    from pet.models.soft import SoftConfig
    from pet.prompts.demonstrations import DemoConfig

    def help_of(cls, name):
        return next(d for d in cls.describe() if d["name"] == name)

    for key in ("encoder", "init", "verbalizer", "lstm_layers", "hidden_size"):
        a, b = help_of(SoftConfig, key), help_of(PromptTuningOptions, key)
        assert (a["help"], a["choices"], a["min"], a["default"]) == (b["help"], b["choices"], b["min"], b["default"]), key
    assert help_of(PTuningFTOptions, "tune")["default"] == "full" and help_of(PromptTuningOptions, "tune")["default"] == "frozen"
    assert help_of(ZeroShotOptions, "demo_sets")["help"] == help_of(DemoConfig, "sets")["help"]
    # DemoConfig's similarity check guards the methods' option, the config and the CLI flag alike
    with pytest.raises(ConfigError, match=r"zero-shot options: demo_similarity='sbert': not a similarity; fix: use none, mlm"):
        ZeroShotOptions.from_dict({"demo_similarity": "sbert"})
    with pytest.raises(ConfigError, match=r"demonstrations: similarity='st:': not a similarity"):
        DemoConfig(similarity="st:")
    p = argparse.ArgumentParser()
    ZeroShotOptions.add_arguments(p)
    assert p.parse_args(["--demo-similarity", "st:m"]).demo_similarity == "st:m"
    with pytest.raises(SystemExit):
        p.parse_args(["--demo-similarity", "sbert"])
    with pytest.raises(ConfigError, match=r"soft config: encoder='gru': not an allowed value; fix: use one of lstm, mlp"):
        SoftConfig(encoder="gru")
    assert PromptTuningOptions(encoder="mlp", seed=4).soft_config() == SoftConfig(encoder="mlp", seed=4)

    @dataclass
    class Base(Options):
        n: int = option(3, "how many", min=1, check=lambda v: ("odd", "use an even number") if v % 2 else None)

    @dataclass
    class Derived(Options):
        m: int = same_option(Base, "n", default=4)

    assert Derived().m == 4 and help_of(Derived, "m")["help"] == "how many"
    with pytest.raises(ConfigError, match=r"m=5: odd; fix: use an even number"):
        Derived(m=5)
    with pytest.raises(ConfigError, match=r"m=0: out of range"):
        Derived(m=0)
    with pytest.raises(ConfigError, match=r"has no option 'k'"):
        same_option(Base, "k")
