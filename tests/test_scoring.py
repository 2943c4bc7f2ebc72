"""Fast scoring must equal the naive full-vocabulary computation (tolerance 1e-5)."""

import numpy as np
import pytest
import torch

from pet.prompts.encoding import PVPEncoder
from pet.errors import SpecError
from pet.examples import Example
from pet.models.prompt_model import PromptModel, split_mlm
from pet.models.scoring import calibrate, ensemble
from pet.prompts.spec import PVP, Pattern, Verbalizer

TOL = 1e-5


def naive_label_log_probs(mlm, tok, examples, pvp):
    """Reference: full logits at every position, log-softmax, pick label-word ids at the masks."""
    enc = PVPEncoder(pvp, tok, max_length=128)
    vt = enc.verbalizer_tokens
    out = []
    for e in enc.encode(examples):
        with torch.no_grad():
            logits = mlm(input_ids=torch.tensor([e.input_ids])).logits[0]
        lp = torch.log_softmax(logits.double(), -1)
        label_scores = []
        for li in range(len(vt.labels)):
            word_probs = []
            for w in range(len(vt.words)):
                if vt.word_label[w] != li:
                    continue
                n = int(vt.lengths[w])
                s = sum(lp[e.mask_start + j, vt.token_ids[w, j]] for j in range(n)) / n
                word_probs.append(torch.exp(s))
            label_scores.append(torch.log(torch.stack(word_probs).mean()))
        out.append(torch.log_softmax(torch.stack(label_scores), 0).numpy())
    return np.stack(out)


PVPS = [
    PVP(Pattern("it-was", "{text_a} It was {mask}."), Verbalizer("gt", {"0": ["terrible"], "1": ["great"]})),
    # several words per label, some of several sub-tokens: masks = longest word
    PVP(
        Pattern("just", "Just {mask}! {text_a|lower_first}"),
        Verbalizer("multi", {"0": ["bad", "unwatchable", "awful"], "1": ["good", "unforgettable"]}),
    ),
]


@pytest.mark.parametrize("pvp", PVPS, ids=lambda p: p.id)
def test_fast_equals_naive(any_mlm, sentiment_examples, pvp):
    family, mlm, tok = any_mlm
    model = PromptModel(mlm, tok, device="cpu")
    assert model.head is not None, f"{family}: MLM head not found, fast path not exercised"
    fast = model.predict_log_proba(sentiment_examples, pvp, batch_size=3, max_length=128)
    ref = naive_label_log_probs(mlm, tok, sentiment_examples, pvp)
    np.testing.assert_allclose(fast, ref, atol=TOL, rtol=0)


def test_multi_token_words_get_enough_masks(bert, roberta):
    pvp = PVPS[1]
    for mlm, tok in (bert, roberta):
        enc = PVPEncoder(pvp, tok)
        longest = max(len(tok(" " + w, add_special_tokens=False)["input_ids"]) for ws in pvp.verbalizer.labels.values() for w in ws)
        assert longest > 1
        assert enc.verbalizer_tokens.n_masks == longest
        e = enc.encode([Example({"text_a": "Fine."})])[0]
        assert e.input_ids[e.mask_start : e.mask_start + longest] == [tok.mask_token_id] * longest


def test_batch_size_and_order_do_not_change_scores(bert, sentiment_examples):
    model = PromptModel(*bert, device="cpu")
    a = model.predict_log_proba(sentiment_examples, PVPS[0], batch_size=1)
    b = model.predict_log_proba(sentiment_examples, PVPS[0], batch_size=8)
    rev = model.predict_log_proba(sentiment_examples[::-1], PVPS[0], batch_size=3)[::-1]
    np.testing.assert_allclose(a, b, atol=TOL)
    np.testing.assert_allclose(a, rev, atol=TOL)


def test_fallback_path_without_known_head_is_exact(bert, sentiment_examples):
    model = PromptModel(*bert, device="cpu")
    fast = model.predict_log_proba(sentiment_examples, PVPS[1])
    model.encoder, model.head = model.mlm, None  # what an unknown architecture gets
    slow = model.predict_log_proba(sentiment_examples, PVPS[1])
    np.testing.assert_allclose(fast, slow, atol=TOL)


def test_split_mlm_finds_heads(any_mlm):
    family, mlm, _ = any_mlm
    enc, head = split_mlm(mlm)
    assert enc is not mlm and head is not None


def test_label_order_follows_labels_argument(bert, sentiment_examples):
    model = PromptModel(*bert, device="cpu")
    a = model.predict_log_proba(sentiment_examples, PVPS[0], labels=["0", "1"])
    b = model.predict_log_proba(sentiment_examples, PVPS[0], labels=["1", "0"])
    np.testing.assert_allclose(a, b[:, ::-1], atol=TOL)


def test_rows_are_distributions(bert, sentiment_examples):
    lp = PromptModel(*bert, device="cpu").predict_log_proba(sentiment_examples, PVPS[1])
    np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, atol=1e-6)


