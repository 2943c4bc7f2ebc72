"""Soft-prompt methods end to end through the CLI: `pet train --output` then `pet predict` (from
a saved folder that needs nothing outside it), and `pet compare-prompts` (a preset experiment
of the bench runner: results store, report, resume) on a tiny random BERT."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from conftest import tiny_mlm
from pet.estimator.classifier import CONFIG_FILE, PetClassifier

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
def base_copy(tiny_dir, tmp_path):
    """A per-test copy of the tiny model folder, which the test may delete."""
    return str(shutil.copytree(tiny_dir, tmp_path / "base-model"))


@pytest.fixture
def own_data(tmp_path):
    """A tiny own-data CSV (columns review/stars), a test CSV, and pattern/verbalizer files
    with one hard and two soft patterns."""
    data = tmp_path / "reviews.csv"
    with data.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "stars"])
        w.writerows(zip(TEXTS, Y))
    test = tmp_path / "test.csv"
    with test.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "stars"])  # texts not in reviews.csv (test rows equal to a training text are dropped)
        w.writerows(zip(["good show", "bad show", "good time", "bad time", "really good", "really bad"], Y[:6]))
    pat = tmp_path / "patterns.json"
    pat.write_text(json.dumps({"patterns": [
        {"id": "it-was", "template": "{text_a} It was {mask}."},
        {"id": "soft-2", "template": "{text_a} It was {soft:2} {mask}."},
        {"id": "prefix-1", "template": "{soft:1} {text_a} It was {mask}."},
    ]}))
    verb = tmp_path / "verbalizers.json"
    verb.write_text(json.dumps({"verbalizers": [VERB]}))
    return data, test, pat, verb


def _train(model, own_data, method, out, *extra, pvps=("soft-2:good-bad",)):
    from pet.cli import main

    data, test, pat, verb = own_data
    return main([
        "train", "--data", str(data), "--test", str(test), "--text-field", "review", "--label-field", "stars",
        "--patterns", str(pat), "--verbalizers", str(verb), "--pvps", *pvps, "--model", model,
        "--method", method, "--shots", "2", "--seed", "3", "--steps", "2", "--max-length", "32", "--no-progress",
        *(["--output", str(out)] if out is not None else []), *extra,
    ])


def _predict_accuracy(out, test, tmp_path) -> float:
    from pet.cli import main

    preds = tmp_path / f"preds-{out.name}.jsonl"
    assert main(["predict", str(out), "--input", str(test), "--text-field", "review", "--output", str(preds)]) == 0
    lines = [json.loads(x) for x in preds.read_text().splitlines()]
    assert len(lines) == 6 and all(set(x["probabilities"]) == {"0", "1"} for x in lines)
    return float(np.mean([x["label"] == y for x, y in zip(lines, Y[:6])]))


@pytest.mark.parametrize("method", ["prompt-tuning", "p-tuning", "p-tuning-ft", "deep-prompt"])
def test_train_then_predict_from_a_self_contained_folder(method, base_copy, own_data, tmp_path, capsys):
    data, test, _, _ = own_data
    out = tmp_path / "model"
    assert _train(base_copy, own_data, method, out) == 0
    captured = capsys.readouterr()
    assert f"saved to {out}" in captured.err and "← final" in captured.out
    meta = json.loads((out / CONFIG_FILE).read_text())
    assert meta["format_version"] == 3 and meta["method"] == method and meta["pvps"] == ["soft-2:good-bad"]
    assert meta["final_stage"] == "pvp[soft-2:good-bad]"
    (member,) = meta["predictor"]["members"]
    assert member["soft_prompt"]["weights"] == "soft_prompts/0.safetensors"
    assert (out / member["soft_prompt"]["weights"]).is_file()
    # frozen or tuned, the LM is in the folder: nothing outside it is ever loaded
    assert member["model"] == "models/0" and (out / "models" / "0" / "model.safetensors").is_file()
    assert "base_model" not in member
    assert member["soft_prompt"]["config"]["tune"] == ("full" if method == "p-tuning-ft" else "frozen")
    assert (out / "manifest.json").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    (stage,) = metrics["stages"]
    assert stage["final"] and stage["method"] == method and stage["n_test"] == 6 and stage["k"] == 2

    shutil.rmtree(base_copy)  # the base model is gone: the folder alone must predict
    # the loaded model is the trained one: its test accuracy is the one `pet train` reported
    assert _predict_accuracy(out, test, tmp_path) == pytest.approx(stage["score"])
    assert PetClassifier.load(out).method == method


def test_two_soft_pvps_saved_as_one_ensemble(base_copy, own_data, tmp_path, capsys):
    out = tmp_path / "ens"
    assert _train(base_copy, own_data, "deep-prompt", out, pvps=("soft-2:good-bad", "prefix-1:good-bad")) == 0
    capsys.readouterr()
    meta = json.loads((out / CONFIG_FILE).read_text())
    assert meta["final_stage"] == "ensemble"
    members = meta["predictor"]["members"]
    assert [m["pvp"] for m in members] == ["soft-2:good-bad", "prefix-1:good-bad"]
    assert [m["soft_prompt"]["weights"] for m in members] == ["soft_prompts/0.safetensors", "soft_prompts/1.safetensors"]
    assert [m["model"] for m in members] == ["models/0", "models/0"]  # both soft prompts sit on the one frozen LM, stored once
    assert not (out / "models" / "1").exists()
    stages = json.loads((out / "metrics.json").read_text())["stages"]
    assert [s["key"] for s in stages] == ["pvp[soft-2:good-bad]", "pvp[prefix-1:good-bad]", "ensemble"]
    (ens,) = [s for s in stages if s["final"]]
    shutil.rmtree(base_copy)
    assert _predict_accuracy(out, own_data[1], tmp_path) == pytest.approx(ens["score"])


def test_without_output_nothing_is_saved(base_copy, own_data, tmp_path, capsys, monkeypatch):
    """Saving is the caller's choice: no --output, no files (the old `-o save=false` is gone)."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert _train(base_copy, own_data, "prompt-tuning", None) == 0
    captured = capsys.readouterr()
    assert "pvp" in captured.out and "soft-2:good-bad" in captured.out and "← final" in captured.out
    assert "saved to" not in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before and not list(work.iterdir())
    assert _train(base_copy, own_data, "prompt-tuning", None, "-o", "save=false") == 2
    assert "-o" in capsys.readouterr().err
    assert _train(base_copy, own_data, "prompt-tuning", None, "--save", "false") == 2
    capsys.readouterr()


