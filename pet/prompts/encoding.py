"""PVP × examples × tokenizer → padded batches, with mask and soft-token positions.

Each template part is tokenised on its own (text fields in one batched tokenizer call per
field), so truncation can cut text fields only and never template words, masks or soft
tokens; *how* they are cut is the pattern's truncation rule (:mod:`pet.prompts.truncation`:
``longest_first`` by default, ``pet`` and ``lmbff`` for the sources' PVPs; ``lmbff`` alone
also cuts the assembled input's tail at ``max_length``, as LM-BFF does). Whitespace before a
part is carried as a leading space of that part, which is what byte-level BPE (" great" ≠
"great") needs; before a mask it is dropped, as the BPE mask token absorbs it. This is how
LM-BFF (``tokenize_multipart_input``) and PET (``PVP.encode``, every part encoded on its own)
build their inputs, so a template written with their spacing and their truncation rule gives
their token ids, over-long inputs included (tested in ``tests/test_fidelity.py``).

Special tokens come only from the template and the tokenizer's own layout: text from the data
(and template words, and label words) is always encoded as plain text, so a review containing
``[MASK]`` or ``</s>`` gets the characters, never the special ids.

``{segment}`` splits the template into the two sequences of a pair: the tokenizer's pair
layout (what ``tokenizer(a, b)`` gives) supplies the special tokens and the token type ids.
Token type ids are produced for tokenizers whose model takes them (``token_type_ids`` in
``tokenizer.model_input_names``: BERT, ALBERT …) and are ``None`` otherwise (RoBERTa …).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import torch

from ..errors import DataError, ModelError, SpecError, first_line
from ..examples import Example
from ..utils.defaults import DEFAULT_MAX_LENGTH
from .spec import PVP, Verbalizer
from .template import (
    FieldRef,
    Literal,
    Mask,
    SegmentBreak,
    Soft,
    Special,
    apply_filters,
)
from .truncation import lmbff_limits, longest_first, pet_truncate

log = logging.getLogger(__name__)
#: (pattern id, template, truncation, max_length) whose tail-cut note was logged in this process
TAIL_NOTED: set[tuple] = set()


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


@dataclass(frozen=True)
class Layout:
    """The special tokens and token types a tokenizer wraps around one text or a pair.

    ``pieces`` are ``(ids, types)`` for: before A, between A and B, after B (a single text
    uses ``before`` and ``after_single``). ``text_types`` are the token types of A's and B's
    own tokens. ``types`` is False when the model type takes no token type ids.
    """

    before: tuple[list[int], list[int]]
    after_single: tuple[list[int], list[int]]
    before_b: tuple[list[int], list[int]]
    after_b: tuple[list[int], list[int]]
    text_types: tuple[int, int]
    types: bool


def uses_token_types(tokenizer) -> bool:
    """Whether the model type takes ``token_type_ids`` (BERT, ALBERT: yes; RoBERTa, DistilBERT: no)."""
    return "token_type_ids" in getattr(tokenizer, "model_input_names", ())


def _find(full: list[int], part: list[int], start: int = 0) -> int:
    for i in range(start, len(full) - len(part) + 1):
        if full[i : i + len(part)] == part:
            return i
    return -1


def tokenizer_layout(tokenizer) -> Layout:
    """Probe the tokenizer: what it adds around one text and around a pair (its post-processor,
    i.e. ``build_inputs_with_special_tokens`` / ``create_token_type_ids_from_sequences``)."""
    a, b = "hello", "world"
    pa = tokenizer(a, add_special_tokens=False)["input_ids"]
    pb = tokenizer(b, add_special_tokens=False)["input_ids"]
    one = tokenizer(a, return_token_type_ids=True)
    ids1, tt1 = one["input_ids"], one.get("token_type_ids") or [0] * len(one["input_ids"])
    i = _find(ids1, pa)
    if i < 0:
        i, pa = 0, []
    before = (ids1[:i], tt1[:i])
    after_single = (ids1[i + len(pa) :], tt1[i + len(pa) :])
    try:
        two = tokenizer(a, b, return_token_type_ids=True)
        ids2, tt2 = two["input_ids"], two.get("token_type_ids") or [0] * len(two["input_ids"])
    except Exception:  # a tokenizer with no pair template: join with its single-text suffix
        ids2, tt2 = ids1[: i + len(pa)] + after_single[0] + pb + after_single[0], [0] * (len(ids1) + len(pb) + len(after_single[0]))
    ia = _find(ids2, pa)
    ib = _find(ids2, pb, ia + len(pa)) if ia >= 0 else -1
    if ia < 0 or ib < 0:  # cannot locate the probe texts: no special tokens at all
        return Layout(([], []), ([], []), ([], []), ([], []), (0, 0), uses_token_types(tokenizer))
    return Layout(
        before=before,
        after_single=after_single,
        before_b=(ids2[ia + len(pa) : ib], tt2[ia + len(pa) : ib]),
        after_b=(ids2[ib + len(pb) :], tt2[ib + len(pb) :]),
        text_types=(tt2[ia], tt2[ib]),
        types=uses_token_types(tokenizer),
    )


def _special_affixes(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens a tokenizer puts before and after a single text (e.g. [CLS] … [SEP])."""
    lay = tokenizer_layout(tokenizer)
    return lay.before[0], lay.after_single[0]


