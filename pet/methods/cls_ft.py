"""The ``[CLS]`` + MLP fine-tuning baseline (LM-BFF's "fine-tuning"), with the same budget
options as prompt fine-tuning (steps, batch size, learning rate, splits)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from ..examples import Example
from ..options import option
from ..prompts.plain import PAIR_FORMATS
from ..training.loop import TrainConfig, train_config
from ..training.sequence import train_sequence_classifier
from .base import (
    FitSetup,
    Fitted,
    Stage,
    checkpoint_info,
    register_method,
    regression_targets,
    resolve_max_length,
)
from .predictors import SequencePredictor


@dataclass
class ClsFTOptions(TrainConfig):
    where: ClassVar[str] = "cls-ft options"

    tune: str = option("full", "the baseline trains all weights", choices=("full",))
    mlm_weight: float = option(0.0, "the auxiliary MLM loss applies to prompt models only", min=0, max=0)
    pair_format: str = option(
        "tokenizer",
        "how a pair task's text_a and text_b become one input: 'tokenizer' = the tokenizer's own pair input "
        "(<s> a </s></s> b </s> for RoBERTa, as transformers' pipeline builds it); 'single_sep' = LM-BFF's "
        "fine-tuning input [CLS] a [SEP] b [SEP], one separator (princeton-nlp/LM-BFF src/dataset.py, "
        "tokenize_multipart_input without a template). Single texts are the same in both",
        choices=PAIR_FORMATS,
    )


def fit_cls_ft(train: list[Example], unlabelled: list[Example], options: ClsFTOptions, setup: FitSetup) -> Fitted:
    """Fine-tune the encoder with a fresh ``[CLS]`` + MLP head on the labelled examples."""
    config = options.resolved(resolve_max_length(options, setup), setup.seed)
    targets = regression_targets(train, setup)  # STS-B: the same KL to [1 - y', y'] as prompt-ft
    if targets is not None:
        config = dataclasses.replace(config, temperature=1.0)
    clf = train_sequence_classifier(setup.model, train, setup.labels, train_config(config), soft_targets=targets, device=setup.device,
                                    progress=setup.progress, dev=setup.dev, dev_metric=setup.metric, pair_format=options.pair_format)
    log = clf.train_log
    stage = Stage("final", SequencePredictor(clf, config.eval_batch_size), train_seconds=log.train_seconds,
                  trained_parameters=log.trained_parameters, extra={"steps": log.steps, "final_loss": log.final_loss, **checkpoint_info(log)})
    return Fitted("cls-ft", list(setup.labels), options, [stage], "final", pvps=[], model=setup.model, logs={"cls": log})


register_method(
    "cls-ft", "baseline", ClsFTOptions, fit_cls_ft, needs_pvps=False, needs_unlabelled=lambda o: False, baseline=True,
    description="[CLS] + MLP fine-tuning baseline (same budget as prompt-ft)",
)
