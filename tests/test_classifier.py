"""PetClassifier: a scikit-learn estimator over every registered method, and its saved folder."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score

from conftest import tiny_mlm
from pet.estimator.classifier import CONFIG_FILE, PetClassifier
from pet.errors import ConfigError, DataError, IntegrityError, ModelError
from pet.examples import Example
from pet.methods.predictors import PromptEnsemble
from pet.models.sequence import SequenceClassifier
from pet.training.sequence import train_sequence_classifier
from pet.prompts.spec import PVP, Pattern, Verbalizer
from pet.training.loop import TrainConfig

GOOD_BAD = Verbalizer("good-bad", {"0": ["bad"], "1": ["good"]})
PVPS = [PVP(Pattern("it-was", "{text_a} It was {mask}."), GOOD_BAD), PVP(Pattern("just", "Just {mask}! {text_a}"), GOOD_BAD)]
SOFT = PVP(Pattern("soft", "{text_a} {soft:2} {mask}."), GOOD_BAD)
TEXTS = ["good", "bad", "good good", "bad bad", "very good", "very bad", "good fun", "bad day"]
Y = ["1", "0", "1", "0", "1", "0", "1", "0"]
CFG = {"steps": 3, "lr": 1e-3, "max_length": 32}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def tiny_dir(tiny_bert_dir):
    return tiny_bert_dir


@pytest.mark.parametrize("method,options", [
    ("prompt-ft", {**CFG, "tune": "full"}), ("prompt-ft", {**CFG, "tune": "lora"}), ("cls-ft", CFG), ("zero-shot", {"max_length": 32}),
    ("prompt-tuning", {**CFG, "lr": 1e-2}), ("deep-prompt", {**CFG, "lr": 1e-2}), ("p-tuning", {**CFG, "lr": 1e-2}),
])
def test_fit_save_load_identical_predictions(tiny_dir, tmp_path, method, options):
    pvps = [SOFT] if method in ("prompt-tuning", "deep-prompt", "p-tuning") else PVPS[:1]
    clf = PetClassifier(tiny_dir, method, pvps=pvps, options=options).fit(TEXTS, Y)
    p1 = clf.predict_proba(TEXTS)
    assert p1.shape == (8, 2) and np.allclose(p1.sum(1), 1)
    assert list(clf.classes_) == ["0", "1"] and set(clf.predict(TEXTS)) <= {"0", "1"}
    out = clf.save(tmp_path / "clf")
    meta = json.loads((out / CONFIG_FILE).read_text())
    assert meta["format_version"] == 3 and meta["method"] == method and meta["labels"] == ["0", "1"]
    assert (out / "manifest.json").is_file() and (out / "training_log.jsonl").is_file()
    loaded = PetClassifier.load(out)
    p2 = loaded.predict_proba(TEXTS)
    assert np.array_equal(p1, p2)  # LoRA too: saved unmerged, as base + adapter
    if method != "zero-shot":
        assert sum(1 for _ in (out / "training_log.jsonl").open()) == 3
    if method == "cls-ft":
        assert (out / "model" / "model.safetensors").is_file()
    else:
        assert (out / "models" / "0" / "model.safetensors").is_file() and (out / "patterns.json").is_file()
    assert (out / "adapters" / "0" / "adapter_model.safetensors").is_file() == (options.get("tune") == "lora")
    if method in ("prompt-tuning", "deep-prompt", "p-tuning"):
        assert (out / "soft_prompts" / "0.safetensors").is_file()


def test_saved_folder_is_self_contained(tmp_path):
    """A soft prompt over a frozen LM still loads after its base model folder is gone."""
    base = tmp_path / "base"
    m, tok = tiny_mlm("bert", seed=7)
    m.save_pretrained(base)
    tok.save_pretrained(base)
    clf = PetClassifier(str(base), "prompt-tuning", pvps=[SOFT], options={**CFG, "lr": 1e-2}).fit(TEXTS, Y)
    p1 = clf.predict_proba(TEXTS)
    out = clf.save(tmp_path / "c")
    shutil.rmtree(base)
    assert np.array_equal(PetClassifier.load(out).predict_proba(TEXTS), p1)


def test_prompt_ft_ensemble_of_two_pvps_is_final(tiny_dir, tmp_path):
    clf = PetClassifier(tiny_dir, "prompt-ft", pvps=PVPS, options=CFG).fit(TEXTS, Y)
    f = clf.fitted_
    assert [s.key for s in f.stages] == ["pvp[it-was:good-bad]", "pvp[just:good-bad]", "ensemble"] and f.final == "ensemble"
    members = f.predictor.members
    assert len(members) == 2 and members[0][0] is not members[1][0]
    # the ensemble is the mean of the two models' label log-probs, renormalised (independent computation)
    ex = [Example({"text_a": t}) for t in TEXTS]
    a, b = (m.predict_log_proba(ex, p, max_length=32, labels=["0", "1"]) for m, p in members)
    mean = (a + b) / 2
    expected = mean - np.log(np.exp(mean).sum(1, keepdims=True))
    np.testing.assert_allclose(clf.predict_log_proba(TEXTS), expected, atol=1e-9)
    loaded = PetClassifier.load(clf.save(tmp_path / "c"))
    assert np.array_equal(clf.predict_proba(TEXTS), loaded.predict_proba(TEXTS))


def test_sklearn_estimator_contract(tiny_dir):
    clf = PetClassifier(tiny_dir, "prompt-ft", pvps=["it-was:great-terrible"], task="sst2", options={"steps": 1, "max_length": 32}, seed=5)
    params = clf.get_params()
    assert params["method"] == "prompt-ft" and params["seed"] == 5 and params["options"] == {"steps": 1, "max_length": 32}
    twin = clone(clf)
    assert twin is not clf and twin.get_params() == params and not hasattr(twin, "fitted_")
    twin.set_params(seed=6, method="cls-ft")
    assert twin.seed == 6 and twin.method == "cls-ft" and clf.seed == 5
    with pytest.raises(NotFittedError):
        clf.predict(["x"])
    y = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1])  # integer labels come back as integers
    texts = TEXTS + ["good stuff"]
    scores = cross_val_score(PetClassifier(tiny_dir, "prompt-ft", task="sst2", pvps=["it-was:great-terrible"], options={"steps": 1, "max_length": 32}), texts, y, cv=3)
    assert scores.shape == (3,) and all(0 <= s <= 1 for s in scores)
    fitted = clone(clf).fit(texts, y)
    pred = fitted.predict(texts)
    assert pred.dtype.kind == "i" and set(pred) <= {0, 1} and fitted.score(texts, y) == np.mean(pred == y)


def test_fit_never_sees_other_data(tiny_dir, monkeypatch):
    """The method's fit gets exactly the training texts and the unlabelled pool."""
    from pet.methods import base

    seen = {}
    real = base.Method.fit

    def spy(self, train, unlabelled, options, setup):
        seen["train"] = [e.fields["text_a"] for e in train]
        seen["unlabelled"] = [e.fields["text_a"] for e in unlabelled]
        return real(self, train, unlabelled, options, setup)

    monkeypatch.setattr(base.Method, "fit", spy)
    PetClassifier(tiny_dir, "prompt-ft", pvps=PVPS[:1], options={"steps": 1}).fit(TEXTS[:4], Y[:4], unlabelled=["u1", "u2"])
    assert seen == {"train": TEXTS[:4], "unlabelled": ["u1", "u2"]}


