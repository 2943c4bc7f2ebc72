"""PVP × examples × tokenizer → padded batches, with mask and soft-token positions.

Each template part is tokenised on its own (text fields in one batched tokenizer call per
field), so truncation can cut text fields only — longest first, from the end — and never
template words, masks or soft tokens. Whitespace before a part is carried as a leading space
of that part, which is what byte-level BPE (" great" ≠ "great") needs; before a mask it is
dropped, as the BPE mask token absorbs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from .defaults import DEFAULT_MAX_LENGTH
from .errors import DataError, ModelError, SpecError
from .examples import Example
from .spec import PVP, FieldRef, Literal, Mask, Soft, Special, Verbalizer, apply_filters


@dataclass(frozen=True)
class VerbalizerTokens:
    """A verbalizer's words as token ids, padded to the number of masks the cloze gets.

    Word ``w`` has sub-tokens ``token_ids[w, :lengths[w]]``; it is scored at the first
    ``lengths[w]`` mask positions. ``word_label[w]`` is the index of its label in ``labels``.
    """

    labels: list[str]
    words: list[str]
    token_ids: torch.Tensor  # [W, M] long, 0-padded
    lengths: torch.Tensor  # [W] long
    word_label: torch.Tensor  # [W] long

    @property
    def n_masks(self) -> int:
        return int(self.token_ids.shape[1])


def _special_affixes(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens a tokenizer puts before and after a single text (e.g. [CLS] … [SEP])."""
    probe = "hello world"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    for i in range(len(full) - len(plain) + 1):
        if full[i : i + len(plain)] == plain:
            return full[:i], full[i + len(plain) :]
    return [], []


def word_token_ids(tokenizer, word: str, after_space: bool = True) -> list[int]:
    """Sub-token ids of ``word`` as it appears in a cloze (after a space, unless told not)."""
    ids = tokenizer((" " + word) if after_space else word, add_special_tokens=False)["input_ids"]
    if len(ids) > 1 and not tokenizer.decode(ids[:1]).strip():
        ids = ids[1:]  # SentencePiece may emit a lone "▁" before punctuation
    return ids


def tokenize_verbalizer(
    verbalizer: Verbalizer, tokenizer, after_space: bool = True, labels: Sequence[str] | None = None
) -> VerbalizerTokens:
    labels = list(labels) if labels is not None else verbalizer.label_ids
    words, ids, owner = [], [], []
    unk = tokenizer.unk_token_id
    for li, label in enumerate(labels):
        for w in verbalizer.labels[label]:
            t = word_token_ids(tokenizer, w, after_space)
            if not t or (unk is not None and unk in t):
                raise SpecError(
                    f"verbalizer '{verbalizer.id}': labels.{label} word '{w}' tokenises to the unknown token "
                    f"with this tokenizer ({tokenizer.convert_ids_to_tokens(t)}); fix: choose a word in its vocabulary"
                )
            words.append(w)
            ids.append(t)
            owner.append(li)
    m = max(len(t) for t in ids)
    token_ids = torch.zeros(len(ids), m, dtype=torch.long)
    for i, t in enumerate(ids):
        token_ids[i, : len(t)] = torch.tensor(t)
    return VerbalizerTokens(
        labels=labels,
        words=words,
        token_ids=token_ids,
        lengths=torch.tensor([len(t) for t in ids]),
        word_label=torch.tensor(owner),
    )


@dataclass
class Encoded:
    """One example as ids, with where its masks start and where its soft tokens sit."""

    input_ids: list[int]
    mask_start: int
    soft_positions: list[int]
    label: int  # index into the verbalizer's labels, -1 when unlabelled


