"""Soft prompts: prompt tuning, P-tuning, deep prompts; the soft-prompt methods and their typed
options; self-contained save/load; the compare-prompts preset of the bench runner."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from pet.prompts.encoding import collate
from pet.errors import ConfigError, ModelError
from pet.examples import Example
from pet.models.prompt_model import PromptModel
from pet.models.soft import (
    DeepPrompt,
    SoftConfig,
    attach_soft_prompt,
    encoder_layers,
    insert_soft,
    sample_vocab_ids,
    soft_before_mask,
    with_soft_prefix,
)
from pet.prompts.spec import PVP, Pattern, Verbalizer

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
    with pytest.raises(ConfigError, match="soft config: unknown option 'layers'"):
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
    from pet.models.soft import render_template

    assert render_template(p.pattern.segments) == p.pattern.template


@pytest.mark.parametrize("family", ["bert-wordpiece", "roberta-bpe"])
def test_soft_pvp_from_a_segment_pattern_keeps_the_pair_boundary(family):
    """Issue 18: prompt-tuning with --pvps pet-plain:yes-no used to save the template without
    its {segment}; the soft PVP keeps it and encodes the pair as tokenizer(a, b) does."""
    from pet.data import load_task, task_pvps
    from pet.methods.soft import PromptTuningOptions, soft_pvps
    from pet.prompts.encoding import PVPEncoder
    from pet.prompts.template import SegmentBreak

    hard = task_pvps(load_task("rte"), ids=["pet-plain:yes-no"])[0]
    soft = soft_pvps([hard], PromptTuningOptions())[0]
    assert soft.pattern.template == " {text_b|rstrip_punctuation} ? {segment} {soft:4} {mask} , {text_a}"
    assert SegmentBreak() in soft.pattern.segments and soft.pattern.truncation == hard.pattern.truncation
    tok = _tokenizer(family)
    a, b = "The cat sat on the mat.", "A cat sat"
    e = PVPEncoder(soft, tok, labels=["entailment", "not_entailment"]).encode([Example({"text_a": a, "text_b": b})])[0]
    ref = tok(" " + b + " ?", " " + tok.mask_token + " , " + a, return_token_type_ids=True)
    first = ref["input_ids"].index(tok.sep_token_id)
    assert e.input_ids[: first + 1] == ref["input_ids"][: first + 1]  # sequence A and the separator(s) after it
    assert e.input_ids[-1] == ref["input_ids"][-1] == tok.sep_token_id
    assert len(e.soft_positions) == 4 and e.soft_positions[0] > first
    assert [t for i, t in enumerate(e.input_ids) if i not in e.soft_positions] == ref["input_ids"]
    if "token_type_ids" in tok.model_input_names:
        n_b = len(e.input_ids) - first - 1
        assert e.token_type_ids == [0] * (first + 1) + [1] * n_b == ref["token_type_ids"][: first + 1] + [1] * n_b


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
    from pet.training.loop import TrainConfig
    from pet.training.prompt import train_prompt_model

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
    labels = torch.where(batch["attention_mask"].bool(), batch["input_ids"], -100)  # the aux MLM loss's path
    own = model.mlm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
    torch.testing.assert_close(model.mlm_loss(batch["input_ids"], batch["attention_mask"], labels), own)
    # re-attaching removes the old hooks
    attach_soft_prompt(model, enc, {"method": "prompt-tuning"})
    assert all(len(l._forward_pre_hooks) == 0 for l in encoder_layers(model))


def test_deep_prompts_reject_albert():
    model = fresh("albert")
    enc = model.encoder_for(pvp("{text_a} {soft:2} {mask}."), 64, LABELS)
    with pytest.raises(ModelError, match="fix"):
        attach_soft_prompt(model, enc, {"method": "deep"})


# ----------------------------------------------------------------------------- save / load

#: the soft-prompt method that trains each SoftConfig.method (with that tune)
METHOD_OF = {("prompt-tuning", "frozen"): "prompt-tuning", ("deep", "frozen"): "deep-prompt", ("p-tuning", "full"): "p-tuning-ft",
             ("p-tuning", "frozen"): "p-tuning"}


def base_model_dir(path, seed: int) -> str:
    """A tiny random BERT saved as a model folder at ``path`` (its own copy, so a test may delete it)."""
    m, tok = tiny_mlm("bert", seed=seed)
    m.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def fitted_of(model: PromptModel, p: PVP, method: str, max_length: int = 64):
    """A one-stage ``Fitted`` around a soft-prompt model trained by hand."""
    from pet.methods import Fitted, Stage, get_method
    from pet.methods.predictors import PromptEnsemble

    stage = Stage("pvp", PromptEnsemble([(model, p)], LABELS, max_length), pvp=p.id)
    options = get_method(method).make_options({"max_length": max_length})
    return Fitted(method, list(LABELS), options, [stage], stage.key, pvps=[p], model=model.name)


def save_and_load(model, p, tmp_path, method, name="saved", delete=None):
    """Save through ``PetClassifier`` (the one save format); with ``delete``, remove that folder
    (the base model) before loading, to show the saved folder needs nothing outside it."""
    from pet.estimator.classifier import PetClassifier

    out = PetClassifier.from_fitted(fitted_of(model, p, method)).save(tmp_path / name)
    if delete is not None:
        shutil.rmtree(delete)
    return out, PetClassifier.load(out, device="cpu")


@pytest.mark.parametrize("method,tune", [("prompt-tuning", "frozen"), ("deep", "frozen"), ("p-tuning", "full")])
def test_save_load_is_self_contained_with_identical_scores(method, tune, tmp_path, sentiment_examples):
    from pet.estimator.classifier import CONFIG_FILE
    from pet.training.loop import TrainConfig
    from pet.training.prompt import train_prompt_model

    base = base_model_dir(tmp_path / "base", seed=3)
    base_sum = lm_checksum(PromptModel.from_pretrained(base, device="cpu"))
    model = PromptModel.from_pretrained(base, device="cpu")
    p = pvp('{text_a} {soft:2} {soft:"It was"} {mask}.')
    attach_soft_prompt(model, model.encoder_for(p, 64, LABELS), {"method": method, "tune": tune, "encoder": "mlp"})
    train_prompt_model(model, p, sentiment_examples, TrainConfig(steps=2, lr=1e-2, tune=tune, max_length=64), LABELS, progress=False)
    want = model.predict_log_proba(sentiment_examples, p, max_length=64, labels=LABELS)
    trained_sum = lm_checksum(model)
    assert (trained_sum == base_sum) == (tune == "frozen")
    # the base model folder is deleted before loading: the saved folder must not need it
    out, loaded = save_and_load(model, p, tmp_path, METHOD_OF[(method, tune)], delete=base)
    meta = json.loads((out / CONFIG_FILE).read_text())
    assert meta["format_version"] == 3 and meta["method"] == METHOD_OF[(method, tune)]
    (mem,) = meta["predictor"]["members"]
    # the LM is always stored (frozen or tuned), beside the soft prompt's own parameters
    assert mem["model"] == "models/0" and (out / "models" / "0" / "model.safetensors").is_file() and "base_model" not in mem
    assert mem["soft_prompt"]["weights"] == "soft_prompts/0.safetensors" and (out / "soft_prompts" / "0.safetensors").is_file()
    assert mem["soft_prompt"]["config"]["method"] == method and mem["soft_prompt"]["config"]["tune"] == tune
    assert mem["soft_prompt"]["pvp"] == p.id
    assert mem["soft_prompt"]["parameters"] == sum(t.numel() for t in model.prompt_encoder.parameters())
    assert (out / "manifest.json").is_file()
    with pytest.raises(ConfigError, match="exists"):
        save_and_load(model, p, tmp_path, METHOD_OF[(method, tune)])  # no silent overwrite
    ((lm, lp),) = loaded.fitted_.predictor.members
    assert lp.to_dict() == p.to_dict() and type(lm.prompt_encoder) is type(model.prompt_encoder)
    # the stored LM is exactly the one the prompt was trained with (the base LM when frozen)
    assert lm_checksum(lm) == trained_sum
    np.testing.assert_array_equal(loaded.predict_log_proba(sentiment_examples), want)


# ----------------------------------------------------------------------------- methods


def test_soft_pvp_selection():
    from pet.methods.soft import PromptTuningOptions, soft_pvps

    hard = pvp("{text_a} It was {mask}.", "it-was")
    soft2 = pvp("{text_a} {soft:2} {mask}.", "soft-2")
    # 1. option template, with the verbalizer of the run's first PVP
    (t,) = soft_pvps([hard, soft2], PromptTuningOptions(template="{soft:5} {text_a} {mask}"))
    assert t.pattern.template == "{soft:5} {text_a} {mask}" and t.pattern.id == "custom-soft" and t.verbalizer.id == VERB.id
    # 2. option prompt_length: {soft:N} before the first PVP's mask
    (t,) = soft_pvps([hard, soft2], PromptTuningOptions(prompt_length=6))
    assert t.pattern.template == "{text_a} It was {soft:6} {mask}."
    # 3. the run's soft PVPs
    assert [q.id for q in soft_pvps([hard, soft2], PromptTuningOptions())] == ["soft-2:good-bad"]
    # 4. otherwise {soft:4} before the first PVP's mask
    (t,) = soft_pvps([hard], PromptTuningOptions())
    assert t.pattern.template == "{text_a} It was {soft:4} {mask}." and t.verbalizer.id == VERB.id


def test_soft_methods_registered_with_their_defaults():
    from pet.methods import get_method
    from pet.methods.soft import DeepPromptOptions, PromptTuningOptions, PTuningFTOptions, PTuningOptions, SoftOptions
    from pet.training.loop import TrainConfig

    want = {  # options class, tune, lr, soft_lr, SoftConfig.method
        "prompt-tuning": (PromptTuningOptions, "frozen", 3e-2, None, "prompt-tuning"),
        "p-tuning": (PTuningOptions, "frozen", 3e-3, None, "p-tuning"),
        "p-tuning-ft": (PTuningFTOptions, "full", TrainConfig().lr, 3e-3, "p-tuning"),
        "deep-prompt": (DeepPromptOptions, "frozen", 1e-2, None, "deep"),
    }
    for name, (cls, tune, lr, soft_lr, soft_method) in want.items():
        m = get_method(name)
        assert m.family == "soft" and m.options is cls and issubclass(cls, SoftOptions)
        o = m.make_options({})
        assert (o.tune, o.lr, o.soft_lr) == (tune, lr, soft_lr), name
        sc = o.soft_config()
        assert (sc.method, sc.tune, sc.seed) == (soft_method, tune, 13)
        assert not m.needs_unlabelled(o) and not m.needs_unlabelled(m.make_options({"mlm_weight": 1.0}))
    assert PromptTuningOptions(seed=5).soft_config().seed == 5
    assert PromptTuningOptions(template="{text_a} {soft:3} {mask}", prompt_length=3).soft_config().prompt_length is None


@pytest.mark.parametrize(
    "method,options,pattern",
    [
        ("deep-prompt", {"depth": 3}, r"deep-prompt options: unknown option 'depth'"),
        ("prompt-tuning", {"prompt_lenght": 4}, r"unknown option 'prompt_lenght'; fix: did you mean 'prompt_length'\?"),
        ("p-tuning", {"encoder": "gru"}, r"encoder='gru': not an allowed value; fix: use one of lstm, mlp"),
        ("prompt-tuning", {"init": "zeros"}, r"init='zeros': not an allowed value"),
        ("prompt-tuning", {"verbalizer": "warp"}, r"verbalizer='warp': not an allowed value; fix: use one of hard, soft"),
        ("prompt-tuning", {"tune": "lora"}, r"tune='lora': not an allowed value; fix: use one of frozen, full"),
        ("prompt-tuning", {"prompt_length": 0}, r"prompt_length=0: out of range"),
        ("p-tuning-ft", {"soft_lr": 0}, r"soft_lr=0.0: out of range"),
        ("deep-prompt", {"save": False}, r"unknown option 'save'"),  # saving is the caller's choice
        ("p-tuning-ft", {"save_format": "soft"}, r"unknown option 'save_format'"),
    ],
)
def test_soft_options_errors(method, options, pattern):
    from pet.methods import get_method

    with pytest.raises(ConfigError, match=pattern):
        get_method(method).make_options(options)


def test_fit_resolves_seed_and_soft_learning_rate(tiny_bert_dir, sentiment_examples):
    """What used to be ``split_soft_options``: the run's seed reaches the training config and
    the soft prompt's initialisation; a frozen LM's ``lr`` is the soft prompt's."""
    from pet.methods import FitSetup, get_method

    hard = pvp("{text_a} It was {mask}.", "it-was")
    setup = FitSetup(model=tiny_bert_dir, labels=list(LABELS), pvps=[hard], seed=21, max_length=64, device="cpu")
    f = get_method("prompt-tuning").fit(sentiment_examples, [], {"steps": 1, "lr": 0.1}, setup)
    (st,) = f.stages
    assert f.final == st.key == "pvp[it-was+soft4:good-bad]" and [q.id for q in f.pvps] == ["it-was+soft4:good-bad"]
    assert st.extra["template"] == "{text_a} It was {soft:4} {mask}." and st.extra["n_soft"] == 4
    cfg = f.logs[st.pvp].config
    assert (cfg["tune"], cfg["lr"], cfg["soft_lr"], cfg["seed"], cfg["max_length"]) == ("frozen", 0.1, 0.1, 21, 64)
    assert st.extra["soft_config"]["seed"] == 21 and st.extra["soft_config"]["method"] == "prompt-tuning"
    assert st.trained_parameters == st.extra["soft_parameters"] == 4 * 32  # only the soft vectors
    f = get_method("p-tuning-ft").fit(sentiment_examples, [], {"steps": 1, "seed": 5, "encoder": "mlp"}, setup)
    (st,) = f.stages
    cfg = f.logs[st.pvp].config
    assert (cfg["tune"], cfg["lr"], cfg["soft_lr"], cfg["seed"]) == ("full", 1e-5, 3e-3, 5)  # a pinned seed wins
    assert (st.extra["soft_config"]["method"], st.extra["soft_config"]["tune"], st.extra["soft_config"]["seed"]) == ("p-tuning", "full", 5)
    assert st.trained_parameters > st.extra["soft_parameters"]  # the LM trains too