def test_format_version_and_folder_checked(tiny_dir, tmp_path):
    out = PetClassifier(tiny_dir, "zero-shot", pvps=PVPS[:1]).fit(TEXTS, Y).save(tmp_path / "z")
    meta = json.loads((out / CONFIG_FILE).read_text())
    meta["format_version"] = 99
    (out / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(IntegrityError, match=r"pet_config.json changed since the folder was saved"):
        PetClassifier.load(out)  # the manifest notices first
    from pet.estimator.manifest import write_manifest

    write_manifest(out)
    with pytest.raises(ModelError, match=r"format_version is 99, this pet reads format_version 2 and 3; fix: re-train and re-save"):
        PetClassifier.load(out)
    for old in (1, None, True):  # format 1 (and a missing or non-integer version) stays refused
        meta["format_version"] = old
        (out / CONFIG_FILE).write_text(json.dumps(meta))
        write_manifest(out)
        with pytest.raises(ModelError, match=rf"format_version is {old!r}, this pet reads format_version 2 and 3; fix: re-train and re-save"):
            PetClassifier.load(out)
    with pytest.raises(ModelError, match="not a saved classifier"):
        PetClassifier.load(tmp_path)


def _as_format_2(out):
    """Rewrite a saved folder in the previous release's layout (format 2, as `pet` 5eccfef^ wrote
    it): a prompt predictor's spec without labels and PVPs, no label names, a sequence classifier
    as encoder + classifier_head.safetensors with no layout, and the card inside the manifest."""
    import hashlib

    from safetensors.torch import save_file

    meta = json.loads((out / CONFIG_FILE).read_text())
    meta["format_version"] = 2
    meta.pop("label_names")
    for key in ("labels", "pvps"):
        meta["predictor"].pop(key, None)
    (out / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
    if meta["predictor"]["kind"] == "sequence-classifier":
        clf = SequenceClassifier.load(out / "model")
        shutil.rmtree(out / "model")
        clf.encoder.save_pretrained(out / "model")
        clf.tokenizer.save_pretrained(out / "model")
        save_file({k: v.contiguous() for k, v in clf.head.state_dict().items()}, str(out / "model" / "classifier_head.safetensors"))
        (out / "model" / "classifier.json").write_text(json.dumps({"labels": clf.labels, "max_length": clf.max_length, "dropout": clf.dropout_p, "base_model": clf.name}))
    files = {p.relative_to(out).as_posix(): p for p in sorted(out.rglob("*")) if p.is_file() and p.name != "manifest.json"}
    assert "README.md" in files  # format 2's manifest covered the card
    (out / "manifest.json").write_text(json.dumps({"format": 1, "algorithm": "sha256", "files": {
        rel: {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "size": p.stat().st_size} for rel, p in files.items()}}))
    return out


@pytest.mark.parametrize("method,family", [("prompt-ft", "bert"), ("cls-ft", "roberta"), ("cls-ft", "bert")])
def test_format_2_folders_still_load(tmp_path, method, family):
    """A user's folders from the previous release keep loading, with the same predictions."""
    base = tmp_path / family
    m, tok = tiny_mlm(family)
    m.save_pretrained(base)
    tok.save_pretrained(base)
    clf = PetClassifier(str(base), method, pvps=PVPS, options=CFG).fit(TEXTS, Y)
    p1 = clf.predict_proba(TEXTS)
    out = _as_format_2(clf.save(tmp_path / "old"))
    if method == "cls-ft":
        assert "layout" not in json.loads((out / "model" / "classifier.json").read_text())
        assert (out / "model" / "classifier_head.safetensors").is_file()
    loaded = PetClassifier.load(out)
    assert loaded.method == method and list(loaded.classes_) == ["0", "1"] and loaded.label_names_ == ["0", "1"]
    assert np.array_equal(loaded.predict_proba(TEXTS), p1)
    (out / "README.md").write_text("edited on the Hub\n")  # listed by the old manifest, yet never loaded
    assert np.array_equal(PetClassifier.load(out).predict_proba(TEXTS), p1)
    again = PetClassifier.load(out).save(tmp_path / "new")  # re-saved: format 3
    assert json.loads((again / CONFIG_FILE).read_text())["format_version"] == 3
    assert np.array_equal(PetClassifier.load(again).predict_proba(TEXTS), p1)


def test_edited_pvp_file_is_refused(tiny_dir, tmp_path):
    out = PetClassifier(tiny_dir, "zero-shot", pvps=PVPS[:1]).fit(TEXTS, Y).save(tmp_path / "z")
    v = json.loads((out / "verbalizers.json").read_text())
    v["verbalizers"][0]["labels"]["1"] = ["great"]
    (out / "verbalizers.json").write_text(json.dumps(v))
    with pytest.raises(IntegrityError, match="verbalizers.json changed since the folder was saved.*fix"):
        PetClassifier.load(out)


def test_member_path_outside_the_folder_is_refused(tiny_dir, tmp_path):
    from pet.estimator.manifest import write_manifest

    out = PetClassifier(tiny_dir, "zero-shot", pvps=PVPS[:1]).fit(TEXTS, Y).save(tmp_path / "z")
    meta = json.loads((out / CONFIG_FILE).read_text())
    meta["predictor"]["members"][0]["model"] = "../elsewhere"
    (out / CONFIG_FILE).write_text(json.dumps(meta))
    write_manifest(out)  # a hostile folder may carry a consistent manifest
    with pytest.raises(IntegrityError, match="leads out of the folder"):
        PetClassifier.load(out)


def test_labels_disagreeing_with_the_verbalizer_are_refused(tiny_dir, tmp_path):
    from pet.estimator.manifest import write_manifest

    out = PetClassifier(tiny_dir, "zero-shot", pvps=PVPS[:1]).fit(TEXTS, Y).save(tmp_path / "z")
    meta = json.loads((out / CONFIG_FILE).read_text())
    meta["labels"] = ["0", "2"]
    (out / CONFIG_FILE).write_text(json.dumps(meta))
    write_manifest(out)
    with pytest.raises(ModelError, match=r"\$.labels .* disagree with verbalizer 'good-bad'"):
        PetClassifier.load(out)


class _PriorPredictor:
    """A plugin's predictor: the same label distribution for every input, saved as safetensors."""

    kind = "test-prior"

    def __init__(self, labels, log_prior):
        self.labels, self.log_prior = list(labels), np.asarray(log_prior, dtype=np.float64)

    def predict_log_proba(self, examples, progress=False, cache=None):
        return np.tile(self.log_prior, (len(examples), 1))

    def save(self, folder):
        import torch
        from safetensors.torch import save_file

        save_file({"log_prior": torch.tensor(self.log_prior)}, str(folder / "prior.safetensors"))
        return {"kind": self.kind, "labels": self.labels, "weights": "prior.safetensors"}

    @classmethod
    def load(cls, spec, folder, device=None):
        from safetensors.torch import load_file

        return cls(spec["labels"], load_file(str(folder / spec["weights"]))["log_prior"].numpy())


def test_a_registered_plugin_predictor_saves_and_loads(tmp_path):
    from pet.methods import Fitted, Stage, get_method
    from pet.methods.predictors import available_predictors, get_predictor_class, register_predictor

    assert {"prompt-ensemble", "sequence-classifier", "demonstration-ensemble"} <= set(available_predictors())
    with pytest.raises(ModelError, match=r"\$.predictor.kind 'test-prior' is unknown \(known: .*prompt-ensemble.*fix"):
        get_predictor_class("test-prior")
    register_predictor("test-prior", _PriorPredictor)
    register_predictor("test-prior", _PriorPredictor)  # again: a no-op
    with pytest.raises(ConfigError, match="kind 'test-prior' is taken by _PriorPredictor"):
        register_predictor("test-prior", type("Other", (_PriorPredictor,), {}))
    with pytest.raises(ConfigError, match="kind is 'test-prior'; fix: set kind = 'other'"):
        register_predictor("other", _PriorPredictor)
    pred = _PriorPredictor(["0", "1"], np.log([0.25, 0.75]))
    options = get_method("zero-shot").make_options({})
    fitted = Fitted("zero-shot", ["0", "1"], options, [Stage("prior", pred)], "prior", pvps=[], model="none")
    out = PetClassifier.from_fitted(fitted).save(tmp_path / "p")
    loaded = PetClassifier.load(out)
    assert isinstance(loaded.fitted_.predictor, _PriorPredictor)
    np.testing.assert_allclose(loaded.predict_proba(TEXTS[:3]), [[0.25, 0.75]] * 3)
    assert list(loaded.predict(TEXTS[:2])) == ["1", "1"]


def test_interrupted_save_leaves_nothing(tiny_dir, tmp_path, monkeypatch):
    clf = PetClassifier(tiny_dir, "zero-shot", pvps=PVPS[:1]).fit(TEXTS, Y)

    def boom(self, d):
        (d / "models").mkdir()
        (d / "models" / "half-written").write_text("x")
        raise RuntimeError("disk full")

    monkeypatch.setattr(PromptEnsemble, "save", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        clf.save(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []  # no folder, no partial folder


def test_save_refuses_nonempty_dir_and_overwrite_replaces(tiny_dir, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    clf = PetClassifier(tiny_dir, "zero-shot", pvps=PVPS[:1]).fit(TEXTS, Y)
    with pytest.raises(ConfigError, match="not empty"):
        clf.save(tmp_path / "out")
    with pytest.raises(ConfigError, match="pet_config.json"):  # --overwrite only replaces a saved model
        clf.save(tmp_path / "out", overwrite=True)
    first = clf.save(tmp_path / "m")
    clf.save(first, overwrite=True)
    assert PetClassifier.load(first).predict(TEXTS).shape == (8,)


def test_classifier_errors(tiny_dir):
    with pytest.raises(ConfigError, match="unknown method 'magic'"):
        PetClassifier(tiny_dir, "magic", pvps=PVPS).fit(TEXTS, Y)
    with pytest.raises(ConfigError, match="needs PVPs"):
        PetClassifier(tiny_dir, "prompt-ft").fit(TEXTS, Y)
    with pytest.raises(DataError, match="8 inputs but 2 labels"):
        PetClassifier(tiny_dir, pvps=PVPS, options=CFG).fit(TEXTS, Y[:2])
    with pytest.raises(DataError, match="not one of the classifier's labels"):
        PetClassifier(tiny_dir, pvps=PVPS, options=CFG).fit(TEXTS, ["2"] * 8)
    with pytest.raises(ConfigError, match=r"unknown option 'stepz'; fix: did you mean 'steps'\?"):
        PetClassifier(tiny_dir, pvps=PVPS, options={"stepz": 1}).fit(TEXTS, Y)
    with pytest.raises(ConfigError, match=r"zero-shot options: unknown option 'steps'"):
        PetClassifier(tiny_dir, "zero-shot", pvps=PVPS, options={"steps": 1}).fit(TEXTS, Y)
    with pytest.raises(ConfigError, match=r"steps=-1: out of range; fix: use a value ≥ 0"):
        PetClassifier(tiny_dir, pvps=PVPS, options={"steps": -1}).fit(TEXTS, Y)
    with pytest.raises(ConfigError, match="every PVP has soft tokens"):
        PetClassifier(tiny_dir, "prompt-ft", pvps=[SOFT], options=CFG).fit(TEXTS, Y)


@pytest.mark.parametrize("method", ["pet", "ipet"])
def test_pet_methods_distil_and_save(tiny_dir, tmp_path, method):
    opts = {**CFG, "distill_steps": 2} | ({"generations": 1} if method == "ipet" else {})
    clf = PetClassifier(tiny_dir, method, pvps=PVPS, options=opts)
    with pytest.raises(ConfigError, match="unlabelled"):
        clf.fit(TEXTS, Y)
    clf.fit(TEXTS, Y, unlabelled=["good day", "bad film", "very good fun", "bad bad day"])
    f = clf.fitted_
    assert f.final == "distilled" and type(f.predictor).__name__ == "SequencePredictor"
    if method == "ipet":
        assert any(s.name.startswith("ipet-gen1") for s in f.stages)
    loaded = PetClassifier.load(clf.save(tmp_path / method))
    assert loaded.method == method and np.array_equal(clf.predict_proba(TEXTS), loaded.predict_proba(TEXTS))


def test_sequence_classifier_trains_and_distils(tiny_dir, tmp_path):
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
    assert "it-was:good-bad" in captured.out and "just:good-bad" in captured.out and "← final" in captured.out
    metrics = json.loads((out / "metrics.json").read_text())["stages"]
    assert [m["stage"] for m in metrics] == ["pvp", "pvp", "ensemble"] and metrics[0]["k"] == 2
    assert metrics[0]["n_train"] == 4 and metrics[0]["n_test"] == 12 and metrics[2]["final"] is True

    preds = tmp_path / "preds.jsonl"
    rc = main(["predict", str(out), "--input", str(data), "--text-field", "review", "--output", str(preds)])
    assert rc == 0, capsys.readouterr().err
    lines = [json.loads(x) for x in preds.read_text().splitlines()]
    assert len(lines) == 16 and lines[0]["label"] in ("0", "1")
    assert set(lines[0]["probabilities"]) == {"0", "1"} and abs(sum(lines[0]["probabilities"].values()) - 1) < 1e-5

    # cls-ft needs no PVP files; an existing output folder needs --overwrite
    cls = ["train", "--data", str(data), "--text-field", "review", "--label-field", "stars", "--model", tiny_dir, "--method", "cls-ft",
           "--shots", "2", "--steps", "2", "--no-progress", "--output", str(out)]
    assert main(cls) == 2 and "not empty" in capsys.readouterr().err
    assert main([*cls, "--overwrite"]) == 0
    assert json.loads((out / CONFIG_FILE).read_text())["method"] == "cls-ft"


def test_cli_flags_come_from_the_options_dataclass(capsys):
    from pet.cli import main
    from pet.methods import get_method

    with pytest.raises(SystemExit):
        main(["train", "--method", "pet", "--help"])
    out = capsys.readouterr().out
    for f in get_method("pet").options.fields():
        if f.name != "seed":  # the run's --seed
            assert "--" + f.name.replace("_", "-") in out, f.name
    assert "--generations" not in out and "--distill-steps" in out and "optimizer steps of the distilled classifier" in out
    with pytest.raises(SystemExit):
        main(["train", "--method", "ipet", "--help"])
    assert "--generations" in capsys.readouterr().out


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
    assert main(["train", *common, "--method", "pet", "--shots", "2", "--generations", "2"]) == 2
    assert "unrecognized arguments: --generations 2" in capsys.readouterr().err
    assert main(["train", *common, "--method", "prompt-ft", "--shots", "2", "--steps", "-3"]) == 2
    assert "--steps" in capsys.readouterr().err
    assert main(["train", *common, "--method", "prompt-ft", "--batch-size", "0"]) == 2
    assert "--batch-size" in capsys.readouterr().err
    bad = tmp_path / "nothing"
    bad.mkdir()
    assert main(["predict", str(bad), "--input", str(data), "--text-field", "review", "--output", str(tmp_path / "p.jsonl")]) == 2
    assert "not a saved classifier" in capsys.readouterr().err
    assert main(["train", *common, "--method", "prompt-ft", "--shots", "2", "--output", str(pat)]) == 2
    assert "input" in capsys.readouterr().err
