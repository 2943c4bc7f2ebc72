"""Input fidelity: our encoder gives LM-BFF's and PET's inputs, token for token.

The REFERENCE functions below (``lmbff_reference_encode``, ``pet_reference_encode`` and the
``*_reference_read`` readers) are independent re-implementations, written for this test, of
the reference code's logic as read in the two repositories (never imported, never copied):

* princeton-nlp/LM-BFF @ c282f52: ``src/dataset.py::tokenize_multipart_input`` (the ``*xx*``
  template language, ``first_sent_limit``/``other_sent_limit`` and the tail cut at
  ``max_seq_length``) with the manual templates, label words and per-task lengths of
  ``run_experiment.sh``, and
  the processors of ``src/processors.py`` (TSVs read with ``quotechar=None``, the single-sentence
  CSVs with ``pandas.read_csv(header=None)``; no stripping);
* timoschick/pet @ 21d32de: ``pet/pvp.py`` (``get_parts`` of each PVP; ``PVP.encode``: every
  part encoded on its own, with ``add_prefix_space=True`` for the byte-level BPE tokenizer, then
  ``build_inputs_with_special_tokens(a, b)`` / ``create_token_type_ids_from_sequences``;
  ``PVP.truncate``: one token at a time from the end of the last shortenable part of the
  sequence with more shortenable tokens) and the
  processors of ``pet/tasks.py`` (AG News: every backslash becomes a space; Yelp: ``\\n`` then
  backslash).

Our side is ``pet.prompts.encoding.encode_records`` — the function behind ``pet show --encode`` — fed
by our own task files and readers, so a difference anywhere (reading, filters, spacing,
segments, special tokens, label words) fails here.

Over-long inputs: every comparison runs at the source's own length (LM-BFF: 128, or 256 for
MNLI/SNLI/RTE; PET: 256) with its truncation, and ``test_*_truncation_*`` pick the LONGEST
examples of the files (QNLI, CR, Subj, RTE, Yelp, AG News) plus constructed ones, and assert
that truncation really happened in them.

Speed: each test encodes a deterministic sample of every test file (``SAMPLE`` examples, evenly
spaced); the full-file run is ``benchmarks/input_fidelity.py`` (results in
``benchmarks/RESULTS.md``, section "Input fidelity").
"""

from __future__ import annotations

import dataclasses

import csv
import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import SHARED, TOKENIZERS, _tokenizer
from pet.data import load_examples, load_task, task_pvps
from pet.prompts.encoding import encode_records

DATA = SHARED / "data"
SAMPLE = 120  # examples per test file in the tests; the benchmark script checks every example
PET_MAX_LEN = 256  # PET's max_seq_length (cli.py default; also our tasks' max_length)


# ============================================================================ LM-BFF REFERENCE
# Independent re-implementation of LM-BFF's tokenize_multipart_input (prompt=True, no
# demonstrations, no truncation), for checking only.


def lmbff_reference_encode(texts: list[str], template: str, tokenizer, label_words: list[str], max_length: int | None = None,
                           first_sent_limit: int | None = None, other_sent_limit: int | None = None) -> dict:
    """LM-BFF's prompt input for one example: ids, token types (BERT only), mask position, and
    the label word ids (``' ' + word``, one token each, as FewShotDataset builds them).

    Each sentence part is cut to its limit (sentence 0: ``first_sent_limit``, others:
    ``other_sent_limit``) as encoded in place; then the whole input is cut at ``max_length``
    from the tail. ``mask_pos`` is None when that cut removed the mask (LM-BFF asserts)."""

    def enc(t: str) -> list[int]:
        return tokenizer(t, add_special_tokens=False)["input_ids"]

    ids: list[int] = []
    types: list[int] = []
    segment = 0
    for part in template.split("*"):
        new: list[int] = []
        bump = False
        if part in ("cls", "mask", "sep", "sep+"):
            new = [{"cls": tokenizer.cls_token_id, "mask": tokenizer.mask_token_id}.get(part, tokenizer.sep_token_id)]
            bump = part == "sep+"
        elif "sent" in part[:6] and "_" in part:
            kind, idx = part.split("_")
            text = texts[int(idx)]
            if "l" in kind.lstrip("+").replace("sent", "", 1)[:1]:  # sentl / +sentl / sentl-
                text = text[:1].lower() + text[1:]
            if "u" in kind.lstrip("+").replace("sent", "", 1)[:1]:
                text = text[:1].upper() + text[1:]
            if kind.endswith("-"):  # sent-_i / sentl-_i: drop the last character
                text = text[:-1]
            if kind.startswith("+"):
                text = " " + text
            new = enc(text)
            limit = first_sent_limit if int(idx) == 0 else other_sent_limit
            if limit is not None:
                new = new[:limit]
        elif part:
            words = part.replace("_", " ")
            new = [tokenizer.convert_tokens_to_ids(words)] if len(words) == 1 else enc(words)
        ids += new
        types += [segment] * len(new)
        if bump:
            segment += 1
    if max_length is not None:
        ids, types = ids[:max_length], types[:max_length]
    word_ids = []
    for w in label_words:
        toks = tokenizer.tokenize(" " + w)
        assert len(toks) == 1, (w, toks)  # LM-BFF asserts single-token label words
        word_ids.append(tokenizer.convert_tokens_to_ids(toks[0]))
    return {
        "input_ids": ids,
        "token_type_ids": types if "token_type_ids" in tokenizer.model_input_names else None,
        "mask_pos": ids.index(tokenizer.mask_token_id) if tokenizer.mask_token_id in ids else None,
        "label_word_ids": word_ids,
    }


