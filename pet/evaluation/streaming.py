"""Streamed evaluation: ``pet zero-shot --data`` scores a file chunk by chunk, keeping only the
predicted and gold label ids (not texts, not scores). Reading in chunks is
:func:`pet.data.stream.iter_chunks`; writing predictions is :mod:`pet.estimator.predict`.

Peak memory depends on ``chunk_size`` and the model, not on the input's length (see
benchmarks/predict_memory.py and the Scale-out section of benchmarks/RESULTS.md).
"""

from __future__ import annotations

import time
from typing import Any, Iterable

import numpy as np

from ..errors import DataError
from ..examples import Example


def zero_shot_stream_report(
    fitted: Any,
    chunks: Iterable[list[Example]],
    task: Any,
    *,
    split: str,
    progress: bool = False,
) -> dict:
    """What :func:`pet.evaluation.evaluator.zero_shot_report` returns, computed chunk by chunk from a
    fitted zero-shot method (``PetClassifier.zero_shot(...).fitted_``): every stage's predicted
    label ids and the gold ids are all that is kept per example."""
    from tqdm.auto import tqdm

    from ..metrics import REGRESSION_METRICS, compute_metric, gold_scores, regression_scores
    from ..utils.versions import package_versions

    labels = list(fitted.labels)
    regression = [m for m in (task.metric, *task.extra_metrics) if m in REGRESSION_METRICS]
    reg_pred: dict[str, list[np.ndarray]] = {st.key: [] for st in fitted.stages}  # regression tasks: p(high)-interpolated scores
    reg_gold: list[float] = []
    preds: dict[str, list[np.ndarray]] = {st.key: [] for st in fitted.stages}
    seconds = {st.key: 0.0 for st in fitted.stages}
    gold: list[np.ndarray] = []
    n = 0
    bar = tqdm(desc="zero-shot", unit="ex", disable=not progress, leave=False)
    for chunk in chunks:
        missing = next((e.guid for e in chunk if e.label is None), None)
        if missing:
            raise DataError(f"{split}: example '{missing}' has no label; fix: give --label-field")
        bad = next((e for e in chunk if e.label not in labels), None)
        if bad is not None:
            raise DataError(f"{split}: example '{bad.guid}': label '{bad.label}' is not one of {labels}; fix: correct it or the verbalizer")
        gold.append(np.array([labels.index(e.label) for e in chunk], dtype=np.int32))
        if regression:
            reg_gold.extend(gold_scores(chunk))
        cache: dict = {}
        for st in fitted.stages:
            t0 = time.perf_counter()
            lp = np.asarray(st.predictor.predict_log_proba(chunk, cache=cache))
            secs = time.perf_counter() - t0
            keys = getattr(st.predictor, "cache_keys", None)
            if keys is not None:  # an ensemble's cost is its members' scoring time
                secs = sum(cache[k][1] for k in keys(chunk) if k in cache)
            seconds[st.key] += secs
            preds[st.key].append(lp.argmax(1).astype(np.int32))
            if regression:
                reg_pred[st.key].append(regression_scores(task, lp[:, [labels.index(x) for x in task.label_ids]]))
        n += len(chunk)
        bar.update(len(chunk))
    bar.close()
    if n == 0:
        raise DataError(f"{split}: no rows; fix: give a file with at least one example")
    g = [labels[i] for i in np.concatenate(gold)]
    rows = []
    for st in fitted.stages:
        pred = [labels[i] for i in np.concatenate(preds[st.key])]
        m = {}
        for name in (task.metric, *task.extra_metrics):
            if name in REGRESSION_METRICS:
                m[name] = compute_metric(name, reg_gold, list(np.concatenate(reg_pred[st.key])))
            else:
                m[name] = compute_metric(name, g, pred, labels=task.label_ids, pos_label=task.positive_label)
        for name in ("accuracy", "macro_f1"):  # what every evaluated row carries (pet.evaluation.evaluator.COMMON_METRICS)
            m.setdefault(name, compute_metric(name, g, pred, labels=task.label_ids, pos_label=task.positive_label))
        rows.append({"stage": st.name, "pvp": st.pvp, "score": float(m[task.metric]), "metrics": m,
                     "eps": n / max(seconds[st.key], 1e-9), "template": st.extra.get("template", "")})
    per = [r for r in rows if r["stage"] == "pvp"]
    ens = next((r for r in rows if r["stage"] == "ensemble"), per[0])
    return {
        "task": task.name, "model": fitted.model, "split": split, "n": n, "metric": task.metric,
        "calibrated": bool(getattr(fitted.options, "calibrate", False)),
        "pvps": [{"pattern": r["pvp"].split(":")[0], "verbalizer": r["pvp"].split(":", 1)[1], "score": r["score"],
                  "examples_per_second": r["eps"], "template": r["template"], "metrics": r["metrics"]} for r in per],
        "ensemble": {"score": ens["score"], "members": [r["pvp"] for r in per], "combine": "mean log-prob", "metrics": ens["metrics"]},
        "versions": package_versions(),
    }
