"""Bad models, model folders and model options give one-line errors, never internal ones: a
``max_length`` beyond the model's positions, a device this machine lacks, weights that are
truncated or of the wrong shape (a saved folder whose manifest was rewritten), a missing
``--model`` folder, a saved model folder without its tokenizer files."""

from __future__ import annotations

import re
import shutil

import pytest
import torch
from safetensors.torch import save_file, save_model

from conftest import tiny_mlm
from pet.cli import main
from pet.errors import ConfigError, ModelError, UsageError
from pet.estimator.classifier import PetClassifier
from pet.estimator.manifest import write_manifest
from pet.examples import Example
from pet.models.hf import position_limit
from pet.models.prompt_model import PromptModel, resolve_device
from pet.models.sequence import HEAD_FILE, SequenceClassifier
from pet.models.tuning import apply_tuning, attach_lora_adapter, save_lora_adapter
from pet.prompts.spec import PVP, Pattern, Verbalizer
from pet.utils.paths import looks_like_path

GOOD_BAD = Verbalizer("good-bad", {"0": ["bad"], "1": ["good"]})
PVPS = [PVP(Pattern("it-was", "{text_a} It was {mask}."), GOOD_BAD)]
LONG = Example({"text_a": "good " * 700}, guid="long")


@pytest.fixture
def own(files):
    _, csv, pats, verbs = files
    return ["zero-shot", "--data", str(csv), "--text-field", "review", "--label-field", "stars", "--patterns", str(pats),
            "--verbalizers", str(verbs), "--no-progress"]


def one_line_error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "internal error" not in err and "; fix: " in err, err
    return err


# ------------------------------------------------------------------ max_length and positions


def test_position_limit_counts_robertas_padding_offset(bert, roberta):
    assert bert[0].config.max_position_embeddings == 512 and position_limit(bert[0]) == 512
    assert roberta[0].config.max_position_embeddings == 514 and position_limit(roberta[0]) == 512


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_prompt_model_takes_its_limit_and_refuses_more(family, bert, roberta):
    mlm, tok = {"bert": bert, "roberta": roberta}[family]
    model = PromptModel(mlm, tok, name=family, device="cpu")
    lp = model.predict_log_proba([LONG], PVPS[0], max_length=512)  # a 700-word text, cut to the 512 positions
    assert lp.shape == (1, 2)
    with pytest.raises(ConfigError, match=rf"max_length 513 is more than model '{family}' can read \(512 positions\); fix: --max-length 512 or less"):
        model.predict_log_proba([LONG], PVPS[0], max_length=513)


def test_sequence_classifier_refuses_a_max_length_beyond_positions(bert):
    mlm, tok = bert
    with pytest.raises(ConfigError, match=r"max_length 100000 is more than model .* \(512 positions\)"):
        SequenceClassifier(mlm.bert, tok, ["0", "1"], max_length=100000)


def test_cli_max_length_beyond_positions_is_one_line(own, tiny_bert_dir, capsys):
    err = one_line_error([*own, "--model", tiny_bert_dir, "--max-length", "100000"], capsys)
    assert "(512 positions)" in err and "--max-length 512 or less" in err


# ------------------------------------------------------------------ devices


def test_unknown_device_name():
    with pytest.raises(UsageError, match=r"device 'tpu' is not a device name; fix: --device cpu, cuda"):
        resolve_device("tpu")


def test_missing_gpu_and_missing_gpu_index(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match=r"device 'cuda': no cuda device is available.*; fix: --device cpu"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UsageError, match=r"device 'cuda:3': this machine has 1 cuda device\(s\).*fix: --device cuda:0"):
        resolve_device("cuda:3")
    assert resolve_device("cpu") == torch.device("cpu")


def test_cli_bad_device_is_one_line_before_the_model_loads(own, tmp_path, capsys):
    # the model path does not exist: the device is checked first
    assert "not a device name" in one_line_error([*own, "--model", str(tmp_path / "nope"), "--device", "tpu"], capsys)