# LM-BFF run_experiment.sh: task -> (TEMPLATE, MAPPING label -> word), and our PVP for it.
LMBFF_MANUAL = {
    "sst2": ("*cls**sent_0*_It_was*mask*.*sep+*", {"0": "terrible", "1": "great"}, "it-was:great-terrible"),
    "sst5": ("*cls**sent_0*_It_was*mask*.*sep+*", {"0": "terrible", "1": "bad", "2": "okay", "3": "good", "4": "great"}, "it-was:terrible-great"),
    "mr": ("*cls**sent_0*_It_was*mask*.*sep+*", {"0": "terrible", "1": "great"}, "it-was:great-terrible"),
    "cr": ("*cls**sent_0*_It_was*mask*.*sep+*", {"0": "terrible", "1": "great"}, "it-was:great-terrible"),
    "mpqa": ("*cls**sent_0*_It_was*mask*.*sep+*", {"0": "terrible", "1": "great"}, "it-was:great-terrible"),
    "subj": ("*cls**sent_0*_This_is*mask*.*sep+*", {"0": "subjective", "1": "objective"}, "this-is:subjective-objective"),
    "trec": ("*cls**mask*:*+sent_0**sep+*", {"0": "Description", "1": "Entity", "2": "Expression", "3": "Human", "4": "Location", "5": "Number"}, "mask-colon:lmbff"),
    "cola": ("*cls**sent_0*_This_is*mask*.*sep+*", {"0": "incorrect", "1": "correct"}, "this-is:correct-incorrect"),
    "mnli": ("*cls**sent-_0*?*mask*,*+sentl_1**sep+*", {"contradiction": "No", "entailment": "Yes", "neutral": "Maybe"}, "lmbff:yes-maybe-no"),
    "snli": ("*cls**sent-_0*?*mask*,*+sentl_1**sep+*", {"contradiction": "No", "entailment": "Yes", "neutral": "Maybe"}, "lmbff:yes-maybe-no"),
    "qnli": ("*cls**sent-_0*?*mask*,*+sentl_1**sep+*", {"not_entailment": "No", "entailment": "Yes"}, "lmbff:yes-no"),
    "rte": ("*cls**sent-_0*?*mask*,*+sentl_1**sep+*", {"not_entailment": "No", "entailment": "Yes"}, "lmbff:yes-no"),
    "mrpc": ("*cls**sent_0**mask*,*+sentl_1**sep+*", {"0": "No", "1": "Yes"}, "lmbff:yes-no"),
    "stsb": ("*cls**sent_0**mask*,*+sentl_1**sep+*", {"0": "No", "1": "Yes"}, "lmbff:yes-no"),
}
# LM-BFF run_experiment.sh: task -> (max_seq_length, first_sent_limit, other_sent_limit);
# "--max_seq_len 256" abbreviates --max_seq_length (argparse) and comes after the 128.
LMBFF_LENGTHS = {
    "sst5": (128, 110, 20), "mr": (128, 110, 50), "cr": (128, 110, 50), "subj": (128, 110, 50), "mpqa": (128, 110, None),
    "trec": (128, 110, None), "mnli": (256, None, None), "snli": (256, None, None), "rte": (256, 240, None),
}


def lmbff_lengths(task: str) -> tuple[int, int | None, int | None]:
    return LMBFF_LENGTHS.get(task, (128, None, None))


# LM-BFF auto templates whose leading space ('*cls*_It's…') matters for BPE (issue 12).
LMBFF_AUTO = {
    ("mr", "auto-its"): "*cls*_It's*mask*.*+sent_0**sep+*",
    ("mr", "auto-the-film-is"): "*cls*_The_film_is*mask*.*+sent_0**sep+*",
    ("subj", "auto-its"): "*cls*_It's*mask*.*+sent_0**sep+*",
    ("cola", "auto-this-is-prefix"): "*cls*_This_is*mask*.*+sent_0**sep+*",
    ("mpqa", "just"): "*cls*_Just*mask*!*+sent_0**sep+*",
    ("trec", "auto-q"): "*cls*_Q:*mask*:*+sent_0**sep+*",
    ("mnli", "auto-because"): "*cls**sent-_0*.*mask*_that's_because*+sentl_1**sep+*",
    ("mrpc", "auto-same-time"): "*cls**sent-_0*.*mask*._At_the_same_time*+sentl_1**sep+*",
    ("stsb", "auto-as"): "*cls**sent-_0*.*mask*,_as*+sentl_1**sep+*",
}


