"""Prompt fine-tuning through the one loop: :func:`train_prompt_model` trains a ``PromptModel`` on
one PVP (cross-entropy over the verbalizer's label scores, or the distillation KL, plus the
optional auxiliary MLM, contrastive and ADAPET terms — the losses are listed in
:mod:`pet.training.loop`). Used by prompt-ft, PET, iPET and the soft-prompt methods."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, DataError
from ..examples import Example
from ..models.scoring import ensemble
from ..models.tuning import apply_tuning
from ..prompts.plain import pad_ids, tokenize_plain
from .adapet import check_objective, decoupled_label_loss, label_conditioned_mlm_loss, lcm_batch
from .loop import IndexStream, TrainConfig, TrainLog, check_dev, check_targets, dev_score, seed_everything, train_loop
from .losses import distillation_loss, mask_tokens, special_mask


@dataclass
class _PromptData:
    """A prompt-training run's inputs, checked and encoded once (see :func:`train_prompt_model`)."""

    encoded: list  # one ``Encoded`` per training example
    vt: Any  # the verbalizer's tokens (``VerbalizerTokens``)
    targets: torch.Tensor | None  # distillation probabilities, or None for cross-entropy
    plain: list  # unlabelled texts tokenised plainly, for the auxiliary MLM loss
    views: list = field(default_factory=list)  # per second-view PVP: one ``Encoded`` per example
    adapet: Any = None  # an ``ADAPETObjective``, or None
    redraw: Callable[[int, int], Example] | None = None  # (example, draw) -> the version to train on
    encoder: Any = None  # the PVP's encoder (encodes redrawn examples on the fly)
    labels: list = field(default_factory=list)  # each training example's label
    view_encoders: list = field(default_factory=list)  # per second-view PVP, when its examples are redrawn
    view_redraw: Callable[[int, int], Example] | None = None  # (example, draw) -> its second view


def _prompt_data(model, pvp, train: list[Example], config: TrainConfig, labels: list[str], unlabelled: list[Example],
                 soft_targets, second_view, adapet=None, redraw=None) -> _PromptData:
    """Check the inputs of :func:`train_prompt_model` and encode them (one-line errors)."""
    if not train:
        raise DataError("no training examples; fix: pass at least one labelled example")
    pvp.check_labels(labels, "the training labels")
    enc = model.encoder_for(pvp, config.max_length, labels)
    encoded = enc.encode(train)
    targets = None
    if soft_targets is not None:
        targets = check_targets(soft_targets, len(train), len(labels))
    else:
        missing = [e.guid for e in train if e.label is None]
        if missing:
            raise DataError(f"training example '{missing[0]}' has no label ({len(missing)} such); fix: label it, or pass soft_targets")
    if config.mlm_weight > 0 and not unlabelled:
        raise ConfigError(f"mlm_weight={config.mlm_weight} needs unlabelled text but none was given; fix: pass unlabelled examples or set mlm_weight 0")
    plain = tokenize_plain(model.tokenizer, unlabelled, config.max_length) if config.mlm_weight > 0 else []
    check_objective(adapet, model, soft_targets)
    views = _encode_views(model, train, config, labels, soft_targets, second_view)
    if redraw is not None and adapet is not None and adapet.lcm_weight > 0:
        raise ConfigError("redrawn training examples with ADAPET's label-conditioned MLM are not supported; fix: set lcm_weight 0")
    data = _PromptData(encoded, enc.verbalizer_tokens, targets, plain, views, adapet, redraw, enc, [e.label for e in train])
    if second_view is not None and second_view.weight != 0 and second_view.redraw is not None:
        data.view_encoders = [model.encoder_for(v, config.max_length, labels) for v in second_view.pvps]
        data.view_redraw = second_view.redraw
    return data


def _draw_numbers(idx: list[int], counts: list[int]) -> list[int]:
    """How many times each index of this micro-batch was drawn before (counts updated)."""
    out = []
    for i in idx:
        out.append(counts[i])
        counts[i] += 1
    return out


def _version(redraw: Callable[[int, int], Example], i: int, d: int, label, what: str) -> Example:
    ex = redraw(i, d)
    if ex.label != label:
        raise DataError(f"{what}({i}, {d}) returned label '{ex.label}' for a training example labelled '{label}'; "
                        "fix: return a version of the same example with its label")
    return ex


def _drawn(data: _PromptData, idx: list[int], draws: list[int]) -> list:
    """The encoded examples of one micro-batch: the training examples themselves, or — with
    ``redraw`` — the version of each example for the time it is drawn (``draws``)."""
    if data.redraw is None:
        return [data.encoded[i] for i in idx]
    return [data.encoder.encode([_version(data.redraw, i, d, data.labels[i], "redraw")])[0] for i, d in zip(idx, draws)]


