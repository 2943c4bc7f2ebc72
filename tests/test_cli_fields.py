"""The column flags of a user's own data are spelled alike in every command that reads a file:
``--text-field`` (repeat for {text_b}, or NAME=COLUMN for a pattern's {NAME}), ``--text-b-field``,
``--label-field``; the spellings that mean the same thing give the same numbers, and a flag that
a registered task would ignore is refused."""

import json

import pytest

from pet.cli import build_parser, main
from pet.cli.train import train_parser
from pet.data import parse_field_map
from pet.errors import UsageError


def test_parse_field_map_fills_text_a_then_text_b_and_takes_named_fields():
    assert parse_field_map(None) == {"text_a": "text"}  # the default column
    assert parse_field_map(["review"]) == {"text_a": "review"}
    assert parse_field_map(["q", "ctx"]) == {"text_a": "q", "text_b": "ctx"}
    assert parse_field_map(["q"], "ctx") == {"text_a": "q", "text_b": "ctx"}
    assert parse_field_map(["text_a=q", "text_b=ctx"]) == {"text_a": "q", "text_b": "ctx"}
    # a bare column fills the first of {text_a}, {text_b} not yet named
    assert parse_field_map(["text_a=q", "ctx"]) == {"text_a": "q", "text_b": "ctx"}
    assert parse_field_map(["question=q", " passage = ctx "]) == {"question": "q", "passage": "ctx"}
    # a value splits at its first "=": a column whose name holds "=" is given with its field
    assert parse_field_map(["text_a=score=1-5", "text_b=a=b"]) == {"text_a": "score=1-5", "text_b": "a=b"}


@pytest.mark.parametrize("values, text_b, words", [
    (["a", "b", "c"], None, ["third bare column", "--text-field question=c"]),
    (["q", "ctx"], "other", ["{text_b} is given two columns", "'ctx'", "'other'"]),
    (["text_a=q", "text_a=r"], None, ["{text_a} is given two columns"]),
    (["my field=q"], None, ["'my field' is not a template field name", "text_a=my field=q"]),
    (["question="], None, ["no column for {question}"]),
    ([""], None, ["no column"]),
])
def test_parse_field_map_refuses_what_it_cannot_mean(values, text_b, words):
    with pytest.raises(UsageError) as e:
        parse_field_map(values, text_b)
    msg = str(e.value)
    assert "fix:" in msg and "\n" not in msg and all(w in msg for w in words), msg


def _parsers():
    (sub,) = [a for a in build_parser()._actions if a.dest == "command"]
    subs = sub.choices
    return {"train": train_parser("prompt-ft"), **{n: subs[n] for n in ("zero-shot", "predict", "show", "search-verbalizer")}}


@pytest.mark.parametrize("name", ["train", "zero-shot", "predict", "show", "search-verbalizer"])
def test_every_command_that_reads_a_file_has_the_same_column_flags(name):
    actions = {s: a for a in _parsers()[name]._actions for s in a.option_strings}
    assert actions["--text-field"].default is None and actions["--text-field"].nargs is None
    assert type(actions["--text-field"]).__name__ == "_AppendAction"  # repeatable
    assert "--text-b-field" in actions
    assert ("--label-field" in actions) == (name != "predict")  # predict reads texts only


