"""The CLI end to end on a tiny saved model and a user's own data file; every bad input gives
one line on stderr, exit code 2 and no traceback."""

import json

import numpy as np

import pytest

from pet.cli import main


@pytest.fixture
def model_dir(tiny_bert_dir):
    return tiny_bert_dir


@pytest.fixture
def own(tmp_path):
    csv = tmp_path / "reviews.csv"
    csv.write_text("review,stars\nloved it,5\nawful film,1\nquite good,5\nboring,1\n")
    pats = tmp_path / "p.json"
    pats.write_text(json.dumps({"patterns": [{"id": "a", "template": "{text_a} It was {mask}."}, {"id": "b", "template": "Just {mask}! {text_a}"}]}))
    verbs = tmp_path / "v.json"
    verbs.write_text(json.dumps({"verbalizers": [{"id": "v", "labels": {"1": ["bad"], "5": ["good"]}}]}))
    return tmp_path, csv, pats, verbs


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_zero_shot_own_data(own, model_dir, capsys):
    tmp, csv, pats, verbs = own
    out_json = tmp / "res.json"
    code, out, err = run(["zero-shot", "--data", str(csv), "--text-field", "review", "--label-field", "stars",
                          "--patterns", str(pats), "--verbalizers", str(verbs), "--model", model_dir,
                          "--output", str(out_json), "--no-progress"], capsys)
    assert code == 0, err
    assert "a:v" in out and "b:v" in out and "ensemble (2 PVPs)" in out
    res = json.loads(out_json.read_text())
    assert res["n"] == 4 and res["metric"] == "accuracy" and len(res["pvps"]) == 2
    assert {"pattern", "verbalizer", "score", "examples_per_second"} <= set(res["pvps"][0])
    assert 0.0 <= res["ensemble"]["score"] <= 1.0 and "torch" in res["versions"]


def _bad(capsys, argv):
    code, out, err = run(argv, capsys)
    assert code == 2
    lines = [x for x in err.strip().splitlines() if x]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_bad_inputs_give_one_line(own, model_dir, capsys, tmp_path):
    tmp, csv, pats, verbs = own
    base = ["zero-shot", "--data", str(csv), "--text-field", "review", "--label-field", "stars", "--model", model_dir, "--no-progress"]
    # malformed JSON
    broken = tmp / "broken.json"
    broken.write_text('{"patterns": [')
    assert "broken.json: malformed JSON" in _bad(capsys, base + ["--patterns", str(broken), "--verbalizers", str(verbs)])
    # no {mask}
    nomask = tmp / "nomask.json"
    nomask.write_text(json.dumps({"patterns": [{"id": "a", "template": "{text_a} It was."}]}))
    assert "nomask.json: $.patterns[0]" in _bad(capsys, base + ["--patterns", str(nomask), "--verbalizers", str(verbs)])
    # unknown placeholder
    unk = tmp / "unk.json"
    unk.write_text(json.dumps({"patterns": [{"id": "a", "template": "{text_a} {maskk} {mask}"}]}))
    assert "field '{maskk}'" in _bad(capsys, base + ["--patterns", str(unk), "--verbalizers", str(verbs)])
    # duplicate pattern ids
    dup = tmp / "dup.json"
    dup.write_text(json.dumps({"patterns": [{"id": "a", "template": "{text_a} {mask}"}, {"id": "a", "template": "{mask} {text_a}"}]}))
    assert "duplicate id 'a'" in _bad(capsys, base + ["--patterns", str(dup), "--verbalizers", str(verbs)])
    # label in data but not in verbalizer, and the reverse
    v2 = tmp / "v2.json"
    v2.write_text(json.dumps({"verbalizers": [{"id": "v", "labels": {"1": ["bad"]}}]}))
    assert "['5'] occur in" in _bad(capsys, base + ["--patterns", str(pats), "--verbalizers", str(v2)])
    v3 = tmp / "v3.json"
    v3.write_text(json.dumps({"verbalizers": [{"id": "v", "labels": {"1": ["bad"], "5": ["good"], "3": ["okay"]}}]}))
    code, out, err = run(base + ["--patterns", str(pats), "--verbalizers", str(v3)], capsys)  # a label the data lacks: scored, with a note
    assert code == 0 and "note: label(s) ['3'] of the verbalizer do not occur in" in err
    # label word the tokenizer maps to unknown
    v4 = tmp / "v4.json"
    v4.write_text(json.dumps({"verbalizers": [{"id": "v", "labels": {"1": ["\u2603"], "5": ["good"]}}]}))
    assert "unknown token" in _bad(capsys, base + ["--patterns", str(pats), "--verbalizers", str(v4)])
    # non-UTF-8 pattern file
    latin = tmp / "latin.json"
    latin.write_bytes('{"patterns": [{"id": "\u00e9", "template": "{text_a} {mask}"}]}'.encode("latin-1"))
    assert "not UTF-8" in _bad(capsys, base + ["--patterns", str(latin), "--verbalizers", str(verbs)])
    # CSV missing a column
    assert "review2" in _bad(capsys, ["zero-shot", "--data", str(csv), "--text-field", "review2", "--label-field", "stars",
                                      "--patterns", str(pats), "--verbalizers", str(verbs), "--model", model_dir])
    # empty text
    empty = tmp / "empty.csv"
    empty.write_text('review,stars\nfine,5\n"",1\n')
    assert "empty.csv" in _bad(capsys, ["zero-shot", "--data", str(empty), "--text-field", "review", "--label-field", "stars",
                                        "--patterns", str(pats), "--verbalizers", str(verbs), "--model", model_dir])
    # unknown task, unknown model path
    assert "unknown" in _bad(capsys, ["zero-shot", "--task", "no-such-task", "--model", model_dir]).lower()
    assert "cannot load masked LM" in _bad(capsys, base[:-3] + ["--model", str(tmp / "nope"), "--patterns", str(pats), "--verbalizers", str(verbs)])


