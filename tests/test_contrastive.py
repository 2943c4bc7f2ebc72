"""Supervised contrastive prompt fine-tuning (Jian et al. 2022): the SupCon loss, the second
view, bit-identity when off, and an end-to-end fit that saves and loads (tiny random models)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import tiny_mlm

from pet.errors import ConfigError
from pet.estimator.classifier import PetClassifier
from pet.examples import Example
from pet.methods.base import FitSetup
from pet.methods.prompt_ft import PromptFTOptions, fit_prompt_ft
from pet.models.prompt_model import PromptModel
from pet.prompts.spec import PVP, Pattern, Verbalizer
from pet.training.contrastive import SecondView, supcon_loss, view_pvps
from pet.training.loop import TrainConfig
from pet.training.prompt import train_prompt_model

GOOD_BAD = Verbalizer("good-bad", {"0": ["bad"], "1": ["good"]})
IT_WAS = PVP(Pattern("it-was", "{text_a} It was {mask}."), GOOD_BAD)
JUST = PVP(Pattern("just", "Just {mask}! {text_a}"), GOOD_BAD)
SOFT = PVP(Pattern("soft", "{text_a} {soft:2} {mask}."), GOOD_BAD)
LABELS = ["0", "1"]
TEXTS = ["good", "bad", "good good", "bad bad", "very good", "very bad", "good fun", "bad day"]
Y = ["1", "0", "1", "0", "1", "0", "1", "0"]
TRAIN = [Example({"text_a": t}, y, f"t{i}") for i, (t, y) in enumerate(zip(TEXTS, Y))]
CFG = dict(steps=3, lr=1e-2, batch_size=4, max_length=32, weight_decay=0.0)

pytestmark = pytest.mark.usefixtures("one_thread")


def fresh(dropout: float = 0.1) -> PromptModel:
    """A tiny random BERT; ``dropout=0`` makes a training step's loss a pure function of the weights."""
    import transformers as tf

    m, tok = tiny_mlm("bert")
    if dropout != 0.1:
        cfg = m.config
        cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = dropout
        torch.manual_seed(0)
        m = tf.BertForMaskedLM(cfg).eval()
    return PromptModel(m, tok, device="cpu")


def weights(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def naive_supcon(z: np.ndarray, y: list, tau: float) -> float:
    """Khosla et al. 2020 eq. 2, one anchor and one pair at a time (float64)."""
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    total = 0.0
    for i in range(len(z)):
        denom = sum(math.exp(z[i] @ z[a] / tau) for a in range(len(z)) if a != i)
        pos = [p for p in range(len(z)) if p != i and y[p] == y[i]]
        total += -sum(math.log(math.exp(z[i] @ z[p] / tau) / denom) for p in pos) / len(pos)
    return total / len(z)


# ----------------------------------------------------------------------------- the loss


@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_supcon_equals_naive_loop(tau):
    g = torch.Generator().manual_seed(0)
    views = torch.randn(2, 6, 5, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0, 1, 0])
    got = supcon_loss(views, labels, tau).item()
    want = naive_supcon(torch.cat([views[0], views[1]]).numpy(), labels.repeat(2).tolist(), tau)
    assert abs(got - want) < 1e-6, (got, want)


def test_supcon_gradients_are_finite_and_pull_positives_together():
    views = torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(1), requires_grad=True)
    labels = torch.tensor([0, 1, 0, 1])
    loss = supcon_loss(views, labels, 0.07)
    loss.backward()
    assert torch.isfinite(views.grad).all() and views.grad.abs().sum() > 0
    # identical views, one point per class: the minimum is far below a random layout's loss
    pair = torch.tensor([[1.0, 0.0], [-1.0, 0.0]]).repeat(2, 1).reshape(2, 2, 2)
    assert supcon_loss(pair, torch.tensor([0, 1]), 0.07).item() < 1e-6 < loss.item()


def test_supcon_equals_setfits_implementation():
    """The authors' SupConLoss (HobbitLong/SupContrast), shipped in setfit, on the same features."""
    from setfit.losses import SupConLoss

    views = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 0, 2])
    flat = torch.cat([views[0], views[1]])  # setfit's loss: one view per row, labels tiled
    ref = SupConLoss(model=lambda f: {"sentence_embedding": f}, temperature=0.1, base_temperature=0.1)([flat], labels.repeat(2))
    assert abs(supcon_loss(views, labels, 0.1).item() - ref.item()) < 1e-9


# ----------------------------------------------------------------------------- off = unchanged


