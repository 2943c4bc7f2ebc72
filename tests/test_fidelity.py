"""Input fidelity: our encoder gives LM-BFF's and PET's inputs, token for token.

The REFERENCE functions below (``lmbff_reference_encode``, ``pet_reference_encode`` and the
``*_reference_read`` readers) are independent re-implementations, written for this test, of
the reference code's logic as read in the two repositories (never imported, never copied):

* princeton-nlp/LM-BFF @ c282f52: ``src/dataset.py::tokenize_multipart_input`` (the ``*xx*``
  template language) with the manual templates and label words of ``run_experiment.sh``, and
  the processors of ``src/processors.py`` (TSVs read with ``quotechar=None``, the single-sentence
  CSVs with ``pandas.read_csv(header=None)``; no stripping);
* timoschick/pet @ 21d32de: ``pet/pvp.py`` (``get_parts`` of each PVP; ``PVP.encode``: every
  part encoded on its own, with ``add_prefix_space=True`` for the byte-level BPE tokenizer, then
  ``build_inputs_with_special_tokens(a, b)`` / ``create_token_type_ids_from_sequences``) and the
  processors of ``pet/tasks.py`` (AG News: every backslash becomes a space; Yelp: ``\\n`` then
  backslash).

Our side is ``pet.prompts.encoding.encode_records`` — the function behind ``pet show --encode`` — fed
by our own task files and readers, so a difference anywhere (reading, filters, spacing,
segments, special tokens, label words) fails here.

Speed: each test encodes a deterministic sample of every test file (``SAMPLE`` examples, evenly
spaced); the full-file run is ``benchmarks/input_fidelity.py`` (results in
``benchmarks/RESULTS.md``, section "Input fidelity").
"""

from __future__ import annotations

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
MAX_LEN = 256  # compare every example whose reference encoding fits 256 tokens (none is longer)


# ============================================================================ LM-BFF REFERENCE
# Independent re-implementation of LM-BFF's tokenize_multipart_input (prompt=True, no
# demonstrations, no truncation), for checking only.


