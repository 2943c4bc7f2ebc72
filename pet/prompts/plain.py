"""Plain (no-pattern) inputs for the sequence classifier and the auxiliary MLM loss: an example's
text as one input in the tokenizer's own pair layout or LM-BFF's single-separator layout, and
dynamic padding."""

from __future__ import annotations

from typing import Sequence

import torch

from ..errors import DataError, ModelError, SpecError
from ..examples import Example
from .encoding import plain_ids


def plain_text(ex: Example) -> tuple[str, str | None]:
    """An example's text as (text_a, text_b-or-None): ``text_a``/``text_b`` if present, else its
    first two fields in order."""
    f = ex.fields
    if "text_a" in f:
        return str(f["text_a"]), (str(f["text_b"]) if f.get("text_b") else None)
    vals = [str(v) for v in f.values()]
    if not vals:
        raise DataError(f"example '{ex.guid}': has no text fields; fix: give it at least one text field")
    return vals[0], (vals[1] if len(vals) > 1 and vals[1] else None)


PAIR_FORMATS = ("tokenizer", "single_sep")


def tokenize_plain(tokenizer, examples: Sequence[Example], max_length: int, pair_format: str = "tokenizer") -> list[list[int]]:
    """Token ids of examples' text (``text_a`` [+ ``text_b`` as a pair]) for no-prompt models.

    ``pair_format="tokenizer"`` (default): the tokenizer's own layout (``tokenizer(a, b)``:
    ``<s> a </s></s> b </s>`` for RoBERTa), truncated longest-first. ``"single_sep"``: LM-BFF's
    fine-tuning input (``tokenize_multipart_input`` without a prompt): ``[CLS] a [SEP] b [SEP]``
    with ONE separator between the texts for every tokenizer (``<s> a </s> b </s>``), cut at
    ``max_length`` from the tail as LM-BFF does. Text is always plain text (special-token strings
    in it never become special ids)."""
    if pair_format not in PAIR_FORMATS:
        raise SpecError(f"pair_format '{pair_format}' is unknown; fix: use one of {', '.join(PAIR_FORMATS)}")
    out = []
    if pair_format == "tokenizer":
        for ex in examples:
            a, b = plain_text(ex)
            out.append(tokenizer(a, b, truncation=True, max_length=max_length)["input_ids"])
        return out
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls is None or sep is None:
        raise ModelError("pair_format 'single_sep' needs a tokenizer with a classifier and a separator token (BERT, RoBERTa …); "
                         "fix: use pair_format 'tokenizer'")
    for ex in examples:
        texts = [t for t in plain_text(ex) if t is not None]
        ids = [cls]
        for part in plain_ids(tokenizer, texts):
            ids += part + [sep]
        out.append(ids[:max_length])
    return out


def pad_ids(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    att = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(list(s), dtype=torch.long)
        att[i, : len(s)] = 1
    return ids, att
