"""``PromptModel``: exact, fast label scores from any ``AutoModelForMaskedLM``.

Scoring rule (the same for zero-shot, training and evaluation):

1. run the encoder once per batch; gather its hidden states at the mask positions only;
2. apply the model's own MLM head to those rows; log-softmax over the whole vocabulary;
3. a word of n sub-tokens scores the mean log-prob of its sub-tokens at the first n masks;
4. a label scores log(mean over its words of exp(word score)) — the mean probability;
5. label log-probabilities are the label scores renormalised over the labels (log-softmax).

This equals the naive computation (full-vocabulary logits at every position) up to float
rounding, at a fraction of the cost: the vocabulary projection runs on B×masks rows, not
B×length.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from transformers import AutoModelForMaskedLM

from ..prompts.encoding import PVPEncoder, VerbalizerTokens, iter_batches
from ..utils.defaults import DEFAULT_MAX_LENGTH
from ..errors import ModelError, UsageError
from ..examples import Example
from .hf import check_max_length, load_pretrained
from ..prompts.spec import PVP

#: Numeric precision of scoring (and training): fp32, or autocast to bf16 / fp16.
PRECISIONS = ("fp32", "bf16", "fp16")


def precision_autocast(device: torch.device, precision: str | None):
    """``torch.autocast`` for ``bf16``/``fp16`` on ``device``; a no-op for ``fp32`` (or None)."""
    import contextlib

    if not precision or precision == "fp32":
        return contextlib.nullcontext()
    if precision not in PRECISIONS:
        raise ModelError(f"precision '{precision}' is unknown; fix: one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        raise ModelError("precision fp16 needs a GPU; fix: --precision bf16 on CPU (or fp32)")
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


#: Children that are not part of the prediction path.
_NON_HEAD = (nn.CrossEntropyLoss,)


def split_mlm(mlm: nn.Module) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor] | None]:
    """The encoder and MLM head of a masked LM, so the head can run on mask rows only.

    Works for every family whose head is one child module (BERT ``cls``, RoBERTa/MPNet/XLM-R
    ``lm_head``, ALBERT ``predictions``…) and for DistilBERT's four-part head. Returns
    ``(mlm, None)`` when the layout is unknown: scoring then falls back to the full model's
    logits, still exact, only slower.
    """
    prefix = getattr(mlm, "base_model_prefix", None)
    encoder = getattr(mlm, prefix, None) if prefix else None
    if encoder is None:
        return mlm, None
    names = [n for n, c in mlm.named_children() if c is not encoder and not isinstance(c, _NON_HEAD)]
    if len(names) == 1:
        return encoder, getattr(mlm, names[0])
    if {"vocab_transform", "activation", "vocab_layer_norm", "vocab_projector"} <= set(names):

        def distilbert_head(h: torch.Tensor) -> torch.Tensor:
            h = mlm.vocab_layer_norm(mlm.activation(mlm.vocab_transform(h)))
            return mlm.vocab_projector(h)

        return encoder, distilbert_head
    return mlm, None


def takes_token_types(mlm: nn.Module) -> bool:
    """Whether the model embeds token types (BERT, ALBERT: ``type_vocab_size`` 2; RoBERTa has 1)."""
    import inspect

    n = getattr(getattr(mlm, "config", None), "type_vocab_size", 0) or 0
    try:
        accepts = "token_type_ids" in inspect.signature(mlm.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover
        accepts = False
    return accepts and n >= 2


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device`` (None or ``auto``: cuda when available, else cpu); a name
    torch does not know, or a device this machine does not have, is a one-line ``UsageError``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(f"device '{device}' is not a device name; fix: --device cpu, cuda, cuda:N, mps or auto") from None
    if d.type == "cpu":
        return d
    backend = getattr(torch, d.type, None)
    if not getattr(backend, "is_available", lambda: False)():
        build = " (this torch is a CPU-only build)" if d.type == "cuda" and torch.version.cuda is None and torch.version.hip is None else ""
        raise UsageError(f"device '{device}': no {d.type} device is available{build}; fix: --device cpu, or auto (a GPU when there is one)")
    count = backend.device_count() if hasattr(backend, "device_count") else None
    if d.index is not None and count is not None and d.index >= count:
        raise UsageError(f"device '{device}': this machine has {count} {d.type} device(s), numbered from 0; fix: --device {d.type}:0 … {d.type}:{count - 1}")
    return d


class PromptModel(nn.Module):
    """A masked LM that scores PVPs.

    ``prompt_encoder`` is the hook where soft prompts plug in: a module called as
    ``prompt_encoder(inputs_embeds, batch) -> inputs_embeds`` before the encoder runs.
    """

    def __init__(self, mlm: nn.Module, tokenizer, name: str = "", device: str | torch.device | None = None):
        super().__init__()
        self.mlm = mlm
        self.tokenizer = tokenizer
        self.name = name or getattr(mlm, "name_or_path", "") or type(mlm).__name__
        self.encoder, self.head = split_mlm(mlm)
        self.prompt_encoder: nn.Module | None = None
        #: Token type ids from the encoder (``{segment}`` templates on BERT/ALBERT) are passed to
        #: the model when its config has room for them; otherwise the model's default (all 0).
        self.takes_token_types = takes_token_types(mlm)
        self.train(mlm.training)  # keep the wrapped model's mode (from_pretrained gives eval)
        self.to(resolve_device(device))

    @classmethod
    def from_pretrained(cls, name_or_path: str, device: str | torch.device | None = None) -> "PromptModel":
        """Load a local folder or a hub name (``roberta-large``) unchanged (safetensors weights only)."""
        device = resolve_device(device)  # a bad device fails before the model loads
        mlm, tokenizer = load_pretrained(AutoModelForMaskedLM, name_or_path, "masked LM")
        return cls(mlm, tokenizer, name=name_or_path, device=device)

    @property
    def device(self) -> torch.device:
        return next(self.mlm.parameters()).device

    # ------------------------------------------------------------------ differentiable core

    def _embed(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        kw = {"attention_mask": batch["attention_mask"]}
        if self.takes_token_types and "token_type_ids" in batch:
            kw["token_type_ids"] = batch["token_type_ids"]
        if self.prompt_encoder is None:
            kw["input_ids"] = batch["input_ids"]
        else:
            emb = self.mlm.get_input_embeddings()(batch["input_ids"])
            kw["inputs_embeds"] = self.prompt_encoder(emb, batch)
        return kw

    def _mask_rows(self, batch: dict[str, torch.Tensor], n_masks: int):
        """The batch on the model's device and the (rows, positions) of its ``n_masks`` masks."""
        batch = {k: v.to(self.device) for k, v in batch.items()}
        B = batch["input_ids"].shape[0]
        pos = batch["mask_start"][:, None] + torch.arange(n_masks, device=self.device)[None, :]
        rows = torch.arange(B, device=self.device)[:, None]
        return batch, rows, pos

    def mask_states(self, batch: dict[str, torch.Tensor], n_masks: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's last hidden states at the ``n_masks`` mask positions ``[B, n_masks, H]``
        (the rows the MLM head reads) and the head's vocabulary logits there ``[B, n_masks, V]``."""
        batch, rows, pos = self._mask_rows(batch, n_masks)
        kw = self._embed(batch)
        if self.head is None:  # unknown layout: the full model, its last hidden layer
            out = self.mlm(**kw, output_hidden_states=True)
            return out.hidden_states[-1][rows, pos], out.logits[rows, pos]
        hidden = self.encoder(**kw).last_hidden_state[rows, pos]
        return hidden, self.head(hidden)

    def mask_hidden(self, batch: dict[str, torch.Tensor], n_masks: int) -> torch.Tensor:
        """The encoder's last hidden states at the mask positions ``[B, n_masks, H]`` (no head)."""
        if self.head is None:
            return self.mask_states(batch, n_masks)[0]
        batch, rows, pos = self._mask_rows(batch, n_masks)
        return self.encoder(**self._embed(batch)).last_hidden_state[rows, pos]

    def mask_logits(self, batch: dict[str, torch.Tensor], n_masks: int) -> torch.Tensor:
        """Vocabulary logits at the ``n_masks`` mask positions: ``[B, n_masks, V]``."""
        batch, rows, pos = self._mask_rows(batch, n_masks)
        kw = self._embed(batch)
        if self.head is None:  # unknown layout: exact but slow path
            return self.mlm(**kw).logits[rows, pos]
        hidden = self.encoder(**kw).last_hidden_state
        return self.head(hidden[rows, pos])

    def token_logits(self, batch: dict[str, torch.Tensor], rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits ``[N, V]`` at the ``N`` positions ``(rows[i], cols[i])`` of the batch
        (any positions, not only the masks: ADAPET's label-conditioned MLM reads masked text)."""
        batch = {k: v.to(self.device) for k, v in batch.items()}
        rows, cols = rows.to(self.device), cols.to(self.device)
        kw = self._embed(batch)
        if self.head is None:  # unknown layout: exact but slow path
            return self.mlm(**kw).logits[rows, cols]
        return self.head(self.encoder(**kw).last_hidden_state[rows, cols])

    def mlm_loss(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The masked-LM loss of plain text: mean cross-entropy at the positions whose ``labels``
        are not -100, as ``self.mlm(input_ids, attention_mask, labels=labels).loss`` computes it,
        with the vocabulary projection run on those positions only (about 15% of the tokens)
        rather than on every position (no prompt encoder: the text is not a prompt)."""
        input_ids, attention_mask, labels = (t.to(self.device) for t in (input_ids, attention_mask, labels))
        if self.head is None:  # unknown layout: the full model's own loss
            return self.mlm(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        rows, cols = (labels != -100).nonzero(as_tuple=True)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[rows, cols]
        return nn.functional.cross_entropy(self.head(hidden), labels[rows, cols])

    def label_scores(self, batch: dict[str, torch.Tensor], vt: VerbalizerTokens) -> torch.Tensor:
        """Per-label scores ``[B, L]`` (log of the mean word probability; see module doc)."""
        lp = torch.log_softmax(self.mask_logits(batch, vt.n_masks).float(), dim=-1)
        return label_scores_from_log_probs(lp, vt)

    def label_scores_and_states(self, batch: dict[str, torch.Tensor], vt: VerbalizerTokens) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`label_scores` and the mask-position hidden states ``[B, n_masks, H]`` they come
        from, in one encoder pass (the contrastive term's first view)."""
        hidden, logits = self.mask_states(batch, vt.n_masks)
        return label_scores_from_log_probs(torch.log_softmax(logits.float(), dim=-1), vt), hidden

    def forward(self, batch: dict[str, torch.Tensor], vt: VerbalizerTokens) -> torch.Tensor:
        """Label log-probabilities ``[B, L]`` (normalised over the labels)."""
        return torch.log_softmax(self.label_scores(batch, vt), dim=-1)

    # ------------------------------------------------------------------ inference API

    def encoder_for(self, pvp: PVP, max_length: int = DEFAULT_MAX_LENGTH, labels: Sequence[str] | None = None) -> PVPEncoder:
        """The encoder of ``pvp``'s inputs for this model (``max_length`` checked against its positions)."""
        check_max_length(self.mlm, max_length, self.name)
        return PVPEncoder(pvp, self.tokenizer, max_length=max_length, labels=labels)

    @torch.inference_mode()
    def predict_log_proba(
        self,
        examples: Sequence[Example],
        pvp: PVP,
        batch_size: int = 32,
        max_length: int = DEFAULT_MAX_LENGTH,
        labels: Sequence[str] | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        """Label log-probabilities ``[N, L]`` in the order of ``labels`` (default: the verbalizer's)."""
        enc = self.encoder_for(pvp, max_length, labels)
        return self._score_encoded(enc.encode(examples), enc.verbalizer_tokens, batch_size, progress, pvp.id)

    def predict_proba(self, examples: Sequence[Example], pvp: PVP, **kw) -> np.ndarray:
        return np.exp(self.predict_log_proba(examples, pvp, **kw))

    def _score_encoded(self, encoded, vt, batch_size: int, progress: bool, desc: str) -> np.ndarray:
        from tqdm.auto import tqdm

        was_training = self.training
        self.eval()
        out = np.zeros((len(encoded), len(vt.labels)), dtype=np.float64)
        pad = self.tokenizer.pad_token_id or 0
        bar = tqdm(total=len(encoded), desc=desc, disable=not progress, leave=False, unit="ex")
        with precision_autocast(self.device, getattr(self, "precision", "fp32")):  # set by the method's `precision` option
            for idx, batch in iter_batches(encoded, batch_size, pad):
                out[idx] = self(batch, vt).double().cpu().numpy()
                bar.update(len(idx))
        bar.close()
        self.train(was_training)
        return out

    def content_free_log_prior(
        self, pvp: PVP, fields: Sequence[str], max_length: int = DEFAULT_MAX_LENGTH, labels: Sequence[str] | None = None
    ) -> np.ndarray:
        """Mean label distribution over content-free inputs ("N/A", "", the mask token), in log space
        (Zhao et al. 2021). Dividing predictions by it is contextual calibration."""
        fillers = ["N/A", "", self.tokenizer.mask_token]
        cf = [Example({f: v for f in fields}, guid=f"content-free-{i}") for i, v in enumerate(fillers)]
        probs = np.exp(self.predict_log_proba(cf, pvp, max_length=max_length, labels=labels))
        return np.log(probs.mean(0))


def label_scores_from_log_probs(lp: torch.Tensor, vt: VerbalizerTokens) -> torch.Tensor:
    """``lp``: ``[B, M, V]`` log-probs at the masks → ``[B, L]`` label scores."""
    B, M, _ = lp.shape
    ids = vt.token_ids.to(lp.device)  # [W, M]
    lengths = vt.lengths.to(lp.device)
    g = lp.gather(2, ids.T.unsqueeze(0).expand(B, M, ids.shape[0]))  # [B, M, W]
    valid = (torch.arange(M, device=lp.device)[:, None] < lengths[None, :]).to(lp.dtype)
    word = (g * valid).sum(1) / lengths.to(lp.dtype)  # [B, W]
    L = len(vt.labels)
    member = torch.zeros(L, ids.shape[0], dtype=lp.dtype, device=lp.device)
    member[vt.word_label.to(lp.device), torch.arange(ids.shape[0], device=lp.device)] = 1.0
    logm = torch.where(member > 0, 0.0, -math.inf).to(lp.dtype)
    return torch.logsumexp(word[:, None, :] + logm[None], dim=-1) - member.sum(1).log()[None]


