"""Soft prompts: prompt tuning, P-tuning, deep prompts, save/load, the comparison runner."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from pet.encoding import collate
from pet.errors import ConfigError, ModelError
from pet.examples import Example
from pet.model import PromptModel
from pet.soft import (
    DeepPrompt,
    SoftConfig,
    attach_soft_prompt,
    encoder_layers,
    insert_soft,
    sample_vocab_ids,
    soft_before_mask,
    with_soft_prefix,
)
from pet.spec import PVP, Pattern, Verbalizer

from conftest import _tokenizer, tiny_mlm

VERB = Verbalizer("good-bad", {"0": ["bad"], "1": ["good"]})
LABELS = ["0", "1"]


def pvp(template: str, pid: str = "p") -> PVP:
    return PVP(Pattern(pid, template), VERB)


def fresh(family: str = "bert", seed: int = 0) -> PromptModel:
    m, t = tiny_mlm(family, seed)
    return PromptModel(m, t, name=f"tiny-{family}", device="cpu")


def tiny_mpnet(layers: int = 3):
    import transformers as tf

    tok = _tokenizer("roberta-bpe")
    torch.manual_seed(0)
    cfg = tf.MPNetConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=514, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )
    m = tf.MPNetForMaskedLM(cfg).eval()
    return PromptModel(m, tok, name="tiny-mpnet", device="cpu")


def deep_model(family: str) -> PromptModel:
    """A 3-layer tiny model, so layers 1 and 2 are hooked."""
    import transformers as tf

    if family == "mpnet":
        return tiny_mpnet(3)
    tok = _tokenizer("bert-wordpiece" if family == "bert" else "roberta-bpe")
    torch.manual_seed(0)
    common = dict(vocab_size=len(tok), hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64, pad_token_id=tok.pad_token_id)
    if family == "bert":
        m = tf.BertForMaskedLM(tf.BertConfig(max_position_embeddings=512, **common))
    else:
        m = tf.RobertaForMaskedLM(tf.RobertaConfig(max_position_embeddings=514, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **common))
    return PromptModel(m.eval(), tok, name=f"tiny3-{family}", device="cpu")


def lm_checksum(model: PromptModel) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.mlm.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def batch_for(model, p, examples, max_length=64):
    enc = model.encoder_for(p, max_length, LABELS)
    return enc, collate(enc.encode(examples), model.tokenizer.pad_token_id or 0)


# ----------------------------------------------------------------------------- config & templates


def test_config_roundtrip_and_errors():
    c = SoftConfig(method="p-tuning", encoder="mlp", hidden_size=16, seed=3)
    assert SoftConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ConfigError, match="unknown key"):
        SoftConfig.from_dict({"method": "deep", "layers": 3})
    with pytest.raises(ConfigError, match="fix"):
        SoftConfig(method="prefix")
    with pytest.raises(ConfigError):
        SoftConfig(init="zeros")


def test_template_helpers():
    hard = pvp("{text_a} It was {mask}.")
    assert soft_before_mask(hard, 4).pattern.template == "{text_a} It was {soft:4} {mask}."
    assert with_soft_prefix(hard, 3).pattern.template == "{soft:3} {text_a} It was {mask}."
    p = pvp('{text_a|lower_first} {{x}} {soft:"It was"} {sep} {mask}!')
    from pet.soft import render_template

    assert render_template(p.pattern.segments) == p.pattern.template


def test_template_without_soft_tokens_errors_clearly(bert):
    model = fresh()
    enc = model.encoder_for(pvp("{text_a} It was {mask}."), 64, LABELS)
    for method in ("prompt-tuning", "p-tuning", "deep"):
        with pytest.raises(ConfigError, match=r"no soft tokens.*fix: add \{soft:N\}"):
            attach_soft_prompt(model, enc, {"method": method})


# ----------------------------------------------------------------------------- insertion & init


def test_vectorised_insertion_equals_reference_loop():
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(3, 10, 5, generator=g)
    pos = torch.tensor([[1, 2, 6], [0, 4, 5], [7, 8, 9]])
    vec = torch.randn(3, 5, generator=g, requires_grad=True)
    got = insert_soft(emb, pos, vec)
    ref = emb.clone()
    for b in range(3):
        for s in range(3):
            ref[b, pos[b, s]] = vec[s]
    assert torch.equal(got, ref)
    got.sum().backward()
    assert torch.equal(vec.grad, torch.full_like(vec, 3.0))  # each vector used once per example


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_init_words_equal_embeddings_and_score_like_hard_prompt(family, sentiment_examples):
    model = fresh(family)
    hard = pvp("{text_a} It was {mask}.")
    soft = pvp('{text_a} {soft:"It was"} {mask}.', "soft")
    want = model.predict_log_proba(sentiment_examples, hard, labels=LABELS)
    enc = model.encoder_for(soft, 256, LABELS)
    module = attach_soft_prompt(model, enc, {"method": "prompt-tuning"})
    ids = model.tokenizer(" It was", add_special_tokens=False)["input_ids"]
    emb = model.mlm.get_input_embeddings().weight
    assert module.embeddings.shape == (len(ids), emb.shape[1])
    assert torch.equal(module.embeddings.detach(), emb[ids].detach())
    got = model.predict_log_proba(sentiment_examples, soft, labels=LABELS)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_vocab_sample_is_seeded_and_not_first_rows(bert):
    _, tok = bert
    a = sample_vocab_ids(tok, 8, seed=1)
    assert a == sample_vocab_ids(tok, 8, seed=1)
    assert a != sample_vocab_ids(tok, 8, seed=2)
    assert a != list(range(8)) and len(set(a)) == 8
    assert not set(a) & set(tok.all_special_ids)
    assert all(not tok.convert_ids_to_tokens(i).startswith("[unused") for i in a)
    model = fresh()
    enc = model.encoder_for(pvp("{text_a} {soft:4} {mask}."), 64, LABELS)
    m1 = attach_soft_prompt(model, enc, {"seed": 5})
    emb = model.mlm.get_input_embeddings().weight
    assert torch.equal(m1.embeddings.detach(), emb[sample_vocab_ids(tok, 4, 5)].detach())
    assert not torch.equal(m1.embeddings.detach(), emb[:4].detach())
    # init="vocab-sample" ignores init words
    enc2 = model.encoder_for(pvp('{text_a} {soft:"It was"} {mask}.'), 64, LABELS)
    m2 = attach_soft_prompt(model, enc2, {"init": "vocab-sample", "seed": 5})
    assert torch.equal(m2.embeddings.detach(), emb[sample_vocab_ids(tok, 2, 5)].detach())


def test_long_text_keeps_soft_tokens_and_mask(bert):
    model = fresh()
    p = pvp('{text_a} {soft:3} and {soft:"It was"} {mask}.')
    enc = model.encoder_for(p, 24, LABELS)
    ex = Example({"text_a": "word " * 500}, "1", "long")
    (e,) = enc.encode([ex])
    assert len(e.input_ids) == 24
    assert len(e.soft_positions) == enc.n_soft == 3 + len(model.tokenizer(" It was", add_special_tokens=False)["input_ids"])
    assert all(0 < i < 24 for i in e.soft_positions)
    assert e.input_ids[e.mask_start] == model.tokenizer.mask_token_id
    assert max(e.soft_positions) < e.mask_start
    # and the soft prompt runs on it
    attach_soft_prompt(model, enc, {"method": "deep"})
    lp = model.predict_log_proba([ex], p, max_length=24, labels=LABELS)
    assert np.isfinite(lp).all()


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize("method", ["prompt-tuning", "p-tuning", "deep"])
def test_frozen_lm_training_changes_only_prompt_parameters(method, sentiment_examples):
    from pet.training import TrainConfig, train_prompt_model

    model = fresh()
    p = pvp("{text_a} {soft:3} {mask}.")
    module = attach_soft_prompt(model, model.encoder_for(p, 64, LABELS), {"method": method})
    before_lm = lm_checksum(model)
    before_soft = {k: v.clone() for k, v in module.state_dict().items()}
    log = train_prompt_model(model, p, sentiment_examples, TrainConfig(steps=3, lr=1e-2, tune="frozen", max_length=64), LABELS, progress=False)
    assert lm_checksum(model) == before_lm
    assert log.trained_parameters == sum(t.numel() for t in module.parameters())
    changed = [k for k, v in module.state_dict().items() if not torch.equal(v, before_soft[k])]
    assert "embeddings" in changed
    if method == "deep":
        assert "layer_prompts" in changed


@pytest.mark.parametrize("method", ["prompt-tuning", "p-tuning", "deep"])
def test_gradients_reach_soft_embeddings(method, sentiment_examples):
    model = fresh()
    for prm in model.mlm.parameters():
        prm.requires_grad_(False)
    p = pvp("{text_a} {soft:2} {mask}.")
    enc, batch = batch_for(model, p, sentiment_examples)
    module = attach_soft_prompt(model, enc, {"method": method, "encoder": "lstm"})
    scores = model.label_scores(batch, enc.verbalizer_tokens)
    torch.nn.functional.cross_entropy(scores, batch["labels"]).backward()
    assert module.embeddings.grad is not None and module.embeddings.grad.abs().sum() > 0
    if method == "deep":
        assert module.layer_prompts.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- deep prompts


@pytest.mark.parametrize("family", ["bert", "roberta", "mpnet"])
def test_deep_prompts_change_every_layer(family, sentiment_examples):
    model = deep_model(family)
    p = pvp("{text_a} {soft:2} {mask}.")
    enc, batch = batch_for(model, p, sentiment_examples[:3])
    module = attach_soft_prompt(model, enc, {"method": "deep"})
    assert isinstance(module, DeepPrompt)
    layers = encoder_layers(model)
    assert len(layers) == 3 and module.layer_prompts.shape == (2, 2, 32)

    def outputs() -> list[torch.Tensor]:
        got = []
        hs = [l.register_forward_hook(lambda m, a, o: got.append((o[0] if isinstance(o, tuple) else o).detach().clone())) for l in layers]
        try:
            with torch.no_grad():
                model.mask_logits(batch, enc.verbalizer_tokens.n_masks)
        finally:
            for h in hs:
                h.remove()
        return got

    base = outputs()
    assert len(base) == 3
    # layer i's prompt (layer 0: the input prompt) changes layer i's output and none below it
    for i in range(3):
        with torch.no_grad():
            target = module.embeddings if i == 0 else module.layer_prompts[i - 1]
            saved = target.clone()
            target.add_(torch.randn_like(target))
        out = outputs()
        with torch.no_grad():
            target.copy_(saved)
        for j in range(3):
            same = torch.allclose(out[j], base[j])
            assert same == (j < i), f"{family}: prompt of layer {i} vs output of layer {j}"
        # and the mask position (not only the prompt slots) sees it
        rows = torch.arange(batch["input_ids"].shape[0])
        assert not torch.allclose(out[i][rows, batch["mask_start"]], base[i][rows, batch["mask_start"]])
    assert torch.allclose(outputs()[2], base[2])  # restored, and hooks leave no stale state


def test_deep_prompt_hooks_are_inactive_without_prompt_call(sentiment_examples):
    model = deep_model("bert")
    p = pvp("{text_a} {soft:2} {mask}.")
    enc, batch = batch_for(model, p, sentiment_examples[:2])
    before = model.mlm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    attach_soft_prompt(model, enc, {"method": "deep"})
    model.mask_logits(batch, 1)  # uses the prompt …
    after = model.mlm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert torch.allclose(before, after)  # … but a plain forward afterwards does not
    # re-attaching removes the old hooks
    attach_soft_prompt(model, enc, {"method": "prompt-tuning"})
    assert all(len(l._forward_pre_hooks) == 0 for l in encoder_layers(model))


def test_deep_prompts_reject_albert():
    model = fresh("albert")
    enc = model.encoder_for(pvp("{text_a} {soft:2} {mask}."), 64, LABELS)
    with pytest.raises(ModelError, match="fix"):
        attach_soft_prompt(model, enc, {"method": "deep"})


# ----------------------------------------------------------------------------- save / load


def save_and_load(model, p, tmp_path, name="saved"):
    """Save a soft-prompt model as a one-member PetClassifier folder (the one save format) and load it back."""
    from pet.classifier import PetClassifier, PromptEnsemble

    clf = PetClassifier.from_trained(model.name, "soft", LABELS, {"max_length": 64}, PromptEnsemble([(model, p)], LABELS, 64), pvps=[p])
    out = clf.save(tmp_path / name)
    return out, PetClassifier.load(out, device="cpu")


@pytest.mark.parametrize("method,tune", [("prompt-tuning", "frozen"), ("deep", "frozen"), ("p-tuning", "full")])
def test_save_load_identical_scores(method, tune, tmp_path, sentiment_examples):
    from pet.classifier import CONFIG_FILE
    from pet.training import TrainConfig, train_prompt_model

    m, tok = tiny_mlm("bert", seed=3)
    base = tmp_path / "base"
    m.save_pretrained(base)
    tok.save_pretrained(base)
    model = PromptModel.from_pretrained(str(base), device="cpu")
    p = pvp('{text_a} {soft:2} {soft:"It was"} {mask}.')
    attach_soft_prompt(model, model.encoder_for(p, 64, LABELS), {"method": method, "tune": tune, "encoder": "mlp"})
    train_prompt_model(model, p, sentiment_examples, TrainConfig(steps=2, lr=1e-2, tune=tune, max_length=64), LABELS, progress=False)
    want = model.predict_log_proba(sentiment_examples, p, max_length=64, labels=LABELS)
    out, loaded = save_and_load(model, p, tmp_path)
    # only what was trained: the LM only when it was tuned
    assert (out / "models").is_dir() == (tune == "full")
    (mem,) = json.loads((out / CONFIG_FILE).read_text())["predictor"]["members"]
    assert mem["soft_prompt"]["config"]["method"] == method and mem["soft_prompt"]["pvp"] == p.id
    if tune == "frozen":
        assert mem["base_model"]["name"] == str(base) and mem["base_model"]["path"] == str(base.resolve())
        assert mem["soft_prompt"]["parameters"] == sum(t.numel() for t in model.prompt_encoder.parameters())
    with pytest.raises(ConfigError):
        save_and_load(model, p, tmp_path)  # no silent overwrite
    (lm, lp), = loaded.predictor.members
    assert lp.to_dict() == p.to_dict() and type(lm.prompt_encoder) is type(model.prompt_encoder)
    got = loaded.predict_log_proba(sentiment_examples)
    np.testing.assert_array_equal(got, want)


# ----------------------------------------------------------------------------- methods & comparison


def _task(tmp_path, with_soft_pattern: bool):
    from pet.data.registry import task_from_dict

    pats = [{"id": "it-was", "template": "{text_a} It was {mask}."}]
    if with_soft_pattern:
        pats.append({"id": "soft-2", "template": "{text_a} {soft:2} {mask}."})
    (tmp_path / "patterns.json").write_text(json.dumps({"patterns": pats}))
    (tmp_path / "verbalizers.json").write_text(json.dumps({"verbalizers": [VERB.to_dict()]}))
    data = {
        "name": "toy", "folder": "toy", "fields": {"text_a": "text"}, "label": "label", "labels": {"0": "neg", "1": "pos"},
        "splits": {"test": {"file": "test.csv"}}, "metric": "accuracy", "default_pvps": [["it-was", "good-bad"]], "max_length": 64,
        "patterns": "patterns.json", "verbalizers": "verbalizers.json",
    }
    return task_from_dict(data, path=tmp_path / "toy.json")


def test_soft_pvp_selection(tmp_path):
    from pet.methods.base import RunContext
    from pet.methods.soft import soft_pvps, split_soft_options

    hard = pvp("{text_a} It was {mask}.", "it-was")
    ctx = RunContext(task=_task(tmp_path, True), model="x", train=[], test=[], pvps=[hard])
    assert [p.pattern.id for p in soft_pvps(ctx, {})] == ["soft-2"]
    assert soft_pvps(ctx, {"template": "{soft:5} {text_a} {mask}"})[0].pattern.template == "{soft:5} {text_a} {mask}"
    assert soft_pvps(ctx, {"prompt_length": 6})[0].pattern.template == "{text_a} It was {soft:6} {mask}."
    (tmp_path / "plain").mkdir()
    ctx2 = RunContext(task=_task(tmp_path / "plain", False), model="x", train=[], test=[], pvps=[hard])
    assert soft_pvps(ctx2, {})[0].pattern.template == "{text_a} It was {soft:4} {mask}."
    cfg, soft, _ = split_soft_options("prompt-tuning", {"steps": 5, "lr": 0.1}, seed=21, max_length=64)
    assert cfg.tune == "frozen" and cfg.soft_lr == 0.1 and cfg.seed == 21 and soft.seed == 21
    cfg, soft, _ = split_soft_options("p-tuning-ft", {}, seed=13, max_length=64)
    assert cfg.tune == "full" and soft.tune == "full" and soft.method == "p-tuning"
    with pytest.raises(ConfigError, match="unknown option"):
        split_soft_options("deep-prompt", {"depth": 3}, 13, 64)


def test_compare_runner_writes_table_and_chart(tmp_path, sentiment_examples):
    from pet.compare import DEFAULT_METHODS, compare_prompts

    m, tok = tiny_mlm("bert", seed=1)
    base = tmp_path / "tiny"
    m.save_pretrained(base)
    tok.save_pretrained(base)
    task = _task(tmp_path, True)
    out = tmp_path / "cmp"
    res = compare_prompts(
        task, str(base), seeds=[13], steps=2, output=out, train_examples=sentiment_examples, test_examples=sentiment_examples[:4],
        common_options={"eval_batch_size": 4},
    )
    for name in ("rows.csv", "summary.csv", "summary.md", "chart.png", "run.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    assert set(res.summary["method"]) == set(DEFAULT_METHODS) | {"majority class"}
    md = (out / "summary.md").read_text()
    assert "±" in md and "prompt-tuning" in md and "deep-prompt" in md
    rows = res.rows
    pt = rows[rows["method"] == "prompt-tuning"].iloc[0]
    assert pt["trained_parameters"] == 2 * 32  # only the soft vectors
    assert (out / "chart.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob(".cmp.partial*"))
    assert "nan" not in md
    from pet.compare import rerender

    assert (rerender(out).output / "summary.md").read_text() == md
    with pytest.raises(ConfigError, match="exists"):
        compare_prompts(task, str(base), seeds=[13], steps=0, methods=["zero-shot"], output=out, train_examples=sentiment_examples, test_examples=sentiment_examples[:4])


@pytest.mark.parametrize("method", ["deep-prompt", "p-tuning-ft"])
def test_method_saves_and_reloads(method, tmp_path, sentiment_examples):
    from pet.classifier import CONFIG_FILE, PetClassifier
    from pet.methods.base import RunContext, get_method

    m, tok = tiny_mlm("bert", seed=2)
    base = tmp_path / "tiny"
    m.save_pretrained(base)
    tok.save_pretrained(base)
    hard = pvp("{text_a} It was {mask}.", "it-was")
    out = tmp_path / "out"
    ctx = RunContext(task=_task(tmp_path, True), model=str(base), train=sentiment_examples, test=sentiment_examples[:4], pvps=[hard], output_dir=out, progress=False)
    (row,) = get_method(method)(ctx, {"steps": 2})
    assert row.pvp == "soft-2:good-bad" and row.extra["saved_to"] == str(out)
    if method == "deep-prompt":
        assert row.trained_parameters == 2 * 2 * 32
    meta = json.loads((out / CONFIG_FILE).read_text())
    assert meta["method"] == method
    assert (out / "models").is_dir() == (method == "p-tuning-ft")  # frozen LM: soft parameters only
    lp = PetClassifier.load(out).predict_log_proba(sentiment_examples[:4])
    gold = [e.label for e in sentiment_examples[:4]]
    assert float(np.mean([LABELS[i] == g for i, g in zip(lp.argmax(1), gold)])) == pytest.approx(row.score)
    with pytest.raises(ConfigError, match="unknown option"):
        get_method(method)(ctx, {"steps": 1, "save_format": "soft"})


# ----------------------------------------------------------------------------- soft verbalizer


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_soft_verbalizer_starts_as_hard_and_trains(family, sentiment_examples, tmp_path):
    from pet.training import TrainConfig, train_prompt_model

    model = fresh(family)
    p = pvp('{text_a} {soft:"It was"} {mask}.')
    want = model.predict_log_proba(sentiment_examples, pvp("{text_a} It was {mask}."), labels=LABELS)
    module = attach_soft_prompt(model, model.encoder_for(p, 64, LABELS), {"verbalizer": "soft"})
    got = model.predict_log_proba(sentiment_examples, p, max_length=64, labels=LABELS)
    np.testing.assert_allclose(got, want, atol=1e-5)
    before_lm = lm_checksum(model)
    e0 = module.verbalizer.label_embeddings.detach().clone()
    train_prompt_model(model, p, sentiment_examples, TrainConfig(steps=2, lr=1e-2, tune="frozen", max_length=64), LABELS, progress=False)
    assert lm_checksum(model) == before_lm
    assert not torch.equal(module.verbalizer.label_embeddings.detach(), e0)
    # re-attaching a hard-verbalizer prompt removes the override
    attach_soft_prompt(model, model.encoder_for(p, 64, LABELS), {})
    assert "label_scores" not in model.__dict__


def test_soft_verbalizer_save_load(tmp_path, sentiment_examples):
    from pet.training import TrainConfig, train_prompt_model

    m, tok = tiny_mlm("bert", seed=4)
    base = tmp_path / "base"
    m.save_pretrained(base)
    tok.save_pretrained(base)
    model = PromptModel.from_pretrained(str(base), device="cpu")
    p = pvp("{text_a} {soft:2} {mask}.")
    attach_soft_prompt(model, model.encoder_for(p, 64, LABELS), {"verbalizer": "soft"})
    train_prompt_model(model, p, sentiment_examples, TrainConfig(steps=2, lr=1e-2, tune="frozen", max_length=64), LABELS, progress=False)
    want = model.predict_log_proba(sentiment_examples, p, max_length=64, labels=LABELS)
    out, loaded = save_and_load(model, p, tmp_path, "s")
    assert not (out / "models").exists()
    (lm, _), = loaded.predictor.members
    assert "label_scores" in lm.__dict__  # the soft verbalizer is back
    np.testing.assert_array_equal(loaded.predict_log_proba(sentiment_examples), want)