@pytest.mark.parametrize(
    "method,lr,flags",
    [
        ("prompt-tuning", "0.03", ["--template", "--prompt-length", "--init", "--verbalizer", "--soft-lr", "--tune"]),
        ("p-tuning", "0.003", ["--encoder", "--hidden-size", "--lstm-layers"]),
        ("deep-prompt", "0.01", ["--prompt-length", "--verbalizer"]),
    ],
)
def test_train_help_lists_the_method_options_with_its_defaults(method, lr, flags, capsys):
    from pet.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "--method", method, "--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"{method} options (soft;" in out
    for flag in flags:
        assert flag in out, flag
    lr_help = out[out.rindex("--lr X"):][:120]
    assert f"(default: {lr})" in lr_help
    assert "--distill-steps" not in out and "--generations" not in out


def _toy_task(tmp_path):
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
    return task, root


def _store_rows(out) -> list[dict]:
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    return [r for r in lines if r.get("type") == "row"]


def test_compare_prompts_cli_results_store_report_and_resume(tiny_dir, tmp_path, capsys):
    from pet.cli import main

    task, root = _toy_task(tmp_path)
    out = tmp_path / "cmp"
    common = ["compare-prompts", "--task", str(task), "--data-dir", str(root), "--model", tiny_dir, "--shots", "2", "--seeds", "13",
              "--steps", "1", "--set", "eval_batch_size=4", "--set", "prompt-tuning.soft_lr=0.1", "--output", str(out)]
    # --set keys are checked against each method's options before anything runs
    assert main([*common, "--methods", "prompt-tuning", "--set", "prompt-tuning.prompt_lenght=2"]) == 2
    assert "did you mean 'prompt_length'" in capsys.readouterr().err and not (out / "results.jsonl").exists()
    rc = main([*common, "--methods", "zero-shot,prompt-ft,prompt-tuning"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    # a results store and its report
    assert (out / "results.jsonl").is_file()
    for name in ("report.md", "headline.csv", "hard_soft.csv", "rows.csv"):
        assert (out / "report" / name).is_file() and (out / "report" / name).stat().st_size > 0, name
    pngs = list((out / "report" / "plots").glob("*.png"))
    assert pngs and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    rows = _store_rows(out)
    assert {r["method"] for r in rows} == {"zero-shot", "prompt-ft", "prompt-tuning"}
    assert {r["pvp"] for r in rows if r["method"] == "prompt-tuning"} == {"soft-2:good-bad"}
    assert {r["pvp"] for r in rows if r["method"] != "prompt-tuning"} == {"it-was:good-bad"}
    (pt,) = [r for r in rows if r["method"] == "prompt-tuning"]
    assert pt["options"]["soft_lr"] == 0.1 and pt["options"]["steps"] == 1 and pt["options"]["eval_batch_size"] == 4
    assert pt["trained_parameters"] == 2 * 32
    with (out / "report" / "hard_soft.csv").open() as f:
        (hs,) = list(csv.DictReader(f))
    assert hs["soft_method"] == "prompt-tuning" and hs["hard_method"] in ("zero-shot", "prompt-ft")
    md = (out / "report" / "report.md").read_text()
    assert "## Hard vs soft prompts" in md
    for name in ("zero-shot", "prompt-ft", "prompt-tuning"):
        assert name in md
    assert "Hard vs soft prompts" in captured.out and f"results: {out}" in captured.out

    # the same command again: every cell is in the store, nothing is recomputed
    store = (out / "results.jsonl").read_bytes()
    assert main([*common, "--methods", "zero-shot,prompt-ft,prompt-tuning"]) == 0
    capsys.readouterr()
    assert (out / "results.jsonl").read_bytes() == store
    # one more method: only its cell is computed, appended after the old ones
    assert main([*common, "--methods", "zero-shot,prompt-ft,prompt-tuning,deep-prompt"]) == 0
    capsys.readouterr()
    new = (out / "results.jsonl").read_bytes()
    assert new.startswith(store) and len(new) > len(store)
    rows = _store_rows(out)
    assert [r["method"] for r in rows].count("deep-prompt") == 1 and len(rows) == 4
    assert "deep-prompt" in (out / "report" / "report.md").read_text()
