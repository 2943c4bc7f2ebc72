"""Hostile input to PetClassifier and its saved folder (audit 3, findings 1, 6, 7, 9, 12, 13, 19):
re-saving never deletes a user's file, estimator parameters and saved predictor specs are checked
with one-line errors naming the parameter or JSON path, and `pet predict` never drops a column."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pet.errors import ConfigError, ModelError, PetError, UsageError
from pet.estimator.classifier import CONFIG_FILE, PetClassifier
from pet.estimator.manifest import write_manifest
from pet.prompts.spec import PVP, Pattern, Verbalizer

GOOD_BAD = Verbalizer("good-bad", {"0": ["bad"], "1": ["good"]})
PVPS = [PVP(Pattern("it-was", "{text_a} It was {mask}."), GOOD_BAD), PVP(Pattern("just", "Just {mask}! {text_a}"), GOOD_BAD)]
TEXTS = ["good", "bad", "good good", "bad bad"]
Y = ["1", "0", "1", "0"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def zs(tiny_bert_dir):
    """A zero-shot classifier on one PVP (one member: no training, so fast)."""
    return PetClassifier(tiny_bert_dir, "zero-shot", pvps=PVPS[:1], options={"max_length": 32}).fit(TEXTS, Y)


@pytest.fixture(scope="module")
def zs2(tiny_bert_dir):
    """Zero-shot on two PVPs: the final stage is a two-member ensemble."""
    return PetClassifier(tiny_bert_dir, "zero-shot", pvps=PVPS, options={"max_length": 32}).fit(TEXTS, Y)


def _one_line(e: BaseException) -> str:
    msg = str(e)
    assert "\n" not in msg and "fix:" in msg, msg
    return msg


# ----------------------------------------------------------------------------- finding 1: re-saving keeps the user's files


@pytest.mark.parametrize("entry", ["MY_NOTES.txt", "models/0/notes.txt", "figs/", ".git/", ".gitattributes"])
def test_resave_refuses_a_folder_holding_user_files(zs, tmp_path, entry):
    out = zs.save(tmp_path / "m")
    target = out / entry.rstrip("/")
    if entry.endswith("/"):
        target.mkdir()
        (target / "a.png").write_text("img")
    else:
        target.write_text("mine")
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    for save in (lambda: zs.save_pretrained(out), lambda: zs.save(out, overwrite=True)):
        with pytest.raises(UsageError, match=rf"{out}: holds {entry}, which a saved classifier folder does not.*fix: move it out") as e:
            save()
        _one_line(e.value)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before  # nothing lost, nothing added
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no partial folder left beside it
    if entry.startswith("models/"):  # the user's file inside a pet subfolder: loading refuses it too
        target.unlink()
    elif not entry.startswith("."):
        import shutil

        shutil.rmtree(target) if target.is_dir() else target.unlink()
    else:
        return
    zs.save_pretrained(out)  # once the user's file is gone, the saved folder is replaced as before
    assert np.array_equal(PetClassifier.load(out).predict_proba(TEXTS), zs.predict_proba(TEXTS))


def test_resave_without_manifest_allows_only_pets_names(zs, tmp_path):
    out = zs.save(tmp_path / "m")
    (out / "manifest.json").unlink()
    (out / "thesis.tex").write_text("mine")
    with pytest.raises(UsageError, match=r"holds thesis.tex, which a saved classifier folder does not"):
        zs.save_pretrained(out)
    assert (out / "thesis.tex").read_text() == "mine"
    (out / "thesis.tex").unlink()
    zs.save_pretrained(out)  # only names pet writes: replaced
    assert (out / "manifest.json").is_file() and PetClassifier.load(out).predict(TEXTS).shape == (4,)


def test_a_file_added_while_saving_is_kept(zs, tmp_path, monkeypatch):
    """The check runs again just before the swap: a file the user adds to the old folder while a
    long save runs is not deleted either."""
    import pet.estimator.folder as folder

    out = zs.save(tmp_path / "m")
    real = folder.write_manifest

    def late_user(d):
        (out / "late.txt").write_text("mine")
        return real(d)

    monkeypatch.setattr(folder, "write_manifest", late_user)
    with pytest.raises(UsageError, match="holds late.txt"):
        zs.save_pretrained(out)
    assert (out / "late.txt").read_text() == "mine" and [p.name for p in tmp_path.iterdir()] == ["m"]


# ----------------------------------------------------------------------------- finding 6: labels=


def test_duplicate_labels_are_refused(tiny_bert_dir):
    for labels, dup in ((["0", "0", "1"], "0"), ([0, "0", 1], "0"), ([1.0, 1], "1")):
        with pytest.raises(ConfigError, match=rf"PetClassifier\(labels=.*\): '{dup}' is listed twice.*fix: list each label once") as e:
            PetClassifier(tiny_bert_dir, "zero-shot", task="sst2", labels=labels).fit(TEXTS, [1, 0, 1, 0])
        _one_line(e.value)
    for labels in ("01", [], ["0", None]):
        with pytest.raises(ConfigError, match=r"PetClassifier\(labels="):
            PetClassifier(tiny_bert_dir, "zero-shot", task="sst2", labels=labels).fit(TEXTS, [1, 0, 1, 0])


def test_classes_take_the_type_of_y_when_labels_are_strings(tiny_bert_dir):
    """scikit-learn's convention: classes_ are values of y; labels= sets their order."""
    y = [1, 0, 1, 0]
    clf = PetClassifier(tiny_bert_dir, "zero-shot", task="sst2", labels=["1", "0"], options={"max_length": 32}).fit(TEXTS, y)
    assert list(clf.classes_) == [1, 0] and clf.classes_.dtype.kind == "i" and clf.labels_ == ["1", "0"]
    assert clf.predict(TEXTS).dtype.kind == "i" and 0 <= clf.score(TEXTS, y) <= 1  # was: "Mix of label input types"
    strs = PetClassifier(tiny_bert_dir, "zero-shot", task="sst2", labels=[1, 0], options={"max_length": 32}).fit(TEXTS, ["1", "0", "1", "0"])
    assert list(strs.classes_) == ["1", "0"]


