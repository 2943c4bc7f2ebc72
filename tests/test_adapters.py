"""Saved prompt ensembles: LoRA-tuned PVPs as one base model + PEFT adapters, soft prompts on
one frozen LM as that LM once + a soft prompt per PVP.

A LoRA-tuned member is saved unmerged: its frozen base under ``models/<j>/`` (once for every
LoRA-tuned member whose base weights are equal) and its adapter under ``adapters/<i>/``, written by peft's
``PeftModel.save_pretrained`` and attached again with ``PeftModel.from_pretrained``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pet.errors import ConfigError
from pet.estimator.classifier import CONFIG_FILE, PetClassifier
from pet.methods.predictors import _ModelWriter
from pet.prompts.spec import PVP, Pattern, Verbalizer

GOOD_BAD = Verbalizer("good-bad", {"0": ["bad"], "1": ["good"]})
PVPS = [PVP(Pattern("it-was", "{text_a} It was {mask}."), GOOD_BAD), PVP(Pattern("just", "Just {mask}! {text_a}"), GOOD_BAD)]
TEXTS = ["good", "bad", "good good", "bad bad", "very good", "very bad", "good fun", "bad day"]
Y = ["1", "0", "1", "0", "1", "0", "1", "0"]
CFG = {"steps": 3, "lr": 1e-2, "max_length": 32}

pytestmark = pytest.mark.usefixtures("one_thread")


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def lora_ensemble(tiny_bert_dir, tmp_path_factory):
    clf = PetClassifier(tiny_bert_dir, "prompt-ft", pvps=PVPS, options={**CFG, "tune": "lora", "lora_r": 2}).fit(TEXTS, Y)
    return clf, clf.predict_proba(TEXTS), clf.save(tmp_path_factory.mktemp("lora") / "clf")


def test_lora_ensemble_saves_one_base_and_an_adapter_per_pvp(lora_ensemble):
    _, _, out = lora_ensemble
    members = json.loads((out / CONFIG_FILE).read_text())["predictor"]["members"]
    assert [(m["pvp"], m["model"], m["adapter"]) for m in members] == [
        ("it-was:good-bad", "models/0", "adapters/0"), ("just:good-bad", "models/0", "adapters/1")]
    files = _files(out)
    assert {f for f in files if f.startswith("adapters/")} == {
        f"adapters/{i}/{n}" for i in (0, 1) for n in ("adapter_config.json", "adapter_model.safetensors")}
    assert not any(f.startswith("models/1/") for f in files)
    for i in (0, 1):
        cfg = json.loads((out / "adapters" / str(i) / "adapter_config.json").read_text())
        assert cfg["peft_type"] == "LORA" and cfg["r"] == 2 and sorted(cfg["target_modules"]) == ["query", "value"]
        assert cfg["base_model_name_or_path"] == "models/0"  # inside the folder, no machine path
    # one base plus two small adapters: far below the two full copies a merged save would write
    base = _bytes(out / "models" / "0")
    assert _bytes(out / "adapters") < 0.05 * base and _bytes(out) < 1.3 * base < 2 * base


def test_lora_ensemble_loads_with_the_same_probabilities(lora_ensemble, tmp_path):
    _, p1, out = lora_ensemble
    loaded = PetClassifier.load(out)
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), p1, atol=1e-5, rtol=0)
    (a, _), (b, _) = loaded.fitted_.predictor.members
    assert a is not b and a.mlm is not b.mlm  # each PVP its own adapter ...
    emb = [m.mlm.get_input_embeddings().weight for m in (a, b)]
    assert emb[0] is emb[1]  # ... on the one base, loaded once
    lora = [{n: t for n, t in m.mlm.named_parameters() if "lora_B" in n} for m in (a, b)]
    assert lora[0] and lora[0].keys() == lora[1].keys()
    assert any(not torch.equal(lora[0][k], lora[1][k]) for k in lora[0])  # two trained adapters, not one twice
    again = loaded.save(tmp_path / "again")  # a loaded LoRA ensemble saves the same layout
    assert _files(again) == _files(out)
    np.testing.assert_allclose(PetClassifier.load(again).predict_proba(TEXTS), p1, atol=1e-5, rtol=0)


def test_a_saved_adapter_is_plain_peft(lora_ensemble):
    """What the folder holds is usable without pet: transformers loads the base, peft the adapter."""
    from peft import PeftModel
    from transformers import AutoModelForMaskedLM

    clf, _, out = lora_ensemble
    x = torch.tensor([[101, 2204, 2003, 103, 102]])
    mlm = AutoModelForMaskedLM.from_pretrained(out / "models" / "0").eval()
    with torch.no_grad():
        base_logits = mlm(input_ids=x).logits
        PeftModel.from_pretrained(mlm.bert, str(out / "adapters" / "1"))
        ours = clf.fitted_.predictor.members[1][0].mlm
        np.testing.assert_allclose(mlm(input_ids=x).logits.numpy(), ours(input_ids=x).logits.numpy(), atol=1e-5)
        assert not torch.allclose(mlm(input_ids=x).logits, base_logits, atol=1e-6)  # the adapter did change the model


@pytest.mark.parametrize("tune", ["full", "bitfit"])
def test_full_and_bitfit_ensembles_keep_one_model_per_pvp(tiny_bert_dir, tmp_path, tune):
    clf = PetClassifier(tiny_bert_dir, "prompt-ft", pvps=PVPS, options={**CFG, "tune": tune}).fit(TEXTS, Y)
    p1 = clf.predict_proba(TEXTS)
    out = clf.save(tmp_path / tune)
    members = json.loads((out / CONFIG_FILE).read_text())["predictor"]["members"]
    assert [m["model"] for m in members] == ["models/0", "models/1"] and not any("adapter" in m for m in members)
    assert not (out / "adapters").exists()
    assert np.array_equal(PetClassifier.load(out).predict_proba(TEXTS), p1)


SOFT_PVPS = [PVP(Pattern("soft-2", "{text_a} It was {soft:2} {mask}."), GOOD_BAD), PVP(Pattern("prefix-1", "{soft:1} {text_a} It was {mask}."), GOOD_BAD)]


@pytest.mark.parametrize("method", ["prompt-tuning", "deep-prompt"])
def test_soft_prompts_on_one_frozen_lm_store_it_once(tiny_bert_dir, tmp_path, monkeypatch, method):
    clf = PetClassifier(tiny_bert_dir, method, pvps=SOFT_PVPS, options={**CFG, "soft_lr": 0.1}).fit(TEXTS, Y)
    p1 = clf.predict_proba(TEXTS)
    out = clf.save(tmp_path / "shared")
    members = json.loads((out / CONFIG_FILE).read_text())["predictor"]["members"]
    assert [(m["model"], m["soft_prompt"]["weights"]) for m in members] == [
        ("models/0", "soft_prompts/0.safetensors"), ("models/0", "soft_prompts/1.safetensors")]
    assert not (out / "models" / "1").exists()
    base = _bytes(out / "models" / "0")
    assert _bytes(out) < 1.3 * base  # one LM, not one per member
    loaded = PetClassifier.load(out)
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), p1, atol=1e-6, rtol=0)
    (a, _), (b, _) = loaded.fitted_.predictor.members
    assert a.prompt_encoder is not b.prompt_encoder and a.mlm is not b.mlm  # each PVP its own soft prompt ...
    assert a.mlm.get_input_embeddings().weight is b.mlm.get_input_embeddings().weight  # ... on the one LM, loaded once
    again = loaded.save(tmp_path / "again")  # a loaded ensemble saves the same layout
    assert _files(again) == _files(out) and _bytes(again / "models") == _bytes(out / "models")

    # a folder written with one LM copy per member (before the sharing) still loads, to the same probabilities
    monkeypatch.setattr(_ModelWriter, "written", lambda self, *a: None)
    old = clf.save(tmp_path / "one-copy-each")
    assert [m["model"] for m in json.loads((old / CONFIG_FILE).read_text())["predictor"]["members"]] == ["models/0", "models/1"]
    assert _bytes(old) > 1.9 * base
    np.testing.assert_allclose(PetClassifier.load(old).predict_proba(TEXTS), p1, atol=1e-6, rtol=0)


def test_save_lora_adapter_needs_an_adapter(bert, tmp_path):
    from pet.models.tuning import save_lora_adapter

    with pytest.raises(ConfigError, match="has no LoRA adapter; fix: tune it with tune=lora first"):
        save_lora_adapter(bert[0].bert, tmp_path / "a", base_model="models/0")
