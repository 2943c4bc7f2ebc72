"""Evaluating a fitted method: any labelled examples (dev, test, a fold) -> one result row per
stage, with every metric the task declares. Fitting never sees these examples; saving is the
caller's choice."""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from ..data.rundata import RunData
from ..utils.defaults import DEFAULT_EVAL_BATCH_SIZE
from ..errors import DataError
from ..examples import Example
from ..methods import FitSetup, Fitted, Stage, get_method
from ..metrics import compute_metric, evaluate_log_probs
from ..options import Options
from ..prompts.spec import PVP
from ..utils.versions import package_versions

#: Metrics every row carries besides the task's own (reports compare tasks on them).
COMMON_METRICS = ("accuracy", "macro_f1")


def all_metrics(task: Any, examples: Sequence[Example], log_probs: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    """The task's metric and extra metrics (regression metrics such as STS-B's Pearson from the
    label probabilities, :func:`pet.metrics.evaluate_log_probs`), plus accuracy and macro-F1 of
    the predicted labels."""
    lp = np.asarray(log_probs)
    if list(labels) != list(task.label_ids):  # columns in the task's label order
        lp = lp[:, [list(labels).index(lab) for lab in task.label_ids]]
    out = evaluate_log_probs(task, examples, lp)
    gold = [e.label for e in examples]
    pred = [task.label_ids[i] for i in lp.argmax(1)]
    for name in COMMON_METRICS:
        if name not in out:
            out[name] = compute_metric(name, gold, pred, labels=task.label_ids, pos_label=task.positive_label)
    return out


def evaluate(
    fitted: Fitted,
    examples: Sequence[Example],
    task: Any,
    *,
    stages: Sequence[str] | None = None,
    split: str = "test",
    progress: bool = False,
    warmup: bool = False,
) -> list[dict]:
    """One row per stage (or per stage key in ``stages``) of ``fitted`` on ``examples``.

    ``task`` gives the metrics (a :class:`pet.data.TaskSpec`: ``metric``, ``extra_metrics``,
    ``label_ids``, ``positive_label``). A row: method, stage, pvp, key, final (the stage that
    stands for the method), score (the task's metric), metric, metrics, n, split, eval_seconds,
    eval_examples_per_second, train_seconds, trained_parameters, extra. An ensemble reuses its
    members' predictions from their own stages; its eval time is theirs summed. ``warmup``
    scores a few examples first so that the timings are steady-state.
    """
    examples = list(examples)
    if not examples:
        raise DataError(f"evaluate: no {split} examples; fix: pass labelled examples")
    unlabelled = [e.guid for e in examples if e.label is None]
    if unlabelled:
        raise DataError(f"evaluate: {split} example '{unlabelled[0]}' has no label ({len(unlabelled)} such); fix: evaluate on labelled examples")
    gold = [e.label for e in examples]
    chosen = fitted.stages if stages is None else [fitted.stage(k) for k in stages]
    if warmup:  # thread pools and allocator first, so examples/s is steady-state
        chosen[0].predictor.predict_log_proba(examples[:4])
    cache: dict = {}
    return [_row(fitted, st, examples, gold, task, cache, split, progress) for st in chosen]


def _row(fitted: Fitted, st: Stage, examples: list[Example], gold: list, task: Any, cache: dict, split: str, progress: bool) -> dict:
    t0 = time.perf_counter()
    lp = np.asarray(st.predictor.predict_log_proba(examples, progress=progress, cache=cache))
    seconds = time.perf_counter() - t0
    keys = getattr(st.predictor, "cache_keys", None)
    if keys is not None:  # an ensemble's cost is its members' scoring time
        seconds = sum(cache[k][1] for k in keys(examples) if k in cache)
    metrics = all_metrics(task, examples, lp, fitted.labels)
    return {
        "method": fitted.method,
        "stage": st.name,
        "pvp": st.pvp,
        "key": st.key,
        "final": st.key == fitted.final,
        "score": float(metrics[task.metric]),
        "metric": task.metric,
        "metrics": metrics,
        "n": len(examples),
        "split": split,
        "eval_seconds": round(seconds, 4),
        "eval_examples_per_second": len(examples) / max(seconds, 1e-9),
        "train_seconds": float(st.train_seconds),
        "trained_parameters": int(st.trained_parameters),
        "extra": dict(st.extra),
    }


def fit_evaluate(
    method: str,
    options: dict | Options | None,
    run: RunData,
    model: str,
    *,
    device: str | None = None,
    progress: bool = False,
) -> tuple[Fitted, list[dict]]:
    """Fit ``method`` on ``run``'s train/dev/unlabelled data, then evaluate every stage on
    ``run.test``: what ``pet train`` does (the bench runner does the same per cell)."""
    m = get_method(method)
    setup = FitSetup(model=model, labels=list(run.task.label_ids), pvps=list(run.pvps), seed=run.seed,
                     max_length=run.task.max_length, device=device, progress=progress, regression=run.task.regression)
    fitted = m.fit(run.train, run.unlabelled, options, setup)
    return fitted, evaluate(fitted, run.test, run.task, progress=progress)


def zero_shot_report(
    model: str,
    examples: Sequence[Example],
    task: Any,
    pvps: Sequence[PVP],
    *,
    split: str = "test",
    calibrate: bool = False,
    batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
    max_length: int | None = None,
    device: str | None = None,
    progress: bool = False,
) -> dict:
    """Zero-shot scores of every PVP and their ensemble on ``examples`` (what ``pet zero-shot``
    prints): ``{task, model, split, n, metric, calibrated, pvps: [{pattern, verbalizer, score,
    examples_per_second, template, metrics}], ensemble: {score, members, combine, metrics}, versions}``."""
    setup = FitSetup(model=model, labels=list(task.label_ids), pvps=list(pvps), max_length=task.max_length, device=device, progress=progress)
    options = {"calibrate": calibrate, "eval_batch_size": batch_size, "max_length": max_length}
    fitted = get_method("zero-shot").fit([], [], options, setup)
    rows = evaluate(fitted, examples, task, split=split, progress=progress, warmup=True)
    per = [r for r in rows if r["stage"] == "pvp"]
    ens = next((r for r in rows if r["stage"] == "ensemble"), per[0])
    return {
        "task": task.name, "model": model, "split": split, "n": len(examples), "metric": task.metric, "calibrated": bool(calibrate),
        "pvps": [{"pattern": r["pvp"].split(":")[0], "verbalizer": r["pvp"].split(":", 1)[1], "score": r["score"],
                  "examples_per_second": r["eval_examples_per_second"], "template": r["extra"].get("template", ""), "metrics": r["metrics"]}
                 for r in per],
        "ensemble": {"score": ens["score"], "members": [r["pvp"] for r in per], "combine": "mean log-prob", "metrics": ens["metrics"]},
        "versions": package_versions(),
    }