def _encode_views(model, train: list[Example], config: TrainConfig, labels: list[str], soft_targets, second_view) -> list:
    """The contrastive term's second views, encoded (empty when the term is off, or when they are
    redrawn per draw: then encoded as drawn)."""
    if second_view is None or second_view.weight == 0:
        return []
    if soft_targets is not None:
        raise ConfigError("the contrastive term needs class labels but training has soft targets (distillation or regression); "
                          "fix: set contrastive_weight 0")
    if second_view.redraw is not None:
        return []
    examples = train if second_view.examples is None else list(second_view.examples)
    if len(examples) != len(train) or any(a.label != b.label for a, b in zip(examples, train)):
        raise ConfigError(f"second view: {len(examples)} examples do not match the {len(train)} training examples label for label; "
                          "fix: pass one second-view example per training example, in the same order")
    return [model.encoder_for(v, config.max_length, labels).encode(examples) for v in second_view.pvps]


def _prompt_batches(data: _PromptData, config: TrainConfig, tokenizer) -> Callable[[int, int], Iterator[dict]]:
    """``batches(rank, world)`` for :func:`train_loop`: collated training examples, plus their
    distillation targets, an MLM batch of unlabelled text and the second view where those are on."""
    from ..prompts.encoding import collate

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def batches(rank: int, world: int):
        idx_stream = IndexStream(len(data.encoded), config.batch_size, config.seed, rank, world)
        u_stream = IndexStream(len(data.plain), config.unlabelled_batch_size, config.seed + 1, rank, world) if config.mlm_weight > 0 else None
        gen = torch.Generator().manual_seed(config.seed + 2 + rank)
        view_gen = torch.Generator().manual_seed(config.seed + 3 + rank) if data.views or data.view_encoders else None
        lcm_gen = torch.Generator().manual_seed(config.seed + 4 + rank) if data.adapet is not None and data.adapet.lcm_weight > 0 else None
        counts = [0] * len(data.encoded)
        for idx in idx_stream:
            draws = _draw_numbers(idx, counts)
            b = collate(_drawn(data, idx, draws), pad)
            if data.targets is not None:
                b["targets"] = data.targets[idx]
            if u_stream is not None:
                ids, att = pad_ids([data.plain[i] for i in next(u_stream)], pad)
                b["mlm_input_ids"], b["mlm_labels"] = mask_tokens(ids, special_mask(tokenizer, ids, att), tokenizer, config.mlm_probability, gen)
                b["mlm_attention_mask"] = att
            if view_gen is not None:  # one view template per example, drawn uniformly
                pick = torch.randint(len(data.views or data.view_encoders), (len(idx),), generator=view_gen).tolist()
                if data.view_redraw is None:
                    b["view"] = collate([data.views[j][i] for j, i in zip(pick, idx)], pad)
                else:
                    b["view"] = collate([data.view_encoders[j].encode([_version(data.view_redraw, i, d, data.labels[i], "second_view.redraw")])[0]
                                         for j, i, d in zip(pick, idx, draws)], pad)
            if lcm_gen is not None:  # ADAPET: a sampled label's word at the mask, some text masked
                b["lcm"] = lcm_batch([data.encoded[i] for i in idx], data.vt, data.adapet.lcm_mask_ratio, tokenizer.mask_token_id, pad, lcm_gen)
            yield b

    return batches


def _prompt_loss(data: _PromptData, config: TrainConfig, second_view) -> Callable[[nn.Module, dict], dict]:
    """``loss_fn(model, batch)`` for :func:`train_loop` (the losses of :func:`train_prompt_model`)."""
    from .contrastive import mask_representation, supcon_loss

    vt, T, adapet = data.vt, config.temperature, data.adapet

    def loss_fn(m, b):
        dev = m.device
        view, lcm = b.get("view"), b.get("lcm")
        if view is not None or lcm is not None:
            b = {k: v for k, v in b.items() if k not in ("view", "lcm")}
        if view is not None:
            scores, hidden = m.label_scores_and_states(b, vt)
        else:
            scores = m.label_scores(b, vt)
        if "targets" in b:
            main = distillation_loss(scores, b["targets"].to(dev), T)
            out = {"kl": main}
        elif adapet is not None and adapet.decoupled:
            main = decoupled_label_loss(scores, b["labels"].to(dev))
            out = {"dlo": main}
        else:
            main = F.cross_entropy(scores, b["labels"].to(dev))
            out = {"ce": main}
        if "mlm_input_ids" in b:
            mlm = m.mlm_loss(b["mlm_input_ids"], b["mlm_attention_mask"], b["mlm_labels"])
            out["mlm"] = mlm
            main = main + config.mlm_weight * mlm
        if view is not None:
            views = torch.stack([mask_representation(hidden), mask_representation(m.mask_hidden(view, 1))])
            out["supcon"] = supcon_loss(views, b["labels"].to(dev), second_view.temperature)
            main = main + second_view.weight * out["supcon"]
        if lcm is not None:
            out["lcm"] = label_conditioned_mlm_loss(m, lcm)
            main = main + adapet.lcm_weight * out["lcm"]
        out["loss"] = main
        return out

    return loss_fn


