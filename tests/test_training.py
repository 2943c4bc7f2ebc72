"""The training loop, tuning modes, losses and determinism (tiny random models, seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from conftest import tiny_mlm
from pet.errors import ConfigError, DataError
from pet.examples import Example
from pet.models.prompt_model import PromptModel
from pet.prompts.spec import PVP, Pattern, Verbalizer
from pet.training.loop import TrainConfig
from pet.training.prompt import train_prompt_model
from pet.training.losses import distillation_loss, mask_tokens
from pet.models.tuning import apply_tuning, lora_target_modules, trainable_parameter_count

PVP_ = PVP(Pattern("it-was", "{text_a} It was {mask}."), Verbalizer("good-bad", {"0": ["bad"], "1": ["good"]}))
LABELS = ["0", "1"]


def toy_task(n: int = 8) -> list[Example]:
    """A separable task: positive texts say "good", negative ones "bad"."""
    pos = ["good", "good good", "very good", "good fun"]
    neg = ["bad", "bad bad", "very bad", "bad day"]
    out = []
    for i in range(n):
        t, lab = (pos[i // 2 % 4], "1") if i % 2 == 0 else (neg[i // 2 % 4], "0")
        out.append(Example({"text_a": t}, lab, f"t{i}"))
    return out


def fresh(family: str = "bert") -> PromptModel:
    m, tok = tiny_mlm(family)
    return PromptModel(m, tok, device="cpu")


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def changed(model: nn.Module, before: dict[str, torch.Tensor]) -> set[str]:
    return {n for n, p in model.named_parameters() if n in before and not torch.equal(p.detach(), before[n])}


pytestmark = pytest.mark.usefixtures("one_thread")


CFG = dict(steps=3, lr=1e-2, batch_size=4, max_length=32, weight_decay=0.0)


def train3(model, tune, **kw):
    return train_prompt_model(model, PVP_, toy_task(), TrainConfig(tune=tune, **{**CFG, **kw}), LABELS, progress=False)


# ----------------------------------------------------------------------------- config


def test_config_roundtrip_and_errors():
    c = TrainConfig.from_dict({"steps": 10, "lr": 1, "tune": "lora"})
    assert c.lr == 1.0 and isinstance(c.lr, float)
    assert TrainConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ConfigError, match=r"unknown option 'stpes'; fix: did you mean 'steps'\?"):
        TrainConfig.from_dict({"stpes": 3})
    with pytest.raises(ConfigError, match="tune='nope'.*fix: use one of full"):
        TrainConfig.from_dict({"tune": "nope"})
    with pytest.raises(ConfigError, match=r"lr=-1.0: out of range; fix: use a value > 0"):
        TrainConfig(lr=-1.0)
    with pytest.raises(ConfigError, match="batch_size='4': must be a whole number"):
        TrainConfig.from_dict({"batch_size": "4"})
    with pytest.raises(ConfigError, match="batch_size=0: out of range"):
        TrainConfig.from_dict({"batch_size": 0})
    with pytest.raises(ConfigError, match="warmup_ratio=1.0: out of range; fix: use a value < 1"):
        TrainConfig.from_dict({"warmup_ratio": 1})
    assert TrainConfig().seed is None and TrainConfig().resolved(64, 21).seed == 21 and TrainConfig(seed=5).resolved(64, 21).seed == 5


# ----------------------------------------------------------------------------- tuning modes


def test_full_trains_encoder_and_head():
    m = fresh()
    before = snapshot(m)
    log = train3(m, "full")
    assert log.trained_parameters == sum(p.numel() for p in m.mlm.parameters())
    ch = changed(m, before)
    assert any(".encoder.layer." in n for n in ch) and any(n.startswith("mlm.cls.") for n in ch)
    assert "mlm.bert.embeddings.word_embeddings.weight" in ch


def test_bitfit_trains_only_biases():
    m = fresh()
    before = snapshot(m)
    log = train3(m, "bitfit")
    ch = changed(m, before)
    assert ch and all(n.endswith("bias") for n in ch), sorted(ch)
    assert any(".encoder.layer." in n for n in ch)
    assert log.trained_parameters == sum(p.numel() for n, p in m.mlm.named_parameters() if n.endswith("bias"))


def test_head_trains_only_head_and_keeps_tied_embeddings():
    m = fresh()
    before = snapshot(m)
    train3(m, "head")
    ch = changed(m, before)
    assert ch and all(n.startswith("mlm.cls.") for n in ch), sorted(ch)
    assert "mlm.bert.embeddings.word_embeddings.weight" not in ch  # tied decoder stays frozen
    assert "mlm.cls.predictions.transform.dense.weight" in ch


def test_lora_trains_only_adapters():
    m = fresh()
    apply_tuning(m, "lora", r=2)  # inject first so the snapshot has the adapter parameters
    before = snapshot(m)
    log = train3(m, "lora", lora_r=2)
    ch = changed(m, before)
    assert ch and all("lora_" in n for n in ch), sorted(ch)
    assert any("lora_B" in n for n in ch) and any("lora_A" in n for n in ch)
    # 2 layers × (query, value) × (A: r×32 + B: 32×r)
    assert log.trained_parameters == 2 * 2 * (2 * 32 + 32 * 2)


def test_frozen_trains_nothing():
    m = fresh()
    before = snapshot(m)
    log = train3(m, "frozen")
    assert changed(m, before) == set() and log.steps == 0 and log.trained_parameters == 0


class Shift(nn.Module):
    """A minimal soft-prompt hook: adds a learned vector to every input embedding."""

    def __init__(self, dim: int):
        super().__init__()
        self.delta = nn.Parameter(torch.zeros(dim))

    def forward(self, emb, batch):
        return emb + self.delta


@pytest.mark.parametrize("tune", ["frozen", "bitfit"])
def test_prompt_encoder_always_trains(tune):
    m = fresh()
    m.prompt_encoder = Shift(32)
    before = snapshot(m)
    log = train3(m, tune, soft_lr=0.1)
    ch = changed(m, before)
    assert "prompt_encoder.delta" in ch
    if tune == "frozen":
        assert ch == {"prompt_encoder.delta"} and log.trained_parameters == 32


@pytest.mark.parametrize("family", ["bert", "roberta", "albert", "distilbert"])
def test_lora_and_head_find_modules_in_every_family(family):
    m = fresh(family)
    assert len(lora_target_modules(m.encoder)) == 2
    n_head = apply_tuning(m, "head")
    emb = m.mlm.get_input_embeddings().weight
    assert 0 < n_head and not emb.requires_grad
    m2 = fresh(family)
    assert apply_tuning(m2, "lora", r=2) > 0
    assert all(("lora_" in n) == p.requires_grad for n, p in m2.named_parameters())
    assert apply_tuning(m2, "lora", r=2) == trainable_parameter_count(m2)  # idempotent


# ----------------------------------------------------------------------------- learning


def test_loss_decreases_and_task_is_learned():
    m = fresh()
    log = train_prompt_model(m, PVP_, toy_task(), TrainConfig(steps=40, lr=1e-2, max_length=32), LABELS, progress=False)
    losses = [e["loss"] for e in log.entries]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    lp = m.predict_log_proba(toy_task(), PVP_, labels=LABELS)
    assert (lp.argmax(1) == [int(e.label) for e in toy_task()]).mean() == 1.0
    assert {"step", "loss", "lr", "seconds", "ce"} <= set(log.entries[0]) and log.steps == 40
    assert not m.training  # left in eval mode


def test_same_seed_bit_identical_and_other_seed_differs():
    def run(seed):
        m = fresh()
        train_prompt_model(m, PVP_, toy_task(), TrainConfig(steps=4, lr=1e-3, max_length=32, seed=seed), LABELS, progress=False)
        return m.predict_log_proba(toy_task(), PVP_, labels=LABELS)

    a, b, c = run(1), run(1), run(2)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_grad_accum_and_schedule():
    m = fresh()
    log = train_prompt_model(m, PVP_, toy_task(), TrainConfig(steps=4, lr=1e-3, grad_accum=2, batch_size=2, warmup_ratio=0.5, max_length=32), LABELS, progress=False)
    lrs = [e["lr"] for e in log.entries]
    assert lrs[0] == 0.0 and lrs[2] == pytest.approx(1e-3) and lrs[3] < lrs[2]


def test_distillation_with_soft_targets():
    unl = [Example(dict(e.fields), None, e.guid) for e in toy_task()]
    targets = np.array([[0.1, 0.9] if i % 2 == 0 else [0.8, 0.2] for i in range(len(unl))])
    m = fresh()
    log = train_prompt_model(m, PVP_, unl, TrainConfig(steps=40, lr=1e-2, max_length=32, temperature=2.0), LABELS, soft_targets=targets, progress=False)
    assert "kl" in log.entries[0] and "ce" not in log.entries[0]
    assert log.entries[-1]["loss"] < log.entries[0]["loss"]
    p = np.exp(m.predict_log_proba(unl, PVP_, labels=LABELS))
    assert (p.argmax(1) == targets.argmax(1)).all()
    with pytest.raises(ConfigError, match="soft_targets"):
        train_prompt_model(fresh(), PVP_, unl, TrainConfig(steps=1), LABELS, soft_targets=targets[:3], progress=False)
    with pytest.raises(DataError, match="no label"):
        train_prompt_model(fresh(), PVP_, unl, TrainConfig(steps=1), LABELS, progress=False)


def test_distillation_loss_matches_pet_formula():
    s = torch.tensor([[1.0, -1.0], [0.3, 0.2]])
    p = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
    T = 2.0
    q = torch.softmax(torch.log(p) / T, -1)
    ref = (q * (q.log() - torch.log_softmax(s / T, -1))).sum(-1).mean() * T * T
    assert distillation_loss(s, p, T).item() == pytest.approx(ref.item(), rel=1e-6)


def test_auxiliary_mlm_loss():
    m = fresh()
    unl = [Example({"text_a": "a fine day at the sea with friends and food"}, None, f"u{i}") for i in range(4)]
    log = train_prompt_model(m, PVP_, toy_task(), TrainConfig(steps=2, lr=1e-3, max_length=32, mlm_weight=0.5), LABELS, unlabelled=unl, progress=False)
    e = log.entries[0]
    assert e["loss"] == pytest.approx(e["ce"] + 0.5 * e["mlm"], rel=1e-4)
    with pytest.raises(ConfigError, match="mlm_weight"):
        train_prompt_model(fresh(), PVP_, toy_task(), TrainConfig(steps=1, mlm_weight=0.5), LABELS, progress=False)


def test_mask_tokens_standard_bert_masking():
    m = fresh()
    tok = m.tokenizer
    ids = torch.randint(1000, 2000, (64, 64))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = True
    inp, lab = mask_tokens(ids, special, tok, 0.15, torch.Generator().manual_seed(0))
    sel = lab != -100
    assert 0.12 < sel.float().mean() < 0.18 and not sel[:, 0].any()
    assert torch.equal(lab[sel], ids[sel])
    frac_mask = (inp[sel] == tok.mask_token_id).float().mean()
    assert 0.7 < frac_mask < 0.9


def test_every_default_is_documented_with_its_source_and_lr_is_the_papers():
    """Issue 19: no default chosen on test data. docs/training.md lists every TrainConfig key
    with its default and where that default comes from; lr is PET's and LM-BFF's 1e-5."""
    from pathlib import Path

    assert TrainConfig().lr == 1e-5
    doc = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text(encoding="utf-8")
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 4:  # key | default | meaning | source
            for key in cells[0].replace("`", "").split(","):
                rows[key.strip()] = cells
    missing = [k for k in TrainConfig.keys() if k not in rows]
    assert not missing, f"docs/training.md: no row for {missing}"
    assert all(rows[k][3] for k in TrainConfig.keys())  # every default names its source
    assert rows["lr"][1].strip("*") == "1e-5" and "PET" in rows["lr"][3] and "LM-BFF" in rows["lr"][3]
    assert "test" not in rows["lr"][3].lower()
