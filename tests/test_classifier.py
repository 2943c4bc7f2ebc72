"""PetClassifier fit/predict/save/load, cls-ft, the prompt-ft/cls-ft methods and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import tiny_mlm
from pet.classifier import CONFIG_FILE, PetClassifier, PromptEnsemble
from pet.errors import ConfigError, DataError
from pet.examples import Example
from pet.methods.cls_ft import SequenceClassifier, train_sequence_classifier
from pet.spec import PVP, Pattern, Verbalizer
from pet.training import TrainConfig

PVPS = [
    PVP(Pattern("it-was", "{text_a} It was {mask}."), Verbalizer("good-bad", {"0": ["bad"], "1": ["good"]})),
    PVP(Pattern("just", "Just {mask}! {text_a}"), Verbalizer("good-bad", {"0": ["bad"], "1": ["good"]})),
]
TEXTS = ["good", "bad", "good good", "bad bad", "very good", "very bad", "good fun", "bad day"]
Y = ["1", "0", "1", "0", "1", "0", "1", "0"]
CFG = {"steps": 3, "lr": 1e-3, "max_length": 32}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def tiny_dir(tiny_bert_dir):
    return tiny_bert_dir


@pytest.mark.parametrize("method,tune", [("prompt-ft", "full"), ("cls-ft", "full"), ("prompt-ft", "lora"), ("zero-shot", "full")])
def test_fit_save_load_identical_predictions(tiny_dir, tmp_path, method, tune):
    clf = PetClassifier(tiny_dir, pvps=PVPS[:1] if method == "prompt-ft" else PVPS, method=method, config={**CFG, "tune": tune})
    clf.fit(TEXTS, Y)
    p1 = clf.predict_proba(TEXTS)
    assert p1.shape == (8, 2) and np.allclose(p1.sum(1), 1)
    assert clf.classes_ == ["0", "1"] and set(clf.predict(TEXTS)) <= {"0", "1"}
    out = clf.save(tmp_path / "clf")
    meta = json.loads((out / CONFIG_FILE).read_text())
    assert meta["format_version"] == 1 and meta["method"] == method and meta["labels"] == ["0", "1"]
    assert (out / "metrics.json").is_file() and (out / "training_log.jsonl").is_file()
    loaded = PetClassifier.load(out)
    p2 = loaded.predict_proba(TEXTS)
    if tune == "lora":  # merged weights: equal up to float rounding
        np.testing.assert_allclose(p1, p2, atol=1e-6)
    else:
        assert np.array_equal(p1, p2)
    if method != "zero-shot":
        n_log = sum(1 for _ in (out / "training_log.jsonl").open())
        assert n_log == 3 * (len(clf.pvps) if method == "prompt-ft" else 1)
    if method == "cls-ft":
        assert (out / "model" / "model.safetensors").is_file()
    else:
        assert (out / "models" / "0" / "model.safetensors").is_file() and (out / "patterns.json").is_file()


def test_prompt_ft_ensemble_of_two_pvps(tiny_dir, tmp_path):
    clf = PetClassifier(tiny_dir, pvps=PVPS, method="prompt-ft", config=CFG).fit(TEXTS, Y)
    assert len(clf.predictor.members) == 2 and clf.predictor.members[0][0] is not clf.predictor.members[1][0]
    loaded = PetClassifier.load(clf.save(tmp_path / "c"))
    assert np.array_equal(clf.predict_proba(TEXTS), loaded.predict_proba(TEXTS))


def test_format_version_checked(tiny_dir, tmp_path):
    out = PetClassifier(tiny_dir, pvps=PVPS[:1], method="zero-shot").fit(None).save(tmp_path / "z")
    meta = json.loads((out / CONFIG_FILE).read_text())
    meta["format_version"] = 99
    (out / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"format_version is 99, this pet reads format_version 1.*fix"):
        PetClassifier.load(out)
    del meta["format_version"]
    (out / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="format_version is None"):
        PetClassifier.load(out)
    with pytest.raises(ConfigError, match="not a saved classifier"):
        PetClassifier.load(tmp_path)


def test_interrupted_save_leaves_nothing(tiny_dir, tmp_path, monkeypatch):
    clf = PetClassifier(tiny_dir, pvps=PVPS[:1], method="zero-shot").fit(None)

    def boom(self, d):
        (d / "models").mkdir()
        (d / "models" / "half-written").write_text("x")
        raise RuntimeError("disk full")

    monkeypatch.setattr(PromptEnsemble, "save", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        clf.save(tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == []  # no partial folder left either


def test_save_refuses_nonempty_dir(tiny_dir, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    clf = PetClassifier(tiny_dir, pvps=PVPS[:1], method="zero-shot").fit(None)
    with pytest.raises(ConfigError, match="not empty"):
        clf.save(tmp_path / "out")


def test_classifier_errors(tiny_dir):
    with pytest.raises(ConfigError, match="unknown; fix: use one of"):
        PetClassifier(tiny_dir, pvps=PVPS, method="magic")
    with pytest.raises(ConfigError, match="needs at least one PVP"):
        PetClassifier(tiny_dir, method="prompt-ft")
    with pytest.raises(ConfigError, match="not fitted"):
        PetClassifier(tiny_dir, pvps=PVPS).predict(["x"])
    with pytest.raises(DataError, match="8 inputs but 2 labels"):
        PetClassifier(tiny_dir, pvps=PVPS, config=CFG).fit(TEXTS, Y[:2])
    with pytest.raises(DataError, match="not one of"):
        PetClassifier(tiny_dir, pvps=PVPS, config=CFG).fit(TEXTS, ["2"] * 8)
    with pytest.raises(ConfigError, match="unknown key"):
        PetClassifier(tiny_dir, pvps=PVPS, config={"stepz": 1})


@pytest.mark.parametrize("method", ["pet", "ipet"])
def test_pet_method_distils_and_saves(tiny_dir, tmp_path, method):
    clf = PetClassifier(tiny_dir, pvps=PVPS, method=method, config=CFG)
    with pytest.raises(ConfigError, match="unlabelled"):
        clf.fit(TEXTS, Y)
    clf.fit(TEXTS, Y, unlabelled=["good day", "bad film", "very good fun", "bad bad day"])
    assert clf.predictor.kind == "sequence-classifier" and clf.metrics
    p1 = clf.predict_proba(TEXTS)
    if method == "ipet":
        assert any(r["stage"].startswith("ipet-gen") for r in clf.metrics)
    loaded = PetClassifier.load(clf.save(tmp_path / method))
    assert loaded.method == method and np.array_equal(p1, loaded.predict_proba(TEXTS))


def _trained_soft(base_dir, tune="frozen", method="prompt-tuning"):
    import pet.soft as soft
    from pet.model import PromptModel
    from pet.training import train_prompt_model

    pvp = PVP(Pattern("soft", "{text_a} {soft:2} {mask}."), PVPS[0].verbalizer)
    m = PromptModel.from_pretrained(base_dir, device="cpu")
    soft.attach_soft_prompt(m, m.encoder_for(pvp, 32, ["0", "1"]), {"method": method, "tune": tune})
    ex = [Example({"text_a": t}, y, f"e{i}") for i, (t, y) in enumerate(zip(TEXTS, Y))]
    log = train_prompt_model(m, pvp, ex, TrainConfig(steps=3, lr=1e-2, tune=tune, max_length=32), ["0", "1"], progress=False)
    return m, pvp, log


@pytest.mark.parametrize("tune", ["frozen", "full"])
def test_soft_prompt_model_saves_and_loads(tiny_dir, tmp_path, tune):
    m, pvp, log = _trained_soft(tiny_dir, tune, "p-tuning")
    n_soft = sum(p.numel() for p in m.prompt_encoder.parameters())
    assert log.trained_parameters == n_soft + (sum(p.numel() for p in m.mlm.parameters()) if tune == "full" else 0)
    clf = PetClassifier.from_trained(tiny_dir, "p-tuning", ["0", "1"], {"max_length": 32}, PromptEnsemble([(m, pvp)], ["0", "1"], 32), pvps=[pvp], logs={pvp.id: log})
    out = clf.save(tmp_path / "soft")
    (mem,) = json.loads((out / CONFIG_FILE).read_text())["predictor"]["members"]
    assert (out / "soft_prompts" / "0.safetensors").is_file() and mem["soft_prompt"]["parameters"] == n_soft
    if tune == "frozen":  # only the prompt encoder + the base model's name/path and weights hash
        assert not (out / "models").exists() and "model" not in mem
        assert mem["base_model"]["name"] == tiny_dir and mem["base_model"]["sha256"]
    else:  # tuned LM: saved too
        assert mem["model"] == "models/0" and (out / "models" / "0" / "model.safetensors").is_file()
    loaded = PetClassifier.load(out)
    assert loaded.method == "p-tuning"
    assert np.array_equal(clf.predict_proba(TEXTS), loaded.predict_proba(TEXTS))


def test_soft_prompt_needs_its_exact_base_model(tmp_path):
    from pet.errors import ModelError

    base = tmp_path / "base"
    m0, tok = tiny_mlm("bert", seed=7)
    m0.save_pretrained(base)
    tok.save_pretrained(base)
    m, pvp, _ = _trained_soft(str(base))
    out = PetClassifier.from_trained(str(base), "prompt-tuning", ["0", "1"], {"max_length": 32}, PromptEnsemble([(m, pvp)], ["0", "1"], 32), pvps=[pvp]).save(tmp_path / "c")
    other, _ = tiny_mlm("bert", seed=8)  # same architecture, different weights
    other.save_pretrained(base)
    with pytest.raises(ModelError, match=r"not the one the soft prompts were trained on.*fix"):
        PetClassifier.load(out)
    import shutil

    shutil.rmtree(base)
    with pytest.raises(ModelError, match=r"needs the base model .*fix"):
        PetClassifier.load(out)


def test_soft_prompt_attached_for_another_pvp_is_refused(tiny_dir, tmp_path):
    m, pvp, _ = _trained_soft(tiny_dir)
    other = PVP(Pattern("soft-b", "{soft:2} {text_a} {mask}."), pvp.verbalizer)
    clf = PetClassifier.from_trained(tiny_dir, "prompt-tuning", ["0", "1"], {}, PromptEnsemble([(m, other)], ["0", "1"], 32), pvps=[other])
    with pytest.raises(ConfigError, match="attached for PVP 'soft:good-bad'"):
        clf.save(tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_cls_ft_trains_and_distils(tiny_dir, tmp_path):
    ex = [Example({"text_a": t}, y, f"e{i}") for i, (t, y) in enumerate(zip(TEXTS, Y))]
    clf = train_sequence_classifier(tiny_dir, ex, ["0", "1"], TrainConfig(steps=40, lr=1e-2, max_length=32), progress=False)
    losses = [e["loss"] for e in clf.train_log.entries]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert clf.train_log.trained_parameters == sum(p.numel() for p in clf.parameters())
    assert clf.predict(ex) == Y
    clf.save(tmp_path / "s")
    again = SequenceClassifier.load(tmp_path / "s")
    assert np.array_equal(clf.predict_log_proba(ex), again.predict_log_proba(ex))
    unl = [Example(dict(e.fields), None, e.guid) for e in ex]
    targets = np.array([[0.2, 0.8] if y == "1" else [0.9, 0.1] for y in Y])
    st = train_sequence_classifier(tiny_dir, unl, ["0", "1"], {"steps": 40, "lr": 1e-2, "max_length": 32}, soft_targets=targets, progress=False)
    assert "kl" in st.train_log.entries[0] and st.predict(unl) == Y


def test_methods_return_stage_rows(tiny_dir, tmp_path):
    from pet.cli.train import UserTask
    from pet.methods.base import RunContext, get_method

    ex = [Example({"text_a": t}, y, f"e{i}") for i, (t, y) in enumerate(zip(TEXTS, Y))]
    ctx = RunContext(task=UserTask("toy", {"0": "0", "1": "1"}, max_length=32), model=tiny_dir, train=ex, test=ex, pvps=PVPS, progress=False, output_dir=tmp_path / "pft")
    rows = get_method("prompt-ft")(ctx, {"steps": 2, "lr": 1e-3})
    assert [r.pvp for r in rows] == [p.id for p in PVPS] and all(r.stage == "pvp" and r.train_seconds > 0 for r in rows)
    assert all(r.trained_parameters > 0 and r.peak_memory_mb > 0 and 0 <= r.score <= 1 for r in rows)
    assert PetClassifier.load(tmp_path / "pft").predict(TEXTS)
    rows = get_method("prompt-ft")(ctx, {"steps": 1, "pvp": "just", "tune": "bitfit"})
    assert [r.pvp for r in rows] == ["just:good-bad"]
    ctx.output_dir = None
    rows = get_method("cls-ft")(ctx, {"steps": 2})
    assert rows[0].method == "cls-ft" and rows[0].stage == "final"
    with pytest.raises(ConfigError, match="unknown option"):
        get_method("prompt-ft")(ctx, {"stepz": 2})


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def user_files(tmp_path):
    rows = [{"review": t, "stars": y} for t, y in zip(TEXTS * 2, Y * 2)]
    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pat = tmp_path / "patterns.json"
    pat.write_text(json.dumps({"patterns": [p.pattern.to_dict() for p in PVPS]}))
    verb = tmp_path / "verbalizers.json"
    verb.write_text(json.dumps({"verbalizers": [PVPS[0].verbalizer.to_dict()]}))
    return data, pat, verb


def test_cli_train_and_predict(tiny_dir, tmp_path, user_files, capsys):
    from pet.cli import main

    data, pat, verb = user_files
    out = tmp_path / "model"
    common = ["--data", str(data), "--text-field", "review", "--label-field", "stars", "--patterns", str(pat), "--verbalizers", str(verb), "--model", tiny_dir]
    rc = main(["train", *common, "--method", "prompt-ft", "--shots", "2", "--seed", "3", "--steps", "2", "--lr", "1e-3", "--no-progress", "--output", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "it-was:good-bad" in captured.out and "just:good-bad" in captured.out and "score" in captured.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["stages"]) == 2 and metrics["k"] == 2 and metrics["n_train"] == 4 and metrics["n_test"] == 12
    assert (out / CONFIG_FILE).is_file()

    preds = tmp_path / "preds.jsonl"
    rc = main(["predict", str(out), "--input", str(data), "--text-field", "review", "--output", str(preds)])
    assert rc == 0
    lines = [json.loads(x) for x in preds.read_text().splitlines()]
    assert len(lines) == 16 and lines[0]["label"] in ("0", "1")
    assert set(lines[0]["probabilities"]) == {"0", "1"} and abs(sum(lines[0]["probabilities"].values()) - 1) < 1e-5

    # cls-ft needs no PVP files; output folder exists → error without --overwrite
    rc = main(["train", "--data", str(data), "--text-field", "review", "--label-field", "stars", "--model", tiny_dir, "--method", "cls-ft", "--shots", "2", "--steps", "2", "--no-progress", "--output", str(out)])
    assert rc == 2 and "not empty" in capsys.readouterr().err


def test_cli_errors(tiny_dir, tmp_path, user_files, capsys):
    from pet.cli import main

    data, pat, verb = user_files
    common = ["--data", str(data), "--text-field", "review", "--label-field", "stars", "--patterns", str(pat), "--verbalizers", str(verb), "--model", tiny_dir, "--no-progress"]
    assert main(["train", *common, "--method", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown method 'nope'" in err and "prompt-ft" in err and "cls-ft" in err
    assert main(["train", *common, "--method", "prompt-ft", "--shots", "9"]) == 2
    assert "has only 8 examples, 9 needed" in capsys.readouterr().err
    assert main(["train", *common, "--method", "prompt-ft", "--shots", "2", "--mlm-weight", "0.5"]) == 2
    assert "unlabelled" in capsys.readouterr().err
    bad = tmp_path / "nothing"
    bad.mkdir()
    assert main(["predict", str(bad), "--input", str(data), "--output", str(tmp_path / "p.jsonl")]) == 2
    assert "not a saved classifier" in capsys.readouterr().err