def _tsv_rows(path: Path, header: bool = True) -> list[list[str]]:
    """LM-BFF's DataProcessor._read_tsv: csv.reader, tab, quotechar=None (no quoting)."""
    with open(path, encoding="utf-8-sig") as f:
        rows = list(csv.reader(f, delimiter="\t", quotechar=None))
    return rows[1:] if header else rows


def _jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def lmbff_reference_read(task: str) -> list[tuple[list[str], str]]:
    """(texts, label) per test example, read as LM-BFF's processors read them (no strip)."""
    if task in ("sst5", "mr", "cr", "mpqa", "subj", "trec"):
        folder = {"sst5": "sst-5"}.get(task, task)
        df = pd.read_csv(DATA / folder / "test.csv", header=None)  # TextClassificationProcessor
        return [([row[1]], str(row[0])) for row in df.values]
    if task == "sst2":
        return [([r[0]], r[1]) for r in _tsv_rows(DATA / "SST-2" / "test.tsv")]
    if task == "cola":
        return [([r[3]], r[1]) for r in _tsv_rows(DATA / "CoLA" / "test.tsv", header=False)]
    if task in ("mnli", "snli"):  # stored as JSONL here (see the data README); same texts
        name = "MNLI/test_matched.jsonl.gz" if task == "mnli" else "SNLI/test_tokenized.jsonl"
        return [([d["text_a"], d["text_b"]], d["label"]) for d in _jsonl(DATA / name)]
    if task == "qnli":
        return [([r[1], r[2]], r[-1]) for r in _tsv_rows(DATA / "QNLI" / "test.tsv")]
    if task == "rte":
        return [([r[1], r[2]], r[-1]) for r in _tsv_rows(DATA / "RTE" / "test.tsv")]
    if task == "mrpc":
        return [([r[3], r[4]], r[0]) for r in _tsv_rows(DATA / "MRPC" / "test.tsv")]
    if task == "stsb":
        return [([r[7], r[8]], r[-1]) for r in _tsv_rows(DATA / "STS-B" / "test.tsv")]
    raise KeyError(task)


# ============================================================================ PET REFERENCE
# Independent re-implementation of PET's PVP.get_parts / PVP.encode for the checked patterns.

M = object()  # stands for PET's self.mask in a parts list


def _rstrip_punc(s: str) -> str:
    import string

    return s.rstrip(string.punctuation)


def S(text: str) -> tuple[str, bool]:
    """PET's ``self.shortenable(text)``: a part truncation may cut."""
    return (text, True)


def pet_reference_parts(task: str, pattern: int, a: str, b: str | None):
    """(parts_a, parts_b) of PET's get_parts for ``task`` and ``pattern``."""
    if task in ("agnews", "yahoo"):
        word = "News:" if task == "agnews" else "Question:"
        tail = [S(b)] if b else []
        return {
            0: [M, ":", S(a), *tail],
            1: [M, word, S(a), *tail],
            2: [S(a), "(", M, ")", *tail],
            3: [S(a), *tail, "(", M, ")"],
            4: ["[ Category:", M, "]", S(a), *tail],
            5: [M, "-", S(a), *tail],
        }[pattern], []
    if task in ("yelp-full", "yelp-polarity", "imdb", "sst2"):
        return {
            0: (["It was", M, ".", S(a)], []),
            1: ([S(a), ". All in all, it was", M, "."], []),
            2: (["Just", M, "!"], [S(a)]),
            3: ([S(a)], ["In summary, the restaurant is" if task.startswith("yelp") else "In summary, the movie is", M, "."]),
        }[pattern]
    if task == "mnli":
        a = _rstrip_punc(a)
        if pattern in (0, 2):
            return ['"', S(a), '" ?'], [M, ', "', S(b), '"']
        return [S(a), "?"], [M, ",", S(b)]
    if task in ("rte", "cb"):  # PET switches the order: hypothesis first
        hyp = _rstrip_punc(b)
        return {
            0: (['"', S(hyp), '" ?'], [M, ', "', S(a), '"']),
            1: ([S(hyp), "?"], [M, ",", S(a)]),
            2: (['"', S(hyp), '" ?'], [M, '. "', S(a), '"']),
            3: ([S(hyp), "?"], [M, ".", S(a)]),
        }[pattern]
    raise KeyError((task, pattern))


