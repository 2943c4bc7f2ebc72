"""A saved sequence classifier (cls-ft, PET's distilled model) is a transformers model: the
``model/`` folder loads in ``AutoModelForSequenceClassification`` and ``pipeline`` with pet's own
head and label names, and gives pet's probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import tiny_mlm
from pet.estimator.classifier import PetClassifier

TEXTS = ["good", "bad", "good good", "bad bad", "very good", "very bad", "good fun", "bad day"]
Y = [1, 0, 1, 0, 1, 0, 1, 0]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_cls_ft_folder_loads_in_the_transformers_pipeline(tmp_path, family):
    from transformers import AutoModelForSequenceClassification, pipeline

    base = tmp_path / "base"
    m, tok = tiny_mlm(family, seed=3)
    m.save_pretrained(base)
    tok.save_pretrained(base)
    clf = PetClassifier(str(base), "cls-ft", task="sst2", options={"steps": 3, "lr": 1e-2, "max_length": 32}).fit(TEXTS, Y)
    out = clf.save(tmp_path / "clf")
    model_dir = out / "model"
    config = json.loads((model_dir / "config.json").read_text())
    assert config["architectures"] == [{"bert": "BertForSequenceClassification", "roberta": "RobertaForSequenceClassification"}[family]]
    assert config["id2label"] == {"0": "negative", "1": "positive"} and config["label2id"] == {"negative": 0, "positive": 1}
    hf = AutoModelForSequenceClassification.from_pretrained(model_dir)  # no newly initialised weights
    assert hf.config.num_labels == 2
    pipe = pipeline("text-classification", model=str(model_dir), top_k=None, device="cpu")
    got = pipe(TEXTS)
    ours = clf.predict_proba(TEXTS)
    as_array = np.array([[next(d["score"] for d in row if d["label"] == name) for name in ("negative", "positive")] for row in got])
    np.testing.assert_allclose(as_array, ours, atol=1e-4)
    assert not np.allclose(ours, 0.5, atol=1e-3)  # the head was trained: a random head would not match
    loaded = PetClassifier.load(out)
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), ours, atol=1e-6)
    assert list(loaded.classes_) == [0, 1]


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_text_pairs_get_the_tokenizers_segment_ids_and_match_the_pipeline(tmp_path, family):
    """A pair task's cls-ft model reads ``tokenizer(a, b)`` exactly, token type ids included
    (BERT: 0 through the first [SEP], 1 after), so the pipeline's pair input gives pet's scores."""
    import pandas as pd
    import torch
    from transformers import pipeline

    base = tmp_path / "base"
    m, tok = tiny_mlm(family, seed=5)
    m.save_pretrained(base)
    tok.save_pretrained(base)
    pairs = pd.DataFrame({"text_a": ["a good day", "bad", "good fun here", "a bad day"], "text_b": ["fine", "awful thing", "yes", "no no"]})
    clf = PetClassifier(str(base), "cls-ft", options={"steps": 3, "lr": 1e-2, "max_length": 32}).fit(pairs, [1, 0, 1, 0])
    seq = clf.fitted_.predictor.clf
    enc = tok(list(pairs.text_a), list(pairs.text_b), padding=True, return_tensors="pt")
    ids, att = enc["input_ids"], enc["attention_mask"]
    if family == "bert":
        assert seq.uses_token_types and torch.equal(seq.token_types(ids, att), enc["token_type_ids"] * att)
        assert enc["token_type_ids"].sum() > 0  # the second text really is segment 1
    else:
        assert not seq.uses_token_types
    ours = clf.predict_proba(pairs)
    pipe = pipeline("text-classification", model=str(clf.save(tmp_path / "clf") / "model"), top_k=None, device="cpu")
    got = pipe([{"text": a, "text_pair": b} for a, b in zip(pairs.text_a, pairs.text_b)])
    as_array = np.array([[next(d["score"] for d in row if d["label"] == name) for name in ("0", "1")] for row in got])
    np.testing.assert_allclose(as_array, ours, atol=1e-4)