def test_validate_command(own, capsys, tmp_path):
    _, _, pats, verbs = own
    code, out, _ = run(["validate", str(pats), str(verbs)], capsys)
    assert code == 0 and out.count(": ok") == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"verbalizers": [{"id": "v", "labels": {"0": []}}, {"id": "v", "labels": {"0": ["x"]}}]}))
    code, out, err = run(["validate", str(bad)], capsys)
    assert code == 2  # bad input (README: 2), not an internal error
    assert not out and "$.verbalizers[0].labels.0" in err and "duplicate id 'v'" in err  # problems on stderr, like every command


def test_shipped_files_validate(capsys):
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    files = sorted(map(str, (repo / "patterns").glob("*.json"))) + sorted(map(str, (repo / "verbalizers").glob("*.json")))
    code, out, _ = run(["validate", *files], capsys)
    assert code == 0, out
    assert out.count(": ok") == len(files) >= 42


def test_show_tokenisation(own, model_dir, capsys):
    _, _, pats, verbs = own
    code, out, _ = run(["show", "--patterns", str(pats), "--verbalizers", str(verbs), "--model", model_dir], capsys)
    assert code == 0
    assert "'good'" in out and "['good']" in out and "cloze a: [CLS]" in out
    code, out, _ = run(["show"], capsys)
    assert code == 0 and "sst2" in out and "agnews" in out


def test_debug_shows_traceback(own, model_dir):
    from pet.errors import PetError

    with pytest.raises(PetError):
        main(["--debug", "zero-shot", "--task", "no-such-task", "--model", model_dir])


