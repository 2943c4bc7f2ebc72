"""A stored cell's identity (issue 19): the files it read, the code that made it, its model.

Changing any input file of a finished cell makes the next ``pet bench`` recompute it (or, asked
to, refuse naming the file); ``--rerun-stale`` recomputes rows of another commit; rows of the
old shape still load; a method's own ``model`` is part of its config hash; per-example test
predictions are stored compactly. The FAKE method of test_bench.py stands in for a model.
"""

# ruff: noqa: F811 — the fixtures `world` and `fake_env` come from test_bench.py (imported below)
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_bench import _experiment, _log, _run, fake_env, load_experiment, world  # noqa: F401 (fixtures)

from pet.bench.grid import expand_grid, model_identity
from pet.bench.rows import ResultRow, encode_predictions
from pet.bench.store import ResultsStore
from pet.errors import ConfigError


def _run_said(exp_path: Path, **kw) -> tuple[object, list[str]]:
    from pet.bench.driver import run_experiment

    said: list[str] = []
    s = run_experiment(load_experiment(exp_path), progress=False, echo=said.append, **kw)
    return s, said


def _one_cell(world: Path, **extra) -> Path:
    return _experiment(world, seeds=(1,), methods=[{"name": "fake", "label": "a"}], **extra)


def _flip_first_test_label(world: Path) -> Path:
    p = world / "data" / "tiny" / "test.csv"
    lines = p.read_text().splitlines()
    text, lab = lines[1].rsplit(",", 1)
    lines[1] = f"{text},{1 - int(lab)}"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_rows_record_inputs_code_and_predictions(fake_env):
    _run(_one_cell(fake_env))
    rows = ResultsStore(fake_env / "results").result_rows()
    assert len(rows) == 3 and all(r.schema == ResultRow.SCHEMA_VERSION for r in rows)
    r = rows[0]
    assert set(r.inputs) == {"task", "patterns", "verbalizers", "train", "test", "unlabelled"}
    assert all(len(v) == 64 for v in r.inputs.values())
    assert r.pet_version and r.pet_version == r.versions["pet"] and "git_commit" in r.to_dict()
    test_labels = [int(x.rsplit(",", 1)[1]) for x in (fake_env / "data" / "tiny" / "test.csv").read_text().splitlines()[1:]]
    for row in rows:  # per-example predictions: label indices in test order; the score follows from them
        pred, gold = row.pred_array(), row.gold_array()
        assert pred.dtype.kind == "i" and len(pred) == row.test["n"] == 10
        assert [row.labels[i] for i in gold] == [str(x) for x in test_labels]
        assert float(np.mean(pred == gold)) == pytest.approx(row.score)


@pytest.mark.parametrize("edit", ["test-label", "train-row", "pvp-file"])
def test_changed_input_file_recomputes_the_cell(fake_env, edit):
    exp = _one_cell(fake_env)
    _run(exp)
    first = ResultsStore(fake_env / "results").rows()
    if edit == "test-label":
        changed, role = _flip_first_test_label(fake_env), "test"
    elif edit == "train-row":
        changed, role = fake_env / "data" / "tiny" / "train.csv", "train"
        changed.write_text(changed.read_text().replace("a good film,1", "a very good film,1"))
    else:  # same PVPs (same config hash), different file content
        changed, role = fake_env / "specs" / "patterns.json", "patterns"
        changed.write_text(json.dumps(json.loads(changed.read_text()), indent=2))
    s, said = _run_said(exp)
    assert s.computed == 1 and s.recomputed == 1 and len(_log(fake_env)) == 2
    assert any(f"stale: {role} file changed ({changed})" in line for line in said), said
    scan = ResultsStore(fake_env / "results").scan()
    assert len(scan.complete) == 1 and len(scan.rows) == 3 and scan.superseded_rows == 3 and scan.duplicate_cells == 0
    assert scan.rows[0]["config_hash"] == first[0]["config_hash"]
    assert scan.rows[0]["inputs"][role] != first[0]["inputs"][role]
    if edit == "train-row":  # the split was drawn again from the edited file; the old one is kept aside
        assert list((fake_env / "results" / "splits" / "tiny").glob("k4-seed1.before-*"))
    if edit == "test-label":
        assert scan.rows[0]["test"]["checksum"] != first[0]["test"]["checksum"]
    s, _ = _run_said(exp)
    assert s.computed == 0 and s.already_done == 1  # recomputed once, then current