def _forbidden_ids(tokenizer) -> set[int]:
    """Special-token ids that plain text must never produce (the unknown token is allowed)."""
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    ids.discard(tokenizer.unk_token_id)
    return ids


def plain_ids(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of ``texts`` as plain text: special-token strings in the text (``[MASK]``,
    ``<mask>``, ``</s>``, ``[SEP]`` …) become ordinary sub-tokens, never special ids."""
    if not texts:
        return []
    # verbose=False: no "sequence length is longer than the maximum" warning — pet truncates the ids itself
    out = tokenizer(list(texts), add_special_tokens=False, split_special_tokens=True, verbose=False)["input_ids"]
    bad = _forbidden_ids(tokenizer)
    for k, ids in enumerate(out):
        if bad.intersection(ids):  # e.g. a SentencePiece vocabulary that holds "</s>" as a piece
            out[k] = _plain_slow(tokenizer, texts[k], bad)
    return out


def _plain_slow(tokenizer, text: str, bad: set[int]) -> list[int]:
    """Encode ``text`` so that no special id appears: special-token strings are cut into
    single characters that are encoded on their own."""
    import re

    specials = sorted({t for t in getattr(tokenizer, "all_special_tokens", []) if t}, key=len, reverse=True)
    if not specials:
        return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    pat = re.compile("(" + "|".join(re.escape(t) for t in specials) + ")")
    ids: list[int] = []
    for k, chunk in enumerate(pat.split(text)):
        if not chunk:
            continue
        if k % 2 == 0:
            ids.extend(tokenizer(chunk, add_special_tokens=False, split_special_tokens=True, verbose=False)["input_ids"])
            continue
        for ch in chunk:  # a special-token string: character by character
            piece = [i for i in tokenizer(ch, add_special_tokens=False, split_special_tokens=True, verbose=False)["input_ids"] if i not in bad]
            if len(piece) > 1 and not tokenizer.decode(piece[:1]).strip():
                piece = piece[1:]  # a lone SentencePiece "▁"
            ids.extend(piece or ([tokenizer.unk_token_id] if tokenizer.unk_token_id is not None else []))
    return ids


def word_token_ids(tokenizer, word: str, after_space: bool = True) -> list[int]:
    """Sub-token ids of ``word`` as it appears in a cloze (after a space, unless told not)."""
    ids = plain_ids(tokenizer, [(" " + word) if after_space else word])[0]
    if len(ids) > 1 and not tokenizer.decode(ids[:1]).strip():
        ids = ids[1:]  # SentencePiece may emit a lone "▁" before punctuation
    return ids


def tokenize_verbalizer(
    verbalizer: Verbalizer, tokenizer, after_space: bool = True, labels: Sequence[str] | None = None
) -> VerbalizerTokens:
    labels = list(labels) if labels is not None else verbalizer.label_ids
    words, ids, owner = [], [], []
    unk = tokenizer.unk_token_id
    where = verbalizer.where
    seen: dict[tuple[int, ...], tuple[str, str]] = {}
    for li, label in enumerate(labels):
        if label not in verbalizer.labels:
            raise SpecError(f"{where}: label '{label}' has no words; fix: add it under 'labels'")
        for w in verbalizer.labels[label]:
            t = word_token_ids(tokenizer, w, after_space)
            if not t or (unk is not None and unk in t):
                raise SpecError(
                    f"{where}: labels.{label} word '{w}' tokenises to the unknown token "
                    f"with this tokenizer ({tokenizer.convert_ids_to_tokens(t)}); fix: choose a word in its vocabulary"
                )
            key = tuple(t)
            if key in seen and seen[key][0] != label:
                other, ow = seen[key]
                raise SpecError(
                    f"{where}: labels.{other} word '{ow}' and labels.{label} word '{w}' tokenise to the same tokens "
                    f"{tokenizer.convert_ids_to_tokens(t)} with this tokenizer, so the model cannot tell the labels "
                    "apart; fix: give every label words that tokenise differently"
                )
            seen[key] = (label, w)
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
    """One example as ids, with where its masks start and where its soft tokens sit.

    ``token_type_ids`` is a list (same length as ``input_ids``) for tokenizers whose model
    takes token types, else ``None``. ``text_positions`` are the positions of the tokens that
    come from the example's text fields (after truncation), never template words, masks, soft
    or special tokens: what ADAPET's label-conditioned MLM may mask.
    """

    input_ids: list[int]
    mask_start: int
    soft_positions: list[int]
    label: int  # index into the verbalizer's labels, -1 when unlabelled
    token_type_ids: list[int] | None = None
    text_positions: list[int] = field(default_factory=list)


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
        self.layout = tokenizer_layout(tokenizer)
        self._prefix, self._suffix = self.layout.before[0], self.layout.after_single[0]
        self._plan = self._make_plan(segs)
        self.n_soft = sum(len(p[1]) for p in self._plan if p[0] == "soft")
        fixed = sum(len(p[1]) for p in self._plan if p[0] not in ("field", "segment", "types"))
        fixed += sum(len(p[1][0]) for p in self._plan if p[0] == "segment")
        if fixed >= max_length:
            raise SpecError(
                f"{pvp.pattern.where}: its template alone needs {fixed} tokens but max_length is "
                f"{max_length}; fix: shorten the template or raise max_length"
            )
        self._budget = max_length - fixed
        self._fields = [p for k, p in self._plan if k == "field"]
        seq, self._field_sequence = 0, []
        for kind, _ in self._plan:  # which sequence of a pair each field occurrence is in
            seq += kind == "types"
            if kind == "field":
                self._field_sequence.append(seq)

    @property
    def has_token_types(self) -> bool:
        return self.layout.types

    # A plan is the template as a list of ("ids", [..]) | ("mask", [..]) | ("soft", [..]) |
    # ("field", (name, filters, leading_space)) | ("segment", (ids, types)) entries, tokenised
    # once per PVP. The tokenizer's own special tokens (before A, between A and B, after B) are
    # part of the plan, so positions and token types come out of one walk over it.
    def _make_plan(self, segs) -> list[tuple[str, object]]:
        tok = self.tokenizer
        lay = self.layout
        pair = any(isinstance(s, SegmentBreak) for s in segs)
        plan: list[tuple[str, object]] = [("segment", lay.before)] if lay.before[0] else []
        space = False
        m = self.verbalizer_tokens.n_masks
        for s in segs:
            if isinstance(s, Literal):
                lead = space or s.text[:1].isspace()
                core = s.text.strip()
                if core:
                    text = (" " if lead else "") + core
                    plan.append(("ids", plain_ids(tok, [text])[0]))
                    space = s.text[-1:].isspace()
                else:
                    space = True
            elif isinstance(s, FieldRef):
                plan.append(("field", (s.name, s.filters, space)))
                space = False
            elif isinstance(s, Mask):
                plan.append(("mask", [tok.mask_token_id] * m))
                space = False
            elif isinstance(s, SegmentBreak):
                plan.append(("segment", lay.before_b))
                plan.append(("types", lay.text_types[1]))
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
        end = lay.after_b if pair else lay.after_single
        if end[0]:
            plan.append(("segment", end))
        return plan

    def _soft_placeholder_ids(self, s: Soft) -> list[int]:
        """Ids put where soft tokens go: the init words' ids (so an untrained soft prompt with
        init words scores exactly like the hard prompt), else the unknown/pad token."""
        if s.init:
            ids = plain_ids(self.tokenizer, [" " + s.init])[0]
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

    def field_texts(self, example: Example) -> dict[str, str]:
        """The example's fields as the template fills them in (after filters), by placeholder."""
        out = {}
        for kind, payload in self._plan:
            if kind == "field":
                name, filters, _ = payload
                out[name + "".join("|" + f for f in filters)] = self._field_text(example, name, filters)
        return out

    def _field_text(self, ex: Example, name: str, filters: tuple[str, ...]) -> str:
        if name not in ex.fields:
            raise DataError(
                f"example '{ex.guid}': pattern '{self.pvp.pattern.id}' uses field '{{{name}}}' but the "
                f"example has only {sorted(ex.fields)}; fix: map a column to '{name}' or change the template"
            )
        v = ex.fields[name]
        if not isinstance(v, str):
            raise DataError(
                f"example '{ex.guid}': field '{name}' is a {type(v).__name__}, not text; "
                "fix: give the field a string value in the data"
            )
        return apply_filters(v, filters)  # as read: no strip (see pet.data.tables._clean)

    def encode(self, examples: Sequence[Example]) -> list[Encoded]:
        field_ids: dict[tuple, list[list[int]]] = {}
        for kind, payload in self._plan:
            if kind != "field" or payload in field_ids:
                continue
            name, filters, space = payload
            texts = []
            for ex in examples:
                v = self._field_text(ex, name, filters)
                texts.append((" " + v) if space and v else v)
            field_ids[payload] = plain_ids(self.tokenizer, texts)

        fields = [p for k, p in self._plan if k == "field"]
        out = []
        for i, ex in enumerate(examples):
            ids_i = [field_ids[f][i] for f in fields]
            lengths = self._field_lengths([len(x) for x in ids_i])
            enc = self._assemble([x[:n] for x, n in zip(ids_i, lengths)])
            if len(enc.input_ids) > self.max_length:  # only the lmbff rule leaves a tail to cut
                enc = self._cut_tail(enc, ex, ids_i)
            if ex.label is not None:
                if ex.label not in self._label_index:
                    raise DataError(
                        f"example '{ex.guid}': label '{ex.label}' is not in verbalizer '{self.pvp.verbalizer.id}' "
                        f"(labels {self.labels}); fix: add it to the verbalizer"
                    )
                enc.label = self._label_index[ex.label]
            out.append(enc)
        return out

    def _field_lengths(self, lengths: list[int]) -> list[int]:
        """How many tokens of each field occurrence are kept, by the pattern's truncation rule."""
        rule = self.pvp.pattern.truncation
        if rule.rule == "lmbff":
            return lmbff_limits([f[0] for f in self._fields], lengths, rule)
        if rule.rule == "pet":
            return pet_truncate(lengths, self._field_sequence, self._budget)
        return longest_first(lengths, self._budget)

    def _assemble(self, parts: list[list[int]]) -> Encoded:
        """One example's ids from the plan and its (already cut) field ids, in plan order."""
        ids: list[int] = []
        types: list[int] = []
        cur = self.layout.text_types[0]
        soft: list[int] = []
        text: list[int] = []
        mask_start = -1
        fi = 0
        for kind, payload in self._plan:
            if kind == "types":
                cur = payload
                continue
            if kind == "segment":
                ids.extend(payload[0])
                types.extend(payload[1])
                continue
            if kind == "field":
                part = parts[fi]
                fi += 1
                text.extend(range(len(ids), len(ids) + len(part)))
            else:
                part = payload
                if kind == "mask":
                    mask_start = len(ids)
                elif kind == "soft":
                    soft.extend(range(len(ids), len(ids) + len(payload)))
            ids.extend(part)
            types.extend([cur] * len(part))
        return Encoded(ids, mask_start, soft, -1, types if self.layout.types else None, text)

    def _cut_tail(self, enc: Encoded, ex: Example, field_ids: list[list[int]]) -> Encoded:
        """LM-BFF's last step: the input cut at ``max_length`` from the tail, special tokens and
        all. Where that would cut a mask or a soft token (LM-BFF asserts and stops there), the
        fields are shortened longest-first instead, so every template token stays: such inputs have
        no LM-BFF counterpart, and a long review must not stop a whole run."""
        m = self.max_length
        end = max([enc.mask_start + self.verbalizer_tokens.n_masks, *[p + 1 for p in enc.soft_positions]])
        if end > m:
            key = (self.pvp.pattern.id, self.pvp.pattern.template, str(self.pvp.pattern.truncation.to_spec()), m)
            if key not in TAIL_NOTED:  # once per pattern and length in a process, not per PVP, encoder or call
                TAIL_NOTED.add(key)
                log.warning("example '%s': pattern '%s' (truncation %s) is longer than max_length %d and the tail cut would "
                            "drop the mask; its fields are shortened longest-first instead (LM-BFF would stop here; "
                            "set first_sent_limit/other_sent_limit or raise max_length to avoid it)",
                            ex.guid, self.pvp.pattern.id, self.pvp.pattern.truncation.to_spec(), m)
            lengths = longest_first([len(f) for f in field_ids], self._budget)
            return self._assemble([f[:n] for f, n in zip(field_ids, lengths)])
        types = enc.token_type_ids[:m] if enc.token_type_ids is not None else None
        return Encoded(enc.input_ids[:m], enc.mask_start, enc.soft_positions, enc.label, types, [p for p in enc.text_positions if p < m])