def test_hard_methods_drop_soft_pvps_soft_methods_keep_them(tiny_bert_dir, sentiment_examples):
    import dataclasses

    from pet.methods import FitSetup, get_method

    hard, soft2 = pvp("{text_a} It was {mask}.", "it-was"), pvp("{text_a} {soft:2} {mask}.", "soft-2")
    setup = FitSetup(model=tiny_bert_dir, labels=list(LABELS), pvps=[hard, soft2], max_length=64, device="cpu")
    z = get_method("zero-shot").fit([], [], {}, setup)
    assert [s.pvp for s in z.stages] == [hard.id] and [q.id for q in z.pvps] == [hard.id]
    only_soft = dataclasses.replace(setup, pvps=[soft2])
    for name, train in (("zero-shot", []), ("prompt-ft", sentiment_examples)):
        with pytest.raises(ConfigError, match="soft tokens"):
            get_method(name).fit(train, [], {}, only_soft)
    f = get_method("deep-prompt").fit(sentiment_examples, [], {"steps": 1}, setup)
    assert [s.pvp for s in f.stages] == [soft2.id] and [q.id for q in f.pvps] == [soft2.id]


@pytest.mark.parametrize("method, shared", [("prompt-tuning", True), ("p-tuning", True), ("deep-prompt", False), ("p-tuning-ft", False)])
def test_soft_pvps_share_a_frozen_lm(method, shared, tiny_bert_dir, sentiment_examples):
    """Several soft PVPs on a frozen LM load it once (each its own prompt encoder), and each
    member predicts exactly what a run with that PVP alone predicts; deep prompts (hooks on the
    LM's layers) and a tuned LM get one LM per PVP."""
    import dataclasses

    from pet.methods import FitSetup, get_method

    a, b = pvp("{text_a} {soft:2} {mask}.", "soft-2"), pvp("{text_a} It was {soft:3} {mask}.", "soft-3")
    setup = FitSetup(model=tiny_bert_dir, labels=list(LABELS), pvps=[a, b], seed=21, max_length=64, device="cpu")
    opts = {"steps": 2, "lr": 0.05}
    both = get_method(method).fit(sentiment_examples, [], opts, setup)
    (m_a, _), (m_b, _) = both.stages[-1].predictor.members
    assert (m_a.mlm is m_b.mlm) == shared and m_a.prompt_encoder is not m_b.prompt_encoder
    for i, one in enumerate((a, b)):
        alone = get_method(method).fit(sentiment_examples, [], opts, dataclasses.replace(setup, pvps=[one]))
        np.testing.assert_allclose(both.stages[i].predictor.predict_log_proba(sentiment_examples),
                                   alone.stages[0].predictor.predict_log_proba(sentiment_examples), atol=1e-6)


