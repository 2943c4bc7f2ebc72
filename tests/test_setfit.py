"""The `setfit` method: SetFit through the setfit library on a tiny random sentence-transformers
body (a 2-layer, width-32 BertModel on the real WordPiece tokenizer, mean pooling), fitted,
predicted, saved, loaded — via PetClassifier, `pet train` and the bench runner."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from conftest import REPO, SHARED, TOKENIZERS

from pet.errors import ConfigError, ModelError, UsageError
from pet.estimator.classifier import CONFIG_FILE, PetClassifier
from pet.examples import Example
from pet.methods import get_method

pytestmark = pytest.mark.usefixtures("one_thread")

POS = ["a good film", "great acting", "lovely story", "wonderful cast", "superb plot", "fine music"]
NEG = ["a bad film", "awful acting", "dull story", "weak cast", "poor plot", "noisy music"]
TEXTS, Y = POS + NEG, [1] * len(POS) + [0] * len(NEG)


def make_body(folder) -> str:
    """A tiny random sentence-transformers folder (BertModel from a config, mean pooling)."""
    import torch
    import transformers as tf
    from sentence_transformers import SentenceTransformer

    tok = tf.AutoTokenizer.from_pretrained(str(TOKENIZERS / "bert-wordpiece"))
    torch.manual_seed(0)
    cfg = tf.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128, pad_token_id=tok.pad_token_id)
    plain = folder / "plain"
    tf.BertModel(cfg).save_pretrained(plain)
    tok.save_pretrained(plain)
    st = SentenceTransformer(str(plain), device="cpu")  # a plain encoder gets mean pooling
    st.save(str(folder / "body"))
    shutil.rmtree(plain)
    return str(folder / "body")


@pytest.fixture(scope="module")
def body(tmp_path_factory) -> str:
    return make_body(tmp_path_factory.mktemp("st-tiny"))


@pytest.fixture()
def moved_body(tmp_path):
    """A body that is deleted after fitting: loading a saved folder must not need it."""
    return make_body(tmp_path)


@pytest.mark.parametrize("options", [{}, {"head": "differentiable", "head_epochs": 2, "num_iterations": 2}])
def test_fit_predict_save_load_identical(moved_body, tmp_path, options):
    clf = PetClassifier(moved_body, method="setfit", options=options, seed=3).fit(TEXTS, Y)
    proba = clf.predict_proba(TEXTS)
    assert proba.shape == (len(TEXTS), 2) and np.allclose(proba.sum(1), 1)
    assert set(clf.predict(TEXTS)) <= {0, 1} and list(clf.classes_) == [0, 1]
    stage = clf.fitted_.stage()
    assert stage.extra["steps"] > 0 and stage.trained_parameters > 0 and stage.train_seconds > 0

    out = clf.save(tmp_path / "saved")
    spec = json.loads((out / CONFIG_FILE).read_text())["predictor"]
    assert spec["kind"] == "setfit" and spec["head"]["type"] == (options.get("head") or "logistic")
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert "setfit/model_head.safetensors" in files and "setfit/modules.json" in files
    assert not any(f.endswith((".pkl", ".bin", ".pt")) for f in files)  # no pickle in the folder

    shutil.rmtree(moved_body)  # nothing outside the saved folder may be read
    again = PetClassifier.load(out)
    assert np.allclose(again.predict_proba(TEXTS), proba, atol=1e-6)
    assert list(again.predict(TEXTS)) == list(clf.predict(TEXTS))


def test_normalize_embeddings_reaches_the_head_and_survives_saving(moved_body, tmp_path):
    """``normalize_embeddings`` (setfit's own switch) L2-normalises what the head reads: the fitted
    logistic head sees unit vectors (the tiny body has no Normalize module, so without the option
    it does not), and a saved folder keeps it."""
    on = PetClassifier(moved_body, method="setfit", options={"normalize_embeddings": True, "num_iterations": 2}, seed=3).fit(TEXTS, Y)
    off = PetClassifier(moved_body, method="setfit", options={"num_iterations": 2}, seed=3).fit(TEXTS, Y)
    model_on, model_off = (c.fitted_.stage().predictor.model for c in (on, off))
    assert model_on.normalize_embeddings and not model_off.normalize_embeddings
    norms = np.linalg.norm(model_off.model_body.encode(TEXTS), axis=1)
    assert not np.allclose(norms, 1.0, atol=1e-3)  # the body itself does not normalise
    proba_on, proba_off = on.predict_proba(TEXTS), off.predict_proba(TEXTS)
    assert not np.allclose(proba_on, proba_off, atol=1e-4)  # the same body and pairs, another head input
    want = model_on.model_head.predict_proba(model_on.model_body.encode(TEXTS, normalize_embeddings=True))
    assert np.allclose(proba_on, want, atol=1e-6)  # what the head reads: the normalised embeddings
    out = on.save(tmp_path / "saved")
    shutil.rmtree(moved_body)
    again = PetClassifier.load(out)
    assert again.fitted_.stage().predictor.model.normalize_embeddings
    assert np.allclose(again.predict_proba(TEXTS), proba_on, atol=1e-6)


def test_same_seed_same_model_other_seed_differs(body):
    a = PetClassifier(body, method="setfit", seed=5).fit(TEXTS, Y).predict_proba(TEXTS)
    b = PetClassifier(body, method="setfit", seed=5).fit(TEXTS, Y).predict_proba(TEXTS)
    c = PetClassifier(body, method="setfit", seed=6).fit(TEXTS, Y).predict_proba(TEXTS)
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_options_defaults_are_setfits_and_are_checked():
    from setfit import TrainingArguments

    opts = get_method("setfit").make_options({})
    args = TrainingArguments()
    assert (opts.batch_size, opts.head_batch_size) == args.batch_size
    assert (opts.epochs, opts.head_epochs) == args.num_epochs
    assert (opts.body_learning_rate, opts.end_to_end_learning_rate) == args.body_learning_rate
    assert opts.head_learning_rate == args.head_learning_rate and opts.sampling_strategy == args.sampling_strategy
    assert opts.num_iterations == args.num_iterations and opts.warmup_proportion == args.warmup_proportion
    assert opts.l2_weight == args.l2_weight and opts.end_to_end == args.end_to_end and opts.max_length == args.max_length
    assert get_method("setfit").family == "baseline" and not get_method("setfit").needs_pvps
    with pytest.raises(ConfigError, match="head='svm'.*fix: use one of logistic, differentiable"):
        get_method("setfit").make_options({"head": "svm"})
    with pytest.raises(ConfigError, match="unknown option 'num_iteration'.*did you mean 'num_iterations'"):
        get_method("setfit").make_options({"num_iteration": 5})


def test_pairs_are_joined_with_the_separator_and_labels_absent_from_training_get_zero(body):
    from pet.methods.setfit import example_texts

    ex = [Example({"text_a": "A man sleeps.", "text_b": "Someone rests."}, "entailment"), Example({"text_a": "x"}, "entailment")]
    assert example_texts(ex, "[SEP]") == ["A man sleeps. [SEP] Someone rests.", "x"]
    clf = PetClassifier(body, method="setfit", labels=["0", "1", "2"]).fit(TEXTS, [str(y) for y in Y])
    lp = clf.predict_log_proba(TEXTS)
    assert lp.shape == (len(TEXTS), 3) and np.all(lp[:, 2] < -20) and np.allclose(np.exp(lp).sum(1), 1)


def test_errors_are_one_line_with_a_fix(body, tmp_path, monkeypatch):
    from pet.methods.base import FitSetup

    m = get_method("setfit")
    train = [Example({"text_a": t}, str(y)) for t, y in zip(TEXTS, Y)]
    with pytest.raises(ConfigError, match="regression tasks are not supported"):
        m.fit(train, [], {}, FitSetup(body, ["0", "1"], regression={"low": 0, "high": 5, "low_label": "0", "high_label": "1"}))
    with pytest.raises(ModelError, match="not a loadable sentence-transformers body.*fix:"):
        m.fit(train, [], {}, FitSetup(str(tmp_path / "nowhere"), ["0", "1"]))
    with pytest.raises(ConfigError, match=r"max_length 100000 is more than model .* can read \(128 positions\); fix: --max-length 128"):
        m.fit(train, [], {"max_length": 100000}, FitSetup(body, ["0", "1"]))
    with pytest.raises(UsageError, match=r"device 'tpu' is not a device name; fix:"):
        m.fit(train, [], {}, FitSetup(body, ["0", "1"], device="tpu"))
    monkeypatch.setitem(sys.modules, "setfit", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r'needs the `setfit` package; fix: pip install "pet-fewshot\[setfit\]"'):
        m.fit(train, [], {}, FitSetup(body, ["0", "1"]))


def test_foreign_sentence_transformers_module_is_refused(body, tmp_path):
    from pet.methods.setfit import SetFitPredictor

    clf = PetClassifier(body, method="setfit", options={"max_steps": 1}).fit(TEXTS, Y)
    spec = clf.fitted_.predictor.save(tmp_path)
    modules = json.loads((tmp_path / "setfit" / "modules.json").read_text())
    modules[0]["type"] = "os.system"
    (tmp_path / "setfit" / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelError, match="'os.system' is not a sentence-transformers module"):
        SetFitPredictor.load(spec, tmp_path)
    with pytest.raises(Exception, match="leads out of the folder"):
        SetFitPredictor.load({**spec, "path": "../elsewhere"}, tmp_path)


def test_cli_train_setfit_on_own_data(body, tmp_path, capsys):
    from pet.cli import main

    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps({"review": t, "stars": y}) + "\n" for t, y in zip(TEXTS * 2, Y * 2)))
    with pytest.raises(SystemExit):
        main(["train", "--method", "setfit", "--help"])
    help_text = capsys.readouterr().out
    for flag in ("--num-iterations", "--sampling-strategy", "--body-learning-rate", "--head", "--head-learning-rate", "--max-length"):
        assert flag in help_text, flag
    out = tmp_path / "model"
    rc = main(["train", "--data", str(data), "--text-field", "review", "--label-field", "stars", "--model", body, "--method", "setfit",
               "--shots", "3", "--num-iterations", "2", "--no-progress", "--output", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "setfit (accuracy" in captured.out and "← final" in captured.out
    assert "loss" not in captured.out and "Map:" not in captured.err  # the library's logs and bars stay quiet
    meta = json.loads((out / CONFIG_FILE).read_text())
    assert meta["method"] == "setfit" and meta["options"]["num_iterations"] == 2


def test_bench_cell(body, tmp_path, monkeypatch):
    import yaml

    from pet.bench.experiment import load_experiment
    from pet.bench.runner import run_experiment
    from pet.bench.store import ResultsStore

    data = tmp_path / "data" / "tiny"
    data.mkdir(parents=True)
    (data / "train.csv").write_text("sentence,label\n" + "".join(f"{t},{y}\n" for t, y in zip(TEXTS, Y)))
    (data / "test.csv").write_text("sentence,label\ntest good,1\ntest awful,0\ntest lovely,1\n")
    (tmp_path / "patterns.json").write_text(json.dumps({"task": "tiny", "patterns": [{"id": "p", "template": "{text_a} It was {mask}."}]}))
    (tmp_path / "verbalizers.json").write_text(json.dumps({"task": "tiny", "verbalizers": [{"id": "v", "labels": {"0": ["bad"], "1": ["good"]}}]}))
    (tmp_path / "tiny.json").write_text(json.dumps({
        "name": "tiny", "folder": "tiny", "fields": {"text_a": "sentence"}, "label": "label", "labels": {"0": "negative", "1": "positive"},
        "splits": {"train": {"file": "train.csv"}, "test": {"file": "test.csv"}}, "metric": "accuracy", "default_pvps": [["p", "v"]],
        "max_length": 32, "patterns": "patterns.json", "verbalizers": "verbalizers.json", "test_note": "unit test"}))
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({"name": "t", "model": body, "results": "results", "tasks": ["tiny.json"], "k": [2], "seeds": [1],
                                   "methods": [{"name": "setfit", "options": {"num_iterations": 2}}]}))
    monkeypatch.setenv("PET_DATA_DIR", str(tmp_path / "data"))
    summary = run_experiment(load_experiment(exp), progress=False, echo=lambda s: None)
    assert summary.computed == 1 and summary.failed == 0
    rows = ResultsStore(tmp_path / "results").rows()
    assert len(rows) == 1 and rows[0]["method"] == "setfit" and rows[0]["final"] and rows[0]["test"]["n"] == 3
    assert 0 <= rows[0]["score"] <= 1 and rows[0]["trained_parameters"] > 0


def test_flagship_experiment_validates_with_setfit_on_its_own_body(monkeypatch):

    from pet.bench.experiment import load_experiment
    from pet.bench.grid import expand_grid

    monkeypatch.chdir(REPO)  # the setfit entry's model path is relative to the working directory
    exp = load_experiment(REPO / "benchmarks" / "flagship.yaml")
    assert exp.k == (16,) and exp.seeds == (13, 21, 42, 87, 100)
    mlm = str(SHARED / "models" / "minilm-mlm")
    cells = expand_grid(exp, mlm)
    tasks = {c.task for c in cells}
    assert tasks == {"sst2", "sst5", "mr", "cr", "mpqa", "subj", "trec", "rte"}
    methods = {c.method_name for c in cells}
    assert methods == {"zero-shot", "prompt-ft", "pet", "cls-ft", "setfit", "prompt-tuning", "p-tuning", "deep-prompt"}
    assert len(cells) == 8 * 5 * 8
    setfit_models = {c.model for c in cells if c.method_name == "setfit"}
    assert setfit_models == {"../shared/models/all-minilm-l6-v2"}
    assert {c.model for c in cells if c.method_name != "setfit"} == {mlm}
    assert get_method("setfit").baseline and not get_method("setfit").distils and not get_method("setfit").uses_unlabelled