# ------------------------------------------------------------------ corrupt weights in a saved folder


@pytest.fixture
def saved(tiny_bert_dir, tmp_path):
    return PetClassifier.zero_shot(tiny_bert_dir, PVPS, ["0", "1"], options={"max_length": 32}).save(tmp_path / "clf")


def test_truncated_weights_with_a_rewritten_manifest(saved):
    w = saved / "models" / "0" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:1000])
    write_manifest(saved)
    with pytest.raises(ModelError, match=r"models/0': model.safetensors is not a valid safetensors file \(.*\); fix: restore"):
        PetClassifier.load(saved)


def test_weights_of_another_shape_with_a_rewritten_manifest(saved):
    import transformers as tf

    _, tok = tiny_mlm("bert")
    other = tf.BertForMaskedLM(tf.BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32))
    save_model(other, str(saved / "models" / "0" / "model.safetensors"))
    write_manifest(saved)
    with pytest.raises(ModelError, match=r"models/0': the tensors in model.safetensors do not have the shapes this model needs; fix: restore"):
        PetClassifier.load(saved)


def test_truncated_lora_adapter(tmp_path):
    model = PromptModel(*tiny_mlm("bert"), device="cpu")
    apply_tuning(model, "lora", r=2)
    save_lora_adapter(model.encoder, tmp_path / "adapter", base_model="models/0")
    w = tmp_path / "adapter" / "adapter_model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(ModelError, match=r"adapter: adapter_model.safetensors is not a valid safetensors file"):
        attach_lora_adapter(PromptModel(*tiny_mlm("bert"), device="cpu").encoder, tmp_path / "adapter")


def test_sequence_head_of_the_wrong_shape(tmp_path):
    mlm, tok = tiny_mlm("distilbert")  # saved as encoder + classifier_head.safetensors
    SequenceClassifier(mlm.distilbert, tok, ["0", "1"], max_length=32).save(tmp_path / "clf")
    save_file({"dense.weight": torch.zeros(3, 3)}, str(tmp_path / "clf" / HEAD_FILE))
    with pytest.raises(ModelError, match=rf"clf: the tensors in {HEAD_FILE} do not have the shapes this model needs \(size mismatch for dense.weight"):
        SequenceClassifier.load(tmp_path / "clf")


# ------------------------------------------------------------------ missing folders and tokenizer files


def test_looks_like_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    assert all(looks_like_path(s) for s in ["/abs/model", "./m", "../m", "~/m", "models/missing"])
    assert not any(looks_like_path(s) for s in ["roberta-large", "org/name"])


@pytest.mark.parametrize("name", ["nope", "./nope", "sub/nope"])
def test_missing_model_folder_says_so(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    path = str(tmp_path / name) if name == "nope" else name
    with pytest.raises(ModelError, match=rf"cannot load masked LM '{re.escape(path)}': no such folder; fix: check the path"):
        PromptModel.from_pretrained(path)


def test_missing_saved_folder_says_so(tmp_path):
    with pytest.raises(ModelError, match=r"nope: not a saved classifier: no such folder; fix: check the path"):
        PetClassifier.load(tmp_path / "nope")


def test_saved_folder_without_tokenizer_files_blames_the_tokenizer(saved):
    for p in (saved / "models" / "0").iterdir():
        if p.name.startswith(("tokenizer.", "vocab")):
            p.unlink()
    write_manifest(saved)
    with pytest.raises(ModelError, match=r"models/0': its tokenizer has no vocabulary, only \d+ special tokens .*fix: put the model's tokenizer files"):
        PetClassifier.load(saved)


def test_copied_folder_still_loads(saved, tmp_path):
    """The checks above refuse only broken folders."""
    shutil.copytree(saved, tmp_path / "copy")
    assert PetClassifier.load(tmp_path / "copy").predict_proba(["good"]).shape == (1, 2)
