"""pet-setfit: PET's ensemble distilled into a SetFit student. A tiny random masked LM for the
PVP models and a tiny random sentence-transformers body (tests/test_setfit.py's) for the student:
the options, the ensemble-labelled training set, the end-to-end fit, saving, `pet train`, and the
flagship add-on's experiment file."""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest
from conftest import REPO, SHARED
from test_setfit import make_body

from pet.data.registry import load_task
from pet.errors import ConfigError
from pet.estimator.classifier import CONFIG_FILE, PetClassifier
from pet.evaluation import evaluate
from pet.examples import Example
from pet.methods import FitSetup, get_method
from pet.methods.pet import PetOptions
from pet.methods.pet_setfit import PetSetFitOptions, ensemble_labelled
from pet.methods.setfit import SetFitOptions, SetFitPredictor
from pet.prompts.spec import PVP, Pattern, Verbalizer

pytestmark = pytest.mark.usefixtures("one_thread")

LABELS = ["0", "1"]
GOOD = ["good", "great", "fine", "lovely"]
BAD = ["bad", "awful", "dull", "boring"]
#: a tiny budget: 3 steps per prompt model, one pair per text and round for the student
BASE = {"steps": 3, "batch_size": 4, "lr": 1e-3, "max_length": 32, "eval_batch_size": 16, "student_num_iterations": 1}


def _task():
    """Labelled 4+4, a pool of 12 (one text equal to a labelled one), a test set of 6."""
    def make(i, tag):
        lab = str(i % 2)
        return Example({"text_a": f"the {tag} film {i} was {(GOOD if lab == '1' else BAD)[i % 4]}."}, lab, f"{tag}-{i}")

    labelled = [make(i, "train") for i in range(8)]
    pool = [Example(dict(e.fields), None, e.guid, {"gold_label": e.label}) for e in (make(i, "pool") for i in range(11))]
    pool.append(Example({"text_a": "  THE train film 0 was bad. "}, None, "dup"))  # a labelled text, respelled
    return labelled, pool, [make(i, "test") for i in range(6)]


def _setup(model: str, seed: int = 7) -> FitSetup:
    v1 = Verbalizer("good-bad", {"0": ["bad"], "1": ["good"]})
    v2 = Verbalizer("great-terrible", {"0": ["terrible"], "1": ["great"]})
    pvps = [PVP(Pattern("it-was", "{text_a} It was {mask}."), v1), PVP(Pattern("just", "Just {mask}! {text_a}"), v2)]
    return FitSetup(model=model, labels=list(LABELS), pvps=pvps, seed=seed, max_length=32, device="cpu")


@pytest.fixture(scope="module")
def body(tmp_path_factory) -> str:
    return make_body(tmp_path_factory.mktemp("st-student"))


@pytest.fixture()
def trainer_spy(monkeypatch):
    """Records the dataset every setfit.Trainer is built with (the student's training set)."""
    import setfit

    seen: list[dict] = []

    class Spy(setfit.Trainer):
        def __init__(self, *a, train_dataset=None, **kw):
            seen.append(train_dataset.to_dict())
            super().__init__(*a, train_dataset=train_dataset, **kw)

    monkeypatch.setattr(setfit, "Trainer", Spy)
    return seen


# ----------------------------------------------------------------------------- options


def test_options_are_pets_plus_every_setfit_option_as_student_option():
    m = get_method("pet-setfit")
    assert (m.family, m.uses_unlabelled, m.distils, m.baseline, m.needs_pvps) == ("hard", True, True, False, True)
    keys = set(PetSetFitOptions.keys())
    assert set(PetOptions.keys()) <= keys
    assert {f"student_{f.name}" for f in SetFitOptions.fields()} <= keys
    opts = m.make_options({"student_model": "st", "student_num_iterations": 4, "student_head": "differentiable", "steps": 9})
    assert opts.steps == 9 and opts.repetitions == 1 and m.needs_unlabelled(opts)
    # the student's options are SetFit's, with setfit's defaults where not given
    assert opts.student_options() == SetFitOptions(num_iterations=4, head="differentiable")
    help_of = {f.name: f.metadata["help"] for f in dataclasses.fields(PetSetFitOptions)}
    assert help_of["student_batch_size"].startswith("SetFit student: ") and "setfit: batch_size[0] = 16" in help_of["student_batch_size"]