def pet_reference_truncate(parts_a: list, parts_b: list, n_special: int, max_length: int) -> None:
    """PET's PVP.truncate, in place on (ids, shortenable) parts: one token at a time from the
    last non-empty shortenable part of the sequence with more shortenable tokens (b on a tie)."""

    def length(parts, only_short=False):
        return sum(len(ids) for ids, short in parts if short or not only_short)

    def remove_last(parts):
        i = max(k for k, (ids, short) in enumerate(parts) if short and ids)
        parts[i] = (parts[i][0][:-1], True)

    excess = length(parts_a) + length(parts_b) + n_special - max_length
    for _ in range(max(0, excess)):
        if length(parts_a, True) > length(parts_b, True):
            remove_last(parts_a)
        else:
            remove_last(parts_b)


def pet_reference_encode(task: str, pattern: int, a: str, b: str | None, tokenizer, words: list[str],
                         max_length: int = PET_MAX_LEN) -> dict:
    bpe = "Roberta" in type(tokenizer).__name__  # PET: add_prefix_space=True for GPT2Tokenizer subclasses

    def enc(x) -> list[int]:
        if x is M:
            return [tokenizer.mask_token_id]
        return tokenizer((" " + x) if bpe else x, add_special_tokens=False)["input_ids"]

    def encode_parts(parts):
        parts = [x if isinstance(x, tuple) else (x, False) for x in parts]
        return [(enc(x), short) for x, short in parts if x is M or x]

    parts_a, parts_b = pet_reference_parts(task, pattern, a, b)
    pa, pb = encode_parts(parts_a), encode_parts(parts_b) if parts_b else []
    pet_reference_truncate(pa, pb, tokenizer.num_special_tokens_to_add(bool(parts_b)), max_length)
    ta = [i for ids, _ in pa for i in ids]
    tb = [i for ids, _ in pb for i in ids] if parts_b else None
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    # build_inputs_with_special_tokens / create_token_type_ids_from_sequences of BERT and RoBERTa
    if bpe:
        ids = [cls] + ta + [sep] + ([sep] + tb + [sep] if tb is not None else [])
        types = None  # PET passes token_type_ids only to bert/xlnet
    else:
        ids = [cls] + ta + [sep] + (tb + [sep] if tb is not None else [])
        types = [0] * (len(ta) + 2) + ([1] * (len(tb) + 1) if tb is not None else [])
    word_ids = [enc(w) for w in words]
    return {"input_ids": ids, "token_type_ids": types, "mask_pos": ids.index(tokenizer.mask_token_id), "label_word_ids": word_ids}


def pet_reference_read(task: str) -> list[tuple[str, str | None]]:
    """(text_a, text_b) per test example, as PET's processors build them from these files."""
    if task == "agnews":
        with open(DATA / "agnews" / "test.csv", encoding="utf-8") as f:
            return [(h.replace("\\", " "), body.replace("\\", " ")) for _, h, body in csv.reader(f, delimiter=",")]
    if task in ("yelp-full", "yahoo"):
        # these JSONL copies keep the Zhang et al. CSV escaping of quotes ('""'), which PET's
        # csv.reader of the original CSV decodes; then PET's backslash rule
        clean = lambda t: t.replace('""', '"').replace("\\n", " ").replace("\\", " ")  # noqa: E731
        return [(clean(d["text_a"]), None) for d in _jsonl(DATA / task / "test_subset1000.jsonl")]
    if task == "mnli":
        return [(d["text_a"], d["text_b"]) for d in _jsonl(DATA / "MNLI" / "test_matched.jsonl.gz")]
    if task == "rte":
        return [(r[1], r[2]) for r in _tsv_rows(DATA / "RTE" / "test.tsv")]
    if task == "cb":
        return [(d["premise"], d["hypothesis"]) for d in _jsonl(DATA / "CB" / "val.jsonl")]
    raise KeyError(task)


# (task, PET pattern id, our PVP id, the split of our task that holds those examples)
PET_CASES = [
    *[("agnews", i, pid, "test") for i, pid in enumerate(["mask-colon:pet", "mask-news:pet", "paren-mid:pet", "paren-end:pet", "category:pet", "mask-dash:pet"])],
    *[("yahoo", i, pid, "test_subset") for i, pid in [(0, "mask-colon:pet"), (1, "mask-question:pet"), (3, "paren-end:pet"), (4, "category:pet"), (5, "mask-dash:pet")]],
    *[("yelp-full", i, pid, "test") for i, pid in enumerate(["it-was:pet", "all-in-all:pet", "just:pet", "in-summary:pet"])],
    ("mnli", 0, "pet-quoted:right-maybe-wrong", "test"),
    ("mnli", 1, "pet-plain:right-maybe-wrong", "test"),
    ("mnli", 2, "pet-quoted:yes-maybe-no", "test"),
    ("mnli", 3, "pet-plain:yes-maybe-no", "test"),
    *[("rte", i, pid, "test") for i, pid in enumerate(["pet-quoted:yes-no", "pet-plain:yes-no", "pet-quoted-period:yes-no", "pet-plain-period:yes-no"])],
    *[("cb", i, pid, "test") for i, pid in enumerate(["pet-quoted:yes-no-maybe", "pet-plain:yes-no-maybe", "pet-quoted-period:yes-no-maybe", "pet-plain-period:yes-no-maybe"])],
]