def train_prompt_model(
    model,
    pvp,
    train: Sequence[Example],
    config: TrainConfig | dict | None,
    labels: Sequence[str],
    unlabelled: Sequence[Example] = (),
    soft_targets: np.ndarray | None = None,
    *,
    progress: bool = True,
    dev: Sequence[Example] = (),
    dev_metric: Callable[[list, list], float] | None = None,
    second_view=None,
    adapet=None,
    redraw: Callable[[int, int], Example] | None = None,
    dev_sets: Sequence[Sequence[Example]] | None = None,
) -> TrainLog:
    """Fine-tune ``model`` (a ``PromptModel``) on one PVP, in place.

    With ``config.eval_every``, ``dev`` (labelled examples) is scored with ``dev_metric``
    (default accuracy) during training and the best checkpoint is kept (see :func:`train_loop`).

    Loss: cross-entropy over the verbalizer label scores, or — with ``soft_targets``
    (``[len(train), len(labels)]`` probabilities) — the distillation KL at
    ``config.temperature``; plus ``config.mlm_weight`` × the MLM loss on ``unlabelled`` text;
    plus, with ``second_view`` (a :class:`pet.training.contrastive.SecondView` of weight > 0),
    its weight × the SupCon loss between the mask-position states of each example and of its
    second view (:mod:`pet.training.contrastive`); with ``adapet`` (a
    :class:`pet.training.adapet.ADAPETObjective`), ADAPET's decoupled label loss instead of the
    cross-entropy and/or its label-conditioned MLM term. Trained: what ``config.tune`` selects in
    ``model.mlm`` plus every parameter of ``model.prompt_encoder`` if one is attached. The
    model is left in eval mode.

    Versions of the inputs (LM-BFF's demonstrations, :mod:`pet.prompts.demonstrations`):

    * ``redraw(i, d)`` — the example trained on the ``d``-th time (0, 1, …) training example
      ``i`` is drawn (same label; encoded when drawn). LM-BFF samples new demonstrations each
      time a training example is fetched. Without it every draw is ``train[i]``.
    * ``dev_sets`` — several versions of ``dev`` (same examples, same order); the dev score is
      that of their label log-probs averaged (LM-BFF scores dev with ``num_sample`` sets).
    """
    config = (config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)).resolved()
    labels = list(labels)
    data = _prompt_data(model, pvp, list(train), config, labels, list(unlabelled), soft_targets, second_view, adapet, redraw)
    versions = [list(dev)] if dev_sets is None else [list(d) for d in dev_sets]
    if any(len(v) != len(dev) or any(a.label != b.label for a, b in zip(v, dev)) for v in versions):
        raise ConfigError(f"dev_sets: every version must hold the {len(dev)} dev examples in order with their labels; fix: pass versions of dev")
    seed_everything(config.seed)  # LoRA's adapters are initialised here: from the seed, not from whatever ran before
    trained = apply_tuning(model, config.tune, r=config.lora_r, alpha=config.lora_alpha, dropout=config.lora_dropout)

    def evaluate() -> float:
        lps = [model.predict_log_proba(v, pvp, batch_size=config.eval_batch_size, max_length=config.max_length, labels=labels) for v in versions]
        lp = lps[0] if len(lps) == 1 else ensemble(lps)
        return dev_score(dev, [labels[i] for i in lp.argmax(1)], dev_metric)

    log = train_loop(
        model,
        _prompt_loss(data, config, second_view),
        _prompt_batches(data, config, model.tokenizer),
        config,
        soft_module=model.prompt_encoder,
        desc=f"train {pvp.id}",
        progress=progress,
        examples=len(data.encoded),
        evaluate=evaluate if check_dev(config, dev) else None,
    )
    log.trained_parameters = trained
    model.precision = config.precision  # the trained model scores in the precision it trained in
    model.eval()
    return log