@pytest.mark.parametrize(
    "options, pattern",
    [
        ({}, r"pet-setfit options: student_model is missing; fix: set student_model"),
        ({"student_model": "st", "distill_steps": 10}, r"distill_steps configures PET's \[CLS\] student.*; fix: drop it"),
        ({"student_model": "st", "distill": False}, r"distill=false leaves PET's ensemble final.*; fix: keep distill true"),
        ({"student_model": "st", "student_head": "svm"}, r"pet-setfit options: student_head='svm': not an allowed value; fix: use one of logistic"),
        ({"student_model": "st", "student_min_confidence": 1.5}, r"student_min_confidence=1.5: out of range; fix: use a value ≤ 1"),
        ({"student_model": "st", "student_modle": "x"}, r"unknown option 'student_modle'; fix: did you mean 'student_model'"),
    ],
)
def test_option_errors_are_one_line_with_a_fix(options, pattern):
    with pytest.raises(ConfigError, match=pattern) as err:
        get_method("pet-setfit").make_options(options)
    assert "\n" not in str(err.value)


def test_regression_and_a_missing_setfit_are_refused_before_any_prompt_model_trains(tiny_bert_dir, monkeypatch):
    import pet.methods.pet as pet_module

    monkeypatch.setattr(pet_module.PetTrainer, "_train_generation", lambda *a, **k: pytest.fail("trained before checking"))
    labelled, pool, _ = _task()
    m = get_method("pet-setfit")
    reg = dataclasses.replace(_setup(tiny_bert_dir), regression={"low": 0, "high": 5, "low_label": "0", "high_label": "1"})
    with pytest.raises(ConfigError, match="pet-setfit: regression tasks are not supported.*; fix:"):
        m.fit(labelled, pool, {"student_model": "st"}, reg)
    with pytest.raises(ConfigError, match="these options need unlabelled text but the unlabelled pool is empty"):
        m.fit(labelled, [], {"student_model": "st"}, _setup(tiny_bert_dir))
    monkeypatch.setitem(sys.modules, "setfit", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r'needs the `setfit` package; fix: pip install "pet-fewshot\[setfit\]"'):
        m.fit(labelled, pool, {"student_model": "st"}, _setup(tiny_bert_dir))


# ----------------------------------------------------------------------------- the student's training set


def test_ensemble_labelled_takes_argmax_drops_duplicates_and_low_confidence():
    labelled, pool, _ = _task()
    rng = np.random.default_rng(0)
    p1 = rng.uniform(0, 1, len(pool))
    proba = np.stack([1 - p1, p1], 1)
    train, info = ensemble_labelled(labelled, pool, proba, LABELS)
    assert train[:8] == labelled  # the labelled set first, gold labels untouched
    added = train[8:]
    assert [e.guid for e in added] == [e.guid for e in pool[:11]]  # "dup" repeats train-0's text
    assert [e.label for e in added] == [LABELS[i] for i in proba[:11].argmax(1)]
    assert info["pool_size"] == 12 and info["pool_used"] == 11 and info["pool_duplicates"] == 1
    assert info["pool_labels"] == {lab: sum(e.label == lab for e in added) for lab in LABELS}
    gold = [e.meta["gold_label"] for e in added]
    assert info["pool_label_accuracy"] == round(float(np.mean([g == e.label for g, e in zip(gold, added)])), 4)
    assert all(e.fields == p.fields and e.meta["ensemble_confidence"] == proba[i].max() for i, (e, p) in enumerate(zip(added, pool)))

    kept, info = ensemble_labelled(labelled, pool, proba, LABELS, min_confidence=0.7)
    expected = [p.guid for p, c in zip(pool[:11], proba[:11].max(1)) if c >= 0.7]
    assert [e.guid for e in kept[8:]] == expected and info["pool_used"] == len(expected) < 11
    with pytest.raises(ConfigError, match=r"proba has shape \(12, 3\), expected \(12, 2\); fix:"):
        ensemble_labelled(labelled, pool, np.ones((12, 3)) / 3, LABELS)


# ----------------------------------------------------------------------------- end to end