def _toy_task_files(root, with_soft_pattern: bool = True, examples=None):
    """A task JSON with data on disk (``root/data/toy/{train,test}.csv``), patterns and verbalizers."""
    root.mkdir(parents=True, exist_ok=True)
    pats = [{"id": "it-was", "template": "{text_a} It was {mask}."}]
    if with_soft_pattern:
        pats.append({"id": "soft-2", "template": "{text_a} {soft:2} {mask}."})
    (root / "patterns.json").write_text(json.dumps({"patterns": pats}))
    (root / "verbalizers.json").write_text(json.dumps({"verbalizers": [VERB.to_dict()]}))
    if examples is not None:
        (root / "data" / "toy").mkdir(parents=True)
        for name, exs in (("train.csv", examples), ("test.csv", examples[:4])):
            with (root / "data" / "toy" / name).open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["text", "label"])
                w.writerows((e.fields["text_a"], e.label) for e in exs)
    task = root / "toy.json"
    task.write_text(json.dumps({
        "name": "toy", "folder": "toy", "fields": {"text_a": "text"}, "label": "label", "labels": {"0": "neg", "1": "pos"},
        "splits": {"train": {"file": "train.csv"}, "test": {"file": "test.csv"}}, "metric": "accuracy",
        "default_pvps": [["it-was", "good-bad"]], "max_length": 64, "patterns": "patterns.json", "verbalizers": "verbalizers.json",
    }))
    return task


