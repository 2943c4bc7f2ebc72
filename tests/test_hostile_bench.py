"""Hostile experiment files and `pet bench` flags (audit 3): whole numbers written as floats,
duplicate K / sweep values, an option in both sweep and search, PVP ids without a colon, test
splits the cells learn from, `--only` values the experiment does not have, and a model whose
weights changed under the same folder name. Every bad input is one `error:` line (file, JSON
path, fix; exit 2) at load time, before any cell runs and in `--dry-run`.

The FAKE method and the tiny task of test_bench.py stand in for a model and a benchmark.
"""

# ruff: noqa: F811 — the fixtures `world` and `fake_env` come from test_bench.py (imported below)
from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_bench import _experiment, _log, _run, fake_env, load_experiment, world  # noqa: F401 (fixtures)

from pet.bench.grid import expand_grid
from pet.bench.store import ResultsStore
from pet.cli import main
from pet.errors import ConfigError


def _one_error(capsys, exp: Path, *flags: str) -> str:
    """`pet bench EXP --dry-run`: exit 2 and exactly one `error:` line with a fix, no traceback."""
    rc = main(["bench", str(exp), "--allow-imports", "--no-progress", "--dry-run", *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and "fix:" in err[0] and "Traceback" not in err[0], err
    return err[0]


def _task_json(world: Path, name: str, **splits) -> str:
    """A copy of the tiny task under another name with extra splits; returns its path (relative)."""
    spec = json.loads((world / "specs" / "tiny.json").read_text())
    spec["name"] = name
    spec["splits"].update(splits)
    (world / "specs" / f"{name}.json").write_text(json.dumps(spec))
    return f"specs/{name}.json"


# ----------------------------------------------------------------------------- finding 10


@pytest.mark.parametrize("patch, match", [
    ({"seeds": [1.0]}, r"\$\.seeds\[0\]: 1\.0 is not an integer; fix: write 1$"),
    ({"k": [4.0]}, r"\$\.k\[0\]: 4\.0 is not an integer; fix: write 4$"),
    ({"k": 4.0}, r"\$\.k: 4\.0 is not an integer; fix: write 4$"),
    ({"test_limit": 8.0}, r"\$\.test_limit: 8\.0 is not an integer; fix: write 8$"),
    ({"unlabelled": 1e3}, r"\$\.unlabelled: 1000\.0 is not an integer; fix: write 1000$"),
    ({"tasks": [{"name": "specs/tiny.json", "seeds": [2.0]}]}, r"\$\.tasks\[0\]\.seeds\[0\]: 2\.0 is not an integer"),
    ({"tasks": [{"name": "specs/tiny.json", "test_limit": 3.0}]}, r"\$\.tasks\[0\]\.test_limit: 3\.0 is not an integer"),
])
def test_whole_numbers_written_as_floats_are_refused(world, patch, match):
    with pytest.raises(ConfigError, match=match):
        load_experiment(_experiment(world, extra=patch))


def test_float_seed_is_one_error_line_in_a_dry_run(world, capsys):
    exp = _experiment(world, extra={"seeds": [13.0]})
    line = _one_error(capsys, exp)
    assert str(exp) in line and "$.seeds[0]: 13.0 is not an integer; fix: write 13" in line
    assert not (world / "results").exists()


# ----------------------------------------------------------------------------- finding 20


@pytest.mark.parametrize("patch, match", [
    ({"k": [4, 4]}, r"\$\.k: \[4, 4\] repeats an item; fix: list each item once$"),
    ({"tasks": [{"name": "specs/tiny.json", "k": [4, 4]}]}, r"\$\.tasks\[0\]\.k: \[4, 4\] repeats an item"),
    ({"methods": [{"name": "fake", "sweep": {"lr": [0.1, 0.1]}}]}, r"\$\.methods\[0\]\.sweep\.lr: \[0\.1, 0\.1\] repeats an item"),
    ({"methods": [{"name": "fake", "selection": "dev", "search": {"bias": [1, 2, 1]}}]}, r"\$\.methods\[0\]\.search\.bias: \[1, 2, 1\] repeats an item"),
])
def test_duplicate_k_and_grid_values_are_refused(world, patch, match):
    with pytest.raises(ConfigError, match=match):
        load_experiment(_experiment(world, extra=patch))


# ----------------------------------------------------------------------------- finding 5


def test_an_option_in_both_sweep_and_search_is_refused(world, capsys):
    methods = [{"name": "fake", "selection": "dev", "sweep": {"lr": [0.1]}, "search": {"lr": [0.2, 0.3]}}]
    exp = _experiment(world, methods=methods)
    with pytest.raises(ConfigError, match=r"\$\.methods\[0\]: 'lr' is in both sweep and search; fix: keep it in one"):
        load_experiment(exp)
    assert "$.methods[0]: 'lr' is in both sweep and search" in _one_error(capsys, exp)
    ok = [{"name": "fake", "selection": "dev", "sweep": {"lr": [0.1]}, "search": {"bias": [1, 2]}}]
    assert len(expand_grid(load_experiment(_experiment(world, methods=ok, name="ok.yaml")))) == 2 * 3  # 2 seeds x (2 points + choice)


# ----------------------------------------------------------------------------- finding 19 (PVP ids)


def test_pvp_errors_name_the_methods_json_path_and_the_id_form(world):
    bad = [{"name": "fake", "pvps": ["nope:v1"]}]
    with pytest.raises(ConfigError, match=r"exp\.yaml: \$\.methods\[0\]\.pvps: 'nope:v1' is not one of task 'tiny''s PVPs .*fix:"):
        expand_grid(load_experiment(_experiment(world, methods=bad)))
    second = [{"name": "fake", "label": "a"}, {"name": "fake", "label": "b", "pvps": ["nope:v1"]}]
    with pytest.raises(ConfigError, match=r"\$\.methods\[1\]\.pvps: 'nope:v1'"):
        expand_grid(load_experiment(_experiment(world, methods=second)))
    for extra, path in [({"tasks": [{"name": "specs/tiny.json", "pvps": ["p1"]}]}, r"\$\.tasks\[0\]\.pvps\[0\]"),
                        ({"methods": [{"name": "fake", "pvps": ["p1:v1", "nocolon"]}]}, r"\$\.methods\[0\]\.pvps\[1\]")]:
        with pytest.raises(ConfigError, match=path + r": '\w+' is not a PVP id: expected PATTERN:VERBALIZER .*fix:"):
            load_experiment(_experiment(world, extra=extra))


# ----------------------------------------------------------------------------- findings 3 and 21


def test_test_split_that_the_cells_learn_from_is_refused(world, capsys):
    exp = _experiment(world, extra={"tasks": [{"name": "specs/tiny.json", "test_split": "train"}]})
    line = _one_error(capsys, exp)
    assert "$.tasks[0].test_split: 'train' is a split the cell learns from" in line and "fix: use 'test'" in line
    # another name for the training file
    ref = _task_json(world, "tinyheld", holdout={"file": "train.csv"})
    with pytest.raises(ConfigError, match=r"\$\.tasks\[0\]\.test_split: task 'tinyheld''s split 'holdout' reads tiny/train\.csv"):
        load_experiment(_experiment(world, extra={"tasks": [{"name": ref, "test_split": "holdout"}]}))


def test_test_split_with_a_file_per_seed_is_refused_at_load(world):
    spec = json.loads((world / "specs" / "tiny.json").read_text())
    spec.update(name="tinyseeded", seeds=[1, 2])
    spec["splits"]["perseed"] = {"file": "{seed}/extra.csv"}
    (world / "specs" / "tinyseeded.json").write_text(json.dumps(spec))
    with pytest.raises(ConfigError, match=r"\$\.tasks\[0\]\.test_split: task 'tinyseeded''s split 'perseed' has one file per seed"):
        load_experiment(_experiment(world, extra={"tasks": [{"name": "specs/tinyseeded.json", "test_split": "perseed"}]}))


def test_test_file_that_copies_a_training_file_is_refused_before_any_cell(fake_env, capsys):
    data = fake_env / "data" / "tiny"
    (data / "copy.csv").write_text((data / "train.csv").read_text())
    ref = _task_json(fake_env, "tinycopy", copy={"file": "copy.csv"})
    exp = _experiment(fake_env, extra={"tasks": [{"name": ref, "test_split": "copy"}]})
    load_experiment(exp)  # the names differ: only the contents tell
    line = _one_error(capsys, exp)
    assert "$.tasks[0].test_split: task 'tinycopy''s test file tiny/copy.csv has the same content as tiny/train.csv" in line
    assert _log(fake_env) == [] and not (fake_env / "results" / "results.jsonl").exists()
    (data / "copy.csv").write_text((data / "test.csv").read_text())  # held-out examples: fine
    assert main(["bench", str(exp), "--allow-imports", "--no-progress", "--dry-run"]) == 0


# ----------------------------------------------------------------------------- finding 14


@pytest.mark.parametrize("only, said", [
    (["task=tiny-2"], "--only task=tiny-2: no task 'tiny-2' in the experiment"),
    (["method=A"], "--only method=A: no method 'A' in the experiment"),
    (["k=abc"], "--only k=abc: no k 'abc' in the experiment"),
    (["seed=1.5"], "--only seed=1.5: no seed '1.5' in the experiment"),
    (["seed=1", "seed=7"], "--only seed=7: no seed '7'"),
])
def test_only_values_not_in_the_experiment_are_one_line_errors(world, capsys, only, said):
    exp = _experiment(world)
    with pytest.raises(ConfigError) as e:
        expand_grid(load_experiment(exp), only=only)
    assert str(e.value).startswith(said) and "fix: use one of those" in str(e.value)
    line = _one_error(capsys, exp, *(f"--only={o}" for o in only))
    assert said in line and str(exp) in line
    if only[0].startswith("task"):
        assert "(tasks: tiny)" in line
    if only[0].startswith("seed"):
        assert "(seeds: 1, 2)" in line


def test_only_keys_combine_and_filters_matching_nothing_are_an_error(world, capsys):
    exp = load_experiment(_experiment(world))
    assert {c.seed for c in expand_grid(exp, only=["seed=1", "seed=2"])} == {1, 2}  # one key repeated: alternatives
    assert {(c.seed, c.method) for c in expand_grid(exp, only=["seed=2", "method=b"])} == {(2, "b")}  # two keys: both
    # both values exist, but no cell has both: zero-shot alone runs at K = 0
    both = _experiment(world, k=(0, 4), methods=["fake", "zero-shot"], name="k0.yaml")
    with pytest.raises(ConfigError, match=r"--only k=0 --only method=fake: no cell of .* matches all of these"):
        expand_grid(load_experiment(both), only=["k=0", "method=fake"])
    assert "no cell of" in _one_error(capsys, both, "--only", "k=0", "--only", "method=fake")


# ----------------------------------------------------------------------------- finding 2


def _model_folder(root: Path, fill: bytes = b"\0") -> Path:
    folder = root / "models" / "tiny-model"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "model.safetensors").write_bytes(fill * 64)
    return folder


def test_a_model_whose_weights_changed_makes_its_cells_stale(fake_env, capsys):
    from test_bench_identity import _run_said

    folder = _model_folder(fake_env)
    exp = _experiment(fake_env, seeds=(1,), methods=[{"name": "fake", "label": "a"}], extra={"model": str(folder)})
    _run(exp)
    rows = ResultsStore(fake_env / "results").rows()
    assert rows and all(len(r["inputs"]["weights"]) == 64 for r in rows)
    hash_before = rows[0]["config_hash"]
    (folder / "model.safetensors").write_bytes(b"\1" * 64)  # same size, same config: only the content differs
    assert expand_grid(load_experiment(exp))[0].config_hash == hash_before  # the config hash does not move ...
    rc = main(["bench", str(exp), "--allow-imports", "--no-progress", "--dry-run"])
    err = capsys.readouterr().err
    assert rc == 0 and f"stale: model weights changed ({folder})" in err and "0 done, 1 to run" in err  # ... the inputs do
    s, said = _run_said(exp)
    assert s.computed == 1 and s.recomputed == 1 and len(_log(fake_env)) == 2
    s, _ = _run_said(exp)
    assert s.computed == 0 and s.already_done == 1


def test_rows_without_a_weights_entry_stay_valid(fake_env, monkeypatch):
    """Rows stored before ``weights`` was recorded (all rows of older stores) are not stale."""
    from pet.bench import inputs
    from test_bench_identity import _run_said

    folder = _model_folder(fake_env)
    exp = _experiment(fake_env, seeds=(1,), methods=[{"name": "fake", "label": "a"}], extra={"model": str(folder)})
    with monkeypatch.context() as m:
        m.setattr(inputs, "model_weights", lambda model: None)  # an older pet: no weights in inputs
        _run(exp)
    assert "weights" not in ResultsStore(fake_env / "results").rows()[0]["inputs"]
    s, said = _run_said(exp)
    assert s.computed == 0 and s.already_done == 1, said
    assert inputs.changed_inputs({"test": "x"}, {"test": inputs.InputFile("test", "test", "t.csv", "x"),
                                                 "weights": inputs.InputFile("weights", "weights", "m", "y")}) == []


def test_weights_of_a_hub_id_come_from_the_local_cache_or_are_not_recorded(tmp_path, monkeypatch):
    import huggingface_hub

    from pet.bench import inputs

    snap = _model_folder(tmp_path)

    def fake_snapshot(repo_id, local_files_only=False, **kw):
        assert local_files_only  # never a download
        if repo_id == "org/cached-model":
            return str(snap)
        raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    monkeypatch.setattr(inputs, "_MODEL_FOLDERS", {})
    w = inputs.model_weights("org/cached-model")
    assert w is not None and w.path == str(snap) and w.sha256 == inputs.model_weights(str(snap)).sha256
    assert inputs.model_weights("org/not-cached") is None


# ----------------------------------------------------------------------------- report folder checked first


def test_a_report_folder_pet_may_not_replace_fails_before_any_cell(fake_env, capsys):
    """`pet bench` writes <results>/report after the cells: a folder it could not replace (the
    user's own files in it) or a malformed --references file is an error before the first cell,
    not after hours of them."""
    exp = _experiment(fake_env)
    report = fake_env / "results" / "report"
    report.mkdir(parents=True)
    (report / "notes.txt").write_text("mine")
    rc = main(["bench", str(exp), "--allow-imports", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and "report" in err[0] and "fix:" in err[0], err
    assert _log(fake_env) == [] and not (fake_env / "results" / "results.jsonl").exists()
    assert (report / "notes.txt").read_text() == "mine"
    bad = fake_env / "refs.csv"
    bad.write_text('task,method,k,score,source,base_model\nsst2,pet,16,"9\n')
    (report / "notes.txt").unlink()
    rc = main(["bench", str(exp), "--allow-imports", "--no-progress", "--references", str(bad)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "refs.csv" in err[0], err
    assert _log(fake_env) == []
    # --no-report and --dry-run never write the report, so they do not check it
    (report / "notes.txt").write_text("mine")
    assert main(["bench", str(exp), "--allow-imports", "--no-progress", "--dry-run"]) == 0