def test_fit_trains_the_student_on_ensemble_labels_and_saves_it(tiny_bert_dir, body, trainer_spy, tmp_path):
    labelled, pool, test = _task()
    opts = {**BASE, "student_model": body}
    fitted = get_method("pet-setfit").fit(labelled, pool, opts, _setup(tiny_bert_dir))
    assert [s.key for s in fitted.stages] == ["pvp[it-was:good-bad]", "pvp[just:great-terrible]", "ensemble", "distilled"]
    assert fitted.method == "pet-setfit" and fitted.final == "distilled" and fitted.model == tiny_bert_dir
    student = fitted.stage("distilled")
    assert isinstance(student.predictor, SetFitPredictor) and student.trained_parameters > 0 and student.train_seconds > 0

    # what the student was trained on: the labelled set (gold) + the pool less the duplicate,
    # each pool text with the label PET's ensemble stage gives it, recomputed here independently
    (seen,) = trainer_spy
    ens = fitted.stage("ensemble").predictor.predict_log_proba(pool[:11])
    assert seen["text"] == [e.fields["text_a"] for e in labelled + pool[:11]]
    assert seen["label"] == [LABELS.index(e.label) for e in labelled] + list(ens.argmax(1))
    extra = student.extra
    assert extra["pool_used"] == 11 and extra["train_size"] == 19 and extra["student_model"] == body and extra["steps"] > 0
    assert extra["teacher_members"] == 2 and extra["pool_labels"] == {lab: int((ens.argmax(1) == i).sum()) for i, lab in enumerate(LABELS)}

    rows = evaluate(fitted, test, load_task("sst2"))
    assert [r["final"] for r in rows] == [False, False, False, True]
    proba = np.exp(student.predictor.predict_log_proba(test))
    assert rows[-1]["score"] == float(np.mean([LABELS[i] == e.label for i, e in zip(proba.argmax(1), test)]))

    # the final stage saves and loads through the predictor registry, probabilities unchanged
    out = PetClassifier.from_fitted(fitted).save(tmp_path / "saved")
    meta = json.loads((out / CONFIG_FILE).read_text())
    assert meta["method"] == "pet-setfit" and meta["final_stage"] == "distilled" and meta["predictor"]["kind"] == "setfit"
    assert meta["options"]["student_model"] == body
    loaded = PetClassifier.load(out, device="cpu")
    np.testing.assert_allclose(loaded.predict_proba(test), proba, atol=1e-6)


def test_min_confidence_shrinks_what_the_student_receives(tiny_bert_dir, body, trainer_spy):
    labelled, pool, _ = _task()
    fitted = get_method("pet-setfit").fit(labelled, pool, {**BASE, "student_model": body, "student_min_confidence": 0.5001}, _setup(tiny_bert_dir))
    conf = np.exp(fitted.stage("ensemble").predictor.predict_log_proba(pool[:11])).max(1)
    (seen,) = trainer_spy
    assert len(seen["text"]) == 8 + int((conf >= 0.5001).sum()) == fitted.stage("distilled").extra["train_size"]


def test_pet_setfit_loads_the_members_pet_trained_on_the_same_split(tiny_bert_dir, body, tmp_path, monkeypatch):
    """PET and pet-setfit differ only after the ensemble: with a shared ``members_dir`` the second
    fit trains no PVP model and its ensemble is PET's, to the last digit."""
    import pet.methods.pet as pet_module

    labelled, pool, test = _task()
    trained: list = []
    real = pet_module.train_prompt_model
    monkeypatch.setattr(pet_module, "train_prompt_model", lambda *a, **kw: trained.append(a[1].id) or real(*a, **kw))

    def setup(cell):
        return dataclasses.replace(_setup(tiny_bert_dir), resume_dir=tmp_path / cell, members_dir=tmp_path / "members")

    pet_fit = get_method("pet").fit(labelled, pool, {k: v for k, v in BASE.items() if not k.startswith("student_")}, setup("pet"))
    assert len(trained) == 2
    both = get_method("pet-setfit").fit(labelled, pool, {**BASE, "student_model": body}, setup("pet-setfit"))
    assert len(trained) == 2  # nothing more
    assert [s.extra["member"] for s in both.stages if s.name == "pvp"] == [s.extra["member"] for s in pet_fit.stages if s.name == "pvp"]
    for key in ("pvp[it-was:good-bad]", "pvp[just:great-terrible]", "ensemble"):
        np.testing.assert_array_equal(both.stage(key).predictor.predict_log_proba(test), pet_fit.stage(key).predictor.predict_log_proba(test), err_msg=key)


