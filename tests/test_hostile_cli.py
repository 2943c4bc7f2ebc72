"""Hostile or careless use of the CLI and of experiment files: results folders outside the file's
folder or not pet's, duplicate YAML keys, empty grids, `pet train --output` checked before any
work, `pet report` on a damaged store, and the small wording/exit-status promises."""

from __future__ import annotations

import json
import re

import pytest
import torch

from pet.bench.experiment import expand_grid, load_experiment, read_experiment_file
from pet.bench.store import ResultsStore
from pet.cli import main
from pet.errors import ConfigError
from pet.utils import threads


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(capsys, argv) -> str:
    code, _, err = run(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "fix:" in lines[0], err
    return lines[0]


def experiment(tmp_path, text: str, name: str = "exp.yaml"):
    p = tmp_path / name
    p.write_text("tasks: [sst2]\nmethods: [zero-shot]\nk: [16]\nseeds: [13]\n" + text)
    return p


# ----------------------------------------------------------------------------- bench: results folder


@pytest.mark.parametrize("results", ["/etc/petresults", "../up", "sub/../../up"])
def test_results_from_the_file_stays_in_its_folder(tmp_path, capsys, results):
    exp = experiment(tmp_path, f"results: {results}\n")
    msg = one_error(capsys, ["bench", exp, "--dry-run", "--model", "fake-model"])
    assert "$.results" in msg and "outside the experiment file's folder" in msg
    # the --results flag is the user's own choice: anywhere
    assert load_experiment(exp).results_dir(tmp_path / "elsewhere") == tmp_path / "elsewhere"


def test_bench_refuses_a_folder_that_is_not_a_store(tmp_path, capsys):
    exp = experiment(tmp_path, "results: victim\n")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "results.jsonl").write_text('{"my": "precious data"}\n')
    msg = one_error(capsys, ["bench", exp, "--dry-run", "--model", "fake-model"])
    assert "victim: not a pet results store" in msg and "1 unreadable line" in msg
    assert sorted(p.name for p in victim.iterdir()) == ["results.jsonl"]  # nothing written beside it
    assert (victim / "results.jsonl").read_text() == '{"my": "precious data"}\n'
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert "has no results.jsonl" in one_error(capsys, ["bench", exp, "--dry-run", "--model", "fake-model", "--results", other])


def test_a_store_new_empty_or_pets_is_accepted(tmp_path):
    ResultsStore(tmp_path / "new").check_is_store()
    (tmp_path / "empty").mkdir()
    ResultsStore(tmp_path / "empty").check_is_store()
    st = ResultsStore(tmp_path / "store")
    st.append_cell("h", [{"task": "t", "score": 0.5}])
    (st.root / "report").mkdir()
    st.lock_path.unlink()  # a store copied without its lock file (git ignores it)
    st.check_is_store()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        ResultsStore(tmp_path / "file").check_is_store()


# ----------------------------------------------------------------------------- bench: experiment files


def test_duplicate_yaml_key_is_an_error_naming_key_and_line(tmp_path):
    p = tmp_path / "dup.yaml"
    p.write_text("tasks: [sst2]\ntasks: [trec]\nmethods: [zero-shot]\n")
    with pytest.raises(ConfigError, match=r"line 2 .*duplicate key 'tasks' \(first at line 1\); fix: keep one of them"):
        read_experiment_file(p)
    # a merge key's entries may still be overridden
    p.write_text("base: &b {name: sst2, k: [16]}\ntasks:\n  - <<: *b\n    k: [8]\nmethods: [zero-shot]\n")
    assert read_experiment_file(p)["tasks"] == [{"name": "sst2", "k": [8]}]


def test_misspelt_top_level_key_is_named_first(tmp_path):
    p = tmp_path / "typo.yaml"
    p.write_text("taskz: [sst2]\nmethods: [zero-shot]\n")
    with pytest.raises(ConfigError) as e:
        load_experiment(p)
    assert str(e.value).startswith(f"{p}: $: unknown field 'taskz'; fix: rename it to 'tasks'")


def test_k_zero_with_methods_that_need_labels_is_an_empty_grid_error(tmp_path, capsys):
    p = tmp_path / "k0.yaml"
    p.write_text("tasks: [sst2]\nk: [0]\nmethods: [prompt-ft]\n")
    with pytest.raises(ConfigError, match="the grid is empty: every K is 0.*prompt-ft need them; fix: add a K above 0"):
        expand_grid(load_experiment(p), model="fake-model")
    p.write_text("tasks: [sst2]\nk: [0]\nseeds: [13]\nmethods: [prompt-ft, zero-shot]\n")
    assert [c.method for c in expand_grid(load_experiment(p), model="fake-model")] == ["zero-shot"]


