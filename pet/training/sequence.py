"""Training the ``[CLS]`` classifier (:class:`pet.models.sequence.SequenceClassifier`): cross-entropy on
labels, or PET's distillation KL on soft targets, through the one training loop."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, DataError
from ..examples import Example
from ..models.sequence import SequenceClassifier
from ..prompts.plain import pad_ids
from ..utils.defaults import DEFAULT_MAX_LENGTH
from .checkpoint import LoopCheckpoint
from .losses import distillation_loss
from .loop import (
    IndexStream,
    TrainConfig,
    TrainLog,
    check_dev,
    check_targets,
    dev_score,
    seed_everything,
    train_loop,
)


def train_classifier(
    clf: SequenceClassifier,
    train: Sequence[Example],
    config: TrainConfig,
    soft_targets: np.ndarray | None = None,
    progress: bool = True,
    dev: Sequence[Example] = (),
    dev_metric: Callable[[list, list], float] | None = None,
    resume: LoopCheckpoint | None = None,
) -> TrainLog:
    """Train all weights of ``clf`` in place on ``train`` (CE on labels, or KL on soft targets);
    with ``config.eval_every``, keep the checkpoint with the best ``dev`` score; with ``resume``,
    save the run's state as it goes and continue a killed run (:mod:`pet.training.checkpoint`)."""
    config = TrainConfig.from_dict(config).resolved(clf.max_length)
    train = list(train)
    if not train:
        raise DataError("no training examples; fix: pass at least one labelled example")
    if config.mlm_weight > 0:
        raise ConfigError("mlm_weight applies to prompt models only; fix: set mlm_weight 0 for cls-ft")
    if config.tune != "full":
        raise ConfigError(f"tune={config.tune}: the cls-ft baseline trains all weights; fix: use tune=full")
    index = {lab: i for i, lab in enumerate(clf.labels)}
    targets = None
    if soft_targets is not None:
        targets = check_targets(soft_targets, len(train), len(clf.labels))
    else:
        bad = [e for e in train if e.label not in index]
        if bad:
            raise DataError(f"training example '{bad[0].guid}': label {bad[0].label!r} is not one of {clf.labels}; fix: label it, or pass soft_targets")
    ids = clf.encode(train)
    gold = torch.tensor([index.get(e.label, -1) for e in train])
    pad = clf.tokenizer.pad_token_id or 0
    for p in clf.parameters():
        p.requires_grad_(True)

    def batches(rank: int, world: int):
        for idx in IndexStream(len(ids), config.batch_size, config.seed, rank, world):
            x, att = pad_ids([ids[i] for i in idx], pad)
            b = {"input_ids": x, "attention_mask": att, "labels": gold[idx]}
            if targets is not None:
                b["targets"] = targets[idx]
            yield b

    T = config.temperature

    def loss_fn(m, b):
        logits = m(b["input_ids"], b["attention_mask"])
        if "targets" in b:
            loss = distillation_loss(logits, b["targets"].to(logits.device), T)
            return {"loss": loss, "kl": loss}
        loss = F.cross_entropy(logits, b["labels"].to(logits.device))
        return {"loss": loss, "ce": loss}

    def evaluate() -> float:
        return dev_score(dev, clf.predict(dev, batch_size=config.eval_batch_size), dev_metric)

    log = train_loop(clf, loss_fn, batches, config, desc="train cls", progress=progress, examples=len(train),
                     evaluate=evaluate if check_dev(config, dev) else None, resume=resume)
    clf.eval()
    return log


def train_sequence_classifier(
    model_name: str,
    train: Sequence[Example],
    labels: Sequence[str],
    config: TrainConfig | dict | None = None,
    soft_targets: np.ndarray | None = None,
    *,
    device=None,
    progress: bool = True,
    dev: Sequence[Example] = (),
    dev_metric: Callable[[list, list], float] | None = None,
    pair_format: str = "tokenizer",
    resume: LoopCheckpoint | None = None,
) -> SequenceClassifier:
    """Load ``model_name`` as an encoder, add a fresh head over ``labels``, train all weights.

    With ``soft_targets`` (``[len(train), len(labels)]`` probabilities) the loss is PET's
    distillation KL at ``config.temperature``; ``train`` may then be unlabelled. ``pair_format``
    joins ``text_a`` and ``text_b`` (:func:`pet.prompts.plain.tokenize_plain`); the classifier
    keeps it for prediction and saving. ``resume`` makes the run resumable (see :func:`train_classifier`).
    The returned classifier has ``.train_log`` (a ``TrainLog``)."""
    config = TrainConfig.from_dict(config).resolved()
    seed_everything(config.seed)
    clf = SequenceClassifier.from_pretrained(model_name, labels, config.max_length or DEFAULT_MAX_LENGTH, device=device, seed=config.seed,
                                          pair_format=pair_format)
    clf.train_log = train_classifier(clf, train, config, soft_targets, progress, dev=dev, dev_metric=dev_metric, resume=resume)
    return clf
