"""Task registry, data loading, few-shot sampling and metrics, on tiny temporary files.

No test here needs the benchmark data root: every file is written to ``tmp_path``.
"""

from __future__ import annotations

from collections import Counter

import gzip
import json
from pathlib import Path

import jsonschema
import pytest

from pet.data import fewshot as F, registry as R, tables as Tb
from pet.utils.resources import shipped_dir
from pet.utils.jsonio import read_json
from pet.errors import DataError
from pet.examples import Example
from pet.metrics import METRICS, compute_metric, task_metrics

SEEDS = [13, 21]


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def _task_dict(**over) -> dict:
    d = {
        "name": "toy",
        "folder": "toy",
        "seeds": SEEDS,
        "k_shot": 2,
        "fields": {"text_a": "sentence"},
        "label": "label",
        "labels": {"0": "negative", "1": "positive"},
        "splits": {
            "train": {"file": "2-{seed}/train.tsv"},
            "dev": {"file": "2-{seed}/dev.tsv"},
            "test": {
                "file": "test.csv",
                "header": False,
                "columns": ["label", "title", "body"],
                "fields": {"text_a": ["title", "body"]},
                "label_map": {"1": "0", "2": "1"},
            },
            "unlabelled": {"file": "pool.jsonl.gz", "fields": {"text_a": "text_a"}, "label": "label"},
        },
        "metric": "accuracy",
        "default_pvps": [["it-was", "great-terrible"]],
        "max_length": 128,
    }
    d.update(over)
    return d


