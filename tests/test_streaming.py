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

from pet.estimator.classifier import PetClassifier
from pet.cli import main
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
    np.testing.assert_allclose([[r["probabilities"][lab] for lab in clf.labels_] for r in got], proba, atol=5e-7)
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
