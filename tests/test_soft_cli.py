"""Soft-prompt methods end to end through the CLI: `pet train --output` then `pet predict`,
and `pet compare-prompts` on a tiny random BERT."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from conftest import tiny_mlm
from pet.classifier import CONFIG_FILE, PetClassifier

TEXTS = ["good", "bad", "good good", "bad bad", "very good", "very bad", "good fun", "bad day", "so good", "so bad"]
Y = ["1", "0", "1", "0", "1", "0", "1", "0", "1", "0"]
VERB = {"id": "good-bad", "labels": {"0": ["bad"], "1": ["good"]}}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-bert")
    m, tok = tiny_mlm("bert", seed=5)
    m.save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


@pytest.fixture
def own_data(tmp_path):
    """A tiny own-data CSV (columns review/stars), a test CSV, and pattern/verbalizer files
    with one hard and one soft pattern."""
    data = tmp_path / "reviews.csv"
    with data.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "stars"])
        w.writerows(zip(TEXTS, Y))
    test = tmp_path / "test.csv"
    with test.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "stars"])
        w.writerows(zip(TEXTS[:6], Y[:6]))
    pat = tmp_path / "patterns.json"
    pat.write_text(json.dumps({"patterns": [
        {"id": "it-was", "template": "{text_a} It was {mask}."},
        {"id": "soft-2", "template": "{text_a} It was {soft:2} {mask}."},
        {"id": "prefix-1", "template": "{soft:1} {text_a} It was {mask}."},
    ]}))
    verb = tmp_path / "verbalizers.json"
    verb.write_text(json.dumps({"verbalizers": [VERB]}))
    return data, test, pat, verb


def _train(tiny_dir, own_data, method, out, *extra, pvps=("soft-2:good-bad",)):
    from pet.cli import main

    data, test, pat, verb = own_data
    return main([
        "train", "--data", str(data), "--test", str(test), "--text-field", "review", "--label-field", "stars",
        "--patterns", str(pat), "--verbalizers", str(verb), "--pvps", *pvps, "--model", tiny_dir,
        "--method", method, "--shots", "2", "--seed", "3", "--steps", "2", "--max-length", "32", "--no-progress",
        "--output", str(out), *extra,
    ])


@pytest.mark.parametrize("method", ["prompt-tuning", "p-tuning", "p-tuning-ft", "deep-prompt"])
def test_train_then_predict(method, tiny_dir, own_data, tmp_path, capsys):
    from pet.cli import main

    data, test, _, _ = own_data
    out = tmp_path / "model"
    assert _train(tiny_dir, own_data, method, out) == 0
    err = capsys.readouterr().err
    assert "no model saved" not in err and "did not save" not in err
    meta = json.loads((out / CONFIG_FILE).read_text())
    assert meta["format_version"] == 1 and meta["method"] == method and meta["pvps"] == ["soft-2:good-bad"]
    (member,) = meta["predictor"]["members"]
    assert member["soft_prompt"]["weights"] == "soft_prompts/0.safetensors"
    assert (out / member["soft_prompt"]["weights"]).is_file()
    if method == "p-tuning-ft":  # tuned LM: its weights are saved
        assert member["model"] == "models/0" and (out / "models" / "0" / "model.safetensors").is_file()
        assert member["soft_prompt"]["config"]["tune"] == "full"
    else:  # frozen LM: only the soft parameters plus the base model's name/path
        assert "model" not in member and not (out / "models").exists()
        assert member["base_model"]["name"] == tiny_dir and len(member["base_model"]["sha256"]) == 64
        assert member["soft_prompt"]["config"]["tune"] == "frozen"
        assert not list(out.rglob("model.safetensors"))
    metrics = json.loads((out / "metrics.json").read_text())
    (stage,) = metrics["stages"]

    preds = tmp_path / "preds.jsonl"
    assert main(["predict", str(out), "--input", str(test), "--text-field", "review", "--output", str(preds)]) == 0
    lines = [json.loads(x) for x in preds.read_text().splitlines()]
    assert len(lines) == 6 and all(set(x["probabilities"]) == {"0", "1"} for x in lines)
    # the loaded model is the trained one: its test accuracy is the one `pet train` reported
    acc = float(np.mean([x["label"] == y for x, y in zip(lines, Y[:6])]))
    assert acc == pytest.approx(stage["score"])
    assert PetClassifier.load(out).method == method


def test_two_soft_pvps_saved_as_one_ensemble(tiny_dir, own_data, tmp_path, capsys):
    from pet.cli import main

    out = tmp_path / "ens"
    assert _train(tiny_dir, own_data, "deep-prompt", out, pvps=("soft-2:good-bad", "prefix-1:good-bad")) == 0
    capsys.readouterr()
    meta = json.loads((out / CONFIG_FILE).read_text())
    members = meta["predictor"]["members"]
    assert [m["pvp"] for m in members] == ["soft-2:good-bad", "prefix-1:good-bad"]
    assert [m["soft_prompt"]["weights"] for m in members] == ["soft_prompts/0.safetensors", "soft_prompts/1.safetensors"]
    assert not (out / "models").exists()
    ens = [s for s in json.loads((out / "metrics.json").read_text())["stages"] if s["stage"] == "ensemble"]
    preds = tmp_path / "p.jsonl"
    assert main(["predict", str(out), "--input", str(own_data[1]), "--text-field", "review", "--output", str(preds)]) == 0
    lines = [json.loads(x) for x in preds.read_text().splitlines()]
    assert float(np.mean([x["label"] == y for x, y in zip(lines, Y[:6])])) == pytest.approx(ens[0]["score"])


def test_save_false_keeps_metrics_only(tiny_dir, own_data, tmp_path, capsys):
    out = tmp_path / "m"
    assert _train(tiny_dir, own_data, "prompt-tuning", out, "-o", "save=false") == 0
    err = capsys.readouterr().err
    assert "no model saved for method 'prompt-tuning' (option save=false)" in err
    assert (out / "metrics.json").is_file() and not (out / CONFIG_FILE).exists()


def test_compare_prompts_cli(tiny_dir, tmp_path, capsys):
    from pet.cli import main

    root = tmp_path / "data"
    (root / "toy").mkdir(parents=True)
    for name, rows in (("train.csv", list(zip(TEXTS, Y))), ("test.csv", list(zip(TEXTS[:6], Y[:6])))):
        with (root / "toy" / name).open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "label"])
            w.writerows(rows)
    (tmp_path / "patterns.json").write_text(json.dumps({"patterns": [
        {"id": "it-was", "template": "{text_a} It was {mask}."},
        {"id": "soft-2", "template": "{text_a} It was {soft:2} {mask}."},
    ]}))
    (tmp_path / "verbalizers.json").write_text(json.dumps({"verbalizers": [VERB]}))
    task = tmp_path / "toy.json"
    task.write_text(json.dumps({
        "name": "toy", "folder": "toy", "fields": {"text_a": "text"}, "label": "label", "labels": {"0": "neg", "1": "pos"},
        "splits": {"train": {"file": "train.csv"}, "test": {"file": "test.csv"}}, "metric": "accuracy",
        "default_pvps": [["it-was", "good-bad"]], "max_length": 32, "patterns": "patterns.json", "verbalizers": "verbalizers.json",
    }))
    out = tmp_path / "cmp"
    rc = main([
        "compare-prompts", "--task", str(task), "--data-dir", str(root), "--model", tiny_dir, "--shots", "2", "--seeds", "13",
        "--steps", "1", "--methods", "zero-shot,prompt-ft,prompt-tuning", "--set", "eval_batch_size=4", "--output", str(out),
    ])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    for name in ("rows.csv", "summary.csv", "summary.md", "chart.png", "run.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "chart.png").read_bytes()[:4] == b"\x89PNG"
    with (out / "summary.csv").open() as f:
        summary = list(csv.DictReader(f))
    assert [r["method"] for r in summary] == ["zero-shot", "prompt-ft", "prompt-tuning", "majority class"]
    with (out / "rows.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == {"zero-shot", "prompt-ft", "prompt-tuning"}
    assert {r["pvp"] for r in rows if r["method"] == "prompt-tuning"} == {"soft-2:good-bad"}
    md = (out / "summary.md").read_text()
    for name in ("zero-shot", "prompt-ft", "prompt-tuning", "majority class"):
        assert f"| {name} |" in md
    assert "prompt-tuning" in captured.out and "wrote" in captured.out
    # a second run into the same folder needs --overwrite
    rc = main(["compare-prompts", "--task", str(task), "--data-dir", str(root), "--model", tiny_dir, "--shots", "2",
               "--seeds", "13", "--steps", "1", "--methods", "zero-shot", "--output", str(out)])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err
