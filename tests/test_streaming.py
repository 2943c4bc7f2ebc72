"""Streaming prediction (`pet predict`, `pet zero-shot --data`) and Hugging Face datasets input.

Chunked results must equal the whole-input results exactly; outputs are atomic (a failure in
the middle leaves no file and no temp file, and an older output untouched); `hf:` data works
offline from a dataset the test saves with `save_to_disk` and from a local CSV folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets  # the `datasets` extra (in dev): missing means a collection error, not a skip
import numpy as np
import pytest

from pet.cli import main
from pet.estimator.classifier import PetClassifier
from pet.prompts.spec import PVP, Pattern, Verbalizer

VERB = Verbalizer("v", {"0": ["bad"], "1": ["good"]})
PVPS = [PVP(Pattern("p", "{text_a} It was {mask}."), VERB), PVP(Pattern("q", "Just {mask}! {text_a}"), VERB)]
TEXTS = [f"film {i} was {'great' if i % 3 else 'dull'} and {'long' if i % 2 else 'short'}" for i in range(41)]
GOLD = [str(int(i % 3 != 0)) for i in range(41)]


@pytest.fixture(scope="module")
def saved(tiny_bert_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("saved") / "clf"
    PetClassifier(tiny_bert_dir, "zero-shot", pvps=PVPS).fit(TEXTS[:4], GOLD[:4]).save(d)
    return d


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("files")
    (d / "in.csv").write_text("text,label\n" + "".join(f"{t},{g}\n" for t, g in zip(TEXTS, GOLD)), encoding="utf-8")
    (d / "in.jsonl").write_text("".join(json.dumps({"text": t, "label": g}) + "\n" for t, g in zip(TEXTS, GOLD)), encoding="utf-8")
    (d / "pats.json").write_text(json.dumps({"patterns": [{"id": "p", "template": "{text_a} It was {mask}."}, {"id": "q", "template": "Just {mask}! {text_a}"}]}))
    (d / "verbs.json").write_text(json.dumps({"verbalizers": [{"id": "v", "labels": {"0": ["bad"], "1": ["good"]}}]}))
    return d


def _lines(p: Path) -> list[dict]:
    return [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("name", ["in.csv", "in.jsonl"])
def test_predict_in_chunks_equals_whole_input(saved, files, tmp_path, name, one_thread):
    out = tmp_path / "preds.jsonl"
    assert main(["predict", str(saved), "--input", str(files / name), "--output", str(out), "--chunk-size", "5", "--batch-size", "3"]) == 0
    got = _lines(out)
    clf = PetClassifier.load(saved)
    proba = clf.predict_proba(TEXTS)
    # the input's columns are carried through; its gold `label` column yields to the prediction's name
    assert [(r["text"], r["input_label"]) for r in got] == list(zip(TEXTS, GOLD))
    assert [r["label"] for r in got] == [clf.labels_[i] for i in proba.argmax(1)]
    # written rounded to 6 decimals (error <= 5e-7) from float32 log-probs whose last bits depend on
    # how examples are batched (chunks of 5 in batches of 3 vs one call): a CI run saw 5.7e-7
    np.testing.assert_allclose([[r["probabilities"][lab] for lab in clf.labels_] for r in got], proba, atol=5e-7 + 1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.jsonl"]  # no temp file left


def test_predict_stream_api_equals_predict_proba(saved):
    clf = PetClassifier.load(saved)
    stream = clf.predict_stream(iter(TEXTS), chunk_size=4)  # a generator: never a list in memory
    got = list(stream)
    assert [x for x, _ in got] == TEXTS
    # chunks pad differently from one whole batch: equal up to fp32 reduction order
    np.testing.assert_allclose(np.stack([p for _, p in got]), clf.predict_proba(TEXTS), atol=1e-6)


def test_failure_mid_stream_leaves_nothing_half_written(saved, files, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS[:30]) + '{"text": ["a", "list"]}\n', encoding="utf-8")
    out = tmp_path / "preds.jsonl"
    out.write_text("old\n", encoding="utf-8")
    rc = main(["predict", str(saved), "--input", str(bad), "--output", str(out), "--chunk-size", "8"])
    err = capsys.readouterr().err
    assert rc == 2 and "line 31: field 'text' is a list, not text" in err and len(err.strip().splitlines()) == 1
    assert out.read_text(encoding="utf-8") == "old\n"  # the earlier output is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "preds.jsonl"]  # no temp file left
    # output == input is still refused, before any work
    rc = main(["predict", str(saved), "--input", str(bad), "--output", str(bad)])
    assert rc == 2 and bad.read_text(encoding="utf-8").startswith('{"text"')


def test_zero_shot_data_in_chunks_equals_whole_file_report(tiny_bert_dir, files, tmp_path, one_thread):
    from pet.data import own_data_task, task_pvps
    from pet.evaluation import zero_shot_report

    out = tmp_path / "r.json"
    args = ["zero-shot", "--data", str(files / "in.jsonl"), "--text-field", "text", "--label-field", "label", "--model", tiny_bert_dir,
            "--patterns", str(files / "pats.json"), "--verbalizers", str(files / "verbs.json"), "--no-progress", "--chunk-size", "6"]
    assert main([*args, "--output", str(out)]) == 0
    task, exs = own_data_task(files / "in.jsonl", {"text_a": "text"}, "label")
    ref = zero_shot_report(tiny_bert_dir, exs, task, task_pvps(task, str(files / "pats.json"), str(files / "verbs.json"), None))
    got = json.loads(out.read_text())
    assert got["n"] == len(TEXTS) and got["metric"] == "accuracy"
    assert [p["metrics"] for p in got["pvps"]] == [p["metrics"] for p in ref["pvps"]]
    assert got["ensemble"]["metrics"] == ref["ensemble"]["metrics"]
    assert main([*args, "--limit", "10", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["n"] == 10


def _hf_dataset():
    feats = datasets.Features({"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    return datasets.Dataset.from_dict({"sentence": TEXTS, "label": [int(g) for g in GOLD]}, features=feats)


def test_hf_dataset_saved_to_disk_class_label_names(tiny_bert_dir, tmp_path, capsys, one_thread):
    from pet.data.hub import HubData, parse_hf

    datasets.DatasetDict({"train": _hf_dataset().select(range(5)), "test": _hf_dataset()}).save_to_disk(str(tmp_path / "ds"))
    hub = HubData(f"hf:{tmp_path / 'ds'}", None, ["sentence"], "label")
    assert hub.split == "test" and hub.labels() == ["neg", "pos"]
    recs = list(hub.records())
    assert [r["label"] for r in recs] == [["neg", "pos"][int(g)] for g in GOLD] and recs[0]["sentence"] == TEXTS[0]
    assert parse_hf("hf:glue:sst2") == ("glue", "sst2") and parse_hf("hf:./data/x") == ("./data/x", None)
    (tmp_path / "v.json").write_text(json.dumps({"verbalizers": [{"id": "v", "labels": {"neg": ["bad"], "pos": ["good"]}}]}))
    (tmp_path / "p.json").write_text(json.dumps({"patterns": [{"id": "p", "template": "{text_a} It was {mask}."}]}))
    out = tmp_path / "r.json"
    rc = main(["zero-shot", "--data", f"hf:{tmp_path / 'ds'}", "--split", "test", "--text-field", "sentence", "--label-field", "label",
               "--model", tiny_bert_dir, "--patterns", str(tmp_path / "p.json"), "--verbalizers", str(tmp_path / "v.json"),
               "--no-progress", "--output", str(out)])
    assert rc == 0, capsys.readouterr().err
    rep = json.loads(out.read_text())
    assert rep["n"] == len(TEXTS) and rep["split"].endswith(":test")
    # errors: unknown split, unknown column — one line each, naming the fix
    for extra, msg in ((["--split", "dev"], "no split 'dev'; splits present: ['train', 'test']"), (["--text-field", "text"], "no column 'text'")):
        argv = ["zero-shot", "--data", f"hf:{tmp_path / 'ds'}", "--text-field", "sentence", "--label-field", "label", "--model", tiny_bert_dir,
                "--patterns", str(tmp_path / "p.json"), "--verbalizers", str(tmp_path / "v.json"), "--no-progress"]
        if extra[0] == "--text-field":
            argv[argv.index("sentence")] = "text"
        else:
            argv += extra
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert msg in err and "fix:" in err


def test_hf_local_csv_folder_through_load_dataset(saved, tmp_path):
    folder = tmp_path / "csvdata"
    folder.mkdir()
    (folder / "test.csv").write_text("text,label\n" + "".join(f"{t},{g}\n" for t, g in zip(TEXTS, GOLD)), encoding="utf-8")
    out = tmp_path / "preds.jsonl"
    assert main(["predict", str(saved), "--input", f"hf:{folder}", "--output", str(out), "--chunk-size", "16"]) == 0
    got = _lines(out)
    clf = PetClassifier.load(saved)
    assert [r["label"] for r in got] == list(clf.predict(TEXTS).astype(str))


# ------------------------------------------------------------------ pet predict: output formats


@pytest.fixture(scope="module")
def with_ids(tmp_path_factory):
    """A CSV with an id column, a text holding a comma and quotes, and a gold label column."""
    import csv

    p = tmp_path_factory.mktemp("ids") / "new.csv"
    with p.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "label"])
        w.writerows([f"r{i:03d}", t if i != 2 else 'a "quoted", comma text', g] for i, (t, g) in enumerate(zip(TEXTS, GOLD)))
    return p


def test_predict_writes_the_format_its_extension_names_with_the_input_columns(saved, with_ids, tmp_path, one_thread):
    import pandas as pd

    clf = PetClassifier.load(saved)
    texts = list(pd.read_csv(with_ids, dtype=str)["text"])
    proba = clf.predict_proba(texts)
    ids = [f"r{i:03d}" for i in range(len(TEXTS))]
    for ext, sep in ((".csv", ","), (".tsv", "\t")):
        out = tmp_path / f"preds{ext}"
        assert main(["predict", str(saved), "--input", str(with_ids), "--output", str(out), "--chunk-size", "7", "--no-progress"]) == 0
        df = pd.read_csv(out, sep=sep, dtype=str, keep_default_na=False)
        assert list(df.columns) == ["id", "text", "input_label", "label", "p_0", "p_1"]
        assert list(df["id"]) == ids and list(df["text"]) == texts and list(df["input_label"]) == GOLD
        assert list(df["label"]) == [clf.labels_[i] for i in proba.argmax(1)]
        np.testing.assert_allclose(df[["p_0", "p_1"]].astype(float).to_numpy(), proba, atol=5e-7 + 1e-6)  # 6-decimal rounding + float32 batching noise (see above)
    out = tmp_path / "preds.jsonl"
    assert main(["predict", str(saved), "--input", str(with_ids), "--output", str(out), "--keep", "id", "--no-progress"]) == 0
    got = _lines(out)
    assert [list(r) for r in got[:1]] == [["id", "label", "probabilities"]] and [r["id"] for r in got] == ids
    out = tmp_path / "bare.csv"
    assert main(["predict", str(saved), "--input", str(with_ids), "--output", str(out), "--keep", "--no-progress"]) == 0
    assert out.read_text(encoding="utf-8").splitlines()[0] == "label,p_0,p_1"


def test_predict_refuses_an_unknown_extension_or_column_before_loading(saved, with_ids, tmp_path, capsys, monkeypatch):
    from pet.estimator.classifier import PetClassifier

    monkeypatch.setattr(PetClassifier, "load", classmethod(lambda cls, *a, **k: pytest.fail("the model was loaded")))
    for extra, msg in ((["--output", str(tmp_path / "preds.txt")], "unknown format '.txt'; fix: end the file name in .csv, .tsv, .jsonl"),
                       (["--output", str(tmp_path / "p.csv"), "--keep", "id", "nosuch"], "no column 'nosuch'")):
        assert main(["predict", str(tmp_path / "no-model"), "--input", str(with_ids), *extra]) == 2  # the model is never loaded
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_predict_and_zero_shot_report_progress_as_plain_lines_off_a_terminal(saved, files, tiny_bert_dir, tmp_path, capsys, one_thread):
    out = tmp_path / "p.jsonl"
    assert main(["predict", str(saved), "--input", str(files / "in.csv"), "--output", str(out), "--chunk-size", "5"]) == 0
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("predict: ")]
    assert "\r" not in err and 1 < len(lines) <= 10 and lines[-1] == f"predict: {len(TEXTS)}/{len(TEXTS)} ex (100%)"
    assert main(["predict", str(saved), "--input", str(files / "in.csv"), "--output", str(out), "--no-progress"]) == 0
    assert capsys.readouterr().err.strip() == f"{len(TEXTS)} predictions -> {out}"
    zs = ["zero-shot", "--data", str(files / "in.jsonl"), "--text-field", "text", "--label-field", "label", "--model", tiny_bert_dir,
          "--patterns", str(files / "pats.json"), "--verbalizers", str(files / "verbs.json"), "--chunk-size", "10", "--limit", "30"]
    assert main(zs) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and err.splitlines()[-1] == "zero-shot: 30/30 ex (100%)"


# ------------------------------------------------------------------ hf: through every command


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("hf") / "ds"
    datasets.DatasetDict({"train": _hf_dataset().select(range(20)), "test": _hf_dataset().select(range(20, 41))}).save_to_disk(str(d))
    (d.parent / "v.json").write_text(json.dumps({"verbalizers": [{"id": "v", "labels": {"neg": ["bad"], "pos": ["good"]}}]}))
    (d.parent / "p.json").write_text(json.dumps({"patterns": [{"id": "p", "template": "{text_a} It was {mask}."}]}))
    return d


def test_train_reads_hf_data_through_the_same_reader(hf_dir, tiny_bert_dir, tmp_path, capsys, one_thread):
    out = tmp_path / "clf"
    common = ["--text-field", "sentence", "--label-field", "label", "--model", tiny_bert_dir, "--no-progress",
              "--patterns", str(hf_dir.parent / "p.json"), "--verbalizers", str(hf_dir.parent / "v.json")]
    rc = main(["train", "--data", f"hf:{hf_dir}", "--test", f"hf:{hf_dir}", "--method", "zero-shot", "--shots", "3", *common, "--output", str(out)])
    assert rc == 0, capsys.readouterr().err
    (stage,) = json.loads((out / "metrics.json").read_text())["stages"]
    assert (stage["n_train"], stage["n_test"]) == (6, 21)  # K=3 per ClassLabel name from train; the test split scored
    assert PetClassifier.load(out).labels_ == ["neg", "pos"]
    # --split picks another split; a missing one is named with the splits present
    assert main(["train", "--data", f"hf:{hf_dir}", "--split", "nope", "--method", "zero-shot", "--shots", "3", *common]) == 2
    assert "no split 'nope'; splits present: ['train', 'test']" in capsys.readouterr().err
    # a file path that does not exist says so (and how to name a dataset), not "--data-dir"
    assert main(["train", "--data", str(tmp_path / "nope.csv"), "--method", "zero-shot", *common]) == 2
    err = capsys.readouterr().err
    assert "nope.csv: file not found" in err and "hf:NAME" in err and "--data-dir" not in err


def test_search_verbalizer_reads_hf_data(hf_dir, tiny_bert_dir, tmp_path, capsys, one_thread):
    out = tmp_path / "v.json"
    rc = main(["search-verbalizer", "--data", f"hf:{hf_dir}", "--text-field", "sentence", "--label-field", "label", "--shots", "2",
               "--patterns", str(hf_dir.parent / "p.json"), "--pattern", "p", "--candidates", "5", "--beam", "5", "--rerank", "2",
               "--folds", "2", "--model", tiny_bert_dir, "--output", str(out)])
    assert rc == 0, capsys.readouterr().err
    (verb,) = json.loads(out.read_text())["verbalizers"]
    assert set(verb["labels"]) == {"neg", "pos"} and "4 train" in capsys.readouterr().out