# ----------------------------------------------------------------------------- findings 13 and 19: parameters checked at fit


@pytest.mark.parametrize("params,match", [
    ({"seed": "abc"}, r"PetClassifier\(seed='abc'\): not an integer; fix: pass an integer from 0 to 4294967295"),
    ({"seed": 1.7}, r"PetClassifier\(seed=1.7\): not an integer"),
    ({"seed": True}, r"PetClassifier\(seed=True\): not an integer"),
    ({"seed": -1}, r"PetClassifier\(seed=-1\): out of range"),
    ({"seed": 2**32}, r"PetClassifier\(seed=4294967296\): out of range"),
    ({"max_length": 0}, r"PetClassifier\(max_length=0\): not a positive integer; fix: pass a number of tokens"),
    ({"max_length": "x"}, r"PetClassifier\(max_length='x'\): not a positive integer"),
    ({"max_length": 12.5}, r"PetClassifier\(max_length=12.5\): not a positive integer"),
    ({"pvps": "it-was:great-terrible"}, r"PetClassifier\(pvps='it-was:great-terrible'\): a single string, not a list of PVP ids; "
                                        r"fix: wrap it in a list: pvps=\['it-was:great-terrible'\]"),
    ({"pvps": ["it-was:great-terrible", 3]}, r"a int is not a 'pattern:verbalizer' id or a PVP"),
    ({"pvps": ["it-was:great-terrible", "it-was:great-terrible"]}, r"'it-was:great-terrible' is listed twice"),
    ({"task": 5}, r"PetClassifier\(task=5\): not a name or file path"),
])
def test_parameters_are_checked_at_fit(tiny_bert_dir, params, match):
    clf = PetClassifier(tiny_bert_dir, "zero-shot", **{"task": "sst2", **params})
    assert clf.get_params()[next(iter(params))] == params[next(iter(params))]  # __init__ stores them untouched
    with pytest.raises(ConfigError, match=match) as e:
        clf.fit(TEXTS, [1, 0, 1, 0])
    _one_line(e.value)


