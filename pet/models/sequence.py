"""The sequence classifier: the ``[CLS]`` + MLP baseline and the model PET distils into.

``SequenceClassifier`` = ``AutoModel`` encoder + a head like ``RobertaClassificationHead``
(dropout → dense → tanh → dropout → linear) on the first token's hidden state. All weights
train. It is trained by the same loop as prompt models (:func:`pet.training.loop.train_loop`) with
cross-entropy on labels, or PET's distillation KL on soft targets.

Saved in transformers' own layout where the family's ``*ForSequenceClassification`` head computes
exactly what this head computes at inference (dropout is off): RoBERTa / XLM-R / CamemBERT
(``classifier.dense`` + ``classifier.out_proj``, the same head), BERT and ALBERT (the pooler's
dense + tanh on the first token, then ``classifier``). ``config.json`` then names that
architecture with ``id2label`` / ``label2id``, so ``AutoModelForSequenceClassification`` and
``pipeline("text-classification")`` give this classifier's probabilities. Other families
(DistilBERT's head uses ReLU, ELECTRA's GELU) keep the encoder folder plus
``classifier_head.safetensors``: no transformers head reproduces theirs.

The input is ``text_a`` (+ ``text_b``) in ``pair_format`` (:func:`pet.prompts.plain.tokenize_plain`):
the tokenizer's own pair layout (default), or LM-BFF's ``single_sep`` (``<s> a </s> b </s>``), which
``classifier.json`` records so that a loaded classifier encodes as it was trained. transformers'
``pipeline`` builds the tokenizer's own pair layout: for text pairs under ``single_sep`` it feeds
the model an input it was not trained on (single texts are encoded alike in both formats).
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
from transformers import AutoModel, AutoModelForSequenceClassification

from ..errors import ModelError
from ..utils.jsonio import read_json
from ..examples import Example
from ..prompts.plain import PAIR_FORMATS, pad_ids, tokenize_plain
from ..utils.defaults import DEFAULT_EVAL_BATCH_SIZE, DEFAULT_MAX_LENGTH
from .hf import check_max_length, load_pretrained, reading_weights
from .prompt_model import resolve_device, takes_token_types

HEAD_FILE = "classifier_head.safetensors"
META_FILE = "classifier.json"

#: model_type -> (our head's parameter -> the *ForSequenceClassification parameter), for the
#: families whose sequence-classification head equals ours at inference
_ROBERTA_HEAD = {"dense": "classifier.dense", "out_proj": "classifier.out_proj"}
HF_HEADS: dict[str, dict[str, str]] = {
    "roberta": _ROBERTA_HEAD, "xlm-roberta": _ROBERTA_HEAD, "camembert": _ROBERTA_HEAD,
    "bert": {"dense": "{base}.pooler.dense", "out_proj": "classifier"},
    "albert": {"dense": "{base}.pooler", "out_proj": "classifier"},
}


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


def _load_encoder(name_or_path: str, what: str = "encoder"):
    try:  # the pooler is unused: leave it out where the family allows
        return load_pretrained(AutoModel, name_or_path, what, add_pooling_layer=False)
    except TypeError:
        return load_pretrained(AutoModel, name_or_path, what)


class SequenceClassifier(nn.Module):
    """Encoder + classification head over ``labels``; predicts from ``text_a`` (+ ``text_b``)."""

    def __init__(self, encoder: nn.Module, tokenizer, labels: Sequence[str], max_length: int = DEFAULT_MAX_LENGTH, name: str = "",
                 dropout: float | None = None, pair_format: str = "tokenizer"):
        super().__init__()
        if pair_format not in PAIR_FORMATS:
            raise ModelError(f"pair_format '{pair_format}' is unknown; fix: use one of {', '.join(PAIR_FORMATS)}")
        #: how ``text_a`` and ``text_b`` become one input (see :func:`pet.prompts.plain.tokenize_plain`)
        self.pair_format = pair_format
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.labels = [str(x) for x in labels]
        #: what ``id2label`` says in a saved config (the task's label names); the label ids by default
        self.label_names = list(self.labels)
        self.max_length = int(max_length)
        self.name = name
        check_max_length(encoder, self.max_length, name or type(encoder).__name__)
        cfg = encoder.config
        hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "dim")
        if dropout is None:
            dropout = getattr(cfg, "classifier_dropout", None) or getattr(cfg, "hidden_dropout_prob", None) or getattr(cfg, "dropout", 0.1)
        self.dropout_p = float(dropout)
        self.head = ClassificationHead(hidden, len(self.labels), self.dropout_p)
        #: BERT-style encoders get segment ids (0 up to the first separator, 1 after it), as
        #: ``tokenizer(a, b)`` and LM-BFF's ``tokenize_multipart_input`` give them
        self.uses_token_types = takes_token_types(encoder) and "token_type_ids" in getattr(tokenizer, "model_input_names", ())

    @classmethod
    def from_pretrained(cls, name_or_path: str, labels: Sequence[str], max_length: int = DEFAULT_MAX_LENGTH, device=None, seed: int | None = None,
                        pair_format: str = "tokenizer") -> "SequenceClassifier":
        """Pretrained encoder + a freshly initialised head (seeded with ``seed`` if given)."""
        device = resolve_device(device)  # a bad device fails before the model loads
        enc, tok = _load_encoder(name_or_path)
        if seed is not None:
            torch.manual_seed(seed)
        m = cls(enc, tok, labels, max_length, name=name_or_path, pair_format=pair_format)
        m.eval()
        return m.to(resolve_device(device))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, examples: Sequence[Example]) -> list[list[int]]:
        return tokenize_plain(self.tokenizer, examples, self.max_length, pair_format=self.pair_format)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Label logits ``[B, L]``."""
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        kw = {"token_type_ids": self.token_types(input_ids, attention_mask)} if self.uses_token_types else {}
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kw).last_hidden_state
        return self.head(h[:, 0])

    def token_types(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Segment ids of padded inputs: 0 through the first separator, 1 after it (the second
        text and its closing separator), 0 on padding — what BERT's tokenizer gives a pair."""
        sep = (input_ids == self.tokenizer.sep_token_id).long()
        after_first = (sep.cumsum(1) - sep) >= 1
        return (after_first & (attention_mask > 0)).long()

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
        """Write into folder ``path`` (created): in transformers' layout when the family's head
        matches (see the module doc), else the encoder plus ``classifier_head.safetensors``;
        tokenizer files and ``classifier.json`` (labels, max_length, dropout, pair_format) either way."""
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        layout = "transformers" if self.encoder.config.model_type in HF_HEADS else "encoder+head"
        if layout == "transformers":
            self._hf_model().save_pretrained(d)
        else:
            self.encoder.save_pretrained(d)
            save_file({k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}, str(d / HEAD_FILE))
        self.tokenizer.save_pretrained(d)
        meta = {"labels": self.labels, "max_length": self.max_length, "dropout": self.dropout_p, "base_model": self.name, "layout": layout,
                "pair_format": self.pair_format}
        (d / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    def _hf_model(self) -> nn.Module:
        """This classifier as the family's ``*ForSequenceClassification`` (weights copied)."""
        cfg = self.encoder.config.__class__.from_dict(self.encoder.config.to_dict())
        cfg.num_labels = len(self.labels)
        cfg.id2label = dict(enumerate(str(n) for n in self.label_names))
        cfg.label2id = {str(n): i for i, n in enumerate(self.label_names)}
        cfg.problem_type = "single_label_classification"
        m = AutoModelForSequenceClassification.from_config(cfg)
        state = {f"{m.base_model_prefix}.{k}": v for k, v in self.encoder.state_dict().items()}
        for ours, theirs in HF_HEADS[cfg.model_type].items():
            for k, v in getattr(self.head, ours).state_dict().items():
                state[f"{theirs.format(base=m.base_model_prefix)}.{k}"] = v
        missing, unexpected = m.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise ModelError(f"cannot map the classifier onto {type(m).__name__} (missing {missing[:3]}, unexpected {unexpected[:3]}); fix: report this model family")
        m.config.architectures = [type(m).__name__]
        return m.eval()

    @classmethod
    def _from_hf(cls, d: Path, meta: dict) -> "SequenceClassifier":
        m, tok = load_pretrained(AutoModelForSequenceClassification, str(d), "saved classifier")
        base = getattr(m, m.base_model_prefix)
        m_cls = cls(base, tok, meta["labels"], meta["max_length"], name=meta.get("base_model", ""), dropout=meta.get("dropout"))
        state = m.state_dict()
        for ours, theirs in HF_HEADS[m.config.model_type].items():
            prefix = theirs.format(base=m.base_model_prefix) + "."
            getattr(m_cls.head, ours).load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        if m.config.model_type in ("bert", "albert"):  # the pooler is the head's dense now: not run twice
            base.pooler = None
        m_cls.label_names = [m.config.id2label[i] for i in range(len(meta["labels"]))]
        return m_cls

    @classmethod
    def load(cls, path: str | Path, device=None) -> "SequenceClassifier":
        d = Path(path)
        device = resolve_device(device)
        if not (d / META_FILE).is_file():
            raise ModelError(f"{d}: not a saved sequence classifier ({META_FILE} missing); fix: point at a folder written by SequenceClassifier.save")
        meta = read_json(d / META_FILE, ModelError)
        problem = _meta_problem(meta)
        if problem:
            raise ModelError(f"{d / META_FILE}: {problem}; fix: re-save the classifier")
        if meta.get("layout") == "transformers":
            m = cls._from_hf(d, meta)
        else:
            if not (d / HEAD_FILE).is_file():
                raise ModelError(f"{d}: {HEAD_FILE} missing; fix: re-save the classifier")
            enc, tok = _load_encoder(str(d), "saved encoder")  # no pooler: none was saved
            m = cls(enc, tok, meta["labels"], meta["max_length"], name=meta.get("base_model", ""), dropout=meta.get("dropout"))
            with reading_weights(str(d), HEAD_FILE):
                m.head.load_state_dict(load_file(str(d / HEAD_FILE)))
        m.pair_format = meta.get("pair_format", "tokenizer")  # absent: saved before the option, the tokenizer's own
        if m.pair_format not in PAIR_FORMATS:
            raise ModelError(f"{d / META_FILE}: pair_format '{m.pair_format}' is unknown; fix: use one of {', '.join(PAIR_FORMATS)}")
        m.eval()
        return m.to(resolve_device(device))


def _meta_problem(meta) -> str | None:
    """What makes a saved classifier's metadata unusable (a hand-edited or damaged file), or None."""
    if not isinstance(meta, dict):
        return f"must be a JSON object, not {type(meta).__name__}"
    labels = meta.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        return "labels: must be a non-empty list of strings"
    n = meta.get("max_length")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        return "max_length: must be a whole number of at least 2"
    return None
