"""Hostile-but-fair input, case by case: data files, specs and experiment files, paths, saved
models, flags and faults. Every case ends in one line on stderr naming the culprit and the fix
(exit 2 for usage/input errors, 1 for internal errors), and nothing is lost or run that the
user did not ask for. Tiny models only; most cases fail before a model is loaded.

Outcomes are listed in benchmarks/RESULTS.md ("Hostile input: cases and outcomes")."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest

from pet.cli import main
from pet.errors import ConfigError, DataError, IntegrityError, PetError, UsageError

CFG = "pet_config.json"


# ----------------------------------------------------------------------------- helpers


def cli(capsys, argv, code=2):
    """Run ``pet argv``; expect exit ``code`` and exactly one line on stderr; return that line."""
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == code, f"exit {rc}, stderr: {err}"
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def user_error(capsys, argv, *needles):
    line = cli(capsys, argv, 2)
    assert line.startswith("error: ") and "fix:" in line, line
    for n in needles:
        assert n in line, line
    return line


def zs(csv, pats, verbs, *extra, model="no-model-needed"):
    return ["zero-shot", "--data", str(csv), "--text-field", "review", "--label-field", "stars",
            "--patterns", str(pats), "--verbalizers", str(verbs), "--model", model, "--no-progress", *extra]


def jsonl(tmp_path, lines, name="in.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join(x + "\n" for x in lines))
    return p


@pytest.fixture
def saved(tiny_bert_dir, tmp_path):
    from test_manifest import make_saved_folder

    return make_saved_folder(tiny_bert_dir, tmp_path / "clf")


# ----------------------------------------------------------------------------- data


@pytest.mark.parametrize(
    "value,kind",
    [('{"a": 1}', "an object"), ('["x", "y"]', "a list"), ('{"nested": {"text": "hi"}}', "an object")],
)
def test_predict_jsonl_text_that_is_not_text(capsys, tmp_path, value, kind):
    inp = jsonl(tmp_path, ['{"text": "fine"}', '{"text": ' + value + "}"])
    user_error(capsys, ["predict", str(tmp_path / "clf"), "--input", str(inp), "--output", str(tmp_path / "o.jsonl")],
               "in.jsonl: line 2: field 'text' is " + kind)
    assert not (tmp_path / "o.jsonl").exists()


def test_zero_shot_jsonl_label_that_is_a_list(capsys, files):
    tmp, _, pats, verbs = files
    inp = jsonl(tmp, ['{"review": "ok", "stars": "5"}', '{"review": "bad", "stars": ["1"]}'])
    user_error(capsys, zs(inp, pats, verbs), "line 2: field 'stars' is a list")


def test_jsonl_second_text_field_checked(capsys, tmp_path):
    inp = jsonl(tmp_path, ['{"q": "a", "ctx": "b"}', '{"q": "a", "ctx": "b"}', '{"q": "a", "ctx": {"x": 1}}'])
    user_error(capsys, ["predict", "clf", "--input", str(inp), "--output", str(tmp_path / "o.jsonl"),
                        "--text-field", "q", "--text-b-field", "ctx"], "line 3: field 'ctx' is an object")


@pytest.mark.parametrize(
    "bad,needle",
    [
        ('{"text": "unterminated', "line 3 column"),
        ("[1, 2]", "line 3: a JSON list where an object"),
        ('"just a string"', "line 3: a JSON str where an object"),
        ('{"text": ' + "[" * 10000 + "]" * 10000 + "}", "nested too deeply at line 3"),
        ('{"text": "x", "n": ' + "7" * 5000 + "}", "line 3 column 20: a number with 5000 digits"),
    ],
    ids=["malformed", "array", "string", "deep", "huge-int"],
)
def test_jsonl_errors_name_the_line_not_a_byte(capsys, tmp_path, bad, needle):
    inp = jsonl(tmp_path, ['{"text": "a"}', "", bad])
    line = user_error(capsys, ["predict", "clf", "--input", str(inp), "--output", str(tmp_path / "o.jsonl")], needle)
    assert "position" not in line and "byte" not in line


def test_jsonl_not_utf8_names_the_line(capsys, tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_bytes(b'{"text": "a"}\n{"text": "caf\xe9"}\n')
    user_error(capsys, ["predict", "clf", "--input", str(p), "--output", str(tmp_path / "o.jsonl")], "line 2: not UTF-8")


def test_truncated_gzip_jsonl(capsys, tmp_path):
    p = tmp_path / "in.jsonl.gz"
    p.write_bytes(gzip.compress(b'{"text": "a"}\n' * 200)[:-30])
    user_error(capsys, ["predict", "clf", "--input", str(p), "--output", str(tmp_path / "o.jsonl")], "in.jsonl.gz: cannot read")


def test_jsonl_reader_keeps_plain_values():
    from pet.utils.jsonl import read_jsonl_records

    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.jsonl"
        p.write_text('\ufeff{"text": "a", "n": 3, "meta": {"ok": 1}}\n\n{"text": 5, "b": true}\n')
        recs = read_jsonl_records(p, ["text"])  # objects in fields not asked for are fine
    assert recs == [{"text": "a", "n": 3, "meta": {"ok": 1}}, {"text": 5, "b": True}]


@pytest.mark.parametrize(
    "content,needle",
    [
        ("[" * 10000 + "]" * 10000, "JSON nested too deeply"),
        ('{"verbalizers": [{"id": "v", "labels": {"1": ["bad"]}, "w": ' + "9" * 5000 + "}]}", "a number with 5000 digits"),
    ],
    ids=["deep", "huge-int"],
)
def test_hostile_spec_json(capsys, files, content, needle):
    tmp, csv, pats, _ = files
    hostile = tmp / "hostile.json"
    hostile.write_text(content)
    user_error(capsys, zs(csv, pats, hostile), "hostile.json", needle)
    rc = main(["validate", str(hostile)])  # validate reports it as one error line on stderr, exit 2 (bad input)
    out, err = capsys.readouterr()
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1 and not out


# ----------------------------------------------------------------------------- specs: experiment files

PLUGIN = "from pathlib import Path\nPath(__file__).with_name('PLUGIN_RAN').write_text('yes')\n"


def _exp(tmp_path, imports, suffix=".yaml"):
    (tmp_path / "plugin.py").write_text(PLUGIN)
    data = {"name": "t", "model": "m", "tasks": ["sst2"], "methods": ["zero-shot"], "imports": imports}
    p = tmp_path / f"exp{suffix}"
    p.write_text(json.dumps(data))  # JSON is YAML too
    return p


def test_bench_imports_need_consent(capsys, tmp_path):
    exp = _exp(tmp_path, ["plugin.py"])
    user_error(capsys, ["bench", str(exp), "--dry-run"], "$.imports", "plugin.py", "--allow-imports")
    assert not (tmp_path / "PLUGIN_RAN").exists()


def test_report_experiment_imports_need_consent(capsys, tmp_path):
    exp = _exp(tmp_path, ["plugin.py"])
    (tmp_path / "results").mkdir()
    user_error(capsys, ["report", str(tmp_path / "results"), "--experiment", str(exp)], "--allow-imports")
    assert not (tmp_path / "PLUGIN_RAN").exists()


def test_imports_run_only_when_allowed(tmp_path):
    from pet.bench.experiment import experiment_from_dict, import_plugins

    exp_path = _exp(tmp_path, ["plugin.py"])
    data = json.loads(exp_path.read_text())
    exp = experiment_from_dict(data, exp_path, check_registries=False)
    with pytest.raises(ConfigError, match=r"\$.imports: the file asks to run Python code"):
        import_plugins(exp)
    assert not (tmp_path / "PLUGIN_RAN").exists()
    allowed = experiment_from_dict(data, exp_path, check_registries=False, allow_imports=True)
    import_plugins(allowed)
    assert (tmp_path / "PLUGIN_RAN").read_text() == "yes"


def test_module_name_imports_refused_too(tmp_path):
    from pet.bench.experiment import load_experiment

    with pytest.raises(ConfigError, match=r"run Python code \(json\)"):
        load_experiment(_exp(tmp_path, ["json"]))


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_experiment_nested_too_deep(capsys, tmp_path, suffix):
    p = tmp_path / f"deep{suffix}"
    p.write_text('{"name": ' + "[" * 10000 + "]" * 10000 + "}")
    user_error(capsys, ["bench", str(p), "--dry-run"], f"deep{suffix}", "nested too deeply")


def test_experiment_huge_integer(capsys, tmp_path):
    p = tmp_path / "big.json"
    p.write_text('{"name": "t", "seeds": [' + "1" * 5000 + "]}")
    user_error(capsys, ["bench", str(p), "--dry-run"], "big.json", "5000 digits")


# ----------------------------------------------------------------------------- paths


def test_predict_output_is_input(capsys, tmp_path):
    inp = tmp_path / "x.csv"
    inp.write_text("text\nhello\n")
    before = inp.read_bytes()
    user_error(capsys, ["predict", "clf", "--input", str(inp), "--output", str(inp)], "is the input", "choose another --output")
    assert inp.read_bytes() == before


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_predict_output_links_to_input(capsys, tmp_path, link):
    inp = tmp_path / "x.csv"
    inp.write_text("text\nhello\n")
    out = tmp_path / "preds.jsonl"
    out.symlink_to(inp) if link == "symlink" else os.link(inp, out)
    user_error(capsys, ["predict", "clf", "--input", str(inp), "--output", str(out)], "link to the input")
    assert inp.read_text() == "text\nhello\n"


@pytest.mark.parametrize("which", ["data", "patterns", "verbalizers"])
def test_zero_shot_output_is_an_input(capsys, files, which):
    tmp, csv, pats, verbs = files
    target = {"data": csv, "patterns": pats, "verbalizers": verbs}[which]
    before = target.read_bytes()
    user_error(capsys, zs(csv, pats, verbs, "--output", str(target)), "is the input")
    assert target.read_bytes() == before


def test_zero_shot_output_relative_name_of_input(capsys, files, monkeypatch):
    tmp, csv, pats, verbs = files
    monkeypatch.chdir(tmp)
    user_error(capsys, zs(csv, pats, verbs, "--output", "./sub/../reviews.csv"), "is the input")


def test_predict_output_inside_saved_folder(capsys, saved, tmp_path):
    inp = tmp_path / "x.csv"
    inp.write_text("text\nhello\n")
    user_error(capsys, ["predict", str(saved), "--input", str(inp), "--output", str(saved / "preds.jsonl")],
               "lies inside the input folder")
    assert not (saved / "preds.jsonl").exists()


def test_output_parent_is_a_file(capsys, files):
    tmp, csv, pats, verbs = files
    user_error(capsys, zs(csv, pats, verbs, "--output", str(csv / "res.json")), "reviews.csv: is a file, not a folder")


def test_output_is_a_folder(capsys, files):
    tmp, csv, pats, verbs = files
    (tmp / "outdir").mkdir()
    user_error(capsys, zs(csv, pats, verbs, "--output", str(tmp / "outdir")), "is a folder; fix: give a file name")


def test_output_in_read_only_location(capsys, tmp_path, monkeypatch):
    import pet.utils.io

    inp = tmp_path / "x.csv"
    inp.write_text("text\nhello\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(pet.utils.io.os, "access", lambda p, m: False if Path(p) == ro else real_access(p, m))
    user_error(capsys, ["predict", "clf", "--input", str(inp), "--output", str(ro / "o.jsonl")], "folder is not writable")


def test_report_output_is_the_results_folder(capsys, tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    (res / "rows.jsonl").write_text('{"precious": true}\n')
    user_error(capsys, ["report", str(res), "--output", str(res)], "is the input")
    user_error(capsys, ["report", str(res), "--output", str(tmp_path)], "contains the input")
    assert (res / "rows.jsonl").read_text() == '{"precious": true}\n'


def test_overwrite_never_deletes_a_folder_that_is_not_a_saved_one(tmp_path):
    from pet.utils.io import atomic_directory

    victim = tmp_path / "project"
    victim.mkdir()
    (victim / "main.py").write_text("print('hi')")
    with pytest.raises(UsageError, match="has no pet_config.json"):
        with atomic_directory(victim, overwrite=True, marker=CFG) as d:
            (d / CFG).write_text("{}")
    assert (victim / "main.py").is_file() and not (victim / CFG).exists()


def test_model_output_that_is_a_file(tmp_path):
    from pet.utils.io import atomic_directory

    f = tmp_path / "model"
    f.write_text("not a folder")
    with pytest.raises(UsageError, match="is a file, not a folder; fix"):
        with atomic_directory(f, overwrite=True):
            pass
    assert f.read_text() == "not a folder"


# ----------------------------------------------------------------------------- saved models


def test_member_path_pointing_outside(saved, tmp_path):
    from pet.estimator.manifest import resolve_inside

    shutil.copytree(saved / "models" / "0", tmp_path / "elsewhere")
    cfg = json.loads((saved / CFG).read_text())
    cfg["predictor"]["members"][0]["model"] = "../elsewhere"
    for i, mem in enumerate(cfg["predictor"]["members"]):
        with pytest.raises(IntegrityError, match=r"members\[0\].model: '../elsewhere' leads out of the folder"):
            resolve_inside(saved, mem["model"], f"{saved / CFG}: $.predictor.members[{i}].model")


def test_member_path_symlinked_outside(saved, tmp_path):
    from pet.estimator.manifest import resolve_inside

    shutil.copytree(saved / "models" / "0", tmp_path / "elsewhere")
    shutil.rmtree(saved / "models" / "0")
    (saved / "models" / "0").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(IntegrityError, match="resolves outside the folder"):
        resolve_inside(saved, "models/0", "$.predictor.members[0].model")


def test_pickle_weights_dropped_into_saved_model(saved):
    import torch

    from pet.estimator.manifest import refuse_pickle, verify_manifest

    torch.save({"w": torch.zeros(1)}, saved / "models" / "0" / "pytorch_model.bin")
    with pytest.raises(IntegrityError, match=r"pytorch_model.bin is a pickle file"):
        refuse_pickle(saved)
    with pytest.raises(IntegrityError, match=r"pytorch_model.bin is not in manifest.json"):
        verify_manifest(saved)


def test_edited_pvp_after_training_is_detected(saved):
    from pet.estimator.manifest import verify_manifest

    p = saved / "patterns.json"
    p.write_text(p.read_text().replace("It was", "It was not"))
    with pytest.raises(IntegrityError, match=r"patterns.json changed since the folder was saved"):
        verify_manifest(saved)


def test_labels_edited_in_config_detected(saved):
    from pet.estimator.manifest import verify_manifest

    cfg = json.loads((saved / CFG).read_text())
    cfg["labels"] = ["1", "0"]  # disagrees with the verbalizer's order: caught as an edit
    (saved / CFG).write_text(json.dumps(cfg))
    with pytest.raises(IntegrityError, match=rf"{CFG} changed"):
        verify_manifest(saved)


def test_truncated_weights_detected(saved):
    from pet.estimator.manifest import verify_manifest

    w = saved / "models" / "0" / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(IntegrityError, match=r"model.safetensors changed"):
        verify_manifest(saved)


# ----------------------------------------------------------------------------- flags

FLAG_CASES = [
    (["--limit", "-5"], "--limit", "-5 is out of range"),
    (["--limit", "0"], "--limit", "0 is out of range"),
    (["--limit", "ten"], "--limit", "'ten' is not a whole number"),
    (["--limit", "2.5"], "--limit", "not a whole number"),
    (["--batch-size", "0"], "--batch-size", "a whole number of 1 or more"),
    (["--max-length", "-1"], "--max-length", "out of range"),
    (["--seed", "-3"], "--seed", "a whole number from 0 to 4294967295"),
    (["--seed", str(2**32)], "--seed", "out of range"),
    (["--no-such-flag"], "unrecognized arguments", "pet --help"),
]


@pytest.mark.parametrize("extra,flag,needle", FLAG_CASES, ids=[" ".join(c[0]) for c in FLAG_CASES])
def test_zero_shot_numeric_flags_range_checked(capsys, files, extra, flag, needle):
    tmp, csv, pats, verbs = files
    out = tmp / "res.json"
    user_error(capsys, zs(csv, pats, verbs, "--output", str(out), *extra), flag, needle)
    assert not out.exists()


@pytest.mark.parametrize("bs", ["0", "-4", "x", "nan"])
def test_predict_batch_size_range_checked(capsys, tmp_path, bs):
    user_error(capsys, ["predict", "clf", "--input", "x.csv", "--output", str(tmp_path / "o"), "--batch-size", bs],
               "argument --batch-size", "fix: give a whole number of 1 or more")


def test_missing_required_flag_one_line(capsys):
    user_error(capsys, ["predict", "clf", "--output", "o.jsonl"], "the following arguments are required: --input", "pet predict --help")


def test_arg_types():
    import argparse

    from pet.cli.args import fraction, int_range, non_negative_int, positive_float, probability, seed

    assert probability("0") == 0.0 and probability("1") == 1.0 and fraction("0.5") == 0.5
    assert non_negative_int("0") == 0 and seed("4294967295") == 2**32 - 1 and int_range(2, 4)("3") == 3
    for fn, bad in [(probability, "1.5"), (probability, "-0.1"), (fraction, "1"), (positive_float, "0"),
                    (positive_float, "inf"), (positive_float, "nan"), (non_negative_int, "-1"), (int_range(2, 4), "5")]:
        with pytest.raises(argparse.ArgumentTypeError, match="fix: give"):
            fn(bad)


# ----------------------------------------------------------------------------- faults


def _with_command(monkeypatch, exc):
    """Make ``pet validate`` raise ``exc`` from inside the command."""
    import pet.cli.validate as v

    def boom(args):
        raise exc

    monkeypatch.setattr(v, "run", boom)


def test_internal_error_is_one_line_exit_1(capsys, monkeypatch, tmp_path):
    _with_command(monkeypatch, RuntimeError("tensor shapes disagree\nsecond line"))
    line = cli(capsys, ["validate", "x.json"], code=1)
    assert line == "internal error: RuntimeError: tensor shapes disagree second line (rerun with --debug for the traceback)"


def test_debug_shows_the_traceback(monkeypatch):
    _with_command(monkeypatch, RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "validate", "x.json"])
    monkeypatch.setenv("PET_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["validate", "x.json"])


def test_user_os_error_is_exit_2(capsys, monkeypatch):
    _with_command(monkeypatch, PermissionError(13, "Permission denied", "secret/file.csv"))
    assert cli(capsys, ["validate", "x"], 2) == "error: secret/file.csv: Permission denied; fix: check the path and its permissions"


def test_multi_line_pet_error_printed_on_one_line(capsys, monkeypatch):
    _with_command(monkeypatch, DataError("a.csv: row 3: bad\n  more detail; fix: correct row 3"))
    assert cli(capsys, ["validate", "x"], 2) == "error: a.csv: row 3: bad more detail; fix: correct row 3"


def test_interrupt_exit_130(capsys, monkeypatch):
    _with_command(monkeypatch, KeyboardInterrupt())
    assert cli(capsys, ["validate", "x"], 130) == "interrupted"


def test_error_family():
    assert issubclass(ConfigError, ValueError) and issubclass(DataError, ValueError)
    assert issubclass(UsageError, ConfigError) and issubclass(IntegrityError, PetError)