# ============================================================================ comparison


def _sample(rows: list, n: int | None, longest: bool = False) -> list[int]:
    """Indices of ``n`` rows: evenly spaced, or the ``longest`` (most characters of text)."""
    if n is None or n >= len(rows):
        return list(range(len(rows)))
    if longest:
        size = [sum(len(t or "") for t in (r[0] if isinstance(r[0], list) else r)) for r in rows]
        return sorted(sorted(range(len(rows)), key=lambda i: -size[i])[:n])
    step = len(rows) / n
    return sorted({int(i * step) for i in range(n)})


def _ours(task: str, pvp_id: str, tokenizer, max_length: int, split: str = "test", idx: list[int] | None = None) -> tuple[list, list]:
    spec = load_task(task)
    examples = load_examples(spec, split, DATA)
    if idx is not None:
        examples = [examples[i] for i in idx]
    pvp = task_pvps(spec, ids=[pvp_id])[0]
    return examples, encode_records(pvp, tokenizer, examples, max_length=max_length, labels=spec.label_ids)


def _compare(res: dict, ex, tokenizer, ref: dict, got: dict, label_ids: list) -> None:
    res["checked"] += 1
    mine = {"input_ids": got["input_ids"], "token_type_ids": got["token_type_ids"], "mask_pos": got["mask_positions"][0],
            "label_word_ids": label_ids}
    if mine != {k: ref[k] for k in mine}:
        res["mismatches"].append((ex.guid, tokenizer.convert_ids_to_tokens(ref["input_ids"]), got["tokens"]))


def lmbff_parity(task: str, tokenizer, pattern: str | None = None, n: int | None = SAMPLE, longest: bool = False) -> dict:
    """Compare every (sampled) test example at LM-BFF's lengths for ``task``; returns counts
    (``truncated``: examples the limits or the tail cut changed) and the first mismatches."""
    template, mapping, pvp_id = LMBFF_MANUAL[task]
    if pattern is not None:
        template, pvp_id = LMBFF_AUTO[(task, pattern)], f"{pattern}:{pvp_id.split(':')[1]}"
    max_len, first, other = lmbff_lengths(task)
    ref_rows = lmbff_reference_read(task)
    idx = _sample(ref_rows, n, longest)
    labels = load_task(task).label_ids
    words = [mapping[lab] for lab in labels]
    refs = [lmbff_reference_encode(ref_rows[i][0], template, tokenizer, words, max_len, first, other) for i in idx]
    assert all(r["mask_pos"] is not None for r in refs)  # LM-BFF's settings never cut the mask on these files
    examples, ours = _ours(task, pvp_id, tokenizer, max_len, idx=idx)
    assert len(examples) == len(idx)
    res = {"checked": 0, "truncated": 0, "mismatches": []}
    for i, ex, got, ref in zip(idx, examples, ours, refs):
        full = lmbff_reference_encode(ref_rows[i][0], template, tokenizer, words)
        res["truncated"] += len(full["input_ids"]) > len(ref["input_ids"])
        _compare(res, ex, tokenizer, ref, got, [got["label_token_ids"][lab][0][0] for lab in labels])
        if len(got["mask_positions"]) != 1:
            res["mismatches"].append((ex.guid, "masks", got["mask_positions"]))
    return res


def pet_parity(task: str, pattern: int, pvp_id: str, split: str, tokenizer, n: int | None = SAMPLE, longest: bool = False) -> dict:
    ref_rows = pet_reference_read(task)
    idx = _sample(ref_rows, n, longest)
    examples, ours = _ours(task, pvp_id, tokenizer, PET_MAX_LEN, split=split, idx=idx)
    spec = load_task(task)
    verb = task_pvps(spec, ids=[pvp_id])[0].verbalizer
    words = [verb.labels[lab][0] for lab in spec.label_ids]
    res = {"checked": 0, "truncated": 0, "mismatches": []}
    for i, ex, got in zip(idx, examples, ours):
        a, b = ref_rows[i]
        ref = pet_reference_encode(task, pattern, a, b, tokenizer, words)
        res["truncated"] += len(pet_reference_encode(task, pattern, a, b, tokenizer, words, max_length=10**9)["input_ids"]) > len(ref["input_ids"])
        _compare(res, ex, tokenizer, ref, got, [got["label_token_ids"][lab][0] for lab in spec.label_ids])
    return res


# ============================================================================ tests