def _toy_task(tmp):
    """A registered-style task from files: a train-side pool (toy/train.csv) and a test split."""
    root = tmp / "data"
    (root / "toy").mkdir(parents=True)
    words = [("loved it", "5"), ("awful film", "1"), ("quite good", "5"), ("boring", "1"), ("a delight", "5"), ("dull plot", "1")]
    (root / "toy" / "train.csv").write_text("text,label\n" + "".join(f"{t} {i},{y}\n" for i in range(4) for t, y in words))
    (root / "toy" / "test.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in words))
    task = tmp / "toy.json"
    task.write_text(json.dumps({
        "name": "toy", "folder": "toy", "fields": {"text_a": "text"}, "label": "label", "labels": {"1": "bad", "5": "good"},
        "splits": {"train": {"file": "train.csv"}, "test": {"file": "test.csv"}}, "metric": "accuracy",
        "default_pvps": [["a", "v"], ["b", "v"]], "max_length": 32, "patterns": "p.json", "verbalizers": "v.json",
    }))
    return task, root


#: a tiny zero-shot iPET: one grown generation of 4 examples, then distillation
IPET0 = ["--method", "ipet", "--shots", "0", "--generations", "1", "--ipet-zero-shot-size", "4", "--steps", "1", "--distill-steps", "1",
         "--batch-size", "2", "--max-length", "32", "--no-progress"]


def test_train_zero_shot_ipet_on_a_task_and_on_own_data(own, model_dir, capsys):
    """PET's |T| = 0 through `pet train --shots 0`: no labelled examples, no split folder; only
    methods whose needs_labelled trait is False accept it."""
    tmp, csv, pats, verbs = own
    task, root = _toy_task(tmp)
    out = tmp / "ipet0"
    code, stdout, err = run(["train", "--task", str(task), "--data-dir", str(root), "--model", model_dir, *IPET0, "--output", str(out)], capsys)
    assert code == 0, err
    assert "toy: 0 train, 0 dev, 6 test, 24 unlabelled, 2 PVP(s)" in err and "← final" in stdout
    stages = json.loads((out / "metrics.json").read_text())["stages"]
    assert [s["stage"] for s in stages] == ["pvp", "pvp", "ensemble", "ipet-gen1", "ipet-gen1", "ipet-gen1-ensemble", "distilled"]
    assert {(s["k"], s["n_train"], s["n_unlabelled"]) for s in stages} == {(0, 0, 24)} and stages[-1]["final"]
    assert not list(root.rglob("*.jsonl")) and not (tmp / "splits").exists()  # no split folder written

    unl = tmp / "unlabelled.csv"
    unl.write_text("review\n" + "".join(f"text {i} was {'good' if i % 2 else 'bad'}\n" for i in range(12)))
    own_args = ["train", "--data", str(csv), "--text-field", "review", "--label-field", "stars", "--patterns", str(pats),
                "--verbalizers", str(verbs), "--model", model_dir]
    code, stdout, err = run([*own_args, "--unlabelled", str(unl), *IPET0], capsys)
    assert code == 0, err
    assert "0 train, 0 dev, 4 test, 12 unlabelled" in err and "distilled" in stdout  # the whole file is the test set

    # a method that trains on labelled examples: one line naming the flag and the fix
    for argv in ([*own_args, "--method", "prompt-ft", "--shots", "0"],
                 ["train", "--task", str(task), "--data-dir", str(root), "--model", model_dir, "--method", "pet", "--shots", "0"]):
        line = _bad(capsys, argv)
        assert "--shots 0" in line and "fix: pass --shots 1 or more" in line
    assert "--shots" in _bad(capsys, [*own_args, "--method", "ipet", "--shots", "-1"])


def test_own_test_file_may_hold_only_some_of_the_verbalizers_labels(own, model_dir, capsys):
    """A file of one class (e.g. positive reviews alone) is scored over the verbalizer's labels,
    as the same rows are scored inside a file that holds every class; a label the verbalizer has
    no words for is still refused."""
    from pet.data import parse_field_map
    from pet.data.owndata import read_own
    from pet.data.registry import task_pvps
    from pet.estimator.classifier import PetClassifier

    tmp, csv, pats, verbs = own
    fives = tmp / "fives.csv"
    fives.write_text("review,stars\nloved it,5\nquite good,5\nnot my thing,5\n")
    out_json = tmp / "fives.json"
    code, out, err = run(["zero-shot", "--data", str(fives), "--text-field", "review", "--label-field", "stars",
                          "--patterns", str(pats), "--verbalizers", str(verbs), "--model", model_dir,
                          "--output", str(out_json), "--no-progress"], capsys)
    assert code == 0, err
    res = json.loads(out_json.read_text())
    # independent: the two-label classifier's own predictions on the same rows
    pvps = task_pvps(None, pats, verbs)
    clf = PetClassifier.zero_shot(model_dir, pvps, ["1", "5"])
    rows = read_own(fives, parse_field_map(["review"]), "stars")
    proba = clf.predict_proba(rows)
    assert proba.shape == (3, 2)
    want = float(np.mean(np.asarray(clf.predict(rows)) == "5"))
    assert res["n"] == 3 and res["ensemble"]["score"] == pytest.approx(want, abs=1e-9)
    # pet show --encode: each record offers both of the verbalizer's labels
    code, out, err = run(["show", "--data", str(fives), "--text-field", "review", "--label-field", "stars", "--patterns", str(pats),
                          "--verbalizers", str(verbs), "--tokenizer", model_dir, "--encode", "--format", "jsonl"], capsys)
    assert code == 0, err
    recs = [json.loads(x) for x in out.splitlines() if x.strip()]
    assert len(recs) == 6 and {r["label"] for r in recs} == {"5"}
    assert all(set(r["label_token_ids"]) == {"1", "5"} for r in recs)
    threes = tmp / "threes.csv"
    threes.write_text("review,stars\nfine,3\nloved it,5\n")
    line = _bad(capsys, ["zero-shot", "--data", str(threes), "--text-field", "review", "--label-field", "stars",
                         "--patterns", str(pats), "--verbalizers", str(verbs), "--model", model_dir, "--no-progress"])
    assert "'3'" in line and "no words" in line
