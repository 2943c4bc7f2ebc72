"""Soft-prompt methods: ``prompt-tuning``, ``p-tuning``, ``p-tuning-ft`` and ``deep-prompt``.

Each trains one model per soft PVP with :func:`pet.training.prompt.train_prompt_model` (soft
parameters always train; the LM only for ``p-tuning-ft``; a frozen LM is loaded once and shared
by the PVPs' prompt encoders, except for deep prompts): one ``"pvp"`` stage per soft PVP, plus an
``"ensemble"`` stage when there are several.

Which PVPs (first rule that applies):

1. option ``template``: that template with the verbalizer of the run's first PVP;
2. option ``prompt_length = N``: ``{soft:N}`` inserted right before ``{mask}`` of the first PVP;
3. the run's PVPs that have soft tokens;
4. otherwise ``{soft:4}`` before ``{mask}`` of the first PVP (``{text_a} It was {soft:4} {mask}.``).
   (The shipped pattern files' ``soft-*`` patterns are ordinary PVPs: pass them with ``--pvps``.)

Default learning rates for the soft parameters, chosen for short budgets on the offline 6-layer
model — soft prompts need far more than fine-tuning's 1e-5…1e-4 (Lester et al. use 0.3 with
Adafactor): see the options' defaults and ``docs/soft.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..examples import Example
from ..models.prompt_model import PromptModel
from ..options import option, same_option
from .predictors import PromptEnsemble
from ..models.soft import SoftConfig, attach_soft_prompt, soft_before_mask
from ..prompts.spec import PVP, Pattern
from ..training.loop import TrainConfig
from ..training.prompt import train_prompt_model
from .base import Fitted, FitSetup, Stage, checkpoint_info, register_method, resolve_max_length


#: SoftConfig options a soft-prompt method passes through unchanged (declared there, once).
SOFT_CONFIG_KEYS = ("tune", "encoder", "hidden_size", "lstm_layers", "init", "verbalizer")


@dataclass
class SoftOptions(TrainConfig):
    """Options shared by the soft-prompt methods (each method sets its own defaults): the
    training config plus the :class:`pet.models.soft.SoftConfig` options, declared there."""

    where: ClassVar[str] = "soft-prompt options"
    #: SoftConfig.method of this family member
    soft_method: ClassVar[str] = "prompt-tuning"

    tune: str = same_option(SoftConfig, "tune")
    template: str | None = option(None, "a soft template to train instead of the run's PVPs (e.g. '{text_a} {soft:4} {mask}.')")
    prompt_length: int | None = same_option(SoftConfig, "prompt_length", help="soft tokens inserted before the mask of the first PVP (null: the template's)")
    encoder: str = same_option(SoftConfig, "encoder")
    hidden_size: int | None = same_option(SoftConfig, "hidden_size")
    lstm_layers: int = same_option(SoftConfig, "lstm_layers")
    init: str = same_option(SoftConfig, "init")
    verbalizer: str = same_option(SoftConfig, "verbalizer")

    def soft_config(self) -> SoftConfig:
        """The SoftConfig these options build (a given ``template`` sets its own prompt length)."""
        return SoftConfig.from_dict(
            {k: getattr(self, k) for k in SOFT_CONFIG_KEYS}, where=self.where, method=self.soft_method,
            seed=int(self.seed if self.seed is not None else 13), prompt_length=None if self.template else self.prompt_length,
        )


@dataclass
class PromptTuningOptions(SoftOptions):
    where: ClassVar[str] = "prompt-tuning options"
    lr: float = option(3e-2, "learning rate (LM frozen: the soft prompt's)", min=0, min_exclusive=True)


@dataclass
class PTuningOptions(SoftOptions):
    where: ClassVar[str] = "p-tuning options"
    soft_method: ClassVar[str] = "p-tuning"
    lr: float = option(3e-3, "learning rate (LM frozen: the prompt encoder's)", min=0, min_exclusive=True)


@dataclass
class PTuningFTOptions(SoftOptions):
    where: ClassVar[str] = "p-tuning-ft options"
    soft_method: ClassVar[str] = "p-tuning"
    tune: str = same_option(SoftConfig, "tune", default="full")
    soft_lr: float | None = option(3e-3, "learning rate of the prompt encoder (the LM uses lr)", min=0, min_exclusive=True)


@dataclass
class DeepPromptOptions(SoftOptions):
    where: ClassVar[str] = "deep-prompt options"
    soft_method: ClassVar[str] = "deep"
    lr: float = option(1e-2, "learning rate (LM frozen: the per-layer prompts')", min=0, min_exclusive=True)


def soft_pvps(pvps: list[PVP], options: SoftOptions) -> list[PVP]:
    """The soft PVPs a soft method trains (rules in the module docstring)."""
    first = pvps[0]
    if options.template:
        return [PVP(Pattern("custom-soft", options.template, source="options.template"), first.verbalizer)]
    if options.prompt_length:
        return [soft_before_mask(first, options.prompt_length)]
    own = [p for p in pvps if p.pattern.is_soft]
    return own or [soft_before_mask(first, 4)]


def fit_soft(train: list[Example], unlabelled: list[Example], options: SoftOptions, setup: FitSetup, name: str) -> Fitted:
    config = options.resolved(resolve_max_length(options, setup), setup.seed)
    if config.tune == "frozen" and config.soft_lr is None:
        config = config.replace(soft_lr=config.lr)  # frozen LM: lr is the soft prompt's
    soft_config = config.soft_config()
    pvps = soft_pvps(setup.pvps, options)
    stages, members, logs = [], [], {}
    # A frozen LM is the same for every soft PVP: it is loaded once, and each PVP gets its own
    # PromptModel around it (its own prompt encoder). Deep prompts hook the LM's layers and a
    # tuned LM changes, so those load one LM per PVP.
    share = config.tune == "frozen" and soft_config.method != "deep"
    base = None
    for pvp in pvps:
        pvp.check_labels(setup.labels, f"the labels {setup.labels}")
        if base is not None and share:
            model = PromptModel(base.mlm, base.tokenizer, name=base.name, device=setup.device)
        else:
            model = base = PromptModel.from_pretrained(setup.model, device=setup.device)
        enc = model.encoder_for(pvp, config.max_length, setup.labels)
        module = attach_soft_prompt(model, enc, soft_config)
        log = train_prompt_model(model, pvp, train, config, setup.labels, progress=setup.progress, dev=setup.dev, dev_metric=setup.metric)
        logs[pvp.id] = log
        members.append((model, pvp))
        stages.append(
            Stage("pvp", PromptEnsemble([(model, pvp)], setup.labels, config.max_length, config.eval_batch_size), pvp=pvp.id,
                  train_seconds=log.train_seconds, trained_parameters=log.trained_parameters,
                  extra={"template": pvp.pattern.template, "n_soft": enc.n_soft, "soft_config": module.config.to_dict(),
                         "soft_parameters": int(sum(p.numel() for p in module.parameters())), "final_loss": log.final_loss,
                         **checkpoint_info(log)})
        )
    final = stages[0].key
    if len(members) > 1:
        stages.append(Stage("ensemble", PromptEnsemble(members, setup.labels, config.max_length, config.eval_batch_size),
                            train_seconds=sum(s.train_seconds for s in stages), trained_parameters=sum(s.trained_parameters for s in stages),
                            extra={"members": [p.id for p in pvps], "combine": "mean log-prob"}))
        final = "ensemble"
    return Fitted(name, list(setup.labels), options, stages, final, pvps=pvps, model=setup.model, logs=logs)


def fit_prompt_tuning(train, unlabelled, options, setup) -> Fitted:
    """Prompt tuning (Lester et al. 2021): trained input vectors at the soft tokens; LM frozen."""
    return fit_soft(train, unlabelled, options, setup, "prompt-tuning")


def fit_p_tuning(train, unlabelled, options, setup) -> Fitted:
    """P-tuning (Liu et al. 2021): soft tokens from a bi-LSTM+MLP prompt encoder; LM frozen."""
    return fit_soft(train, unlabelled, options, setup, "p-tuning")


def fit_p_tuning_ft(train, unlabelled, options, setup) -> Fitted:
    """P-tuning with the LM fine-tuned too (the paper's few-shot SuperGLUE setting)."""
    return fit_soft(train, unlabelled, options, setup, "p-tuning-ft")


def fit_deep_prompt(train, unlabelled, options, setup) -> Fitted:
    """Deep prompts (P-tuning v2 style): a trained vector per soft token at every layer; LM frozen."""
    return fit_soft(train, unlabelled, options, setup, "deep-prompt")


_never = lambda o: False  # noqa: E731  (soft prompts train on labelled data only)
register_method("prompt-tuning", "soft", PromptTuningOptions, fit_prompt_tuning, needs_unlabelled=_never)
register_method("p-tuning", "soft", PTuningOptions, fit_p_tuning, needs_unlabelled=_never)
register_method("p-tuning-ft", "soft", PTuningFTOptions, fit_p_tuning_ft, needs_unlabelled=_never)
register_method("deep-prompt", "soft", DeepPromptOptions, fit_deep_prompt, needs_unlabelled=_never)