def test_weight_zero_trains_bit_identically():
    base = fresh()
    train_prompt_model(base, IT_WAS, TRAIN, TrainConfig(**CFG), LABELS, progress=False)
    off = fresh()
    log = train_prompt_model(off, IT_WAS, TRAIN, TrainConfig(**CFG), LABELS, progress=False, second_view=SecondView([JUST], weight=0.0))
    assert all(torch.equal(p, weights(base)[n]) for n, p in weights(off).items())
    assert "supcon" not in log.entries[0]
    on = fresh()
    train_prompt_model(on, IT_WAS, TRAIN, TrainConfig(**CFG), LABELS, progress=False, second_view=SecondView([JUST], weight=1.0))
    assert any(not torch.equal(p, weights(base)[n]) for n, p in weights(on).items())


def test_prompt_ft_default_options_are_the_old_prompt_ft(tiny_bert_dir):
    """contrastive_weight 0 (the default) through the method: identical models and predictions."""
    setup = FitSetup(model=tiny_bert_dir, labels=LABELS, pvps=[IT_WAS, JUST], seed=3, max_length=32)
    a = fit_prompt_ft(TRAIN, [], PromptFTOptions.from_dict({**CFG, "pvp": ["first"]}), setup)
    b = fit_prompt_ft(TRAIN, [], PromptFTOptions.from_dict({**CFG, "pvp": ["first"], "contrastive_temperature": 0.5}), setup)
    assert [s.key for s in a.stages] == ["pvp[it-was:good-bad]"] and a.final == "pvp[it-was:good-bad]"
    assert np.array_equal(a.predictor.predict_log_proba(TRAIN), b.predictor.predict_log_proba(TRAIN))


# ----------------------------------------------------------------------------- the loss value


def naive_prompt_losses(model: PromptModel, vocab_ids: list[int]) -> tuple[float, float]:
    """CE over the label words and SupCon of (it-was, just) views, each example alone through the
    full masked LM (vocabulary logits and hidden states at every position)."""
    tok = model.tokenizer
    ce, rows = 0.0, {IT_WAS.pattern.id: [], JUST.pattern.id: []}
    with torch.no_grad():
        for e in TRAIN:
            for pvp, text in ((IT_WAS, f"{e.fields['text_a']} It was {tok.mask_token}."), (JUST, f"Just {tok.mask_token}! {e.fields['text_a']}")):
                ids = tok(text, return_tensors="pt")["input_ids"]
                out = model.mlm(input_ids=ids, output_hidden_states=True)
                at = int((ids[0] == tok.mask_token_id).nonzero()[0, 0])
                rows[pvp.pattern.id].append(out.hidden_states[-1][0, at].double().numpy())
                if pvp is IT_WAS:
                    lp = torch.log_softmax(out.logits[0, at].double(), -1)[vocab_ids]
                    ce -= float(torch.log_softmax(lp, -1)[int(e.label)])
    z = np.concatenate([np.stack(rows["it-was"]), np.stack(rows["just"])])
    return ce / len(TRAIN), naive_supcon(z, [e.label for e in TRAIN] * 2, 0.07)


def test_logged_loss_equals_naive_computation():
    """Step 1's logged ce, supcon and total (dropout off: the untrained weights' loss) equal the
    one-example-at-a-time computation; the batch is the whole (permuted) training set."""
    model = fresh(dropout=0.0)
    tok = model.tokenizer
    vocab_ids = [tok.convert_tokens_to_ids(w) for w in ("bad", "good")]
    ce, sc = naive_prompt_losses(model, vocab_ids)
    cfg = TrainConfig(steps=1, lr=1e-3, batch_size=len(TRAIN), max_length=32)
    log = train_prompt_model(model, IT_WAS, TRAIN, cfg, LABELS, progress=False, second_view=SecondView([JUST], weight=0.5))
    step = log.entries[0]
    assert abs(step["ce"] - ce) < 2e-6 and abs(step["supcon"] - sc) < 2e-6, (step, ce, sc)
    assert abs(step["loss"] - (ce + 0.5 * sc)) < 3e-6


# ----------------------------------------------------------------------------- views and errors


def test_view_pvps_take_the_other_patterns_with_the_trained_verbalizer():
    other = PVP(JUST.pattern, Verbalizer("great-terrible", {"0": ["terrible"], "1": ["great"]}))
    views = view_pvps(IT_WAS, [IT_WAS, other, PVP(IT_WAS.pattern, other.verbalizer)])
    assert [v.id for v in views] == ["just:good-bad"]
    assert [v.id for v in view_pvps(IT_WAS, [IT_WAS, JUST], ["it-was"])] == ["it-was:good-bad"]  # named: may be the same template
    with pytest.raises(ConfigError, match="no pattern other than 'it-was'; fix: run with more PVPs"):
        view_pvps(IT_WAS, [IT_WAS])
    with pytest.raises(ConfigError, match="contrastive_views='nope': not one of this run's PVPs.*fix"):
        view_pvps(IT_WAS, [IT_WAS, JUST], ["nope"])
    with pytest.raises(ConfigError, match="pattern 'soft' has soft tokens; fix"):
        view_pvps(IT_WAS, [IT_WAS, SOFT])