TOKS = ["bert-wordpiece", "roberta-bpe"]


@pytest.fixture(scope="module", params=TOKS)
def tok(request):
    return _tokenizer(request.param)


@pytest.mark.parametrize("task", list(LMBFF_MANUAL))
def test_lmbff_manual_templates_match_lmbff_encoder(task, tok):
    res = lmbff_parity(task, tok)
    assert res["checked"] >= min(SAMPLE, 200) and res["checked"] > 0
    assert not res["mismatches"], f"{len(res['mismatches'])} of {res['checked']} differ; first: {res['mismatches'][0]}"


@pytest.mark.parametrize("task, pattern", list(LMBFF_AUTO))
def test_lmbff_auto_templates_match_lmbff_encoder(task, pattern, tok):
    res = lmbff_parity(task, tok, pattern=pattern, n=40)
    assert res["checked"] > 0
    assert not res["mismatches"], f"{len(res['mismatches'])} of {res['checked']} differ; first: {res['mismatches'][0]}"


@pytest.mark.parametrize("task, pattern, pvp_id, split", PET_CASES, ids=[f"{t}-{p}" for t, p, _, _ in PET_CASES])
def test_pet_patterns_match_pet_encoder(task, pattern, pvp_id, split, tok):
    res = pet_parity(task, pattern, pvp_id, split, tok, n=40)
    assert res["checked"] > 0
    assert not res["mismatches"], f"{len(res['mismatches'])} of {res['checked']} differ; first: {res['mismatches'][0]}"


# ---------------------------------------------------------------------------- over-long inputs


@pytest.mark.parametrize("task", ["qnli", "cr", "subj"])
def test_lmbff_truncation_on_the_longest_real_examples(task, tok):
    """QNLI (tail cut at 128), CR and Subj (sentence limit 110): the longest test examples."""
    res = lmbff_parity(task, tok, n=25, longest=True)
    assert res["truncated"] > 0, "no example was long enough to be cut: the test would prove nothing"
    assert not res["mismatches"], f"{len(res['mismatches'])} of {res['checked']} differ; first: {res['mismatches'][0]}"


@pytest.mark.parametrize("pattern, pvp_id", [(0, "it-was:pet"), (1, "all-in-all:pet"), (2, "just:pet"), (3, "in-summary:pet")])
def test_pet_truncation_on_the_longest_real_examples(pattern, pvp_id, tok):
    """Yelp's longest reviews at 256 tokens, with the text in sequence A or B (``{segment}``)."""
    res = pet_parity("yelp-full", pattern, pvp_id, "test", tok, n=12, longest=True)
    assert res["truncated"] > 0, "no example was long enough to be cut: the test would prove nothing"
    assert not res["mismatches"], f"{len(res['mismatches'])} of {res['checked']} differ; first: {res['mismatches'][0]}"


def _long_texts() -> list[str]:
    """Real sentences strung together: long texts with the data's own vocabulary and spacing."""
    rows = lmbff_reference_read("rte")
    return [" ".join(r[0][0] for r in rows[k : k + 6]) for k in range(0, 60, 6)]


def _pvp(task: str, pvp_id: str, truncation=None):
    from pet.prompts.spec import PVP, Pattern

    pvp = task_pvps(load_task(task), ids=[pvp_id])[0]
    if truncation is None:
        return pvp
    return PVP(Pattern(pvp.pattern.id, pvp.pattern.template, truncation=truncation), pvp.verbalizer)


@pytest.mark.parametrize("max_len, first, other", [(256, 240, None), (64, 30, 20), (48, 20, None), (40, 30, 30)])
def test_lmbff_truncation_on_constructed_pairs(max_len, first, other, tok):
    """RTE's LM-BFF template on long pairs: sentence limits, then the tail cut (which may drop
    the final separator and part of sentence 1)."""
    from pet.examples import Example

    texts = _long_texts()
    pairs = [(texts[k], texts[k + 1][: 40 * (k + 1)]) for k in range(len(texts) - 1)]
    rule = {"rule": "lmbff", **{k: v for k, v in (("first_sent_limit", first), ("other_sent_limit", other)) if v}}
    pvp = _pvp("rte", "lmbff:yes-no", rule if (first, other) != (240, None) else None)  # (240, None): the shipped rule
    assert pvp.pattern.truncation.first_sent_limit == first and pvp.pattern.truncation.other_sent_limit == other
    examples = [Example({"text_a": a, "text_b": b}, guid=str(k)) for k, (a, b) in enumerate(pairs)]
    ours = encode_records(pvp, tok, examples, max_length=max_len, labels=["entailment", "not_entailment"])
    cut = cut_tail = 0
    for (a, b), got in zip(pairs, ours):
        ref = lmbff_reference_encode([a, b], LMBFF_MANUAL["rte"][0], tok, ["Yes", "No"], max_len, first, other)
        assert (got["input_ids"], got["token_type_ids"], got["mask_positions"]) == (ref["input_ids"], ref["token_type_ids"], [ref["mask_pos"]])
        cut += len(ref["input_ids"]) < len(lmbff_reference_encode([a, b], LMBFF_MANUAL["rte"][0], tok, ["Yes", "No"])["input_ids"])
        cut_tail += ref["input_ids"][-1] != tok.sep_token_id
    assert cut >= len(pairs) // 2
    if max_len <= 48:
        assert cut_tail > 0  # the tail cut really dropped the final separator somewhere


