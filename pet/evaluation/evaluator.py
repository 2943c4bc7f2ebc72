"""Evaluating a fitted method: any labelled examples (dev, test, a fold) -> one result row per
stage, with every metric the task declares. Fitting never sees these examples; saving is the
caller's choice."""

from __future__ import annotations

import time
from typing import Any, Iterable, Sequence

import numpy as np

from ..data.rundata import RunData
from ..errors import DataError
from ..examples import Example
from ..methods import FitSetup, Fitted, Stage, get_method
from ..metrics import COMMON_METRICS, gold_scores, prediction_metrics, regression_scores  # noqa: F401  (COMMON_METRICS: re-exported)
from ..options import Options
from ..prompts.spec import PVP
from ..utils.defaults import DEFAULT_EVAL_BATCH_SIZE
from ..utils.versions import package_versions

#: Per-example keys of a row (numpy arrays, in the order of the examples): predicted and gold
#: label indices into ``fitted.labels``; for regression tasks also predicted and gold scores.
PREDICTION_KEYS = ("pred", "gold", "pred_score", "gold_score")


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
    """One row per stage (or per stage key in ``stages``) of ``fitted`` on ``examples``: the
    streamed evaluator (:func:`evaluate_chunks`) given one chunk, so both give the same numbers.

    ``task`` gives the metrics (a :class:`pet.data.TaskSpec`: ``metric``, ``extra_metrics``,
    ``label_ids``, ``positive_label``, ``regression``). A row: method, stage, pvp, key, final
    (the stage that stands for the method), score (the task's metric), metric, metrics
    (:func:`pet.metrics.metric_names`), n, split, eval_seconds, eval_examples_per_second,
    train_seconds, trained_parameters, extra, and the per-example arrays of
    :data:`PREDICTION_KEYS`. An ensemble reuses its members' predictions from their own stages;
    its eval time is theirs summed. ``warmup`` scores a few examples first so that the timings
    are steady-state.
    """
    return evaluate_chunks(fitted, [list(examples)], task, stages=stages, split=split, progress=progress, warmup=warmup)


def evaluate_chunks(
    fitted: Fitted,
    chunks: Iterable[Sequence[Example]],
    task: Any,
    *,
    stages: Sequence[str] | None = None,
    split: str = "test",
    progress: bool = False,
    warmup: bool = False,
) -> list[dict]:
    """:func:`evaluate` over examples arriving in chunks (a file read piece by piece): per example
    only the predicted and gold label indices (and regression scores) are kept, never texts or
    log-probs, so memory does not grow with the chunk size. ``progress`` is passed to the
    predictors (a bar per chunk)."""
    chosen = fitted.stages if stages is None else [fitted.stage(k) for k in stages]
    tallies = [_Tally(st) for st in chosen]
    labels = list(fitted.labels)
    gold: list[np.ndarray] = []
    gold_score: list[float] = []
    for chunk in chunks:
        chunk = list(chunk)
        if not chunk:
            continue
        gold.append(gold_indices(chunk, labels, split))
        if _regression(task):
            gold_score.extend(gold_scores(chunk))
        if warmup and len(gold) == 1:  # thread pools and allocator first, so examples/s is steady-state
            chosen[0].predictor.predict_log_proba(chunk[:4])
        cache: dict = {}
        for t in tallies:
            t.add(chunk, task, labels, cache, progress)
    if not gold:
        raise DataError(f"{split}: no examples to evaluate; fix: pass at least one labelled example")
    g = np.concatenate(gold)
    gs = np.asarray(gold_score, dtype=np.float64) if _regression(task) else None
    return [t.row(fitted, task, g, gs, split) for t in tallies]


def gold_indices(examples: Sequence[Example], labels: list[str], split: str) -> np.ndarray:
    """Each example's label as an index into ``labels``; a missing or unknown label is an error."""
    out = np.empty(len(examples), dtype=np.int64)
    for i, e in enumerate(examples):
        if e.label is None:
            raise DataError(f"{split}: example '{e.guid}' has no label; fix: evaluate on labelled examples (a file: give --label-field)")
        if e.label not in labels:
            raise DataError(f"{split}: example '{e.guid}': label '{e.label}' is not one of {labels}; fix: correct it or the verbalizer")
        out[i] = labels.index(e.label)
    return out


