"""LM-BFF-style prompt-based fine-tuning: one fresh model per PVP, trained on the labelled
examples with cross-entropy over the verbalizer label scores; with several PVPs, their
ensemble (mean of label log-probs) is the final stage.

With ``contrastive_weight > 0`` each model also learns from a supervised contrastive term
between each example and its rendering under another of the run's templates (Jian et al.
2022; :mod:`pet.training.contrastive`). ``pvp: [first]`` trains the run's first PVP only
while the others still serve as second-view templates. ``label_loss: decoupled`` and
``lcm_weight > 0`` switch on ADAPET's objectives (Tam et al. 2021; :mod:`pet.training.adapet`;
the ``adapet`` method, :mod:`pet.methods.adapet`, has them on by default).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from ..errors import ConfigError
from ..examples import Example
from ..models.prompt_model import PromptModel
from ..options import option
from .predictors import PromptEnsemble
from ..prompts.spec import PVP
from ..training.adapet import ADAPETObjective, ADAPETOptions
from ..training.contrastive import ContrastiveOptions, SecondView, view_pvps
from ..training.loop import TrainConfig
from ..training.prompt import train_prompt_model
from .zero_shot import DemoOptions
from .base import Fitted, FitSetup, Stage, checkpoint_info, register_method, regression_targets, resolve_max_length


@dataclass
class PromptFTOptions(DemoOptions, ContrastiveOptions, ADAPETOptions, TrainConfig):
    where: ClassVar[str] = "prompt-ft options"

    pvp: list[str] | None = option(None, "train only these PVPs ('pattern:verbalizer' ids, pattern ids, or 'first': the run's first; null: all of the run's)")

    def validate(self) -> None:
        super().validate()
        if self.demonstrations and self.lcm_weight > 0:
            raise ConfigError(f"{self.where}: lcm_weight={self.lcm_weight} with demonstrations is not supported (ADAPET's label-conditioned "
                              "MLM would also mask the demonstrations' text); fix: set lcm_weight 0 or demonstrations false")


def select_pvps(pvps: list[PVP], wanted: list[str] | None) -> list[PVP]:
    """The PVPs named by ``wanted`` (PVP ids, pattern ids or ``"first"``), in its order; all when None."""
    if wanted is None:
        return list(pvps)
    if "first" in wanted and pvps:
        wanted = [pvps[0].id if w == "first" else w for w in wanted]
    by_id = {p.id: p for p in pvps}
    by_pattern: dict[str, PVP] = {}
    for p in pvps:
        by_pattern.setdefault(p.pattern.id, p)
    out = []
    for w in wanted:
        if w not in by_id and w not in by_pattern:
            raise ConfigError(f"option pvp='{w}': not one of this run's PVPs ({', '.join(by_id)}); fix: use one of them")
        out.append(by_id.get(w) or by_pattern[w])
    return out


def second_view(pvp: PVP, options: ContrastiveOptions, setup: FitSetup) -> SecondView | None:
    """The contrastive term's second view for training ``pvp`` (None when the term is off):
    the templates of the run's other PVPs, or those ``contrastive_views`` names."""
    if options.contrastive_weight == 0:
        return None
    return SecondView(view_pvps(pvp, setup.pvps, options.contrastive_views), options.contrastive_weight, options.contrastive_temperature)


def fit_prompt_ft(train: list[Example], unlabelled: list[Example], options: PromptFTOptions, setup: FitSetup) -> Fitted:
    """Fine-tune one masked LM per PVP (LM-BFF prompt-based fine-tuning); ensemble them."""
    if options.demonstrations:
        return _fit_with_demonstrations(train, unlabelled, options, setup)
    config = options.resolved(resolve_max_length(options, setup), setup.seed)
    pvps = select_pvps(setup.pvps, options.pvp)
    aux = unlabelled if config.mlm_weight > 0 else ()
    targets = regression_targets(train, setup)  # STS-B: KL to [1 - y', y'] at temperature 1 (LM-BFF)
    if targets is not None:
        config = dataclasses.replace(config, temperature=1.0)
    stages, members, logs = [], [], {}
    for pvp in pvps:
        model = PromptModel.from_pretrained(setup.model, device=setup.device)
        log = train_prompt_model(model, pvp, train, config, setup.labels, unlabelled=aux, soft_targets=targets, progress=setup.progress,
                                 dev=setup.dev, dev_metric=setup.metric, second_view=second_view(pvp, options, setup),
                                 adapet=ADAPETObjective.from_options(options))
        logs[pvp.id] = log
        members.append((model, pvp))
        stages.append(
            Stage("pvp", PromptEnsemble([(model, pvp)], setup.labels, config.max_length, config.eval_batch_size), pvp=pvp.id,
                  train_seconds=log.train_seconds, trained_parameters=log.trained_parameters,
                  extra={"steps": log.steps, "final_loss": log.final_loss, "tune": config.tune, **checkpoint_info(log)})
        )
    final = stages[0].key
    if len(members) > 1:
        stages.append(
            Stage("ensemble", PromptEnsemble(members, setup.labels, config.max_length, config.eval_batch_size),
                  train_seconds=sum(s.train_seconds for s in stages), trained_parameters=sum(s.trained_parameters for s in stages),
                  extra={"members": [p.id for p in pvps], "combine": "mean log-prob"})
        )
        final = "ensemble"
    return Fitted("prompt-ft", list(setup.labels), options, stages, final, pvps=pvps, model=setup.model, logs=logs)