def test_ensemble_of_identical_equals_member_and_calibration():
    rng = np.random.default_rng(0)
    lp = np.log(rng.dirichlet([1, 1, 1], size=5))
    np.testing.assert_allclose(ensemble([lp, lp, lp]), lp, atol=1e-12)
    np.testing.assert_allclose(ensemble([lp, lp], weights=[0.2, 0.8]), lp, atol=1e-12)
    prior = np.log(np.array([0.5, 0.25, 0.25]))
    cal = calibrate(lp, prior)
    expected = np.exp(lp) / np.exp(prior)
    np.testing.assert_allclose(np.exp(cal), expected / expected.sum(1, keepdims=True), atol=1e-12)


def test_content_free_prior_is_distribution(bert):
    model = PromptModel(*bert, device="cpu")
    prior = model.content_free_log_prior(PVPS[0], ["text_a"])
    assert prior.shape == (2,) and abs(np.exp(prior).sum() - 1) < 1e-6


def test_unknown_label_word_is_an_error(bert):
    # a word with a character outside the WordPiece vocabulary maps to [UNK]
    pvp = PVP(Pattern("p", "{text_a} {mask}"), Verbalizer("v", {"0": ["\u2603\u2604"], "1": ["good"]}))
    with pytest.raises(SpecError, match=r"labels.0 word .* tokenises to the unknown token"):
        PVPEncoder(pvp, bert[1])


def test_token_type_ids_reach_the_model(bert, roberta):
    """A {segment} template gives BERT token types 0/1; scoring passes them to the model
    (equal to the naive full forward with those types, different from all-zero types)."""
    mlm, tok = bert
    model = PromptModel(mlm, tok, device="cpu")
    assert model.takes_token_types
    pvp = PVP(Pattern("seg", " Just {mask} ! {segment} {text_a}"), Verbalizer("gt", {"0": ["terrible"], "1": ["great"]}))
    exs = [Example({"text_a": "a fine film with a dull end"}), Example({"text_a": "bad"})]
    fast = model.predict_log_proba(exs, pvp)
    enc = PVPEncoder(pvp, tok)
    vt = enc.verbalizer_tokens
    ref, zero = [], []
    for e in enc.encode(exs):
        assert 1 in e.token_type_ids
        ids = torch.tensor([e.input_ids])
        for types, out in ((torch.tensor([e.token_type_ids]), ref), (torch.zeros_like(ids), zero)):
            with torch.no_grad():
                lp = torch.log_softmax(mlm(input_ids=ids, token_type_ids=types).logits[0, e.mask_start].double(), -1)
            out.append(torch.log_softmax(lp[vt.token_ids[:, 0]], 0).numpy())
    np.testing.assert_allclose(fast, np.stack(ref), atol=TOL, rtol=0)
    assert np.abs(fast - np.stack(zero)).max() > 1e-4  # the types made a difference

    rmlm, rtok = roberta  # the RoBERTa tokenizer produces no token types: nothing is passed
    rmodel = PromptModel(rmlm, rtok, device="cpu")
    assert PVPEncoder(pvp, rtok).encode(exs)[0].token_type_ids is None
    assert np.isfinite(rmodel.predict_log_proba(exs, pvp)).all()


@pytest.mark.parametrize("family", ["bert", "roberta", "albert", "distilbert"])
def test_mlm_loss_on_masked_rows_equals_the_models_own_loss(family, sentiment_examples):
    """The auxiliary MLM loss runs the vocabulary projection on the masked positions only; its
    value and every parameter's gradient equal the model's own ``labels=`` loss over all
    positions (HF's CrossEntropyLoss, mean over labels != -100)."""
    from conftest import tiny_mlm
    from pet.training.losses import mask_tokens, special_mask
    from pet.prompts.plain import pad_ids, tokenize_plain

    mlm, tok = tiny_mlm(family, seed=3)
    model = PromptModel(mlm, tok, device="cpu")
    ids, att = pad_ids(tokenize_plain(tok, sentiment_examples, 32), tok.pad_token_id)
    inputs, labels = mask_tokens(ids, special_mask(tok, ids, att), tok, 0.15, torch.Generator().manual_seed(0))
    assert 0 < int((labels != -100).sum()) < int(att.sum())  # some positions, not all

    def loss_and_grads(fn):
        model.zero_grad()
        loss = fn()
        loss.backward()
        return loss.item(), {n: p.grad.clone() for n, p in model.mlm.named_parameters() if p.grad is not None}

    fast, g_fast = loss_and_grads(lambda: model.mlm_loss(inputs, att, labels))
    naive, g_naive = loss_and_grads(lambda: model.mlm(input_ids=inputs, attention_mask=att, labels=labels).loss)
    assert fast == pytest.approx(naive, abs=TOL)
    assert g_fast.keys() == g_naive.keys() and len(g_fast) > 10
    for name in g_naive:
        torch.testing.assert_close(g_fast[name], g_naive[name], atol=TOL, rtol=1e-4, msg=name)
    model.encoder, model.head = model.mlm, None  # unknown layout: the model's own loss
    assert model.mlm_loss(inputs, att, labels).item() == pytest.approx(naive, abs=TOL)
