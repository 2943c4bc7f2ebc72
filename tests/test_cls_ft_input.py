"""The cls-ft baseline's input format (``pair_format``): LM-BFF's one-separator pair input
``[CLS] a [SEP] b [SEP]`` is what training and prediction see, it survives save / load, and the
saved folder's card says that transformers' ``pipeline`` builds a different pair input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, tiny_mlm

from pet.errors import ConfigError
from pet.estimator.classifier import PetClassifier
from pet.examples import Example
from pet.methods import get_method
from pet.models.sequence import SequenceClassifier

pytestmark = pytest.mark.usefixtures("one_thread")

PAIRS = pd.DataFrame({
    "text_a": ["A man sleeps.", "A dog runs fast.", "The sun is up.", "Kids play outside."],
    "text_b": ["Nobody sleeps.", "An animal moves.", "It is night.", "Children are playing."],
})
Y = ["no", "yes", "no", "yes"]
OPTIONS = {"steps": 3, "lr": 1e-2, "batch_size": 4, "max_length": 32}
#: the special tokens spelled out, per tokenizer family: (classifier token, separator)
SPECIALS = {"bert": ("[CLS]", "[SEP]"), "roberta": ("<s>", "</s>")}


def _hand_built(tok, family: str, a: str, b: str) -> list[int]:
    """LM-BFF's no-template input written out token by token: [CLS] a [SEP] b [SEP]."""
    cls, sep = SPECIALS[family]
    return tok.convert_tokens_to_ids([cls, *tok.tokenize(a), sep, *tok.tokenize(b), sep])


def _base(tmp_path, family: str) -> str:
    m, tok = tiny_mlm(family, seed=3)
    m.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    return str(tmp_path / "base")


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_training_and_prediction_see_lmbffs_single_separator_input(tmp_path, monkeypatch, family):
    seen: list[list[int]] = []
    forward = SequenceClassifier.forward

    def spy(self, input_ids, attention_mask):
        seen.extend([row[m.bool()].tolist() for row, m in zip(input_ids, attention_mask)])
        return forward(self, input_ids, attention_mask)

    monkeypatch.setattr(SequenceClassifier, "forward", spy)
    clf = PetClassifier(_base(tmp_path, family), "cls-ft", options={**OPTIONS, "pair_format": "single_sep"}).fit(PAIRS, Y)
    tok = clf.fitted_.predictor.clf.tokenizer
    want = [_hand_built(tok, family, a, b) for a, b in zip(PAIRS.text_a, PAIRS.text_b)]
    assert sorted(seen[:4]) == sorted(want)  # the first training batch (all 4 examples)
    seen.clear()
    clf.predict_proba(PAIRS)
    assert sorted(seen) == sorted(want)
    default = SequenceClassifier(clf.fitted_.predictor.clf.encoder, tok, ["no", "yes"]).encode([Example(dict(PAIRS.iloc[0]))])[0]
    if family == "roberta":  # RoBERTa's own pair input has two separators between the texts
        assert default != want[0] and default.count(tok.sep_token_id) == 3 and want[0].count(tok.sep_token_id) == 2
    else:  # BERT's own pair input has the same ids (single_sep keeps its segment ids too: 0, then 1 after the first [SEP])
        assert default == want[0]


def test_single_sep_is_saved_loaded_and_named_in_the_card(tmp_path):
    from transformers import pipeline

    clf = PetClassifier(_base(tmp_path, "roberta"), "cls-ft", options={**OPTIONS, "pair_format": "single_sep"}).fit(PAIRS, Y)
    ours = clf.predict_proba(PAIRS)
    out = clf.save(tmp_path / "clf")
    assert json.loads((out / "model" / "classifier.json").read_text())["pair_format"] == "single_sep"
    loaded = PetClassifier.load(out)
    assert loaded.fitted_.predictor.clf.pair_format == "single_sep"
    np.testing.assert_allclose(loaded.predict_proba(PAIRS), ours, atol=1e-6)
    loaded.fitted_.predictor.clf.pair_format = "tokenizer"  # the same weights on the other input give other scores
    assert not np.allclose(loaded.predict_proba(PAIRS), ours, atol=1e-4)
    card = (out / "README.md").read_text()
    assert "pair_format: single_sep" in card and "not trained on" in card
    # what the card warns about: the pipeline's pair input is not the trained one; single texts agree
    pipe = pipeline("text-classification", model=str(out / "model"), top_k=None, device="cpu")

    def as_array(rows):
        return np.array([[next(d["score"] for d in r if d["label"] == n) for n in ("no", "yes")] for r in rows])

    got = as_array(pipe([{"text": a, "text_pair": b} for a, b in zip(PAIRS.text_a, PAIRS.text_b)]))
    assert not np.allclose(got, ours, atol=1e-4)
    singles = list(PAIRS.text_a)
    np.testing.assert_allclose(as_array(pipe(singles)), clf.predict_proba(singles), atol=1e-4)


def test_the_default_card_has_no_pair_note_and_old_folders_read_as_tokenizer(tmp_path):
    clf = PetClassifier(_base(tmp_path, "bert"), "cls-ft", options=OPTIONS).fit(PAIRS, Y)
    out = clf.save(tmp_path / "clf")
    assert "not trained on" not in (out / "README.md").read_text()
    meta = json.loads((out / "model" / "classifier.json").read_text())
    assert meta["pair_format"] == "tokenizer"
    del meta["pair_format"]  # a classifier saved before the option existed
    (tmp_path / "old").mkdir()
    clf.fitted_.predictor.clf.save(tmp_path / "old")
    (tmp_path / "old" / "classifier.json").write_text(json.dumps(meta))
    assert SequenceClassifier.load(tmp_path / "old").pair_format == "tokenizer"


def test_the_option_is_checked_and_reaches_the_cli_and_the_lmbff_file():
    from pet.cli.train import train_parser

    with pytest.raises(ConfigError, match="pair_format.*single_sep"):
        get_method("cls-ft").make_options({"pair_format": "double"})
    parser = train_parser("cls-ft")
    assert "--pair-format" in parser.format_help() and "LM-BFF" in parser.format_help()
    lmbff = yaml.safe_load((REPO / "benchmarks" / "lmbff.yaml").read_text())
    cls_ft = next(m for m in lmbff["methods"] if isinstance(m, dict) and m["name"] == "cls-ft")
    assert cls_ft["options"]["pair_format"] == "single_sep"