def test_compare_prompts_preset_passes_the_shipped_soft_patterns(tmp_path):
    from pet.bench.presets import COMPARE_METHODS, compare_prompts_experiment

    exp = compare_prompts_experiment(str(_toy_task_files(tmp_path / "a")), shots=2, seeds=[13, 21], steps=5)
    (t,) = exp.tasks
    assert t.pvps == ("it-was:good-bad", "soft-2:good-bad")  # the hard PVP + the task's soft-* patterns
    assert [m.name for m in exp.methods] == list(COMPARE_METHODS) and exp.seeds == (13, 21) and exp.k == (2,)
    assert exp.budgets == {"steps": 5} and exp.unlabelled == 0
    exp = compare_prompts_experiment(str(_toy_task_files(tmp_path / "b", with_soft_pattern=False)), seeds=[13])
    assert exp.tasks[0].pvps == ("it-was:good-bad",)  # soft methods then put {soft:4} before the mask
    with pytest.raises(ConfigError, match="not run"):
        compare_prompts_experiment(str(tmp_path / "a" / "toy.json"), methods=["zero-shot"], method_options={"deep-prompt": {"lr": 0.1}})


def test_compare_prompts_results_store_report_and_resume(tmp_path, sentiment_examples):
    """Every method on the same split and test set; a results store and a report whose
    hard-vs-soft table is what the rows say; a second run computes nothing."""
    from pet.bench.presets import COMPARE_METHODS, compare_prompts_experiment
    from pet.bench.report import build_report
    from pet.bench.runner import run_experiment
    from pet.bench.store import ResultsStore
    from pet.methods import get_method

    base = base_model_dir(tmp_path / "tiny", seed=1)
    task = _toy_task_files(tmp_path / "task", examples=sentiment_examples)
    out = tmp_path / "cmp"
    exp = compare_prompts_experiment(str(task), shots=2, seeds=[13], steps=2, common_options={"eval_batch_size": 4}, results=out)
    said: list[str] = []
    summary = run_experiment(exp, model=base, data_dir=str(tmp_path / "task" / "data"), results=out, progress=False, echo=said.append)
    assert summary.ok and summary.computed == len(COMPARE_METHODS) == 7, said
    rows = ResultsStore(out).rows()
    assert {r["method"] for r in rows} == set(COMPARE_METHODS)
    # identical split, test set and budget for every method
    assert len({r["split"]["checksum"] for r in rows}) == 1 and len({r["test"]["checksum"] for r in rows}) == 1
    assert {r["test"]["n"] for r in rows} == {4} and {r["split"]["n_train"] for r in rows} == {4}
    for r in rows:  # the shared budget goes to every method that trains (zero-shot trains nothing)
        assert (r["options"].get("steps"), r["options"].get("eval_batch_size")) == ((None, None) if r["method"] == "zero-shot" else (2, 4))
    by = {r["method"]: r for r in rows if r["final"]}
    assert by["zero-shot"]["pvp"] == by["prompt-ft"]["pvp"] == "it-was:good-bad"
    for m in ("prompt-tuning", "p-tuning", "p-tuning-ft", "deep-prompt"):
        assert by[m]["pvp"] == "soft-2:good-bad", m
    assert by["prompt-tuning"]["trained_parameters"] == 2 * 32  # only the two soft vectors
    assert by["deep-prompt"]["trained_parameters"] == 2 * 2 * 32  # two soft vectors at each of 2 layers
    assert by["cls-ft"]["stage"] == "final" and by["cls-ft"]["pvp"] is None

    rep = build_report(out)
    files = {p.relative_to(out / "report").as_posix() for p in rep.files}
    assert {"report.md", "headline.csv", "hard_soft.csv", "rows.csv"} <= files
    pngs = [out / "report" / f for f in files if f.startswith("plots/") and f.endswith(".png")]
    assert pngs and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    md = (out / "report" / "report.md").read_text()
    assert "## Hard vs soft prompts" in md and "prompt-tuning" in md and "deep-prompt" in md and "nan" not in md
    # the hard-vs-soft table, recomputed from the rows: the best final score per family
    with (out / "report" / "hard_soft.csv").open() as f:
        (hs,) = list(csv.DictReader(f))
    for fam in ("hard", "soft", "baseline"):
        best = max((r for r in by.values() if get_method(r["method_name"]).family == fam), key=lambda r: r["score"])
        assert float(hs[f"{fam}_mean"]) == pytest.approx(best["score"]) and by[hs[f"{fam}_method"]]["score"] == best["score"]
    assert float(hs["hard_minus_soft"]) == pytest.approx(float(hs["hard_mean"]) - float(hs["soft_mean"]))

    # resumable: the same experiment again computes nothing and leaves the store as it was
    store = (out / "results.jsonl").read_bytes()
    again = run_experiment(exp, model=base, data_dir=str(tmp_path / "task" / "data"), results=out, progress=False, echo=said.append)
    assert again.ok and again.computed == 0 and again.already_done == 7
    assert (out / "results.jsonl").read_bytes() == store