def _regression(task: Any) -> bool:
    """Does ``task`` score through two label words (STS-B)? Then rows carry scores too."""
    return bool(getattr(task, "regression", None))


class _Tally:
    """One stage's predictions accumulated over chunks, and the time spent scoring them."""

    def __init__(self, stage: Stage):
        self.stage = stage
        self.pred: list[np.ndarray] = []
        self.score: list[np.ndarray] = []
        self.seconds = 0.0

    def add(self, chunk: list[Example], task: Any, labels: list[str], cache: dict, progress: bool) -> None:
        predictor = self.stage.predictor
        t0 = time.perf_counter()
        lp = np.asarray(predictor.predict_log_proba(chunk, progress=progress, cache=cache))
        seconds = time.perf_counter() - t0
        keys = getattr(predictor, "cache_keys", None)
        if keys is not None:  # an ensemble's cost is its members' scoring time
            seconds = sum(cache[k][1] for k in keys(chunk) if k in cache)
        self.seconds += seconds
        self.pred.append(lp.argmax(1))
        if _regression(task):  # LM-BFF: p(high)-interpolated scores, columns in the task's label order
            self.score.append(regression_scores(task, lp[:, [labels.index(x) for x in task.label_ids]]))

    def row(self, fitted: Fitted, task: Any, gold: np.ndarray, gold_score: np.ndarray | None, split: str) -> dict:
        st, pred = self.stage, np.concatenate(self.pred)
        pred_score = np.concatenate(self.score) if gold_score is not None else None
        labels = fitted.labels
        metrics = prediction_metrics(task, [labels[i] for i in gold], [labels[i] for i in pred], gold_score, pred_score)
        n = len(gold)
        row = {
            "method": fitted.method, "stage": st.name, "pvp": st.pvp, "key": st.key, "final": st.key == fitted.final,
            "score": float(metrics[task.metric]), "metric": task.metric, "metrics": metrics, "n": n, "split": split,
            "eval_seconds": round(self.seconds, 4), "eval_examples_per_second": n / max(self.seconds, 1e-9),
            "train_seconds": float(st.train_seconds), "trained_parameters": int(st.trained_parameters), "extra": dict(st.extra),
            "pred": pred, "gold": gold.copy(),
        }
        if gold_score is not None:
            row.update(pred_score=pred_score, gold_score=gold_score.copy())
        return row


def without_predictions(row: dict) -> dict:
    """``row`` without its per-example arrays (:data:`PREDICTION_KEYS`): what a JSON summary
    such as ``metrics.json`` keeps."""
    return {k: v for k, v in row.items() if k not in PREDICTION_KEYS}


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
    return zero_shot_summary(rows, fitted, task, split)


def zero_shot_summary(rows: list[dict], fitted: Fitted, task: Any, split: str) -> dict:
    """The zero-shot report (see :func:`zero_shot_report`) from a zero-shot method's evaluated rows."""
    per = [r for r in rows if r["stage"] == "pvp"]
    ens = next((r for r in rows if r["stage"] == "ensemble"), per[0])
    return {
        "task": task.name, "model": fitted.model, "split": split, "n": per[0]["n"], "metric": task.metric,
        "calibrated": bool(getattr(fitted.options, "calibrate", False)),
        "pvps": [{"pattern": r["pvp"].split(":")[0], "verbalizer": r["pvp"].split(":", 1)[1], "score": r["score"],
                  "examples_per_second": r["eval_examples_per_second"], "template": r["extra"].get("template", ""), "metrics": r["metrics"]}
                 for r in per],
        "ensemble": {"score": ens["score"], "members": [r["pvp"] for r in per], "combine": "mean log-prob", "metrics": ens["metrics"]},
        "versions": package_versions(),
    }