class PVPEncoder:
    """Turns examples into cloze inputs for one PVP and one tokenizer."""

    def __init__(self, pvp: PVP, tokenizer, max_length: int = DEFAULT_MAX_LENGTH, labels: Sequence[str] | None = None):
        if tokenizer.mask_token_id is None:
            raise ModelError("the tokenizer has no mask token; fix: use a masked-LM tokenizer (BERT, RoBERTa, …)")
        self.pvp = pvp
        self.tokenizer = tokenizer
        self.max_length = max_length
        segs = pvp.pattern.segments
        mask_i = next(i for i, s in enumerate(segs) if isinstance(s, Mask))
        prev = segs[mask_i - 1] if mask_i else None
        glued = isinstance(prev, Literal) and prev.text and not prev.text[-1].isspace()
        self.verbalizer_tokens = tokenize_verbalizer(pvp.verbalizer, tokenizer, after_space=not glued, labels=labels)
        self.labels = self.verbalizer_tokens.labels
        self._label_index = {lab: i for i, lab in enumerate(self.labels)}
        self._prefix, self._suffix = _special_affixes(tokenizer)
        self._plan = self._make_plan(segs)
        self.n_soft = sum(len(p[1]) for p in self._plan if p[0] == "soft")
        fixed = len(self._prefix) + len(self._suffix) + sum(len(p[1]) for p in self._plan if p[0] != "field")
        if fixed >= max_length:
            raise SpecError(
                f"pattern '{pvp.pattern.id}': its template alone needs {fixed} tokens but max_length is "
                f"{max_length}; fix: shorten the template or raise max_length"
            )
        self._budget = max_length - fixed

    # A plan is the template as a list of ("ids", [..]) | ("mask", [..]) | ("soft", [..]) |
    # ("field", (name, filters, leading_space)) entries, tokenised once per PVP.
    def _make_plan(self, segs) -> list[tuple[str, object]]:
        tok = self.tokenizer
        plan: list[tuple[str, object]] = []
        space = False
        m = self.verbalizer_tokens.n_masks
        for s in segs:
            if isinstance(s, Literal):
                lead = space or s.text[:1].isspace()
                core = s.text.strip()
                if core:
                    text = (" " if lead else "") + core
                    plan.append(("ids", tok(text, add_special_tokens=False)["input_ids"]))
                    space = s.text[-1:].isspace()
                else:
                    space = True
            elif isinstance(s, FieldRef):
                plan.append(("field", (s.name, s.filters, space)))
                space = False
            elif isinstance(s, Mask):
                plan.append(("mask", [tok.mask_token_id] * m))
                space = False
            elif isinstance(s, Special):
                tid = tok.sep_token_id if s.kind == "sep" else tok.cls_token_id
                if tid is None:
                    raise SpecError(
                        f"pattern '{self.pvp.pattern.id}': {{{s.kind}}} used but the tokenizer has no {s.kind} token; "
                        "fix: remove it from the template"
                    )
                plan.append(("ids", [tid]))
                space = False
            elif isinstance(s, Soft):
                plan.append(("soft", self._soft_placeholder_ids(s)))
                space = False
        return plan

    def _soft_placeholder_ids(self, s: Soft) -> list[int]:
        """Ids put where soft tokens go: the init words' ids (so an untrained soft prompt with
        init words scores exactly like the hard prompt), else the unknown/pad token."""
        if s.init:
            ids = self.tokenizer(" " + s.init, add_special_tokens=False)["input_ids"]
            if ids:
                return ids
        filler = self.tokenizer.unk_token_id
        if filler is None:
            filler = self.tokenizer.pad_token_id or 0
        return [filler] * s.n

    @property
    def soft_init_ids(self) -> list[int | None]:
        """Per soft token: the token id whose embedding initialises it, or None (sampled)."""
        out: list[int | None] = []
        segs = [s for s in self.pvp.pattern.segments if isinstance(s, Soft)]
        plans = [p[1] for p in self._plan if p[0] == "soft"]
        for s, ids in zip(segs, plans):
            out.extend(ids if s.init else [None] * len(ids))
        return out

    def encode(self, examples: Sequence[Example]) -> list[Encoded]:
        tok = self.tokenizer
        field_ids: dict[tuple, list[list[int]]] = {}
        for kind, payload in self._plan:
            if kind != "field" or payload in field_ids:
                continue
            name, filters, space = payload
            texts = []
            for ex in examples:
                if name not in ex.fields:
                    raise DataError(
                        f"example '{ex.guid}': pattern '{self.pvp.pattern.id}' uses field '{{{name}}}' but the "
                        f"example has only {sorted(ex.fields)}; fix: map a column to '{name}' or change the template"
                    )
                v = apply_filters(str(ex.fields[name]).strip(), filters)
                texts.append((" " + v) if space and v else v)
            field_ids[payload] = tok(texts, add_special_tokens=False)["input_ids"] if texts else []

        fields = [p for k, p in self._plan if k == "field"]
        out = []
        for i, ex in enumerate(examples):
            lengths = _truncate([len(field_ids[f][i]) for f in fields], self._budget)
            ids = list(self._prefix)
            soft: list[int] = []
            mask_start = -1
            fi = 0
            for kind, payload in self._plan:
                if kind == "field":
                    ids.extend(field_ids[payload][i][: lengths[fi]])
                    fi += 1
                    continue
                if kind == "mask":
                    mask_start = len(ids)
                elif kind == "soft":
                    soft.extend(range(len(ids), len(ids) + len(payload)))
                ids.extend(payload)
            ids.extend(self._suffix)
            label = -1
            if ex.label is not None:
                if ex.label not in self._label_index:
                    raise DataError(
                        f"example '{ex.guid}': label '{ex.label}' is not in verbalizer '{self.pvp.verbalizer.id}' "
                        f"(labels {self.labels}); fix: add it to the verbalizer"
                    )
                label = self._label_index[ex.label]
            out.append(Encoded(ids, mask_start, soft, label))
        return out


def _truncate(lengths: list[int], budget: int) -> list[int]:
    """Cut the longest fields first until they fit ``budget`` tokens (water-filling)."""
    if sum(lengths) <= budget:
        return lengths
    lo, hi = 0, max(lengths)
    while lo < hi:  # largest cap c with sum(min(l, c)) <= budget
        c = (lo + hi + 1) // 2
        if sum(min(n, c) for n in lengths) <= budget:
            lo = c
        else:
            hi = c - 1
    out = [min(n, lo) for n in lengths]
    spare = budget - sum(out)
    for j, n in enumerate(lengths):
        if spare and n > lo:
            out[j] += 1
            spare -= 1
    return out


def collate(items: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad to the longest item of the batch (dynamic padding, never to a fixed 256/512)."""
    T = max(len(e.input_ids) for e in items)
    B = len(items)
    input_ids = torch.full((B, T), pad_id, dtype=torch.long)
    attention = torch.zeros((B, T), dtype=torch.long)
    for b, e in enumerate(items):
        input_ids[b, : len(e.input_ids)] = torch.tensor(e.input_ids)
        attention[b, : len(e.input_ids)] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention,
        "mask_start": torch.tensor([e.mask_start for e in items]),
        "soft_positions": torch.tensor([e.soft_positions for e in items], dtype=torch.long).reshape(B, -1),
        "labels": torch.tensor([e.label for e in items]),
    }


def iter_batches(
    encoded: Sequence[Encoded], batch_size: int, pad_id: int, sort_by_length: bool = True
) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    """Yield (indices, batch); length-sorted batches waste little compute on padding."""
    order = list(range(len(encoded)))
    if sort_by_length:
        order.sort(key=lambda i: -len(encoded[i].input_ids))
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        yield idx, collate([encoded[i] for i in idx], pad_id)
