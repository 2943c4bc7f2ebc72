"""Evaluation metrics by name, so task files and reports can refer to them as strings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from .errors import ConfigError

if TYPE_CHECKING:  # numpy is imported where it is used, so `import pet.metrics` stays light
    import numpy as np

#: Metric names a task file may use: accuracy, macro-averaged F1, Matthews correlation (CoLA),
#: binary F1 of the positive label (MRPC, QQP), and for regression tasks (STS-B) the Pearson and
#: Spearman correlations of predicted and gold scores.
METRICS = ("accuracy", "macro_f1", "mcc", "f1", "pearson", "spearman")
#: Metrics over real-valued scores, not label ids.
REGRESSION_METRICS = ("pearson", "spearman")


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
    if name in REGRESSION_METRICS:
        return _correlation(name, y_true, y_pred)
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


def _correlation(name: str, y_true: Sequence[Any], y_pred: Sequence[Any]) -> float:
    import numpy as np
    from scipy.stats import pearsonr, spearmanr

    if any(isinstance(v, str) for v in (*y_true, *y_pred)):
        raise ConfigError(
            f"metric '{name}' compares real-valued scores but got label ids; fix: pass gold scores "
            "(example.meta['score']) and predicted scores (pet.metrics.regression_scores)"
        )
    yt, yp = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if yt.shape != yp.shape:
        raise ConfigError(f"metric '{name}': {len(yt)} gold scores but {len(yp)} predictions; fix: pass one prediction per example")
    if len(yt) < 2:
        raise ConfigError(f"metric '{name}': needs at least 2 examples; fix: evaluate on more examples")
    if yt.std() == 0 or yp.std() == 0:
        return 0.0  # a constant prediction carries no correlation (scipy would return NaN)
    return float((pearsonr if name == "pearson" else spearmanr)(yt, yp)[0])


def regression_scores(task: Any, log_probs: Any) -> np.ndarray:
    """LM-BFF's regression through two label words: ``p(high) * (high - low) + low``, where
    ``log_probs`` ``[N, L]`` are label log-probs in the order of ``task.label_ids`` and the
    probability is renormalised over the low and high labels."""
    import numpy as np

    reg = getattr(task, "regression", None)
    if not reg:
        raise ConfigError(f"task '{getattr(task, 'name', '?')}' is not a regression task; fix: use its label ids")
    lp = np.asarray(log_probs, dtype=np.float64)
    lo, hi = task.label_ids.index(reg["low_label"]), task.label_ids.index(reg["high_label"])
    p_hi = 1.0 / (1.0 + np.exp(lp[:, lo] - lp[:, hi]))
    return p_hi * (reg["high"] - reg["low"]) + reg["low"]


def gold_scores(examples: Sequence[Any]) -> list[float]:
    """Gold scores of a regression task's examples (kept in ``meta['score']`` by the reader)."""
    try:
        return [float(e.meta["score"]) for e in examples]
    except KeyError:
        raise ConfigError("examples carry no meta['score']; fix: load them through a regression task file") from None


#: Metrics every evaluated row carries besides the task's own (reports compare tasks on them).
COMMON_METRICS = ("accuracy", "macro_f1")


def metric_names(task: Any, common: bool = True) -> list[str]:
    """The task's metric list, declared here once: its ``metric``, its ``extra_metrics`` and
    (``common``) :data:`COMMON_METRICS`, without repeats."""
    names = [task.metric, *task.extra_metrics, *(COMMON_METRICS if common else ())]
    return list(dict.fromkeys(names))


def prediction_metrics(
    task: Any,
    gold: Sequence[Any],
    pred: Sequence[Any],
    gold_score: Sequence[float] | None = None,
    pred_score: Sequence[float] | None = None,
    *,
    common: bool = True,
) -> dict[str, float]:
    """Every metric of :func:`metric_names` from gold and predicted label ids; regression metrics
    (Pearson, Spearman) from ``gold_score`` / ``pred_score`` (see :func:`regression_scores`)."""
    out = {}
    for name in metric_names(task, common):
        if name in REGRESSION_METRICS:
            if gold_score is None or pred_score is None:
                raise ConfigError(f"metric '{name}' needs gold and predicted scores; fix: evaluate through a regression task file")
            out[name] = compute_metric(name, list(gold_score), list(pred_score))
        else:
            out[name] = compute_metric(name, gold, pred, labels=task.label_ids, pos_label=task.positive_label)
    return out


def evaluate_log_probs(task: Any, examples: Sequence[Any], log_probs: Any) -> dict[str, float]:
    """Every metric of ``task`` (not the common ones) from label log-probs ``[N, L]`` (label order
    ``task.label_ids``): label metrics from the argmax, regression metrics from ``regression_scores``."""
    import numpy as np

    lp = np.asarray(log_probs)
    pred = [task.label_ids[i] for i in lp.argmax(1)]
    scores = (gold_scores(examples), list(regression_scores(task, lp))) if _needs_scores(task) else (None, None)
    return prediction_metrics(task, [e.label for e in examples], pred, *scores, common=False)


def _needs_scores(task: Any) -> bool:
    return any(m in REGRESSION_METRICS for m in metric_names(task, common=False))


def task_metrics(task: Any, y_true: Sequence[Any], y_pred: Sequence[Any]) -> dict[str, float]:
    """A task's main metric and its ``extra_metrics`` (``task`` is a ``pet.data.TaskSpec``).
    For a regression task pass gold and predicted scores (numbers), not label ids."""
    return {name: compute_metric(name, y_true, y_pred, labels=task.label_ids, pos_label=task.positive_label)
            for name in metric_names(task, common=False)}