def test_contrastive_needs_class_labels_and_matching_view_examples():
    with pytest.raises(ConfigError, match="needs class labels.*fix: set contrastive_weight 0"):
        train_prompt_model(fresh(), IT_WAS, TRAIN, TrainConfig(steps=1), LABELS, soft_targets=np.full((8, 2), 0.5), progress=False,
                           second_view=SecondView([JUST], weight=1.0))
    with pytest.raises(ConfigError, match="second view: 7 examples do not match the 8 training examples.*fix"):
        train_prompt_model(fresh(), IT_WAS, TRAIN, TrainConfig(steps=1), LABELS, progress=False,
                           second_view=SecondView([JUST], weight=1.0, examples=TRAIN[:7]))


# ----------------------------------------------------------------------------- end to end


def test_prompt_ft_with_contrastive_term_fits_saves_and_loads(tiny_bert_dir, tmp_path):
    options = {**CFG, "pvp": ["first"], "contrastive_weight": 1.0}
    clf = PetClassifier(tiny_bert_dir, "prompt-ft", pvps=[IT_WAS, JUST], options=options).fit(TEXTS, Y)
    p1 = clf.predict_proba(TEXTS)
    out = clf.save(tmp_path / "clf")
    lines = [json.loads(x) for x in (out / "training_log.jsonl").open()]
    assert len(lines) == 3 and all("supcon" in x and x["supcon"] > 0 for x in lines), lines
    loaded = PetClassifier.load(out)
    assert np.array_equal(p1, loaded.predict_proba(TEXTS))
    assert loaded.get_params()["options"]["contrastive_weight"] == 1.0


def test_demonstrations_give_the_second_view_another_demonstration_set(tiny_bert_dir):
    seen = {}

    def spy(*args, **kw):
        seen["view"], seen["redraw"] = kw["second_view"], kw["redraw"]
        return train_prompt_model(*args, **kw)

    from pet.methods import prompt_ft

    setup = FitSetup(model=tiny_bert_dir, labels=LABELS, pvps=[IT_WAS, JUST], seed=3, max_length=32)
    options = PromptFTOptions.from_dict({**CFG, "steps": 1, "pvp": ["first"], "contrastive_weight": 1.0, "demonstrations": True})
    mp = pytest.MonkeyPatch()
    mp.setattr(prompt_ft, "train_prompt_model", spy)
    try:
        fit_prompt_ft(TRAIN, [], options, setup)
    finally:
        mp.undo()
    view = seen["view"]
    assert [v.pattern.id for v in view.pvps] == ["just"] and view.pvps[0].pattern.template != JUST.pattern.template
    # the second view's demonstration set is drawn anew for every draw (as the paper's code loads it),
    # and differs from the first view's set of the same draw
    takes = [[view.redraw(i, d) for d in range(6)] for i in range(len(TRAIN))]
    assert all(t.label == y for row, y in zip(takes, Y) for t in row)
    demos = lambda e: tuple(v for k, v in sorted(e.fields.items()) if k.startswith("demo"))  # noqa: E731
    assert all(len({demos(t) for t in row}) > 1 for row in takes)
    first = seen["redraw"]
    assert any(demos(first(i, d)) != demos(view.redraw(i, d)) for i in range(len(TRAIN)) for d in range(3))


def test_a_redrawn_second_view_is_drawn_with_the_same_draw_numbers_as_the_first():
    """``SecondView.redraw(i, d)`` renders the second view of example i for its d-th draw: called
    for exactly the (example, draw) pairs the first view's ``redraw`` gets; returning the same
    examples as fixed ``examples`` trains identically; a view with another label is an error."""
    main_calls, view_calls = [], []

    def main(i, d):
        main_calls.append((i, d))
        return TRAIN[i]

    def view(i, d):
        view_calls.append((i, d))
        return TRAIN[i]

    cfg = TrainConfig.from_dict({**CFG, "steps": 4, "batch_size": 3, "seed": 2})
    a = fresh()
    train_prompt_model(a, IT_WAS, TRAIN, cfg, LABELS, progress=False, redraw=main, second_view=SecondView([JUST], 1.0, redraw=view))
    assert view_calls == main_calls and len(main_calls) == 12 and max(d for _, d in main_calls) >= 1
    b = fresh()
    train_prompt_model(b, IT_WAS, TRAIN, cfg, LABELS, progress=False, second_view=SecondView([JUST], 1.0))
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, atol=0, rtol=0)
    with pytest.raises(Exception, match=r"second_view\.redraw\(.*label.*fix:"):
        train_prompt_model(fresh(), IT_WAS, TRAIN, cfg, LABELS, progress=False,
                           second_view=SecondView([JUST], 1.0, redraw=lambda i, d: Example(TRAIN[i].fields, "x")))