def test_numpy_integer_seed_and_max_length_are_accepted(tiny_bert_dir):
    clf = PetClassifier(tiny_bert_dir, "zero-shot", task="sst2", seed=np.int64(3), max_length=np.int32(32)).fit(TEXTS, [1, 0, 1, 0])
    assert clf.predict_proba(TEXTS).shape == (4, 2)


# ----------------------------------------------------------------------------- finding 9: predict_stream


@pytest.mark.parametrize("chunk_size", [0, -1, 1.5, True, "2"])
def test_predict_stream_refuses_bad_chunk_sizes_at_the_call(zs, chunk_size):
    with pytest.raises(ConfigError, match=rf"predict_stream: chunk_size={chunk_size!r} is not a positive integer; fix:"):
        zs.predict_stream(TEXTS, chunk_size=chunk_size)  # at the call, not at the first next()


def test_predict_stream_yields_every_input(zs):
    out = list(zs.predict_stream(iter(TEXTS), chunk_size=3))
    assert [x for x, _ in out] == TEXTS and np.allclose(np.stack([p for _, p in out]), zs.predict_proba(TEXTS))


# ----------------------------------------------------------------------------- finding 12: the saved predictor spec


def _tampered(clf, tmp_path, **changes):
    """A saved folder whose ``$.predictor`` has ``changes``, with a regenerated manifest (a folder
    received from someone else)."""
    out = clf.save(tmp_path / "t")
    meta = json.loads((out / CONFIG_FILE).read_text())
    meta["predictor"].update(changes)
    (out / CONFIG_FILE).write_text(json.dumps(meta))
    write_manifest(out)
    return out


@pytest.mark.parametrize("changes,path,what", [
    ({"max_length": "x"}, "max_length", "'x' is not a positive integer"),
    ({"max_length": 0}, "max_length", "0 is not a positive integer"),
    ({"batch_size": 0}, "batch_size", "0 is not a positive integer"),
    ({"batch_size": None}, "batch_size", "null is not a positive integer"),
    ({"priors": [0, 0]}, "priors", r"\[0, 0\] is not a list of 1 priors"),
    ({"priors": [0.5]}, r"priors\[0\]", r"0.5 is not a list of 2 log-probabilities"),
    ({"priors": [["a", 0]]}, r"priors\[0\]\[0\]", "'a' is not a finite number"),
    ({"weights": [1, 2, 3]}, "weights", r"\[1, 2, 3\] is not a list of 1 non-negative numbers"),
    ({"weights": [-1]}, r"weights\[0\]", "-1 is not a non-negative number"),
    ({"weights": [math.nan]}, r"weights\[0\]", "nan is not a non-negative number"),
    ({"weights": "heavy"}, "weights", "'heavy' is not a list of 1"),
])
def test_bad_predictor_spec_values_are_named(zs, tmp_path, changes, path, what):
    out = _tampered(zs, tmp_path, **changes)
    with pytest.raises(PetError, match=rf"{out / CONFIG_FILE}: \$\.predictor\.{path}: {what}.*; fix: re-save the folder") as e:
        PetClassifier.load(out)
    _one_line(e.value)


def test_ensemble_weights_of_two_members_name_the_file(zs2, tmp_path):
    for weights, path in (([1], "weights"), ([0, 0], "weights"), ([1, -1], r"weights\[1\]")):
        out = _tampered(zs2, tmp_path, weights=weights)
        with pytest.raises(ModelError, match=rf"{CONFIG_FILE}: \$\.predictor\.{path}: .*; fix: re-save the folder") as e:
            PetClassifier.load(out)
        _one_line(e.value)
        import shutil

        shutil.rmtree(out)
    good = PetClassifier.load(_tampered(zs2, tmp_path, weights=[3, 1]))  # valid weights still load and weigh
    assert good.predict_proba(TEXTS).shape == (4, 2)


def test_good_priors_still_load(zs, tmp_path):
    out = _tampered(zs, tmp_path, priors=[[math.log(0.25), math.log(0.75)]])
    lp = PetClassifier.load(out).predict_log_proba(TEXTS)
    expected = zs.predict_log_proba(TEXTS) - np.log([0.25, 0.75])
    expected -= np.log(np.exp(expected).sum(1, keepdims=True))
    np.testing.assert_allclose(lp, expected, atol=1e-6)