def test_lmbff_tail_cut_through_the_mask_keeps_the_mask(tok, caplog):
    """Where LM-BFF's tail cut would drop the mask (LM-BFF asserts and stops), the fields are
    shortened longest-first instead: every template token and the mask stay, the input fills
    max_length exactly, and one warning says so."""
    from pet.examples import Example
    from pet.prompts.spec import Pattern

    pvp = _pvp("sst2", "it-was:great-terrible")  # no sentence limit (LM-BFF's SST-2): the mask follows the text
    assert pvp.pattern.truncation.rule == "lmbff"
    ex = [Example({"text_a": _long_texts()[0]}, guid="long"), Example({"text_a": _long_texts()[1]}, guid="long2")]
    ref = lmbff_reference_encode([ex[0].fields["text_a"]], LMBFF_MANUAL["sst2"][0], tok, ["great", "terrible"], 64)
    assert ref["mask_pos"] is None  # LM-BFF would fail its assertion here
    from pet.prompts import encoding

    encoding.TAIL_NOTED.clear()
    with caplog.at_level("WARNING", logger="pet.prompts.encoding"):
        got = encode_records(pvp, tok, ex, max_length=64, labels=["0", "1"])
        other = _pvp("sst2", "it-was:great-terrible")  # another encoder of the same pattern (as a second PVP sharing it)
        encode_records(other, tok, ex, max_length=64, labels=["0", "1"])
    plain = dataclasses.replace(pvp, pattern=Pattern(pvp.pattern.id, pvp.pattern.template))  # the default rule: longest_first
    want = encode_records(plain, tok, ex, max_length=64, labels=["0", "1"])
    assert [g["input_ids"] for g in got] == [w["input_ids"] for w in want]
    assert all(len(g["input_ids"]) == 64 and g["input_ids"][g["mask_positions"][0]] == tok.mask_token_id for g in got)
    assert sum("tail cut would drop the mask" in r.message for r in caplog.records) == 1  # once per pattern and length, not per example or encoder


@pytest.mark.parametrize("max_len", [256, 64, 33])
@pytest.mark.parametrize("pattern, pvp_id", [(0, "pet-quoted:yes-no"), (1, "pet-plain:yes-no"), (3, "pet-plain-period:yes-no")])
def test_pet_truncation_on_constructed_pairs(pattern, pvp_id, max_len, tok):
    """Both sequences long, one long, equal lengths (PET's tie goes to the second sequence)."""
    from pet.examples import Example

    texts = _long_texts()
    pairs = [(texts[0], texts[1]), (texts[2][:80], texts[3]), (texts[4], texts[5][:60]), ("one two three", "one two three"),
             ("a b c d e f", "a b c d e f g"), (texts[6], "")]
    examples = [Example({"text_a": a, "text_b": b}, guid=str(k)) for k, (a, b) in enumerate(pairs)]
    ours = encode_records(_pvp("rte", pvp_id), tok, examples, max_length=max_len, labels=["entailment", "not_entailment"])
    cut = 0
    for (a, b), got in zip(pairs, ours):
        ref = pet_reference_encode("rte", pattern, a, b, tok, ["Yes", "No"], max_length=max_len)
        assert (got["input_ids"], got["token_type_ids"], got["mask_positions"]) == (ref["input_ids"], ref["token_type_ids"], [ref["mask_pos"]])
        cut += len(ref["input_ids"]) == max_len
    assert cut >= 2


@pytest.mark.parametrize("max_len", [128, 40])
def test_pet_truncation_cuts_the_last_field_of_a_sequence_first(max_len, tok):
    """AG News: title and body are both in sequence A; PET cuts the body to nothing before the title."""
    from pet.examples import Example

    texts = _long_texts()
    pairs = [(texts[0][:150], texts[1]), (texts[2], texts[3][:30]), (texts[4], texts[5])]
    examples = [Example({"text_a": a, "text_b": b}, guid=str(k)) for k, (a, b) in enumerate(pairs)]
    labels = load_task("agnews").label_ids
    for pattern, pvp_id in [(0, "mask-colon:pet"), (2, "paren-mid:pet"), (3, "paren-end:pet")]:
        ours = encode_records(_pvp("agnews", pvp_id), tok, examples, max_length=max_len, labels=labels)
        for (a, b), got in zip(pairs, ours):
            ref = pet_reference_encode("agnews", pattern, a, b, tok, ["x"], max_length=max_len)
            assert got["input_ids"] == ref["input_ids"] and len(got["input_ids"]) == max_len


