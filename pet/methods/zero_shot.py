"""Zero-shot: score every PVP with the pretrained masked LM, no training; their ensemble.

Options: ``calibrate`` (Zhao et al. 2021 contextual calibration: each PVP's label
distribution is divided by its distribution on content-free inputs, computed once at fit time
from the template alone — no data), ``max_length``, ``eval_batch_size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..defaults import DEFAULT_EVAL_BATCH_SIZE
from ..examples import Example
from ..model import PRECISIONS, PromptModel
from ..options import Options, option
from ..predictors import PromptEnsemble
from .base import Fitted, FitSetup, Stage, register_method, resolve_max_length


@dataclass
class ZeroShotOptions(Options):
    where: ClassVar[str] = "zero-shot options"

    calibrate: bool = option(False, "contextual calibration: divide by the label distribution on content-free inputs")
    max_length: int | None = option(None, "longest input in tokens (null: the task's max_length)", min=8)
    eval_batch_size: int = option(DEFAULT_EVAL_BATCH_SIZE, "examples per forward pass when scoring", min=1)
    precision: str = option("fp32", "scoring precision: fp32, or autocast to bf16 (CPU or GPU) / fp16 (GPU)", choices=PRECISIONS)


def zero_shot_stages(model: PromptModel, options: ZeroShotOptions, setup: FitSetup) -> tuple[list[Stage], str]:
    """One stage per PVP and (with several PVPs) their ensemble, all on one shared model."""
    max_length = resolve_max_length(options, setup)
    priors = None
    if options.calibrate:
        priors = [model.content_free_log_prior(p, sorted(p.pattern.fields), max_length, setup.labels) for p in setup.pvps]

    def predictor(idx: list[int]) -> PromptEnsemble:
        return PromptEnsemble(
            [(model, setup.pvps[i]) for i in idx], setup.labels, max_length, options.eval_batch_size,
            priors=[priors[i] for i in idx] if priors is not None else None,
        )

    stages = [Stage("pvp", predictor([i]), pvp=p.id, extra={"template": p.pattern.template}) for i, p in enumerate(setup.pvps)]
    if len(stages) == 1:
        return stages, stages[0].key
    stages.append(Stage("ensemble", predictor(list(range(len(setup.pvps)))), extra={"members": [p.id for p in setup.pvps], "combine": "mean log-prob"}))
    return stages, "ensemble"


def fit_zero_shot(train: list[Example], unlabelled: list[Example], options: ZeroShotOptions, setup: FitSetup) -> Fitted:
    """Every PVP and their ensemble, scored by the pretrained masked LM without training."""
    model = PromptModel.from_pretrained(setup.model, device=setup.device)
    model.precision = options.precision
    stages, final = zero_shot_stages(model, options, setup)
    return Fitted("zero-shot", list(setup.labels), options, stages, final, pvps=list(setup.pvps), model=setup.model)


register_method(
    "zero-shot", "hard", ZeroShotOptions, fit_zero_shot, needs_unlabelled=lambda o: False,
    description="score every PVP and their ensemble with the pretrained masked LM, no training",
)
