"""Shared fixtures: tiny random masked LMs on the real tokenizers in ../shared/tokenizers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
TOKENIZERS = SHARED / "tokenizers"

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


def _tokenizer(name: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(TOKENIZERS / name))
    if tok.mask_token is None:  # the T5 SentencePiece model has no mask: give it one
        tok.add_special_tokens({"mask_token": "[MASK]"})
    return tok


def tiny_mlm(family: str, seed: int = 0):
    """(model, tokenizer) for ``bert`` | ``roberta`` | ``albert`` | ``distilbert``: 2 layers, width 32."""
    import transformers as tf
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    tok = _tokenizer({"bert": "bert-wordpiece", "distilbert": "bert-wordpiece", "roberta": "roberta-bpe", "albert": "sentencepiece"}[family])
    torch.manual_seed(seed)
    common = dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id)
    if family == "bert":
        m = tf.BertForMaskedLM(tf.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=512, **common))
    elif family == "roberta":
        m = tf.RobertaForMaskedLM(tf.RobertaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=514, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **common))
    elif family == "albert":
        m = tf.AlbertForMaskedLM(tf.AlbertConfig(embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=512, **common))
    elif family == "distilbert":
        m = tf.DistilBertForMaskedLM(tf.DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=512, **common))
    else:
        raise ValueError(family)
    m.eval()
    return m, tok


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for training-heavy modules: on a shared, busy CPU this is several
    times faster than two, and results stay bit-identical within a run."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> str:
    """A tiny random BertForMaskedLM + tokenizer saved as a model folder (what --model takes)."""
    d = tmp_path_factory.mktemp("tiny-bert")
    mlm, tok = tiny_mlm("bert")
    mlm.save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


@pytest.fixture(scope="session")
def bert():
    return tiny_mlm("bert")


@pytest.fixture(scope="session")
def roberta():
    return tiny_mlm("roberta")


@pytest.fixture(scope="session", params=["bert", "roberta", "albert", "distilbert"])
def any_mlm(request):
    return request.param, *tiny_mlm(request.param)


@pytest.fixture
def sentiment_examples():
    from pet.examples import Example

    texts = [
        ("a gorgeous, witty, seductive movie.", "1"),
        ("the plot is dull and the acting is wooden.", "0"),
        ("one of the best films of the year!", "1"),
        ("i hated every minute of it", "0"),
        ("an utterly charming and hilarious film that reaches out to everyone", "1"),
        ("bad.", "0"),
        ("it's a lovely film with lovely performances by buy and accorsi.", "1"),
        ("the story is predictable and the jokes fall flat, a tedious mess from start to finish.", "0"),
    ]
    return [Example({"text_a": t}, lab, f"ex{i}") for i, (t, lab) in enumerate(texts)]


@pytest.fixture
def files(tmp_path):
    """Own data: a CSV data file and pattern/verbalizer files, all inputs that must never be overwritten."""
    csv = tmp_path / "reviews.csv"
    csv.write_text("review,stars\nloved it,5\nawful film,1\n")
    pats = tmp_path / "p.json"
    pats.write_text(json.dumps({"patterns": [{"id": "a", "template": "{text_a} It was {mask}."}]}))
    verbs = tmp_path / "v.json"
    verbs.write_text(json.dumps({"verbalizers": [{"id": "v", "labels": {"1": ["bad"], "5": ["good"]}}]}))
    return tmp_path, csv, pats, verbs