def lmbff_reference_encode(texts: list[str], template: str, tokenizer, label_words: list[str]) -> dict:
    """LM-BFF's prompt input for one example: ids, token types (BERT only), mask position, and
    the label word ids (``' ' + word``, one token each, as FewShotDataset builds them)."""

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
        elif part:
            words = part.replace("_", " ")
            new = [tokenizer.convert_tokens_to_ids(words)] if len(words) == 1 else enc(words)
        ids += new
        types += [segment] * len(new)
        if bump:
            segment += 1
    word_ids = []
    for w in label_words:
        toks = tokenizer.tokenize(" " + w)
        assert len(toks) == 1, (w, toks)  # LM-BFF asserts single-token label words
        word_ids.append(tokenizer.convert_tokens_to_ids(toks[0]))
    return {
        "input_ids": ids,
        "token_type_ids": types if "token_type_ids" in tokenizer.model_input_names else None,
        "mask_pos": ids.index(tokenizer.mask_token_id),
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


def pet_reference_parts(task: str, pattern: int, a: str, b: str | None):
    """(parts_a, parts_b) of PET's get_parts for ``task`` and ``pattern``."""
    if task in ("agnews", "yahoo"):
        word = "News:" if task == "agnews" else "Question:"
        tail = [b] if b else []
        return {
            0: [M, ":", a, *tail],
            1: [M, word, a, *tail],
            2: [a, "(", M, ")", *tail],
            3: [a, *tail, "(", M, ")"],
            4: ["[ Category:", M, "]", a, *tail],
            5: [M, "-", a, *tail],
        }[pattern], []
    if task in ("yelp-full", "yelp-polarity", "imdb", "sst2"):
        return {
            0: (["It was", M, ".", a], []),
            1: ([a, ". All in all, it was", M, "."], []),
            2: (["Just", M, "!"], [a]),
            3: ([a], ["In summary, the restaurant is" if task.startswith("yelp") else "In summary, the movie is", M, "."]),
        }[pattern]
    if task == "mnli":
        a = _rstrip_punc(a)
        if pattern in (0, 2):
            return ['"', a, '" ?'], [M, ', "', b, '"']
        return [a, "?"], [M, ",", b]
    if task in ("rte", "cb"):  # PET switches the order: hypothesis first
        hyp = _rstrip_punc(b)
        return {
            0: (['"', hyp, '" ?'], [M, ', "', a, '"']),
            1: ([hyp, "?"], [M, ",", a]),
            2: (['"', hyp, '" ?'], [M, '. "', a, '"']),
            3: ([hyp, "?"], [M, ".", a]),
        }[pattern]
    raise KeyError((task, pattern))


def pet_reference_encode(task: str, pattern: int, a: str, b: str | None, tokenizer, words: list[str]) -> dict:
    bpe = "Roberta" in type(tokenizer).__name__  # PET: add_prefix_space=True for GPT2Tokenizer subclasses

    def enc(x) -> list[int]:
        if x is M:
            return [tokenizer.mask_token_id]
        return tokenizer((" " + x) if bpe else x, add_special_tokens=False)["input_ids"]

    parts_a, parts_b = pet_reference_parts(task, pattern, a, b)
    ta = [i for x in parts_a if x is M or x for i in enc(x)]
    tb = [i for x in parts_b if x is M or x for i in enc(x)] if parts_b else None
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


def _sample(n_total: int, n: int | None) -> list[int]:
    if n is None or n >= n_total:
        return list(range(n_total))
    step = n_total / n
    return sorted({int(i * step) for i in range(n)})


def _ours(task: str, pvp_id: str, tokenizer, split: str = "test", idx: list[int] | None = None) -> tuple[list, list]:
    spec = load_task(task)
    examples = load_examples(spec, split, DATA)
    if idx is not None:
        examples = [examples[i] for i in idx]
    pvp = task_pvps(spec, ids=[pvp_id])[0]
    return examples, encode_records(pvp, tokenizer, examples, max_length=MAX_LEN, labels=spec.label_ids)


def lmbff_parity(task: str, tokenizer, pattern: str | None = None, n: int | None = SAMPLE) -> dict:
    """Compare every (sampled) test example; returns counts and the first mismatches."""
    template, mapping, pvp_id = LMBFF_MANUAL[task]
    if pattern is not None:
        template, pvp_id = LMBFF_AUTO[(task, pattern)], f"{pattern}:{pvp_id.split(':')[1]}"
    ref_rows = lmbff_reference_read(task)
    idx = _sample(len(ref_rows), n)
    examples, ours = _ours(task, pvp_id, tokenizer, idx=idx)
    assert len(examples) == len(idx)
    labels = load_task(task).label_ids
    words = [mapping[lab] for lab in labels]
    res = {"checked": 0, "too_long": 0, "mismatches": []}
    for i, ex, got in zip(idx, examples, ours):
        texts, _ = ref_rows[i]
        ref = lmbff_reference_encode(texts, template, tokenizer, words)
        if len(ref["input_ids"]) > MAX_LEN:
            res["too_long"] += 1
            continue
        res["checked"] += 1
        mine = {
            "input_ids": got["input_ids"],
            "token_type_ids": got["token_type_ids"],
            "mask_pos": got["mask_positions"][0],
            "label_word_ids": [got["label_token_ids"][lab][0][0] for lab in labels],
        }
        if mine != ref or len(got["mask_positions"]) != 1:
            res["mismatches"].append((ex.guid, tokenizer.convert_ids_to_tokens(ref["input_ids"]), got["tokens"]))
    return res


def pet_parity(task: str, pattern: int, pvp_id: str, split: str, tokenizer, n: int | None = SAMPLE) -> dict:
    ref_rows = pet_reference_read(task)
    idx = _sample(len(ref_rows), n)
    examples, ours = _ours(task, pvp_id, tokenizer, split=split, idx=idx)
    spec = load_task(task)
    verb = task_pvps(spec, ids=[pvp_id])[0].verbalizer
    res = {"checked": 0, "too_long": 0, "mismatches": []}
    for i, ex, got in zip(idx, examples, ours):
        a, b = ref_rows[i]
        ref = pet_reference_encode(task, pattern, a, b, tokenizer, [verb.labels[lab][0] for lab in spec.label_ids])
        if len(ref["input_ids"]) > MAX_LEN:
            res["too_long"] += 1
            continue
        res["checked"] += 1
        mine = {
            "input_ids": got["input_ids"],
            "token_type_ids": got["token_type_ids"],
            "mask_pos": got["mask_positions"][0],
            "label_word_ids": [got["label_token_ids"][lab][0] for lab in spec.label_ids],
        }
        if mine != ref:
            res["mismatches"].append((ex.guid, tokenizer.convert_ids_to_tokens(ref["input_ids"]), got["tokens"]))
    return res


# ============================================================================ tests

TOKS = ["bert-wordpiece", "roberta-bpe"]


@pytest.fixture(scope="module", params=TOKS)
def tok(request):
    return _tokenizer(request.param)


@pytest.mark.parametrize("task", list(LMBFF_MANUAL))
def test_lmbff_manual_templates_match_lmbff_encoder(task, tok):
    res = lmbff_parity(task, tok)
    assert res["checked"] >= min(SAMPLE, 200) - res["too_long"] and res["checked"] > 0
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
        ref = lmbff_reference_encode(rows[i][0], LMBFF_MANUAL["rte"][0], rob, ["Yes", "No"])
        assert rec["input_ids"] == ref["input_ids"] and rec["mask_positions"] == [ref["mask_pos"]]
        assert rec["token_type_ids"] is None  # RoBERTa takes no token types
        assert rec["fields"] == {"text_a": rows[i][0][0], "text_b": rows[i][0][1]}
        assert rec["label_token_ids"] == {"entailment": [[ref["label_word_ids"][0]]], "not_entailment": [[ref["label_word_ids"][1]]]}