# ----------------------------------------------------------------------------- finding 7: pet predict column collisions


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_predict_never_drops_a_colliding_column(zs, tmp_path, capsys, fmt):
    from pet.cli import main

    model = zs.save(tmp_path / "m")
    src = tmp_path / "in.csv"
    src.write_text("text,label,input_label\ngreat film,GOLD1,OTHER\n")
    out = tmp_path / f"pred.{fmt}"
    assert main(["predict", str(model), "--input", str(src), "--output", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--input column 'label' would be written as 'input_label'" in err and "also has a column 'input_label'" in err
    assert "fix: rename one of the two columns" in err and not out.exists()
    # leaving one of them out works, and the gold label is carried as input_label
    assert main(["predict", str(model), "--input", str(src), "--output", str(out), "--keep", "text", "label", "--no-progress"]) == 0
    capsys.readouterr()
    if fmt == "jsonl":
        row = json.loads(out.read_text().splitlines()[0])
        assert row["input_label"] == "GOLD1" and row["label"] in ("0", "1")
    else:
        header, row = out.read_text().splitlines()
        assert header == "text,input_label,label,p_0,p_1" and row.startswith("great film,GOLD1,")


def test_predict_finds_a_column_collision_before_the_model_loads(zs, tmp_path, capsys, monkeypatch):
    """The collision is read from the folder's labels and the input's rows alone: a JSONL whose
    last row collides (a p_<label> column and input_p_<label>) fails before any weight is read."""
    from pet.cli import main

    model = zs.save(tmp_path / "m")
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "a"}\n{"text": "b", "p_1": 0.5, "input_p_1": 1}\n')
    loads = []
    monkeypatch.setattr(PetClassifier, "load", classmethod(lambda cls, *a, **k: loads.append(a)))
    out = tmp_path / "pred.jsonl"
    assert main(["predict", str(model), "--input", str(src), "--output", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--input column 'p_1' would be written as 'input_p_1'" in err and loads == [] and not out.exists()
    # a row with both names makes pet read the folder's labels: a folder without its config is named in one line, still unloaded
    (model / CONFIG_FILE).unlink()
    assert main(["predict", str(model), "--input", str(src), "--output", str(out), "--no-progress"]) != 0
    assert f"{CONFIG_FILE} missing" in capsys.readouterr().err and loads == []


def test_bad_demonstration_settings_are_named(tiny_bert_dir, tmp_path):
    clf = PetClassifier(tiny_bert_dir, "zero-shot", pvps=PVPS[:1], options={"max_length": 32, "demonstrations": True, "demo_sets": 1}).fit(TEXTS, Y)
    for demo, path, what in (({"sets": "x"}, "demonstrations", "sets"), ({"sets": 0}, "demonstrations", "sets"),
                             ({"pool": [{"label": "1"}]}, r"demonstrations\.pool\[0\]\.fields", "not an object of text fields")):
        out = clf.save(tmp_path / "t", overwrite=True)
        meta = json.loads((out / CONFIG_FILE).read_text())
        meta["predictor"]["demonstrations"].update(demo)
        (out / CONFIG_FILE).write_text(json.dumps(meta))
        write_manifest(out)
        with pytest.raises(ModelError, match=rf"\$\.predictor\.{path}.*{what}.*; fix: re-save the folder") as e:
            PetClassifier.load(out)
        _one_line(e.value)
    assert np.array_equal(PetClassifier.load(clf.save(tmp_path / "ok")).predict_proba(TEXTS), clf.predict_proba(TEXTS))


@pytest.mark.parametrize("values,what", [(["a", "a"], "'a' is listed twice"), ([0, 0.0], "'0' is listed twice"), ([None, 1], "None is not a label value")])
def test_bad_label_values_are_named(zs, tmp_path, values, what):
    out = zs.save(tmp_path / "t")
    meta = json.loads((out / CONFIG_FILE).read_text())
    meta["label_values"] = values
    (out / CONFIG_FILE).write_text(json.dumps(meta))
    write_manifest(out)
    with pytest.raises(ModelError, match=rf"\$\.label_values: {what}; fix: re-save the folder"):
        PetClassifier.load(out)
