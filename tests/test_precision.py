"""--precision fp32|bf16|fp16: mixed precision for training (accelerate) and scoring (autocast).

No GPU here: bf16 runs on CPU; fp16 on CPU is a one-line error. Tolerances: bf16 keeps 8 bits
of mantissa (~3 significant digits), so label log-probs of a tiny random model are compared
with fp32 at an absolute 0.05, and bf16 must actually change them (not silently run fp32).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pet.errors import ConfigError, PetError
from pet.methods import FitSetup, get_method
from pet.models.prompt_model import PromptModel
from pet.prompts.spec import PVP, Pattern, Verbalizer
from pet.training.loop import TrainConfig
from pet.training.prompt import train_prompt_model

ATOL = 0.05


@pytest.fixture(scope="module")
def pvp():
    return PVP(Pattern("p", "{text_a} It was {mask}."), Verbalizer("v", {"0": ["bad"], "1": ["good"]}))


def _setup(model_dir, pvp):
    return FitSetup(model=model_dir, labels=["0", "1"], pvps=[pvp], seed=1, max_length=32, device="cpu")


def test_zero_shot_bf16_scores_close_to_fp32(tiny_bert_dir, pvp, sentiment_examples, one_thread):
    zs = get_method("zero-shot")
    lp = {}
    for prec in ("fp32", "bf16"):
        fitted = zs.fit([], [], {"precision": prec}, _setup(tiny_bert_dir, pvp))
        lp[prec] = fitted.stage().predictor.predict_log_proba(sentiment_examples)
    assert lp["fp32"].shape == (len(sentiment_examples), 2)
    assert not np.array_equal(lp["fp32"], lp["bf16"])  # autocast really ran in bf16
    np.testing.assert_allclose(lp["bf16"], lp["fp32"], atol=ATOL, rtol=0)


def test_training_bf16_close_to_fp32_and_scores_in_bf16(tiny_bert_dir, pvp, sentiment_examples, one_thread):
    out = {}
    for prec in ("fp32", "bf16", "fp32"):  # fp32 again: the accelerator state is reset between precisions
        model = PromptModel.from_pretrained(tiny_bert_dir, device="cpu")
        cfg = TrainConfig(steps=3, lr=1e-3, batch_size=4, seed=5, precision=prec)
        log = train_prompt_model(model, pvp, sentiment_examples, cfg, ["0", "1"], progress=False)
        assert model.precision == prec and log.steps == 3 and all(np.isfinite(e["loss"]) for e in log.entries)
        out.setdefault(prec, []).append((model.predict_log_proba(sentiment_examples, pvp), [e["loss"] for e in log.entries],
                                          {n: p.detach().clone() for n, p in model.mlm.named_parameters()}))
    (lp32, loss32, w32), (lp32b, _, w32b) = out["fp32"]
    lp16, loss16, w16 = out["bf16"][0]
    assert np.array_equal(lp32, lp32b)  # fp32 after bf16 is fp32 again, bit for bit
    assert loss16 != loss32  # the forward pass ran in bf16
    np.testing.assert_allclose(loss16, loss32, atol=ATOL, rtol=0)
    np.testing.assert_allclose(lp16, lp32, atol=ATOL, rtol=0)
    assert all(w16[n].dtype == torch.float32 for n in w16)  # mixed precision: master weights stay fp32
    assert max(float((w16[n] - w32[n]).abs().max()) for n in w32) < 1e-2  # 3 steps at lr 1e-3 move weights ≤ ~3e-3


def test_fp16_on_cpu_and_unknown_precision_are_one_line_errors(tiny_bert_dir, pvp, sentiment_examples):
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig.from_dict({"precision": "fp8"})
    with pytest.raises(ConfigError, match="precision"):
        get_method("zero-shot").make_options({"precision": "int8"})
    model = PromptModel.from_pretrained(tiny_bert_dir, device="cpu")
    with pytest.raises(PetError, match="fp16 needs a GPU; fix: --precision bf16"):
        train_prompt_model(model, pvp, sentiment_examples, TrainConfig(steps=1, precision="fp16"), ["0", "1"], progress=False)
    fitted = get_method("zero-shot").fit([], [], {"precision": "fp16"}, _setup(tiny_bert_dir, pvp))
    with pytest.raises(PetError, match="fp16 needs a GPU"):
        fitted.stage().predictor.predict_log_proba(sentiment_examples)


def test_precision_flag_on_the_cli(capsys):
    from pet.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--method", "prompt-ft", "--help"])
    assert "--precision" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["zero-shot", "--help"])
    assert "--precision" in capsys.readouterr().out