def _fit_with_demonstrations(train: list[Example], unlabelled: list[Example], options: PromptFTOptions, setup: FitSetup) -> Fitted:
    """prompt-ft with LM-BFF demonstrations, as LM-BFF trains (``src/dataset.py``): each time a
    training example is drawn it gets a newly sampled demonstration set (never itself); the dev
    set, when it picks the checkpoint, is scored like the test set, averaged over ``demo_sets``."""
    from ..prompts.demonstrations import DemoSampler, demonstration_pvp, make_embedder, with_demonstrations
    from .zero_shot import demo_config, demo_max_length, with_demonstration_predictor

    max_length = demo_max_length(options, setup)
    config = dataclasses.replace(options.resolved(max_length, setup.seed), max_length=max_length)
    pvps = select_pvps(setup.pvps, options.pvp)
    aux = unlabelled if config.mlm_weight > 0 else ()
    cfg = demo_config(options, setup.seed)
    stages, members, logs = [], [], {}
    for pvp in pvps:
        model = PromptModel.from_pretrained(setup.model, device=setup.device)
        # demo_similarity mlm: the scoring model's own states (pretrained while sampling the
        # training and dev demonstrations, fine-tuned at evaluation, also after save/load); the
        # training examples' own embeddings are the pool's, computed here, before training
        embed = make_embedder(cfg.similarity, model, setup.device)
        sampler = DemoSampler(train, setup.labels, cfg, embed)
        demo_pvp = demonstration_pvp(pvp, setup.labels, sep=model.tokenizer.sep_token_id is not None)

        def redraw(i: int, d: int, sampler=sampler) -> Example:
            return with_demonstrations([train[i]], sampler.sample([train[i]], f"train:{d}"))[0]

        first = [redraw(i, 0) for i in range(len(train))]
        dev_sets = [with_demonstrations(setup.dev, demos) for demos in sampler.sample_sets(setup.dev, range(cfg.sets))] if setup.dev else None
        view = second_view(pvp, options, setup)
        if view is not None:  # the paper's second view: another template AND another demonstration set
            sep = model.tokenizer.sep_token_id is not None
            view.pvps = [demonstration_pvp(v, setup.labels, sep=sep) for v in view.pvps]
            view.redraw = lambda i, d, sampler=sampler: with_demonstrations([train[i]], sampler.sample([train[i]], f"view:{d}"))[0]
        log = train_prompt_model(model, demo_pvp, first, config, setup.labels, unlabelled=aux, progress=setup.progress,
                                 dev=dev_sets[0] if dev_sets else [], dev_metric=setup.metric, second_view=view,
                                 adapet=ADAPETObjective.from_options(options), redraw=redraw, dev_sets=dev_sets)
        logs[pvp.id] = log
        members.append((model, pvp))
        fixed = {"steps": log.steps, "final_loss": log.final_loss, "tune": config.tune, "demonstrations": cfg.to_dict(), **checkpoint_info(log)}
        inner = PromptEnsemble([(model, pvp)], setup.labels, max_length, config.eval_batch_size)
        stages.append(Stage("pvp", with_demonstration_predictor(inner, train, options, setup), pvp=pvp.id,
                            train_seconds=log.train_seconds, trained_parameters=log.trained_parameters, extra=fixed))
    final = stages[0].key
    if len(members) > 1:
        inner = PromptEnsemble(members, setup.labels, max_length, config.eval_batch_size)
        stages.append(
            Stage("ensemble", with_demonstration_predictor(inner, train, options, setup),
                  train_seconds=sum(s.train_seconds for s in stages), trained_parameters=sum(s.trained_parameters for s in stages),
                  extra={"members": [p.id for p in pvps], "combine": "mean log-prob", "demonstrations": cfg.to_dict()})
        )
        final = "ensemble"
    return Fitted("prompt-ft", list(setup.labels), options, stages, final, pvps=pvps, model=setup.model, logs=logs)


register_method(
    "prompt-ft", "hard", PromptFTOptions, fit_prompt_ft,
    description="LM-BFF prompt-based fine-tuning: one fine-tuned masked LM per PVP, and their ensemble",
)
