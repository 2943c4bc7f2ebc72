"""Evaluation metrics by name, so task files and reports can refer to them as strings."""

from __future__ import annotations

from typing import Any, Sequence

from .errors import ConfigError

#: Metric names a task file may use: accuracy, macro-averaged F1, Matthews correlation (CoLA),
#: and binary F1 of the positive label (MRPC, QQP).
METRICS = ("accuracy", "macro_f1", "mcc", "f1")


def compute_metric(
    name: str,
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    *,
    labels: Sequence[Any] | None = None,
    pos_label: Any | None = None,
) -> float:
    """One metric over label ids (strings such as ``"0"`` or ``"entailment"``).

    ``labels`` fixes the label set for macro F1 (a class never predicted still counts, as 0);
    ``pos_label`` is the positive label id for binary ``f1`` (default: ``"1"`` if present,
    else the last of ``labels``).
    """
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    if name not in METRICS:
        raise ConfigError(f"metric '{name}': unknown; fix: use one of {', '.join(METRICS)}")
    yt, yp = [str(y) for y in y_true], [str(y) for y in y_pred]
    if len(yt) != len(yp):
        raise ConfigError(f"metric '{name}': {len(yt)} gold labels but {len(yp)} predictions; fix: pass one prediction per example")
    if not yt:
        raise ConfigError(f"metric '{name}': no examples; fix: evaluate on a non-empty set")
    if name == "accuracy":
        return float(accuracy_score(yt, yp))
    if name == "mcc":
        return float(matthews_corrcoef(yt, yp))
    if name == "macro_f1":
        labs = [str(x) for x in labels] if labels is not None else sorted(set(yt) | set(yp))
        return float(f1_score(yt, yp, labels=labs, average="macro", zero_division=0))
    # binary f1
    if pos_label is None:
        if labels is not None and len(labels) == 2:
            pos_label = "1" if "1" in [str(x) for x in labels] else str(labels[-1])
        elif "1" in set(yt) | set(yp):
            pos_label = "1"
        else:
            raise ConfigError("metric 'f1': no positive label; fix: pass pos_label (the task's positive_label)")
    return float(f1_score(yt, yp, pos_label=str(pos_label), average="binary", zero_division=0))


def task_metrics(task: Any, y_true: Sequence[Any], y_pred: Sequence[Any]) -> dict[str, float]:
    """A task's main metric and its ``extra_metrics`` (``task`` is a ``pet.tasks.TaskSpec``)."""
    out = {}
    for name in (task.metric, *task.extra_metrics):
        out[name] = compute_metric(name, y_true, y_pred, labels=task.label_ids, pos_label=task.positive_label)
    return out