@pytest.mark.parametrize("method", ["deep-prompt", "p-tuning-ft"])
def test_method_fit_evaluate_save_and_reload(method, tmp_path, sentiment_examples):
    from pet.estimator.classifier import CONFIG_FILE, PetClassifier
    from pet.data.registry import load_task
    from pet.data.rundata import RunData
    from pet.evaluation import fit_evaluate

    base = base_model_dir(tmp_path / "tiny", seed=2)
    task = load_task(str(_toy_task_files(tmp_path / "task")))
    hard, soft2 = pvp("{text_a} It was {mask}.", "it-was"), pvp("{text_a} {soft:2} {mask}.", "soft-2")
    run = RunData(task, sentiment_examples, sentiment_examples[:4], [hard, soft2])
    fitted, (row,) = fit_evaluate(method, {"steps": 2}, run, base, device="cpu")
    assert row["pvp"] == "soft-2:good-bad" and row["final"] and row["method"] == method and row["n"] == 4
    if method == "deep-prompt":
        assert row["trained_parameters"] == 2 * 2 * 32
    out = PetClassifier.from_fitted(fitted).save(tmp_path / "out", metrics=[row])
    meta = json.loads((out / CONFIG_FILE).read_text())
    assert meta["method"] == method and meta["final_stage"] == "pvp[soft-2:good-bad]" and meta["pvps"] == ["soft-2:good-bad"]
    assert (out / "models" / "0").is_dir()  # self-contained, whether the LM was tuned or not
    shutil.rmtree(base)
    lp = PetClassifier.load(out).predict_log_proba(sentiment_examples[:4])
    gold = [e.label for e in sentiment_examples[:4]]
    assert float(np.mean([LABELS[i] == g for i, g in zip(lp.argmax(1), gold)])) == pytest.approx(row["score"])