@pytest.fixture
def pairs(tmp_path):
    data = tmp_path / "pairs.csv"
    rows = [("is it cold", "snow fell all night", "yes"), ("is it hot", "snow fell all night", "no"),
            ("is it wet", "rain all day", "yes"), ("is it dry", "rain all day", "no")]
    data.write_text("q,ctx,answer\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    verbs = tmp_path / "v.json"
    verbs.write_text(json.dumps({"verbalizers": [{"id": "v", "labels": {"no": ["no"], "yes": ["yes"]}}]}))
    ab = tmp_path / "ab.json"
    ab.write_text(json.dumps({"patterns": [{"id": "p", "template": "{text_a}? {mask}, {text_b}"}]}))
    named = tmp_path / "named.json"
    named.write_text(json.dumps({"patterns": [{"id": "p", "template": "{question}? {mask}, {passage}"}]}))
    return tmp_path, data, verbs, ab, named


def test_spellings_that_mean_the_same_columns_give_the_same_scores(pairs, tiny_bert_dir, capsys):
    """Zero-shot on question/passage pairs: {text_a}/{text_b} named four ways, and a pattern
    whose own field names render the same text, score every example identically."""
    tmp, data, verbs, ab, named = pairs
    spellings = {
        "repeat": (ab, ["--text-field", "q", "--text-field", "ctx"]),
        "text-b-field": (ab, ["--text-field", "q", "--text-b-field", "ctx"]),
        "named a/b": (ab, ["--text-field", "text_b=ctx", "--text-field", "text_a=q"]),
        "pattern's own names": (named, ["--text-field", "question=q", "--text-field", "passage=ctx"]),
    }
    scores = {}
    for name, (pats, flags) in spellings.items():
        out = tmp / f"{name}.json"
        rc = main(["zero-shot", "--data", str(data), *flags, "--label-field", "answer", "--patterns", str(pats),
                   "--verbalizers", str(verbs), "--model", tiny_bert_dir, "--output", str(out), "--no-progress"])
        assert rc == 0, capsys.readouterr().err
        res = json.loads(out.read_text())
        assert res["n"] == 4
        scores[name] = res["pvps"][0]["score"]
    assert len(set(scores.values())) == 1, scores
    # and the rendered cloze is the same text: show --encode gives the same input ids
    capsys.readouterr()
    ids = {}
    for name in ("repeat", "pattern's own names"):
        pats, flags = spellings[name]
        assert main(["show", "--encode", "--data", str(data), *flags, "--label-field", "answer", "--patterns", str(pats),
                     "--verbalizers", str(verbs), "--tokenizer", tiny_bert_dir, "--format", "jsonl"]) == 0
        ids[name] = [json.loads(x)["input_ids"] for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert ids["repeat"] == ids["pattern's own names"] and len(ids["repeat"]) == 4


def test_train_and_predict_read_a_patterns_own_field_names(pairs, tiny_bert_dir, capsys):
    """`pet train` and `pet predict` took only {text_a}/{text_b} columns before; a JSON PVP with
    its own field names now trains on a file and predicts on it with the same flags."""
    tmp, data, verbs, named = *pairs[:3], pairs[4]
    out, preds = tmp / "model", tmp / "preds.jsonl"
    cols = ["--text-field", "question=q", "--text-field", "passage=ctx"]
    rc = main(["train", "--data", str(data), *cols, "--label-field", "answer", "--patterns", str(named), "--verbalizers", str(verbs),
               "--model", tiny_bert_dir, "--method", "prompt-ft", "--shots", "1", "--steps", "2", "--batch-size", "2",
               "--output", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert main(["predict", str(out), "--input", str(data), *cols, "--output", str(preds)]) == 0, capsys.readouterr().err
    rows = [json.loads(x) for x in preds.read_text().splitlines()]
    assert len(rows) == 4 and {r["q"] for r in rows} == {"is it cold", "is it hot", "is it wet", "is it dry"}
    assert all(r["label"] in ("yes", "no") for r in rows)
    assert "columns `{question}` ← `q`, `{passage}` ← `ctx`" in (out / "README.md").read_text()  # the model card says so
    # without column flags, predict reads the columns the classifier was trained on
    again = tmp / "again.jsonl"
    assert main(["predict", str(out), "--input", str(data), "--output", str(again)]) == 0
    assert "{question} <- q, {passage} <- ctx" in capsys.readouterr().err
    assert again.read_text() == preds.read_text()
    # a recorded entry that is not field -> column: one line naming the file and JSON path
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["stages"][-1]["columns"] = ["q"]
    (out / "metrics.json").write_text(json.dumps(metrics))
    assert main(["predict", str(out), "--input", str(data), "--output", str(tmp / "x.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "metrics.json: $.stages[-1].columns" in err and "fix:" in err
    assert not (tmp / "x.jsonl").exists()


def test_text_and_label_columns_default_to_text_and_label(tmp_path, tiny_bert_dir, capsys):
    data = tmp_path / "d.csv"
    data.write_text("text,label\ngood film,1\nbad film,0\n")
    (tmp_path / "p.json").write_text('{"patterns": [{"id": "p", "template": "{text_a} It was {mask}."}]}')
    (tmp_path / "v.json").write_text('{"verbalizers": [{"id": "v", "labels": {"0": ["bad"], "1": ["good"]}}]}')
    common = ["--data", str(data), "--patterns", str(tmp_path / "p.json"), "--verbalizers", str(tmp_path / "v.json")]
    out = tmp_path / "r.json"
    assert main(["zero-shot", *common, "--model", tiny_bert_dir, "--no-progress", "--output", str(out)]) == 0, capsys.readouterr().err
    assert json.loads(out.read_text())["n"] == 2  # scored against the 'label' column
    capsys.readouterr()
    assert main(["show", "--encode", *common, "--tokenizer", tiny_bert_dir, "--format", "jsonl"]) == 0
    recs = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert len(recs) == 2 and all(r.get("label") is None for r in recs)  # show reads labels only when named
    # a missing default column: one line naming the columns present and the flag to use
    other = tmp_path / "o.csv"
    other.write_text("review,label\ngood film,1\n")
    assert main(["zero-shot", "--data", str(other), *common[2:], "--model", tiny_bert_dir, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no column 'text'" in err and "--text-field" in err


@pytest.mark.parametrize("argv, flag", [
    (["train", "--task", "sst2", "--method", "prompt-ft", "--text-field", "review"], "--text-field"),
    (["train", "--task", "sst2", "--method", "prompt-ft", "--label-field", "stars"], "--label-field"),
    (["train", "--task", "sst2", "--method", "prompt-ft", "--test", "t.csv"], "--test"),
    (["train", "--task", "sst2", "--method", "pet", "--unlabelled", "u.csv"], "--unlabelled"),
    (["zero-shot", "--task", "sst2", "--text-b-field", "x"], "--text-b-field"),
    (["search-verbalizer", "--task", "sst2", "--pattern", "p", "--label-field", "y", "--output", "v.json"], "--label-field"),
])
def test_column_flags_with_a_registered_task_are_refused_not_ignored(argv, flag, tiny_bert_dir, capsys):
    assert main([*argv, "--model", tiny_bert_dir]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{flag} is read only with your own --data" in err and "fix:" in err, err
