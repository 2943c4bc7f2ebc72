"""The ``[CLS]`` + MLP fine-tuning baseline, and the sequence classifier PET distils into.

``SequenceClassifier`` = ``AutoModel`` encoder + a head like ``RobertaClassificationHead``
(dropout → dense → tanh → dropout → linear) on the first token's hidden state. All weights
train. It is trained by the same loop as prompt models (:func:`pet.training.train_loop`) with
cross-entropy on labels, or PET's distillation KL on soft targets.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, DataError, ModelError
from ..examples import Example
from ..training import (
    IndexStream,
    TrainConfig,
    TrainLog,
    distillation_loss,
    pad_ids,
    seed_everything,
    split_options,
    tokenize_plain,
    train_loop,
)
from .base import RunContext, StageResult, register

HEAD_FILE = "classifier_head.safetensors"
META_FILE = "classifier.json"


class ClassificationHead(nn.Module):
    """dropout → dense → tanh → dropout → linear (``RobertaClassificationHead``)."""

    def __init__(self, hidden: int, n_labels: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, n_labels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = self.dropout(h)
        x = torch.tanh(self.dense(x))
        return self.out_proj(self.dropout(x))


def _load_encoder(name_or_path: str):
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tok = AutoTokenizer.from_pretrained(name_or_path)
        try:  # the pooler is unused: leave it out where the family allows
            enc = AutoModel.from_pretrained(name_or_path, dtype=torch.float32, add_pooling_layer=False)
        except TypeError:
            enc = AutoModel.from_pretrained(name_or_path, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"cannot load encoder '{name_or_path}': {first}; fix: pass --model with a local model folder or a hub name") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    return enc, tok


class SequenceClassifier(nn.Module):
    """Encoder + classification head over ``labels``; predicts from ``text_a`` (+ ``text_b``)."""

    def __init__(self, encoder: nn.Module, tokenizer, labels: Sequence[str], max_length: int = 256, name: str = "", dropout: float | None = None):
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.labels = [str(x) for x in labels]
        self.max_length = int(max_length)
        self.name = name
        cfg = encoder.config
        hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "dim")
        if dropout is None:
            dropout = getattr(cfg, "classifier_dropout", None) or getattr(cfg, "hidden_dropout_prob", None) or getattr(cfg, "dropout", 0.1)
        self.dropout_p = float(dropout)
        self.head = ClassificationHead(hidden, len(self.labels), self.dropout_p)

    @classmethod
    def from_pretrained(cls, name_or_path: str, labels: Sequence[str], max_length: int = 256, device=None, seed: int | None = None) -> "SequenceClassifier":
        """Pretrained encoder + a freshly initialised head (seeded with ``seed`` if given)."""
        from ..model import resolve_device

        enc, tok = _load_encoder(name_or_path)
        if seed is not None:
            torch.manual_seed(seed)
        m = cls(enc, tok, labels, max_length, name=name_or_path)
        m.eval()
        return m.to(resolve_device(device))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, examples: Sequence[Example]) -> list[list[int]]:
        return tokenize_plain(self.tokenizer, examples, self.max_length)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Label logits ``[B, L]``."""
        h = self.encoder(input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device)).last_hidden_state
        return self.head(h[:, 0])

    @torch.inference_mode()
    def predict_log_proba(self, examples: Sequence[Example], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Label log-probabilities ``[N, L]`` in the order of ``self.labels``."""
        from tqdm.auto import tqdm

        was = self.training
        self.eval()
        ids = self.encode(examples)
        pad = self.tokenizer.pad_token_id or 0
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out = np.zeros((len(ids), len(self.labels)), dtype=np.float64)
        for s in tqdm(range(0, len(order), batch_size), disable=not progress, leave=False, desc="predict"):
            idx = order[s : s + batch_size]
            x, att = pad_ids([ids[i] for i in idx], pad)
            out[idx] = torch.log_softmax(self(x, att).float(), -1).double().cpu().numpy()
        self.train(was)
        return out

    def predict_proba(self, examples: Sequence[Example], **kw) -> np.ndarray:
        return np.exp(self.predict_log_proba(examples, **kw))

    def predict(self, examples: Sequence[Example], **kw) -> list[str]:
        return [self.labels[i] for i in self.predict_log_proba(examples, **kw).argmax(1)]

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> None:
        """Write into folder ``path`` (created): the encoder in Hugging Face format
        (``config.json``, ``model.safetensors``), tokenizer files, ``classifier_head.safetensors``
        and ``classifier.json`` (labels, max_length, dropout)."""
        from safetensors.torch import save_file

        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(d)
        self.tokenizer.save_pretrained(d)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}, str(d / HEAD_FILE))
        meta = {"labels": self.labels, "max_length": self.max_length, "dropout": self.dropout_p, "base_model": self.name}
        (d / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path, device=None) -> "SequenceClassifier":
        from safetensors.torch import load_file

        from ..model import resolve_device

        d = Path(path)
        if not (d / META_FILE).is_file() or not (d / HEAD_FILE).is_file():
            raise ModelError(f"{d}: not a saved sequence classifier ({META_FILE} or {HEAD_FILE} missing); fix: point at a folder written by SequenceClassifier.save")
        meta = json.loads((d / META_FILE).read_text(encoding="utf-8"))
        from transformers import AutoModel, AutoTokenizer

        enc = AutoModel.from_pretrained(str(d), dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(str(d))
        m = cls(enc, tok, meta["labels"], meta["max_length"], name=meta.get("base_model", ""), dropout=meta.get("dropout"))
        m.head.load_state_dict(load_file(str(d / HEAD_FILE)))
        m.eval()
        return m.to(resolve_device(device))


def train_classifier(
    clf: SequenceClassifier,
    train: Sequence[Example],
    config: TrainConfig,
    soft_targets: np.ndarray | None = None,
    progress: bool = True,
) -> TrainLog:
    """Train all weights of ``clf`` in place on ``train`` (CE on labels, or KL on soft targets)."""
    from ..training import _check_targets

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
        targets = _check_targets(soft_targets, len(train), len(clf.labels))
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

    log = train_loop(clf, loss_fn, batches, config, desc="train cls", progress=progress, examples=len(train))
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
) -> SequenceClassifier:
    """Load ``model_name`` as an encoder, add a fresh head over ``labels``, train all weights.

    With ``soft_targets`` (``[len(train), len(labels)]`` probabilities) the loss is PET's
    distillation KL at ``config.temperature``; ``train`` may then be unlabelled. The returned
    classifier has ``.train_log`` (a ``TrainLog``)."""
    config = TrainConfig.from_dict(config)
    seed_everything(config.seed)
    clf = SequenceClassifier.from_pretrained(model_name, labels, config.max_length or 256, device=device, seed=config.seed)
    clf.train_log = train_classifier(clf, train, config, soft_targets, progress)
    return clf


def peak_memory_mb(device=None) -> float:
    """Peak memory of this process: CUDA max allocated on GPU, else max RSS."""
    if device is not None and torch.device(device).type == "cuda" or (device is None and torch.cuda.is_available()):
        return torch.cuda.max_memory_allocated() / 2**20
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def reset_peak_memory(device=None) -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


@register("cls-ft")
def run(ctx: RunContext, options: dict) -> list[StageResult]:
    """``[CLS]``+MLP fine-tuning with the prompt-ft budget (same steps, batch, lr, splits)."""
    config, _ = split_options({"seed": ctx.seed, **options}, where="cls-ft options")
    if config.max_length is None:
        config = config.replace(max_length=getattr(ctx.task, "max_length", None) or 256)
    reset_peak_memory(ctx.device)
    clf = train_sequence_classifier(ctx.model, ctx.train, ctx.labels, config, device=ctx.device, progress=ctx.progress)
    t0 = time.perf_counter()
    lp = clf.predict_log_proba(ctx.test, batch_size=config.eval_batch_size, progress=ctx.progress)
    secs = time.perf_counter() - t0
    pred = [clf.labels[i] for i in lp.argmax(1)]
    row = StageResult(
        "cls-ft",
        "final",
        float(ctx.score([e.label for e in ctx.test], pred)),
        ctx.task.metric,
        train_seconds=clf.train_log.train_seconds,
        eval_examples_per_second=len(ctx.test) / max(secs, 1e-9),
        trained_parameters=clf.train_log.trained_parameters,
        peak_memory_mb=peak_memory_mb(ctx.device),
        extra={"steps": clf.train_log.steps, "final_loss": clf.train_log.final_loss, "config": config.to_dict()},
    )
    if ctx.output_dir is not None:
        from ..classifier import PetClassifier

        PetClassifier.from_trained(
            ctx.model, "cls-ft", ctx.labels, config, clf, pvps=ctx.pvps, logs={"cls": clf.train_log}, metrics=[row.to_dict()]
        ).save(ctx.output_dir, overwrite=True)
    return [row]