@pytest.mark.parametrize("method", ["prompt-tuning", "deep-prompt"])
def test_pet_classifier_soft_methods_fit_predict_save_load(method, tmp_path, sentiment_examples):
    """The scikit-learn estimator for soft prompts: fit on strings with integer labels, predict,
    save, delete the base model, load, predict the same."""
    from sklearn.base import clone

    from pet.estimator.classifier import PetClassifier

    base = base_model_dir(tmp_path / "tiny", seed=4)
    texts, y = [e.fields["text_a"] for e in sentiment_examples], [int(e.label) for e in sentiment_examples]
    clf = PetClassifier(base, method=method, pvps=[pvp("{text_a} It was {mask}.", "it-was")], options={"steps": 2, "prompt_length": 2},
                        max_length=64, device="cpu")
    assert clone(clf).get_params() == clf.get_params()
    clf.fit(texts, y)
    assert list(clf.classes_) == [0, 1] and clf.fitted_.method == method
    assert clf.fitted_.pvps[0].pattern.template == "{text_a} It was {soft:2} {mask}."
    proba = clf.predict_proba(texts)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    out = clf.save(tmp_path / "clf")
    shutil.rmtree(base)
    loaded = PetClassifier.load(out, device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(texts), proba)
    assert list(loaded.predict(texts)) == list(clf.predict(texts))


