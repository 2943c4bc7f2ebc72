"""Zero-shot scoring of several PVPs and their ensemble, with optional calibration."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..examples import Example
from ..model import PromptModel
from ..scoring import calibrate as calibrate_fn
from ..scoring import ensemble
from ..spec import PVP
from ..versions import package_versions
from .base import RunContext, StageResult, register


@dataclass
class PVPScore:
    pattern: str
    verbalizer: str
    score: float
    examples_per_second: float
    template: str = ""


@dataclass
class ZeroShotReport:
    task: str
    model: str
    split: str
    n: int
    metric: str
    calibrated: bool
    pvps: list[PVPScore]
    ensemble: dict
    versions: dict = field(default_factory=package_versions)

    def to_dict(self) -> dict:
        return asdict(self)


def zero_shot(
    model: PromptModel,
    examples: Sequence[Example],
    pvps: Sequence[PVP],
    labels: Sequence[str],
    metric: Callable[[list[str], list[str]], float],
    metric_name: str = "accuracy",
    task: str = "",
    split: str = "test",
    calibrate: bool = False,
    batch_size: int = 32,
    max_length: int = 256,
    progress: bool = True,
) -> tuple[ZeroShotReport, np.ndarray]:
    """Score every PVP on ``examples``; returns the report and the ensemble's log-probs."""
    labels = list(labels)
    for pvp in pvps:
        pvp.check_labels(labels, f"task '{task or 'data'}'")
    gold = [ex.label for ex in examples]
    rows, per_pvp = [], []
    if pvps and examples:  # warm-up (thread pools, allocator) so examples/s is steady-state
        model.predict_log_proba(examples[:4], pvps[0], batch_size=batch_size, max_length=max_length, labels=labels)
    for pvp in pvps:
        t0 = time.perf_counter()
        lp = model.predict_log_proba(
            examples, pvp, batch_size=batch_size, max_length=max_length, labels=labels, progress=progress
        )
        secs = time.perf_counter() - t0
        if calibrate:
            fields = sorted({f for ex in examples[:1] for f in ex.fields} | set(pvp.pattern.fields))
            lp = calibrate_fn(lp, model.content_free_log_prior(pvp, fields, max_length, labels))
        per_pvp.append(lp)
        pred = [labels[i] for i in lp.argmax(1)]
        rows.append(
            PVPScore(pvp.pattern.id, pvp.verbalizer.id, float(metric(gold, pred)), len(examples) / secs, pvp.pattern.template)
        )
    ens = ensemble(per_pvp)
    ens_pred = [labels[i] for i in ens.argmax(1)]
    report = ZeroShotReport(
        task=task,
        model=model.name,
        split=split,
        n=len(examples),
        metric=metric_name,
        calibrated=calibrate,
        pvps=rows,
        ensemble={"score": float(metric(gold, ens_pred)), "members": [p.id for p in pvps], "combine": "mean log-prob"},
    )
    return report, ens


@register("zero-shot")
def run(ctx: RunContext, options: dict) -> list[StageResult]:
    """Method form for `pet bench`: each PVP and the ensemble, scored without training."""
    model = PromptModel.from_pretrained(ctx.model, device=ctx.device)
    report, _ = zero_shot(
        model,
        ctx.test,
        ctx.pvps,
        ctx.labels,
        ctx.score,
        ctx.task.metric,
        task=ctx.task.name,
        calibrate=bool(options.get("calibrate", False)),
        batch_size=int(options.get("eval_batch_size", 32)),
        max_length=int(options.get("max_length", getattr(ctx.task, "max_length", 256))),
        progress=ctx.progress,
    )
    rows = [
        StageResult("zero-shot", "pvp", r.score, report.metric, pvp=f"{r.pattern}:{r.verbalizer}", eval_examples_per_second=r.examples_per_second)
        for r in report.pvps
    ]
    rows.append(StageResult("zero-shot", "ensemble", report.ensemble["score"], report.metric))
    return rows