def test_pet_train_cli_fits_and_saves_pet_setfit(tiny_bert_dir, body, tmp_path, capsys):
    from pet.cli import main

    data = tmp_path / "reviews.csv"
    texts = [f"the film {i} was {(GOOD if i % 2 else BAD)[i % 4]}" for i in range(24)]
    data.write_text("text,label\n" + "".join(f"{t},{i % 2}\n" for i, t in enumerate(texts)))
    (tmp_path / "pool.csv").write_text("text\n" + "".join(f"a pool film {i} was {(GOOD + BAD)[i]}\n" for i in range(8)))
    (tmp_path / "p.json").write_text('{"patterns": [{"id": "p", "template": "{text_a} It was {mask}."}]}')
    (tmp_path / "v.json").write_text('{"verbalizers": [{"id": "v", "labels": {"0": ["bad"], "1": ["good"]}}]}')
    with pytest.raises(SystemExit):
        main(["train", "--method", "pet-setfit", "--help"])
    help_text = capsys.readouterr().out
    for flag in ("--student-model", "--student-num-iterations", "--student-min-confidence", "--repetitions", "--mlm-weight"):
        assert flag in help_text, flag
    base = ["train", "--data", str(data), "--patterns", str(tmp_path / "p.json"), "--verbalizers", str(tmp_path / "v.json"),
            "--model", tiny_bert_dir, "--method", "pet-setfit", "--shots", "3", "--unlabelled", str(tmp_path / "pool.csv"), "--steps", "2",
            "--max-length", "32", "--no-progress"]
    assert main(base) == 2  # no --student-model
    err = capsys.readouterr().err.strip()
    assert "student_model is missing" in err and "fix:" in err and len(err.splitlines()) == 1
    out = tmp_path / "model"
    rc = main([*base, "--student-model", body, "--student-num-iterations", "1", "--output", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "distilled" in captured.out and "← final" in captured.out
    meta = json.loads((out / CONFIG_FILE).read_text())
    assert meta["method"] == "pet-setfit" and meta["predictor"]["kind"] == "setfit" and meta["options"]["student_num_iterations"] == 1
    assert json.loads((out / "metrics.json").read_text())["stages"][-1]["key"] == "distilled"


# ----------------------------------------------------------------------------- the flagship add-on


def test_flagship_pet_setfit_pairs_with_the_flagship(monkeypatch):
    from pet.bench.experiment import load_experiment
    from pet.bench.grid import expand_grid

    monkeypatch.chdir(REPO)
    flag = load_experiment(REPO / "benchmarks" / "flagship.yaml")
    exp = load_experiment(REPO / "benchmarks" / "flagship_pet_setfit.yaml")
    assert exp.results_dir() == flag.results_dir()  # the same store
    for attr in ("k", "seeds", "unlabelled", "test_limit", "budgets"):
        assert getattr(exp, attr) == getattr(flag, attr), attr
    cells = expand_grid(exp, str(SHARED / "models" / "minilm-mlm"))
    assert len(cells) == 80 and {c.method_name for c in cells} == {"pet-setfit"}
    assert {c.task for c in cells} == {c.task for c in expand_grid(flag, "m")}
    default, paper = exp.methods
    (pet_entry,) = [m for m in flag.methods if m.name == "pet"]
    (setfit_entry,) = [m for m in flag.methods if m.name == "setfit"]
    pet_recipe = {k: v for k, v in pet_entry.options.items() if k not in ("distill_steps", "distill_batch_size", "temperature")}
    for entry in (default, paper):
        assert {k: v for k, v in entry.options.items() if not k.startswith("student_")} == pet_recipe
        assert entry.pvps == pet_entry.pvps and entry.model is None  # the PVP models on --model, as flagship's pet
        assert entry.options["student_model"] == setfit_entry.model  # setfit's body
    assert [k for k in default.options if k.startswith("student_")] == ["student_model"]  # at setfit's defaults
    (sf_paper,) = load_experiment(REPO / "benchmarks" / "flagship_setfit_paper.yaml").methods
    assert paper.label == "pet-setfit-paper" and paper.options["student_num_iterations"] == sf_paper.options["num_iterations"] == 20
    assert {k for k in paper.options if k.startswith("student_")} == {"student_model", "student_num_iterations"}

    # every split's pet, pet-setfit and pet-setfit-paper cells train the very same PVP models
    def members(c):
        m = get_method(c.method_name)
        return (c.task, c.seed, tuple(c.pvps), c.unlabelled, c.selection, json.dumps(m.member_options(m.make_options(c.options)), sort_keys=True))

    pet_cells = [c for c in expand_grid(flag, str(SHARED / "models" / "minilm-mlm")) if c.method == "pet"]
    assert len(pet_cells) == 40 and {members(c) for c in cells} == {members(c) for c in pet_cells}