# ----------------------------------------------------------------------------- soft verbalizer


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_soft_verbalizer_starts_as_hard_and_trains(family, sentiment_examples, tmp_path):
    from pet.training.loop import TrainConfig
    from pet.training.prompt import train_prompt_model

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
    from pet.training.loop import TrainConfig
    from pet.training.prompt import train_prompt_model

    base = base_model_dir(tmp_path / "base", seed=4)
    model = PromptModel.from_pretrained(base, device="cpu")
    p = pvp("{text_a} {soft:2} {mask}.")
    attach_soft_prompt(model, model.encoder_for(p, 64, LABELS), {"verbalizer": "soft"})
    train_prompt_model(model, p, sentiment_examples, TrainConfig(steps=2, lr=1e-2, tune="frozen", max_length=64), LABELS, progress=False)
    want = model.predict_log_proba(sentiment_examples, p, max_length=64, labels=LABELS)
    out, loaded = save_and_load(model, p, tmp_path, "prompt-tuning", "s", delete=base)
    assert (out / "models" / "0").is_dir() and (out / "soft_prompts" / "0.safetensors").is_file()
    ((lm, _),) = loaded.fitted_.predictor.members
    assert "label_scores" in lm.__dict__  # the soft verbalizer is back
    np.testing.assert_array_equal(loaded.predict_log_proba(sentiment_examples), want)