def collate(items: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad to the longest item of the batch (dynamic padding, never to a fixed 256/512)."""
    T = max(len(e.input_ids) for e in items)
    B = len(items)
    input_ids = torch.full((B, T), pad_id, dtype=torch.long)
    attention = torch.zeros((B, T), dtype=torch.long)
    for b, e in enumerate(items):
        input_ids[b, : len(e.input_ids)] = torch.tensor(e.input_ids)
        attention[b, : len(e.input_ids)] = 1
    batch = {
        "input_ids": input_ids,
        "attention_mask": attention,
        "mask_start": torch.tensor([e.mask_start for e in items]),
        "soft_positions": torch.tensor([e.soft_positions for e in items], dtype=torch.long).reshape(B, -1),
        "labels": torch.tensor([e.label for e in items]),
    }
    if all(e.token_type_ids is not None for e in items):
        types = torch.zeros((B, T), dtype=torch.long)
        for b, e in enumerate(items):
            types[b, : len(e.token_type_ids)] = torch.tensor(e.token_type_ids, dtype=torch.long)
        batch["token_type_ids"] = types
    return batch


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


# ----------------------------------------------------------------------------- inspection


def check_tokenizer_path(name: str) -> None:
    """One-line errors for the two local paths the hub loader would misreport: a folder that
    does not exist (read as a malformed hub id) and a saved pet classifier (no tokenizer at its
    top level; its base models' tokenizers are in ``models/<j>/`` or ``model/``)."""
    from ..utils.paths import looks_like_path

    p = Path(name).expanduser()
    if looks_like_path(name) and not p.exists():
        raise ModelError(f"cannot load tokenizer '{name}': no such file or folder; fix: check the path "
                         "(a Hub tokenizer is named like 'roberta-large' or 'org/name')")
    if (p / "pet_config.json").is_file():
        inner = next((q for q in [*sorted(p.glob("models/*")), p / "model"]
                      if (q / "tokenizer_config.json").is_file() or (q / "tokenizer.json").is_file()), None)
        use = f"--tokenizer {inner}" if inner is not None else "--tokenizer or --model with the base model it was trained from"
        raise ModelError(f"'{name}' is a saved pet classifier (it has pet_config.json), not a model or tokenizer folder; "
                         f"fix: pass {use}, or label data with `pet predict {name}`")


def load_tokenizer(name_or_path: str):
    """A tokenizer alone (a folder with no weights is enough), with a one-line error."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    check_tokenizer_path(str(name_or_path))
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return AutoTokenizer.from_pretrained(str(name_or_path))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(
            f"cannot load tokenizer '{name_or_path}': {first_line(e)}; fix: pass --tokenizer (or --model) with a local "
            "folder holding the tokenizer files, or a hub name when online"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)


def encode_records(
    pvp: PVP,
    tokenizer,
    examples: Sequence[Example],
    max_length: int = DEFAULT_MAX_LENGTH,
    labels: Sequence[str] | None = None,
) -> list[dict]:
    """Exactly what the model sees for each example (``pet show --encode``): one dict per
    example with ``guid``, ``fields`` (the text fields as read), ``tokens``, ``input_ids``
    (with the special tokens, no padding), ``token_type_ids`` (a list, or None when the model
    type takes none), ``mask_positions``, ``soft_positions`` and ``label_token_ids`` (label ->
    its words, each a list of token ids)."""
    enc = PVPEncoder(pvp, tokenizer, max_length=max_length, labels=labels)
    vt = enc.verbalizer_tokens
    words: dict[str, list[list[int]]] = {lab: [] for lab in vt.labels}
    for w in range(len(vt.words)):
        words[vt.labels[int(vt.word_label[w])]].append(vt.token_ids[w, : int(vt.lengths[w])].tolist())
    out = []
    for ex, e in zip(examples, enc.encode(examples)):
        out.append(
            {
                "guid": ex.guid,
                "fields": dict(ex.fields),
                "label": ex.label,
                "tokens": tokenizer.convert_ids_to_tokens(e.input_ids),
                "input_ids": list(e.input_ids),
                "token_type_ids": list(e.token_type_ids) if e.token_type_ids is not None else None,
                "mask_positions": list(range(e.mask_start, e.mask_start + vt.n_masks)),
                "soft_positions": list(e.soft_positions),
                "label_token_ids": words,
            }
        )
    return out