@pytest.fixture
def toy(tmp_path: Path) -> tuple[R.TaskSpec, Path]:
    """A tiny task: seeded TSV k-shot folders, a header-less CSV test with 1/2 labels, a gz pool."""
    root = tmp_path / "data"
    for s in SEEDS:
        rows = [(f"train {s} neg {i}", "0") for i in range(2)] + [(f"train {s} pos {i}", "1") for i in range(2)]
        _write(root / f"toy/2-{s}/train.tsv", "sentence\tlabel\n" + "".join(f"{a}\t{b}\n" for a, b in rows))
        rows = [(f"dev {s} neg {i}", "0") for i in range(2)] + [(f"dev {s} pos {i}", "1") for i in range(2)]
        _write(root / f"toy/2-{s}/dev.tsv", "sentence\tlabel\n" + "".join(f"{a}\t{b}\n" for a, b in rows))
    _write(root / "toy/test.csv", '"1","Bad","very, very bad"\n"2","Good","so good"\n')
    pool = [{"text_a": f"pool text {i}", "label": i % 2} for i in range(40)]
    pool.append({"text_a": "train 13 neg 0", "label": 0})  # duplicate of a k-shot example
    with gzip.open(root / "toy/pool.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in pool)
    tf = tmp_path / "toy.json"
    tf.write_text(json.dumps(_task_dict()))
    return R.load_task(tf), root


# ----------------------------------------------------------------------------- registry


def test_load_task_from_path_and_fields(toy):
    task, _ = toy
    assert task.name == "toy" and task.label_ids == ["0", "1"]
    assert task.splits["test"][0].fields == {"text_a": ("title", "body")}
    assert task.splits["train"][0].label == "label"  # task-level label inherited
    assert task.pvp_ids() == ["it-was:great-terrible"]


def test_unknown_task_lists_known():
    with pytest.raises(DataError, match="unknown task.*sst2"):
        R.load_task("no-such-task")


def test_schema_error_names_file_and_path(tmp_path):
    bad = _task_dict(metric="bleu")
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(DataError, match=r"bad\.json: \$\.metric: .*fix:"):
        R.load_task(p)
    bad = _task_dict()
    bad["splits"]["test"]["label_map"] = {"1": "zero"}
    p.write_text(json.dumps(bad))
    with pytest.raises(DataError, match=r"label_map\.1: maps to unknown label 'zero'"):
        R.load_task(p)


def test_resolve_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv(R.DATA_ENV, raising=False)
    with pytest.raises(DataError, match="--data-dir.*PET_DATA_DIR"):
        R.resolve_data_dir(None)
    monkeypatch.setenv(R.DATA_ENV, str(tmp_path))
    assert R.resolve_data_dir(None) == tmp_path
    with pytest.raises(DataError, match="not a directory"):
        R.resolve_data_dir(tmp_path / "missing")


# ----------------------------------------------------------------------------- loading


def test_load_splits_and_label_remap(toy):
    task, root = toy
    train = F.load_examples(task, "train", root, seed=13)
    assert [e.label for e in train] == ["0", "0", "1", "1"]
    assert train[0].fields == {"text_a": "train 13 neg 0"}
    assert train[0].meta["file"] == "toy/2-13/train.tsv"
    test = F.load_examples(task, "test", root)
    assert [e.label for e in test] == ["0", "1"]  # 1/2 remapped into the 0/1 label space
    assert test[0].fields["text_a"] == "Bad very, very bad"  # two columns joined
    with pytest.raises(DataError, match="depend on the seed"):
        F.load_examples(task, "train", root)
    with pytest.raises(DataError, match="file not found"):
        F.load_examples(task, "train", root, seed=99)
    with pytest.raises(DataError, match="no nope split"):
        F.load_examples(task, "nope", root)


def test_unlabelled_split_strips_labels(toy):
    task, root = toy
    pool = F.load_examples(task, "unlabelled", root)
    assert all(e.label is None for e in pool)
    assert {e.meta["gold_label"] for e in pool} == {"0", "1"}
    texts = [e.fields["text_a"] for e in pool]
    assert len(texts) == len(set(texts))  # de-duplicated by text


def test_load_table_csv_tsv_jsonl(tmp_path):
    p = _write(tmp_path / "reviews.csv", "review,stars\n\"Great, really\",5\nMeh,2\n")
    ex = Tb.load_table(p, {"text_a": "review"}, "stars")
    assert [(e.fields["text_a"], e.label) for e in ex] == [("Great, really", "5"), ("Meh", "2")]
    p = _write(tmp_path / "r.tsv", "text\tlabel\nsay \"hi\tx\n")
    assert Tb.load_table(p, "text", "label")[0].fields["text_a"] == 'say "hi'  # QUOTE_NONE for TSV
    p = tmp_path / "r.jsonl.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"q": "is it?", "label": True}) + "\n" + json.dumps({"q": "no", "label": 0}) + "\n")
    ex = Tb.load_table(p, {"text_a": "q"}, "label")
    assert [e.label for e in ex] == ["true", "0"]  # JSON booleans and ints become strings
    assert Tb.load_table(p, {"text_a": "q"})[0].label is None


def test_bom_header_is_handled(tmp_path):
    p = _write(tmp_path / "m.tsv", "\ufeffQuality\ts1\n1\thello\n")
    assert Tb.load_table(p, {"text_a": "s1"}, "Quality")[0].label == "1"


def test_missing_column_error(tmp_path):
    p = _write(tmp_path / "reviews.csv", "review,stars\nok,1\n")
    with pytest.raises(DataError) as e:
        Tb.load_table(p, {"text_a": "text"}, "stars")
    msg = str(e.value)
    assert "reviews.csv" in msg and "'text'" in msg and "['review', 'stars']" in msg and "\n" not in msg


def test_non_utf8_error(tmp_path):
    p = _write(tmp_path / "latin.csv", "review,stars\ncaf\u00e9,1\n", encoding="latin-1")
    with pytest.raises(DataError, match=r"latin\.csv: line 2: not UTF-8"):
        Tb.load_table(p, "review", "stars")


def test_empty_text_and_bad_label_errors(tmp_path):
    p = _write(tmp_path / "e.csv", "review,stars\nfine,1\n   ,0\n")
    with pytest.raises(DataError, match=r"e\.csv: row 2 \(line 3\): field 'text_a' .* is empty"):  # data row 2, after the header
        Tb.load_table(p, "review", "stars")
    assert len(Tb.load_table(p, "review", "stars", empty_text="skip")) == 1
    assert Tb.load_table(p, "review", "stars", empty_text="keep")[1].fields["text_a"] == "   "  # kept as read (LM-BFF encodes it)
    with pytest.raises(DataError, match=r"e\.csv: row 1 \(line 2\): label '1' is not one of the task's labels"):
        Tb.load_table(p, "review", "stars", labels=["pos", "neg"], empty_text="skip")


def test_a_row_error_names_the_file_line_of_a_multi_line_row(tmp_path):
    """A quoted field holding line breaks: the row's error names the lines it spans, so the
    number matches what an editor shows (the header and earlier line breaks counted)."""
    p = _write(tmp_path / "m.csv", 'review,stars\n"two\nlines",1\n\nok,\n')
    with pytest.raises(DataError, match=r"m\.csv: row 2 \(line 5\): empty label in column 'stars'"):
        Tb.load_table(p, "review", "stars")
    p = _write(tmp_path / "n.csv", 'review,stars\n"two\nlines",\n')
    with pytest.raises(DataError, match=r"n\.csv: row 1 \(line 2-3\): empty label"):
        Tb.load_table(p, "review", "stars")


def test_variable_columns_label_last_nonempty(tmp_path):
    root = tmp_path / "d"
    _write(root / "snli/train.tsv", "i\ts1\ts2\tlabel1\tgold_label\n1\ta\tb\tneutral\tneutral\n2\tc\td\tneutral\tentailment\tentailment\tentailment\n")
    d = _task_dict(
        folder="snli",
        fields={"text_a": "s1", "text_b": "s2"},
        label="gold_label",
        labels={"entailment": "e", "neutral": "n"},
        splits={"train": {"file": "train.tsv", "max_columns": 8, "label_last_nonempty": True}},
    )
    t = R.task_from_dict(d)
    ex = F.load_examples(t, "train", root)
    assert [(e.fields["text_b"], e.label) for e in ex] == [("b", "neutral"), ("d", "entailment")]


# ----------------------------------------------------------------------------- few-shot


def test_fixed_split_when_k_matches(toy, tmp_path):
    task, root = toy
    train, dev = F.few_shot(task, root, k=2, seed=21)
    assert [e.fields["text_a"] for e in train] == [f"train 21 {c} {i}" for c in ("neg", "pos") for i in range(2)]
    assert len(dev) == 4


def test_sampling_is_balanced_deterministic_and_checksummed(toy, tmp_path):
    task, root = toy
    out = tmp_path / "split"
    train, dev = F.few_shot(task, root, k=5, seed=7, out_dir=out)
    assert Counter(e.label for e in train) == {"0": 5, "1": 5} and Counter(e.label for e in dev) == {"0": 5, "1": 5}
    assert not {e.fields["text_a"] for e in train} & {e.fields["text_a"] for e in dev}
    again, _ = F.few_shot(task, root, k=5, seed=7)
    assert [e.fields for e in again] == [e.fields for e in train]
    other, _ = F.few_shot(task, root, k=5, seed=8)
    assert [e.fields for e in other] != [e.fields for e in train]
    # written, checksummed, and read back verified
    assert {p.name for p in out.iterdir()} >= {"train.jsonl", "dev.jsonl", "manifest.json", "SHA256SUMS"}
    back, back_dev = F.few_shot(task, root, k=5, seed=7, out_dir=out)
    assert [(e.fields, e.label) for e in back] == [(e.fields, e.label) for e in train]
    with pytest.raises(DataError, match="not .*'seed': 9"):
        F.few_shot(task, root, k=5, seed=9, out_dir=out)
    (out / "train.jsonl").write_text((out / "train.jsonl").read_text().replace("pool", "POOL"))
    with pytest.raises(DataError, match="SHA-256 does not match"):
        F.load_split_dir(out)


def test_k_too_large_names_class_and_count(toy):
    task, root = toy
    with pytest.raises(DataError, match=r"label '0' \(negative\) has only \d+ .* needed"):
        F.few_shot(task, root, k=40, seed=1)


def test_unlabelled_pool_excludes_labelled(toy):
    task, root = toy
    train, dev = F.few_shot(task, root, k=5, seed=3)
    pool = F.unlabelled_pool(task, root, exclude=train + dev, size=1000, seed=0)
    labelled = {e.fields["text_a"] for e in train + dev}
    assert pool and all(e.label is None for e in pool)
    assert not labelled & {e.fields["text_a"] for e in pool}
    assert len(F.unlabelled_pool(task, root, exclude=train, size=5, seed=0)) == 5
    a = F.unlabelled_pool(task, root, size=10, seed=1)
    b = F.unlabelled_pool(task, root, size=10, seed=1)
    assert [e.fields for e in a] == [e.fields for e in b]


# ----------------------------------------------------------------------------- metrics


def test_metrics_on_small_arrays():
    y = ["1", "1", "0", "0"]
    p = ["1", "0", "0", "0"]
    assert compute_metric("accuracy", y, p) == 0.75
    assert compute_metric("f1", y, p, pos_label="1") == pytest.approx(2 / 3)
    assert compute_metric("macro_f1", y, p) == pytest.approx((2 / 3 + 0.8) / 2)
    assert compute_metric("mcc", y, p) == pytest.approx(1 / 3**0.5)
    assert compute_metric("macro_f1", ["a", "b"], ["a", "a"], labels=["a", "b", "c"]) == pytest.approx((2 / 3) / 3)
    assert set(METRICS) == {"accuracy", "macro_f1", "mcc", "f1", "pearson", "spearman"}
    with pytest.raises(Exception, match="unknown"):
        compute_metric("bleu", y, p)
    mrpc = R.load_task("mrpc")
    assert task_metrics(mrpc, y, p) == {"f1": pytest.approx(2 / 3), "accuracy": 0.75}


# ----------------------------------------------------------------------------- shipped files


def _json(p: Path):
    return json.loads(p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", R.list_tasks())
def test_shipped_task_is_consistent(name):
    path = shipped_dir("tasks") / f"{name}.json"
    data = _json(path)
    jsonschema.Draft202012Validator(read_json(shipped_dir("schemas") / "task.schema.json")).validate(data)
    task = R.load_task(name)
    assert task.name == name
    assert R.validate_task_dict(data, str(path)) == []
    for split, specs in task.splits.items():
        for fs in specs:
            assert not Path(fs.file).is_absolute() and ".." not in fs.file
    pats = _json(task.patterns_path)
    verbs = _json(task.verbalizers_path)
    assert pats["task"] == name and verbs["task"] == name
    pat_ids = [p["id"] for p in pats["patterns"]]
    verb_ids = [v["id"] for v in verbs["verbalizers"]]
    assert len(set(pat_ids)) == len(pat_ids) and len(set(verb_ids)) == len(verb_ids)
    assert len(pat_ids) >= 3 and len(verb_ids) >= 2
    assert all(p.get("source") for p in pats["patterns"]) and all(v.get("source") for v in verbs["verbalizers"])
    for p, v in task.default_pvps:
        assert p in pat_ids, f"{name}: default pattern {p} missing"
        assert v in verb_ids, f"{name}: default verbalizer {v} missing"
        assert not p.startswith("soft-"), f"{name}: default PVPs must be hard patterns"
    for v in verbs["verbalizers"]:
        assert list(v["labels"]) == task.label_ids or set(v["labels"]) == set(task.label_ids), f"{name}: {v['id']}"
        for words in v["labels"].values():
            assert all(w and " " not in w for w in words), f"{name}: {v['id']}: label words must be single words"
    for p in pats["patterns"]:
        assert p["template"].count("{mask}") == 1, f"{name}: {p['id']}"


def test_sst2_and_rte_have_soft_patterns_and_enough_defaults():
    for name in ("sst2", "rte"):
        ids = [p["id"] for p in _json(shipped_dir("patterns") / f"{name}.json")["patterns"]]
        assert any(i.startswith("soft-") for i in ids)
    assert len(R.load_task("sst2").default_pvps) >= 3


def test_shipped_files_parse_with_spec():
    from pet.prompts import spec

    for name in R.list_tasks():
        task = R.load_task(name)
        assert spec.validate_file(task.patterns_path) == []
        assert spec.validate_file(task.verbalizers_path) == []


def test_regression_metrics_follow_lmbff():
    """STS-B: prediction = p(high) * (high - low) + low (LM-BFF); Pearson/Spearman over scores;
    label ids are refused by the correlation metrics (no silent phi coefficient)."""
    import numpy as np

    from pet.errors import ConfigError
    from pet.metrics import compute_metric, evaluate_log_probs, regression_scores

    load_task = R.load_task
    task = load_task("stsb")
    p_high = np.array([0.1, 0.5, 0.9, 0.3])
    lp = np.log(np.stack([1 - p_high, p_high], 1))
    np.testing.assert_allclose(regression_scores(task, lp), p_high * 5)
    exs = [Example({"text_a": "a", "text_b": "b"}, "1" if s >= 2.5 else "0", meta={"score": s}) for s in (0.0, 2.0, 4.8, 1.0)]
    m = evaluate_log_probs(task, exs, lp)
    assert m["spearman"] == pytest.approx(1.0) and m["pearson"] > 0.95
    with pytest.raises(ConfigError, match="label ids"):
        compute_metric("pearson", ["0", "1"], ["1", "1"])
    with pytest.raises(ConfigError, match="not a regression task"):
        regression_scores(load_task("sst2"), lp)


def test_load_table_jsonl_refuses_objects_and_names_the_line(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text('{"t": "ok", "y": "1"}\n{"t": {"a": 1}, "y": "0"}\n')
    with pytest.raises(DataError, match=r"x.jsonl: line 2: field 't' is an object, not text"):
        Tb.load_table(f, "t", "y")
    f.write_text('{"t": "ok", "y": 1}\n{"t": "fine", "y": 0}\n')
    assert [(e.fields["text_a"], e.label) for e in Tb.load_table(f, "t", "y")] == [("ok", "1"), ("fine", "0")]