def test_reference_sees_the_differences_it_is_meant_to_catch():
    """The comparison is not vacuous: the old rules (drop_punct, no {segment}, no leading space)
    give different ids from the references on real examples."""
    from pet.prompts.encoding import PVPEncoder
    from pet.examples import Example
    from pet.prompts.spec import PVP, Pattern, Verbalizer

    rob = _tokenizer("roberta-bpe")
    texts = ["A man is sleeping .", "a man sleeps."]  # SNLI-style tokenised text
    ref = lmbff_reference_encode(texts, "*cls**sent-_0*?*mask*,*+sentl_1**sep+*", rob, ["No", "Yes"])
    verb = Verbalizer("v", {"0": ["No"], "1": ["Yes"]})
    ex = [Example({"text_a": texts[0], "text_b": texts[1]})]
    new = PVPEncoder(PVP(Pattern("n", "{text_a|drop_last_char}? {mask}, {text_b|lower_first}"), verb), rob).encode(ex)[0]
    old = PVPEncoder(PVP(Pattern("o", "{text_a|drop_punct}? {mask}, {text_b|lower_first}"), verb), rob).encode(ex)[0]
    assert new.input_ids == ref["input_ids"] and old.input_ids != ref["input_ids"]

    bert = _tokenizer("bert-wordpiece")
    ref = pet_reference_encode("yelp-full", 2, "great food", None, bert, ["bad"])
    seg = PVPEncoder(PVP(Pattern("s", " Just {mask} ! {segment} {text_a}"), Verbalizer("v", {"0": ["bad"], "1": ["good"]})), bert)
    flat = PVPEncoder(PVP(Pattern("f", "Just {mask}! {text_a}"), Verbalizer("v", {"0": ["bad"], "1": ["good"]})), bert)
    e = [Example({"text_a": "great food"})]
    assert seg.encode(e)[0].input_ids == ref["input_ids"] and seg.encode(e)[0].token_type_ids == ref["token_type_ids"]
    assert flat.encode(e)[0].input_ids != ref["input_ids"]

    ref = lmbff_reference_encode(["fine"], "*cls*_It's*mask*.*+sent_0**sep+*", rob, ["great"])
    spaced = PVPEncoder(PVP(Pattern("a", " It's {mask}. {text_a}"), Verbalizer("v", {"0": ["bad"], "1": ["great"]})), rob)
    glued = PVPEncoder(PVP(Pattern("b", "It's {mask}. {text_a}"), Verbalizer("v", {"0": ["bad"], "1": ["great"]})), rob)
    e = [Example({"text_a": "fine"})]
    assert spaced.encode(e)[0].input_ids == ref["input_ids"] != glued.encode(e)[0].input_ids


def test_show_encode_cli_gives_the_reference_ids(capsys):
    """`pet show --encode --format jsonl` with a tokenizer folder only (no weights)."""
    from pet.cli import main

    tok_dir = TOKENIZERS / "roberta-bpe"
    assert not any(tok_dir.glob("*.safetensors")) and not any(tok_dir.glob("*.bin"))
    rc = main(["show", "--task", "rte", "--pvps", "lmbff:yes-no", "--tokenizer", str(tok_dir), "--data-dir", str(DATA),
               "--encode", "--split", "test", "--limit", "3", "--format", "jsonl"])
    assert rc == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3
    assert set(lines[0]) >= {"guid", "fields", "tokens", "input_ids", "token_type_ids", "mask_positions", "label_token_ids"}
    rob = _tokenizer("roberta-bpe")
    rows = lmbff_reference_read("rte")
    for i, rec in enumerate(lines):
        ref = lmbff_reference_encode(rows[i][0], LMBFF_MANUAL["rte"][0], rob, ["Yes", "No"], *lmbff_lengths("rte"))
        assert rec["input_ids"] == ref["input_ids"] and rec["mask_positions"] == [ref["mask_pos"]]
        assert rec["token_type_ids"] is None  # RoBERTa takes no token types
        assert rec["fields"] == {"text_a": rows[i][0][0], "text_b": rows[i][0][1]}
        assert rec["label_token_ids"] == {"entailment": [[ref["label_word_ids"][0]]], "not_entailment": [[ref["label_word_ids"][1]]]}
    rc = main(["show", "--task", "rte", "--pvps", "lmbff:yes-no", "--tokenizer", str(tok_dir), "--data-dir", str(DATA),
               "--encode", "--limit", "1"])
    assert rc == 0 and '(truncation {"rule": "lmbff", "first_sent_limit": 240}, max_length 256)' in capsys.readouterr().out