# ----------------------------------------------------------------------------- pet report


def _row(seed: int) -> dict:
    return {"task": "sst2", "method": "zero-shot", "method_name": "zero-shot", "stage": "ensemble", "pvp": None, "k": 16, "seed": seed,
            "score": 0.5, "metric": "accuracy", "metrics": {"accuracy": 0.5}, "train_seconds": 0.0, "eval_examples_per_second": 9.0,
            "peak_memory_mb": 1.0, "trained_parameters": 0, "cell_seconds": 1.0, "model": "m", "timestamp": "2026-01-01T00:00:00+00:00",
            "test": {"split": "test", "n": 8, "n_full": 8, "subset": False, "note": "full"}, "final": True}


def test_report_on_a_garbage_store_is_an_error(tmp_path, capsys):
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "results.jsonl").write_text("garbage\n{\"my\": 1}\n")
    msg = one_error(capsys, ["report", tmp_path / "g"])
    assert "no line is a pet result (2 unreadable lines)" in msg


def test_report_notes_unreadable_lines_and_no_plots(tmp_path, capsys):
    st = ResultsStore(tmp_path / "s")
    for seed in (13, 21):
        st.append_cell(f"h{seed}", [_row(seed)])
    with open(st.path, "a") as f:
        f.write("not json\n")
    code, _, err = run(["report", st.root, "--quiet", "--no-plots", "--resamples", "100"], capsys)
    assert code == 0, err
    assert f"note: {st.path}: ignoring 1 unreadable line" in err.splitlines()
    md = (st.root / "report" / "report.md").read_text()
    assert "The store holds 1 unreadable line; ignored." in md and "plots/" not in md


# ----------------------------------------------------------------------------- pet train


@pytest.fixture
def own(tmp_path):
    csv = tmp_path / "reviews.csv"
    csv.write_text("review,stars\n" + "".join(f"good film {i},5\nbad film {i},1\n" for i in range(6)))
    pats = tmp_path / "p.json"
    pats.write_text(json.dumps({"patterns": [{"id": "a", "template": "{text_a} It was {mask}."},
                                             {"id": "b", "template": "Just {mask}! {text_a}"}]}))
    verbs = tmp_path / "v.json"
    verbs.write_text(json.dumps({"verbalizers": [{"id": "v", "labels": {"1": ["bad"], "5": ["good"]}}]}))
    return ["train", "--data", csv, "--text-field", "review", "--label-field", "stars", "--patterns", pats, "--verbalizers", verbs,
            "--method", "prompt-ft", "--shots", "2", "--steps", "1", "--no-progress"]


@pytest.fixture
def no_training(monkeypatch):
    """`fit_evaluate` fails the test: the error must come before any training."""
    import pet.cli.train as train

    def trained(*a, **kw):
        raise AssertionError("trained before checking --output")

    monkeypatch.setattr(train, "fit_evaluate", trained)


def test_train_output_is_checked_before_training(own, tiny_bert_dir, tmp_path, capsys, no_training):
    base = [*own, "--model", tiny_bert_dir]
    (tmp_path / "precious.txt").write_text("mine")
    assert "is a file, not a folder" in one_error(capsys, [*base, "--output", tmp_path / "precious.txt"])
    notsaved = tmp_path / "notsaved"
    notsaved.mkdir()
    (notsaved / "f").write_text("mine")
    assert "exists and is not empty" in one_error(capsys, [*base, "--output", notsaved])
    assert "has no pet_config.json" in one_error(capsys, [*base, "--output", notsaved, "--overwrite"])
    assert (tmp_path / "precious.txt").read_text() == "mine" and (notsaved / "f").read_text() == "mine"


def test_train_output_inside_the_model_folder_is_refused(own, tiny_bert_dir, capsys, no_training):
    from pathlib import Path

    out = Path(tiny_bert_dir) / "sub"
    assert "lies inside the input folder" in one_error(capsys, [*own, "--model", tiny_bert_dir, "--output", out])
    assert not out.exists()


@pytest.mark.parametrize("seed", ["-1", "99999999999"])
def test_train_seed_range_as_zero_shot(own, capsys, seed, no_training):
    msg = one_error(capsys, [*own, "--model", "m", "--seed", seed])
    assert "--seed" in msg and "from 0 to 4294967295" in msg


