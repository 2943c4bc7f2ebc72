"""The sequence classifier: the ``[CLS]`` + MLP baseline and the model PET distils into.

``SequenceClassifier`` = ``AutoModel`` encoder + a head like ``RobertaClassificationHead``
(dropout → dense → tanh → dropout → linear) on the first token's hidden state. All weights
train. It is trained by the same loop as prompt models (:func:`pet.training.loop.train_loop`) with
cross-entropy on labels, or PET's distillation KL on soft targets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoModel

from ..utils.defaults import DEFAULT_EVAL_BATCH_SIZE, DEFAULT_MAX_LENGTH
from ..errors import ConfigError, DataError, ModelError
from ..examples import Example
from .hf import load_pretrained
from .prompt_model import resolve_device
from ..prompts.encoding import pad_ids, tokenize_plain

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
    try:  # the pooler is unused: leave it out where the family allows
        return load_pretrained(AutoModel, name_or_path, "encoder", add_pooling_layer=False)
    except TypeError:
        return load_pretrained(AutoModel, name_or_path, "encoder")


class SequenceClassifier(nn.Module):
    """Encoder + classification head over ``labels``; predicts from ``text_a`` (+ ``text_b``)."""

    def __init__(self, encoder: nn.Module, tokenizer, labels: Sequence[str], max_length: int = DEFAULT_MAX_LENGTH, name: str = "", dropout: float | None = None):
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
    def from_pretrained(cls, name_or_path: str, labels: Sequence[str], max_length: int = DEFAULT_MAX_LENGTH, device=None, seed: int | None = None) -> "SequenceClassifier":
        """Pretrained encoder + a freshly initialised head (seeded with ``seed`` if given)."""
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
    def predict_log_proba(self, examples: Sequence[Example], batch_size: int = DEFAULT_EVAL_BATCH_SIZE, progress: bool = False) -> np.ndarray:
        """Label log-probabilities ``[N, L]`` in the order of ``self.labels``."""
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
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(d)
        self.tokenizer.save_pretrained(d)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}, str(d / HEAD_FILE))
        meta = {"labels": self.labels, "max_length": self.max_length, "dropout": self.dropout_p, "base_model": self.name}
        (d / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path, device=None) -> "SequenceClassifier":
        d = Path(path)
        if not (d / META_FILE).is_file() or not (d / HEAD_FILE).is_file():
            raise ModelError(f"{d}: not a saved sequence classifier ({META_FILE} or {HEAD_FILE} missing); fix: point at a folder written by SequenceClassifier.save")
        meta = json.loads((d / META_FILE).read_text(encoding="utf-8"))
        enc, tok = load_pretrained(AutoModel, str(d), "saved encoder")
        m = cls(enc, tok, meta["labels"], meta["max_length"], name=meta.get("base_model", ""), dropout=meta.get("dropout"))
        m.head.load_state_dict(load_file(str(d / HEAD_FILE)))
        m.eval()
        return m.to(resolve_device(device))