def test_changed_input_refused_with_one_line_naming_the_file(fake_env, capsys):
    exp = _one_cell(fake_env)
    _run(exp)
    test_file = _flip_first_test_label(fake_env)
    with pytest.raises(ConfigError) as e:
        _run_said(exp, on_changed_input="refuse")
    msg = str(e.value)
    assert msg.startswith(f"{test_file}: test file changed since the stored rows of tiny a K=4 seed=1") and "\n" not in msg
    assert "fix: " in msg and len(_log(fake_env)) == 1
    from pet.cli import main

    rc = main(["bench", str(exp), "--allow-imports", "--no-progress", "--no-report", "--on-changed-input", "refuse"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and err[0].startswith("error: ") and str(test_file) in err[0] and "Traceback" not in err[0]
    assert len(_log(fake_env)) == 1  # nothing computed


def test_rerun_stale_recomputes_rows_of_another_commit(fake_env, monkeypatch):
    from pet.bench import driver, environment

    now = ("c" * 40, False)
    monkeypatch.setattr(environment, "git_commit", lambda start=None: now)
    monkeypatch.setattr(driver, "git_commit", lambda start=None: now)
    exp = _experiment(fake_env, seeds=(1, 2), methods=[{"name": "fake", "label": "a"}])
    _run(exp)
    st = ResultsStore(fake_env / "results")
    scan = st.scan()
    seed1 = next(h for h in scan.complete if scan.cell_rows(h)[0]["seed"] == 1)
    old = [{k: v for k, v in r.items() if k not in ("type", "write_id", "config_hash")} | {"git_commit": "0" * 40}
           for r in scan.cell_rows(seed1)]  # as if made from another commit
    assert st.append_cell(seed1, old, supersedes=scan.complete[seed1])
    s, _ = _run_said(exp)
    assert s.computed == 0  # by default rows of another commit are kept
    s, said = _run_said(exp, rerun_stale=True)
    assert s.computed == 1 and s.already_done == 1 and any("stale: made from commit 000000000000" in x for x in said)
    assert {r["seed"] for r in _log(fake_env)[2:]} == {1}
    assert {r["git_commit"] for r in st.rows()} == {"c" * 40}
    s, _ = _run_said(exp, rerun_stale=True)
    assert s.computed == 0 and s.already_done == 2


def test_store_only_supersedes_the_current_write(tmp_path):
    st = ResultsStore(tmp_path)
    assert st.append_cell("h", [{"score": 0.1}])
    first = st.current_write("h")
    assert not st.append_cell("h", [{"score": 0.2}], supersedes="not-the-current-write")
    assert st.append_cell("h", [{"score": 0.3}], supersedes=first)
    assert not st.append_cell("h", [{"score": 0.4}], supersedes=first)  # a second run recomputing the same stale cell
    scan = st.scan()
    assert [r["score"] for r in scan.rows] == [0.3] and scan.superseded_rows == 1
    assert scan.duplicate_cells == 0 and len(st.path.read_text().splitlines()) == 4  # refused writes write nothing


OLD_ROW = {  # a row as pet wrote it before ResultRow (schema 1)
    "type": "row", "write_id": "w1", "config_hash": "h1", "task": "sst2", "method": "pet", "method_name": "pet",
    "stage": "ensemble", "pvp": None, "key": "ensemble", "k": 16, "seed": 13, "score": 0.84, "metric": "accuracy",
    "metrics": {"accuracy": 0.84}, "dev_score": None, "selected": True, "train_seconds": 12.0,
    "versions": {"pet": "0.3.0", "torch": "2.3"}, "git_commit": "abc", "git_dirty": False, "split": {"checksum": "s"},
    "some_future_key": [1, 2],
}


def test_old_shape_rows_load(fake_env):
    row = ResultRow.from_dict(OLD_ROW)
    assert row.schema == 1 and row.inputs == {} and row.pet_version == "0.3.0" and row.final is None
    assert row.pred_array() is None and row.gold_array() is None and row.predictions is None
    d = row.to_dict()
    assert "final" not in d and "type" not in d and d["some_future_key"] == [1, 2] and d["score"] == 0.84
    assert ResultRow.from_dict(d).to_dict() == d
    st = ResultsStore(fake_env / "old")
    st.append_cell("h1", [{k: v for k, v in OLD_ROW.items() if k not in ("type", "write_id", "config_hash")}])
    assert [r.score for r in st.result_rows()] == [0.84]
    # a cell whose stored rows predate input checksums is kept (it cannot be checked), not recomputed
    exp = _one_cell(fake_env)
    _run(exp)
    st = ResultsStore(fake_env / "results")
    scan = st.scan()
    (h, wid), = scan.complete.items()
    legacy = [{k: v for k, v in r.items() if k not in ("type", "write_id", "config_hash", "inputs", "schema", "predictions")}
              for r in scan.rows]
    assert st.append_cell(h, legacy, supersedes=wid)
    _flip_first_test_label(fake_env)
    s, _ = _run_said(exp)
    assert s.computed == 0 and s.already_done == 1


def test_prediction_encoding_round_trip():
    p = encode_predictions(["neg", "pos", "mid"], [0, 2, 1, 1], [0, 1, 1, 2], pred_score=[0.5, 4.25, 1.0, 2.0])
    row = ResultRow.from_dict({"task": "t", "predictions": p})
    assert row.pred_array().tolist() == [0, 2, 1, 1] and row.gold_array().tolist() == [0, 1, 1, 2]
    assert row.pred_score_array().tolist() == [0.5, 4.25, 1.0, 2.0] and row.gold_score_array() is None
    assert p["encoding"] == "bits" and p["bits"] == 2 and p["n"] == 4
    with pytest.raises(ValueError, match="1-D arrays of one length"):
        encode_predictions(["a"], [0, 0], [0])
    with pytest.raises(ValueError, match=r"must lie in \[0, 4\)"):
        encode_predictions(["a", "b", "c"], [4], [0])
    # every label count, long random arrays: exact round trip, far smaller than int16
    rng = np.random.default_rng(0)
    for n_labels in (1, 2, 3, 6, 10, 300):
        pred, gold = rng.integers(0, n_labels, 2000), rng.integers(0, n_labels, 2000)
        row = ResultRow.from_dict({"predictions": encode_predictions([str(i) for i in range(n_labels)], pred, gold)})
        assert np.array_equal(row.pred_array(), pred) and np.array_equal(row.gold_array(), gold)
    assert len(encode_predictions(["0", "1"], pred % 2, gold % 2)["pred"]) < 5336 / 10  # int16 + base64: 5,336 characters
    # rows of schema 2 (base64 int16, no "encoding") still read back
    import base64

    old = {"labels": ["a", "b"], "pred": base64.b64encode(np.array([1, 0, 1], "<i2").tobytes()).decode(),
           "gold": base64.b64encode(np.array([1, 1, 0], "<i2").tobytes()).decode()}
    row = ResultRow.from_dict({"schema": 2, "predictions": old})
    assert row.pred_array().tolist() == [1, 0, 1] and row.gold_array().tolist() == [1, 1, 0]


def test_per_method_model_is_part_of_the_cell_identity(world, tmp_path):
    folder = tmp_path / "st-body"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    (folder / "tokenizer.json").write_text('{"v": 1}')
    methods = [{"name": "fake", "label": "a"}, {"name": "fake", "label": "b", "model": str(folder)}]
    cells = expand_grid(load_experiment(_experiment(world, seeds=(1,), methods=methods)))
    a, b = cells
    assert a.model == "fake-model" and b.model == str(folder)
    assert b.config["model"]["local"] == "st-body" and a.config["model"] == {"hub": "fake-model"}
    plain = expand_grid(load_experiment(_experiment(world, seeds=(1,), methods=[methods[0], {"name": "fake", "label": "b"}], name="plain.yaml")))
    assert plain[0].config_hash == a.config_hash and plain[1].config_hash != b.config_hash
    same = expand_grid(load_experiment(_experiment(world, seeds=(1,), name="same.yaml",
                                                   methods=[methods[0], {"name": "fake", "label": "b", "model": "fake-model"}])))
    assert same[1].config_hash == plain[1].config_hash  # naming the experiment's own model changes nothing
    assert expand_grid(load_experiment(_experiment(world, seeds=(1,), methods=methods)), model="other")[1].model == str(folder)
    # model identity: what loading reads (safetensors, config, tokenizer files), not unread .bin files
    ident = model_identity(str(folder))
    (folder / "pytorch_model.bin").write_bytes(b"\1" * 99)
    assert model_identity(str(folder)) == ident
    (folder / "tokenizer.json").write_text('{"v": 2}')
    assert model_identity(str(folder)) != ident


def test_per_method_pvps_restrict_the_cells_pvps(world):
    """``pvps: first`` gives a method only the task's first PVP (e.g. LM-BFF's manual prompt);
    a list names PVPs; an unknown id is a one-line error; the hash covers the PVPs it trains."""
    methods = [{"name": "fake", "label": "all"}, {"name": "fake", "label": "first", "pvps": "first"},
               {"name": "fake", "label": "named", "pvps": ["p2:v1"]}]
    every, first, named = expand_grid(load_experiment(_experiment(world, seeds=(1,), methods=methods)))
    assert every.pvps == ["p1:v1", "p2:v1"] and first.pvps == ["p1:v1"] and named.pvps == ["p2:v1"]
    assert [d["pattern"]["id"] for d in first.config["pvps"]] == ["p1"] and first.config_hash != every.config_hash
    bad = [{"name": "fake", "pvps": ["nope:v1"]}]
    with pytest.raises(ConfigError, match=r"\$\.methods\[0\]\.pvps: 'nope:v1' is not one of task 'tiny''s PVPs"):
        expand_grid(load_experiment(_experiment(world, seeds=(1,), methods=bad, name="bad.yaml")))


def test_threads_flag(world, monkeypatch):
    import torch

    from pet.bench.executors import make_executor
    from pet.cli import main

    n = torch.get_num_threads()
    try:
        assert make_executor("local", threads=1).threads == 1 and torch.get_num_threads() == 1
        assert make_executor("local").threads is None  # the library leaves torch alone unless asked
    finally:
        torch.set_num_threads(n)
    rc = main(["bench", str(_one_cell(world)), "--allow-imports", "--dry-run", "--executor", "ray", "--threads", "2"])
    assert rc != 0


def test_a_source_copy_without_git_names_its_commit_with_an_environment_variable(tmp_path, monkeypatch):
    from pet.bench.environment import git_commit

    monkeypatch.delenv("PET_GIT_COMMIT", raising=False)
    assert git_commit(tmp_path) == (None, None)  # no .git, nothing said: unknown
    monkeypatch.setenv("PET_GIT_COMMIT", "0123abc")
    assert git_commit(tmp_path) == ("0123abc", None)  # the commit as said; dirty unknown
    assert git_commit() == ("0123abc", None)  # it wins over a .git (a copy's may be stale)


def test_rows_exported_from_another_machine_merge_whole_cells_once(tmp_path):
    """benchmarks/merge_store_rows.py: complete cells only, none twice, and a corrected commit
    keeps every cell readable (its marker's row hash is recomputed)."""
    import subprocess
    import sys
    from pathlib import Path

    from pet.bench.store import ResultsStore

    repo = Path(__file__).resolve().parent.parent

    def row(h, seed):
        return {"task": "sst2", "method": "m", "k": 16, "seed": seed, "score": 0.5, "git_commit": "stale", "git_dirty": True, "config_hash": h}

    remote, local = ResultsStore(tmp_path / "remote"), ResultsStore(tmp_path / "local")
    for h, seed in (("h1", 1), ("h2", 2)):
        remote.append_cell(h, [row(h, seed)])
    local.append_cell("h1", [row("h1", 1)])
    exported = tmp_path / "new.jsonl"
    exported.write_bytes(remote.path.read_bytes() + b'{"type": "row", "write_id": "w9", "config_hash": "h3"}\n')  # a cell cut off mid-write
    cmd = [sys.executable, str(repo / "benchmarks" / "merge_store_rows.py"), str(exported), str(tmp_path / "local"), "--set-commit", "c0ffee"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=repo, check=True).stdout
    assert "1 cells added, 1 already there" in out
    scan = local.scan()
    assert set(scan.complete) == {"h1", "h2"} and scan.incomplete_writes == 0
    merged = scan.cell_rows("h2")[0]
    assert merged["git_commit"] == "c0ffee" and merged["git_dirty"] is False
    assert "0 cells added, 2 already there" in subprocess.run(cmd, capture_output=True, text=True, cwd=repo, check=True).stdout