def test_train_eval_every_without_dev_names_the_train_flag(own, capsys, no_training):
    msg = one_error(capsys, [*own, "--model", "m", "--eval-every", "1"])
    assert "--eval-every 1" in msg and "fix: drop --eval-every" in msg and "selection:" not in msg


def test_train_header_names_the_trained_pvps(own, capsys, monkeypatch):
    import pet.cli.train as train
    from pet.errors import PetError

    def stop(*a, **kw):
        raise PetError("stop here; fix: none")

    monkeypatch.setattr(train, "fit_evaluate", stop)
    code, _, err = run([*own, "--model", "m", "--pvp", "first"], capsys)
    assert code == 2 and "2 PVP(s) (training 1: a:v)" in err


def test_train_table_has_a_name_for_every_column():
    from pet.cli.train import format_table

    rows = [{"method": "m", "metric": "accuracy", "n": 4, "stage": s, "pvp": p, "score": 0.5, "train_seconds": 1.0,
             "eval_examples_per_second": 9.0, "trained_parameters": 10, "final": f}
            for s, p, f in [("pvp", "a:v", False), ("ensemble", None, True)]]
    lines = format_table(rows).splitlines()
    assert len(re.split(r"\s{2,}", lines[1])) == len(lines[2].split()) == 6  # a header over every dashed column
    assert lines[-1].endswith("  ← final") and "final" not in lines[-2]


# ----------------------------------------------------------------------------- other commands


def test_validate_bad_input_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"patterns": [{"id": "p", "template": "no mask {text_a}"}]}))
    code, out, err = run(["validate", bad], capsys)
    assert code == 2 and "bad.json" in err and not out


def test_zero_shot_one_pvp_is_singular():
    from pet.cli.zero_shot import format_report

    report = {"pvps": [{"pattern": "a", "verbalizer": "v", "score": 0.5, "examples_per_second": 9.0}], "ensemble": {"score": 0.5},
              "metric": "accuracy", "task": "t", "split": "test", "n": 2, "model": "m", "calibrated": False}
    assert "ensemble (1 PVP) " in format_report(report)


def test_show_cloze_keeps_the_placeholder_whole(tmp_path, tiny_bert_dir, capsys):
    pats = tmp_path / "p.json"
    pats.write_text(json.dumps({"patterns": [{"id": "a", "template": "{text_a} It was {mask}."}]}))
    verbs = tmp_path / "v.json"
    verbs.write_text(json.dumps({"verbalizers": [{"id": "v", "labels": {"1": ["bad"], "5": ["good"]}}]}))
    code, out, _ = run(["show", "--patterns", pats, "--verbalizers", verbs, "--tokenizer", tiny_bert_dir], capsys)
    assert code == 0 and "cloze a: [CLS] <text_a> it was [MASK] . [SEP]" in out


def test_threads_above_the_cores_are_capped_with_a_note(capsys):
    from pet.cli import apply_threads_flag

    before = torch.get_num_threads()
    try:
        cores = threads.cpu_count()
        assert apply_threads_flag(cores + 5) == cores and torch.get_num_threads() == cores
        assert capsys.readouterr().err.strip() == f"note: --threads {cores + 5}: only {cores} CPU core{'s' if cores != 1 else ''} available; using {cores}"
        assert apply_threads_flag(1) == 1 and not capsys.readouterr().err
    finally:
        torch.set_num_threads(before)


def test_unknown_pvp_ids_and_folders_get_a_fix(tmp_path):
    """Audit #14: an unknown pattern or verbalizer id says how to fix it; a folder given where a
    spec file belongs is named as a folder, not as missing."""
    from pet.errors import SpecError
    from pet.prompts.spec import Pattern, Verbalizer, make_pvps
    from pet.utils.jsonio import read_text

    pats, verbs = [Pattern("p", "{text_a} {mask}.")], [Verbalizer("v", {"0": ["no"], "1": ["yes"]})]
    with pytest.raises(SpecError, match=r"unknown pattern 'nosuch'; known: p; fix: use one of those ids"):
        make_pvps(pats, verbs, ["nosuch:v"])
    with pytest.raises(SpecError, match=r"unknown verbalizer 'w'; known: v; fix: use one of those ids"):
        make_pvps(pats, verbs, ["p:w"])
    with pytest.raises(SpecError, match=r"is a folder; fix: give a file"):
        read_text(tmp_path)
