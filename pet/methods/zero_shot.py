"""Zero-shot: score every PVP with the pretrained masked LM, no training; their ensemble.

Options: ``calibrate`` (Zhao et al. 2021 contextual calibration: each PVP's label
distribution is divided by its distribution on content-free inputs, computed once at fit time
from the template alone — no data), ``max_length``, ``eval_batch_size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..utils.defaults import DEFAULT_EVAL_BATCH_SIZE
from ..errors import ConfigError
from ..examples import Example
from ..models.prompt_model import PRECISIONS, PromptModel
from ..options import Options, option, same_option
from ..prompts.demonstrations import DemoConfig
from .predictors import DemonstrationEnsemble, PromptEnsemble
from .base import Fitted, FitSetup, Stage, register_method, resolve_max_length


@dataclass
class DemoOptions(Options):
    """LM-BFF demonstration options of the methods that offer them (zero-shot, prompt-ft): the
    ``demo_*`` ones are :class:`pet.prompts.demonstrations.DemoConfig`'s, declared there."""

    demonstrations: bool = option(False, "LM-BFF demonstrations: append one labelled training example per label to each input (prompt-ft: in training too)")
    demo_sets: int = same_option(DemoConfig, "sets")
    demo_similarity: str = same_option(DemoConfig, "similarity")
    demo_filter_rate: float = same_option(DemoConfig, "filter_rate")
    demo_max_length: int | None = option(None, "longest input in tokens with demonstrations (null: max(256, max_length))", min=8)


@dataclass
class ZeroShotOptions(DemoOptions):
    where: ClassVar[str] = "zero-shot options"

    calibrate: bool = option(False, "contextual calibration: divide by the label distribution on content-free inputs")
    max_length: int | None = option(None, "longest input in tokens (null: the task's max_length)", min=8)
    eval_batch_size: int = option(DEFAULT_EVAL_BATCH_SIZE, "examples per forward pass when scoring", min=1)
    precision: str = option("fp32", "scoring precision: fp32, or autocast to bf16 (CPU or GPU) / fp16 (GPU)", choices=PRECISIONS)


def demo_config(options: DemoOptions, seed: int) -> DemoConfig:
    """The :class:`pet.prompts.demonstrations.DemoConfig` of a method's ``demo_*`` options."""
    return DemoConfig(sets=options.demo_sets, similarity=options.demo_similarity, filter_rate=options.demo_filter_rate, seed=int(seed))


def demo_max_length(options, setup: FitSetup) -> int:
    """Longest input with demonstrations: ``demo_max_length``, else max(256, the usual one)."""
    return int(options.demo_max_length or max(256, resolve_max_length(options, setup)))


def with_demonstration_predictor(inner: PromptEnsemble, train: list[Example], options, setup: FitSetup, embed=None) -> DemonstrationEnsemble:
    """``inner``'s members scored with demonstrations sampled from ``train``."""
    if not train:
        raise ConfigError("demonstrations need labelled training examples to demonstrate; fix: pass training examples, or turn demonstrations off")
    return DemonstrationEnsemble(inner, train, demo_config(options, setup.seed), embed=embed)


def zero_shot_stages(model: PromptModel, options: ZeroShotOptions, setup: FitSetup, train: list[Example] | None = None) -> tuple[list[Stage], str]:
    """One stage per PVP and (with several PVPs) their ensemble, all on one shared model."""
    demos = bool(getattr(options, "demonstrations", False))
    max_length = demo_max_length(options, setup) if demos else resolve_max_length(options, setup)
    priors = None
    if options.calibrate:
        if demos:
            raise ConfigError("zero-shot: calibrate and demonstrations together are not supported; fix: turn one of them off")
        priors = [model.content_free_log_prior(p, sorted(p.pattern.fields), max_length, setup.labels) for p in setup.pvps]
    embed = None
    if demos and options.demo_similarity != "none":
        from ..prompts.demonstrations import make_embedder

        embed = make_embedder(options.demo_similarity, model, setup.device)

    def predictor(idx: list[int]):
        ens = PromptEnsemble(
            [(model, setup.pvps[i]) for i in idx], setup.labels, max_length, options.eval_batch_size,
            priors=[priors[i] for i in idx] if priors is not None else None,
        )
        return with_demonstration_predictor(ens, list(train or []), options, setup, embed) if demos else ens

    stages = [Stage("pvp", predictor([i]), pvp=p.id, extra={"template": p.pattern.template}) for i, p in enumerate(setup.pvps)]
    if len(stages) == 1:
        return stages, stages[0].key
    stages.append(Stage("ensemble", predictor(list(range(len(setup.pvps)))), extra={"members": [p.id for p in setup.pvps], "combine": "mean log-prob"}))
    return stages, "ensemble"


def fit_zero_shot(train: list[Example], unlabelled: list[Example], options: ZeroShotOptions, setup: FitSetup) -> Fitted:
    """Every PVP and their ensemble, scored by the pretrained masked LM without training."""
    model = PromptModel.from_pretrained(setup.model, device=setup.device)
    model.precision = options.precision
    stages, final = zero_shot_stages(model, options, setup, train)
    return Fitted("zero-shot", list(setup.labels), options, stages, final, pvps=list(setup.pvps), model=setup.model)


register_method(
    "zero-shot", "hard", ZeroShotOptions, fit_zero_shot, needs_unlabelled=lambda o: False, baseline=True, needs_labelled=False,
    description="score every PVP and their ensemble with the pretrained masked LM, no training",
)
