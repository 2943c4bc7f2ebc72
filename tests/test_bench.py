"""`pet bench` / `pet report`: experiment files, grid, protocol, results store, resume, reports.

No model is loaded: a FAKE method (registered from a plugin file the experiment imports)
returns deterministic rows, and a tiny task lives in tmp files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pet.bench.experiment import config_hash, expand_grid, experiment_from_dict, parse_only
from pet.bench.experiment import load_experiment as _load_experiment
from pet.bench.store import ResultsStore
from pet.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def load_experiment(path, **kw):
    """The test experiments import the fake-method plugin below: the user's consent is given."""
    return _load_experiment(path, allow_imports=True, **kw)

FAKE_METHODS = r'''
import json, os, time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from pet.methods.base import Fitted, Stage, register_method
from pet.options import option
from pet.training.loop import TrainConfig


@dataclass
class FakeOptions(TrainConfig):
    where: ClassVar[str] = "fake options"
    tag: str | None = option(None, "name in the log")
    sleep: float = option(0.0, "seconds to sleep while fitting", min=0)
    block: bool = option(False, "wait for the FAKE_GATE file while fitting")
    fail: bool = option(False, "raise while fitting")
    bias: int = option(0, "shifts the scores")


class FakePredictor:
    # "right" on the first n examples (n from the seed, the PVP index and bias), label 0 elsewhere
    def __init__(self, seed, i, bias, labels):
        self.seed, self.i, self.bias, self.labels = seed, i, bias, labels

    def predict_log_proba(self, examples, progress=False, cache=None):
        n = len(examples) if self.i is None else (self.seed * 7 + self.i * 3 + self.bias) % len(examples)
        out = np.full((len(examples), len(self.labels)), np.log(0.1))
        for j, e in enumerate(examples):
            out[j, self.labels.index(e.label) if j < n else 0] = np.log(0.9)
        return out


def fake(train, unlabelled, options, setup):
    path = os.environ.get("FAKE_LOG")
    if path:
        rec = {"method": "fake", "label": options.tag or "fake", "seed": setup.seed, "train": [[e.fields, e.label] for e in train],
               "unlabelled": len(unlabelled), "pid": os.getpid(), "options": options.to_dict(), "pvps": [p.id for p in setup.pvps]}
        with open(path, "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
    if options.sleep:
        time.sleep(options.sleep)
    if options.block:
        started, gate = os.environ.get("FAKE_STARTED"), os.environ.get("FAKE_GATE")
        if started:
            open(started, "w").write(str(os.getpid()))
        t0 = time.time()
        while gate and not os.path.exists(gate) and time.time() - t0 < 120:
            time.sleep(0.05)
    if options.fail:
        raise RuntimeError("fake failure")
    stages = [Stage("pvp", FakePredictor(setup.seed, i, options.bias, setup.labels), pvp=p.id, train_seconds=0.5, trained_parameters=1000)
              for i, p in enumerate(setup.pvps)]
    stages.append(Stage("ensemble", FakePredictor(setup.seed, None, 0, setup.labels), train_seconds=1.0))
    return Fitted("fake", list(setup.labels), options, stages, "ensemble", pvps=list(setup.pvps), model=setup.model)


register_method("fake", "hard", FakeOptions, fake, replace=True)  # each test imports the plugin again
'''


# ----------------------------------------------------------------------------- fixtures


def _write(p: Path, text: str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture()
def world(tmp_path):
    """A tiny task (files + task JSON + PVP files), the fake-method plugin, a data root."""
    data = tmp_path / "data"
    pos = ["a good film", "great acting", "lovely story", "wonderful cast", "superb plot", "fine music", "nice ending",
           "brilliant work", "excellent pace", "charming lead", "strong script", "warm humour", "smart jokes", "fresh idea",
           "moving scenes", "sharp dialogue", "vivid colours", "bold direction", "tender moments", "clever twist"]
    neg = ["a bad film", "awful acting", "dull story", "weak cast", "poor plot", "noisy music", "silly ending", "boring work",
           "slow pace", "flat lead", "lazy script", "cheap humour", "stale jokes", "tired idea", "empty scenes",
           "clumsy dialogue", "muddy colours", "timid direction", "cold moments", "obvious twist"]
    train = "sentence,label\n" + "".join(f"{t},1\n" for t in pos) + "".join(f"{t},0\n" for t in neg)
    _write(data / "tiny" / "train.csv", train)
    test = "sentence,label\n" + "".join(f"test {t},{lab}\n" for t, lab in
                                        [("good", 1), ("great", 1), ("fine", 1), ("nice", 1), ("bad", 0), ("awful", 0), ("dull", 0), ("weak", 0), ("poor", 0), ("lovely", 1)])
    _write(data / "tiny" / "test.csv", test)
    specs = tmp_path / "specs"
    _write(specs / "patterns.json", json.dumps({"task": "tiny", "patterns": [
        {"id": "p1", "template": "{text_a} It was {mask}."}, {"id": "p2", "template": "Just {mask}! {text_a}"}]}))
    _write(specs / "verbalizers.json", json.dumps({"task": "tiny", "verbalizers": [
        {"id": "v1", "labels": {"0": ["bad"], "1": ["good"]}}]}))
    _write(specs / "tiny.json", json.dumps({
        "name": "tiny", "folder": "tiny", "fields": {"text_a": "sentence"}, "label": "label",
        "labels": {"0": "negative", "1": "positive"},
        "splits": {"train": {"file": "train.csv"}, "test": {"file": "test.csv"}},
        "metric": "accuracy", "default_pvps": [["p1", "v1"], ["p2", "v1"]], "max_length": 32,
        "patterns": "patterns.json", "verbalizers": "verbalizers.json",
        "test_note": "tiny test set for unit tests"}))
    _write(tmp_path / "fake_methods.py", FAKE_METHODS)
    return tmp_path


def _experiment(world: Path, methods=None, seeds=(1, 2), k=(4,), extra: dict | None = None, name="exp.yaml") -> Path:
    import yaml

    d = {
        "name": "t",
        "model": "fake-model",
        "results": "results",
        "imports": ["fake_methods.py"],
        "tasks": ["specs/tiny.json"],
        "k": list(k),
        "seeds": list(seeds),
        "unlabelled": 5,
        "budgets": {"steps": 3, "lr": 1e-5},
        "methods": methods or [{"name": "fake", "label": "a"}, {"name": "fake", "label": "b", "options": {"bias": 1}}],
        **(extra or {}),
    }
    p = world / name
    p.write_text(yaml.safe_dump(d), encoding="utf-8")
    return p


def _log(world: Path) -> list[dict]:
    p = world / "fake.log"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.is_file() else []


@pytest.fixture()
def fake_env(world, monkeypatch):
    monkeypatch.setenv("FAKE_LOG", str(world / "fake.log"))
    monkeypatch.setenv("PET_DATA_DIR", str(world / "data"))
    return world


def _run(exp_path: Path, **kw):
    from pet.bench.runner import run_experiment

    return run_experiment(load_experiment(exp_path), progress=False, echo=lambda s: None, **kw)


# ----------------------------------------------------------------------------- experiment files


def test_grid_expansion_counts_hashes_and_options(world):
    exp = load_experiment(
        _experiment(world, seeds=(1, 2, 3), k=(4, 8), methods=[
            "fake", {"name": "fake", "label": "swept", "options": {"bias": 2}, "sweep": {"lr": [1e-5, 3e-5], "steps": [1, 2]}},
            {"name": "fake", "label": "nobudget", "budgets": False}])
    )
    cells = expand_grid(exp)
    assert len(cells) == 1 * 2 * 3 * (1 + 4 + 1)
    assert len({c.config_hash for c in cells}) == len(cells)
    swept = [c for c in cells if c.method.startswith("swept[")]
    assert {c.method for c in swept} == {"swept[lr=1e-05,steps=1]", "swept[lr=1e-05,steps=2]", "swept[lr=3e-05,steps=1]", "swept[lr=3e-05,steps=2]"}
    c = swept[0]
    assert c.options["bias"] == 2 and c.options["seed"] == c.seed and "lr" in c.options
    nob = [c for c in cells if c.method == "nobudget"][0]
    assert nob.options == {}  # budgets (and the injected training seed) only go to training methods
    assert cells[0].pvps == ["p1:v1", "p2:v1"]
    # stable across loads; independent of the results folder; sensitive to the model
    again = expand_grid(load_experiment(_experiment(world, seeds=(1, 2, 3), k=(4, 8), methods=[
        "fake", {"name": "fake", "label": "swept", "options": {"bias": 2}, "sweep": {"lr": [1e-5, 3e-5], "steps": [1, 2]}},
        {"name": "fake", "label": "nobudget", "budgets": False}], extra={"results": "elsewhere"})))
    assert [c.config_hash for c in again] == [c.config_hash for c in cells]
    other_model = expand_grid(exp, model="other-model")
    assert not {c.config_hash for c in other_model} & {c.config_hash for c in cells}
    # --only filters
    only = expand_grid(exp, only=["k=4", "seed=1,2", "method=nobudget"])
    assert {(c.k, c.seed, c.method) for c in only} == {(4, 1, "nobudget"), (4, 2, "nobudget")}
    assert len(expand_grid(exp, only=["method=fake", "seed=3"])) == 2 * 6  # a registered name matches all its labels
    assert parse_only(["task=a,b", "k=16"]) == {"task": {"a", "b"}, "k": {"16"}}
    with pytest.raises(ConfigError, match="--only"):
        parse_only(["colour=red"])


def test_config_hash_is_canonical():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"lr": 1e-5}) == config_hash({"lr": 0.00001})
    assert config_hash({"lr": 1e-5}) != config_hash({"lr": 2e-5})


def test_yaml_scientific_floats_and_json_files(world):
    exp = load_experiment(_experiment(world))
    assert exp.budgets["lr"] == pytest.approx(1e-5) and isinstance(exp.budgets["lr"], float)
    text = (world / "exp.yaml").read_text().replace("1.0e-05", "1e-5")
    (world / "exp2.yaml").write_text(text)
    assert isinstance(load_experiment(world / "exp2.yaml").budgets["lr"], float)
    from pet.bench.experiment import read_experiment_file

    (world / "exp.json").write_text(json.dumps(read_experiment_file(world / "exp2.yaml")))
    assert load_experiment(world / "exp.json").methods[0].label == "a"
    import yaml

    (world / "bad.json").write_text(json.dumps(yaml.safe_load(text)))  # plain YAML 1.1 reads 1e-5 as a string
    with pytest.raises(ConfigError, match=r"\$.methods\[0\].options: lr='1e-5': must be a finite number"):
        load_experiment(world / "bad.json")


@pytest.mark.parametrize(
    "patch, match",
    [
        ({"methods": [{"name": "fake", "colour": "red"}]}, r"exp\.yaml: \$\.methods\[0\]: unknown field 'colour'; fix: remove it \(allowed here: name, label,"),
        ({"k": [-1]}, r"\$\.k"),  # (0 is allowed: no labelled examples, for methods that need none)
        ({"seeds": []}, r"\$\.seeds: \[\] is empty; fix: give at least 1 item$"),
        ({"tasks": ["no-such-task"]}, r"\$\.tasks\[0\]: unknown task 'no-such-task'; fix"),
        ({"methods": ["fake", "no-such-method"]}, r"\$\.methods\[1\]\.name: unknown method 'no-such-method'; fix"),
        ({"methods": ["fake", "fake"]}, r"\$\.methods\[1\]: method label 'fake' is used twice; fix"),
        ({"budgets": {"lr": 1e-5, "bad key": 1}}, r"\$\.budgets"),
        ({"tasks": [{"name": "specs/tiny.json", "test_split": "nope"}]}, r"\$\.tasks\[0\]\.test_split: .* fix"),
    ],
)
def test_validation_errors_name_file_path_and_fix(world, patch, match):
    with pytest.raises(ConfigError, match=match):
        load_experiment(_experiment(world, extra=patch))


def test_unknown_pvp_and_malformed_yaml(world):
    p = _experiment(world, extra={"tasks": [{"name": "specs/tiny.json", "pvps": ["p1:v1", "zzz:v1"]}]})
    with pytest.raises(ConfigError, match=r"\$\.tasks\[0\]\.pvps: .*zzz"):
        expand_grid(load_experiment(p))
    bad = world / "bad.yaml"
    bad.write_text("tasks: [sst2\nmethods: x: y\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: malformed YAML at line"):
        load_experiment(bad)


def test_model_resolution_and_env_expansion(world, monkeypatch):
    exp = load_experiment(_experiment(world, extra={"model": None}))
    monkeypatch.delenv("PET_MODEL", raising=False)
    with pytest.raises(ConfigError, match=r"\$\.model: no model given"):
        exp.resolve_model()
    monkeypatch.setenv("PET_MODEL", "from-env")
    assert exp.resolve_model() == "from-env"
    assert exp.resolve_model("flag") == "flag"
    exp2 = load_experiment(_experiment(world, extra={"model": "${MY_MODEL_VAR}"}))
    monkeypatch.delenv("MY_MODEL_VAR", raising=False)
    with pytest.raises(ConfigError, match="MY_MODEL_VAR is not set"):
        exp2.resolve_model()
    monkeypatch.setenv("MY_MODEL_VAR", "m")
    assert exp2.resolve_model() == "m"
    assert exp.results_dir() == world / "results"


def test_experiment_from_dict_needs_tasks_and_methods():
    with pytest.raises(ConfigError, match=r"experiment: \$: missing 'tasks'; fix: add"):
        experiment_from_dict({"methods": ["zero-shot"]})


def test_shipped_experiment_files_validate():
    for name in ("quick.yaml", "lmbff.yaml"):
        exp = load_experiment(REPO / "benchmarks" / name)
        assert exp.tasks and exp.methods
    lm = load_experiment(REPO / "benchmarks" / "lmbff.yaml")
    assert lm.seeds == (13, 21, 42, 87, 100) and lm.k == (16,)


# ----------------------------------------------------------------------------- protocol + store


def test_run_identical_splits_rows_and_resume(fake_env):
    exp_path = _experiment(fake_env)
    s = _run(exp_path)
    assert s.computed == 4 and s.failed == 0
    log = _log(fake_env)
    assert len(log) == 4
    # every method of a (task, K, seed) got exactly the same training examples
    by_seed: dict = {}
    for rec in log:
        by_seed.setdefault(rec["seed"], []).append(json.dumps(rec["train"]))
    for seed, trains in by_seed.items():
        assert len(set(trains)) == 1, seed
    assert by_seed[1][0] != by_seed[2][0]
    assert all(rec["train"] and rec["unlabelled"] == 5 and rec["pvps"] == ["p1:v1", "p2:v1"] for rec in log)
    assert all(rec["options"]["seed"] == rec["seed"] for rec in log)

    root = fake_env / "results"
    rows = ResultsStore(root).rows()
    assert len(rows) == 4 * 3  # 2 PVPs + ensemble per cell
    for seed in (1, 2):
        sums = {r["split"]["checksum"] for r in rows if r["seed"] == seed}
        assert len(sums) == 1
        folder = root / rows[0]["split"]["folder"].replace("seed1", f"seed{seed}")
        assert (folder / "SHA256SUMS").is_file() and (folder / "train.jsonl").is_file()
    r = rows[0]
    for key in ("score", "metric", "metrics", "train_seconds", "eval_examples_per_second", "peak_memory_mb",
                "trained_parameters", "model", "config_hash", "versions", "git_commit", "timestamp", "split", "test"):
        assert key in r, key
    assert r["metrics"]["accuracy"] == pytest.approx(r["score"]) and "macro_f1" in r["metrics"]
    assert r["test"]["n"] == 10 and r["test"]["subset"] is False and r["split"]["n_dev"] == 8
    assert [x["final"] for x in rows[:3]] == [False, False, True]
    assert r["versions"]["pet"]
    assert json.loads((root / "tasks.json").read_text())["tiny"]["has_test"] is True

    # re-running computes nothing and writes nothing
    size = (root / "results.jsonl").stat().st_size
    s2 = _run(exp_path)
    assert s2.computed == 0 and s2.already_done == 4
    assert (root / "results.jsonl").stat().st_size == size
    assert len(_log(fake_env)) == 4


def test_config_change_invalidates_without_reusing(fake_env):
    _run(_experiment(fake_env))
    assert len(_log(fake_env)) == 4
    changed = _experiment(fake_env, extra={"budgets": {"steps": 4, "lr": 1e-5}})
    exp = load_experiment(changed)
    old = ResultsStore(fake_env / "results").completed_hashes()
    assert not {c.config_hash for c in expand_grid(exp)} & old
    s = _run(changed)
    assert s.computed == 4 and s.already_done == 0
    assert len(_log(fake_env)) == 8
    from pet.bench.report import load_rows

    df, info = load_rows(fake_env / "results")
    assert info["superseded_rows"] == 12 and len(df) == 12
    assert set(df["options"].map(lambda o: o["steps"])) == {4}
    # every row also records the options as the method ran them, defaults filled in
    full = df["resolved_options"].tolist()
    from pet.methods.base import get_method

    assert all(set(r) == {f.name for f in get_method("fake").options.fields()} for r in full)
    assert {(r["steps"], r["bias"], r["sleep"]) for r in full} == {(4, 0, 0.0), (4, 1, 0.0)}
    # a report restricted to the ORIGINAL file's grid shows only the old rows
    only = {c.config_hash for c in expand_grid(load_experiment(_experiment(fake_env, name="orig.yaml")))}
    df_old, info_old = load_rows(fake_env / "results", only_hashes=only)
    assert len(df_old) == 12 and set(df_old["options"].map(lambda o: o["steps"])) == {3}
    assert info_old["other_experiment_rows"] == 12


def test_failing_cell_is_logged_and_retried(fake_env):
    p = _experiment(fake_env, methods=["fake", {"name": "fake", "label": "bad", "options": {"fail": True}}], seeds=(1,))
    s = _run(p)
    assert s.computed == 1 and s.failed == 1 and not s.ok
    err = [json.loads(x) for x in (fake_env / "results" / "errors.jsonl").read_text().splitlines()]
    assert err[0]["method"] == "bad" and "fake failure" in err[0]["error"]
    s2 = _run(p)
    assert s2.computed == 0 and s2.failed == 1  # failed cells are retried, finished ones are not
    with pytest.raises(RuntimeError):
        _run(p, fail_fast=True)


def test_task_without_test_split_is_skipped_and_reported(fake_env):
    spec = json.loads((fake_env / "specs" / "tiny.json").read_text())
    del spec["splits"]["test"]
    spec["name"] = "notest"
    spec["test_note"] = "missing: no test set here"
    (fake_env / "specs" / "notest.json").write_text(json.dumps(spec))
    p = _experiment(fake_env, extra={"tasks": ["specs/tiny.json", "specs/notest.json"]}, seeds=(1,))
    s = _run(p)
    assert s.computed == 2 and s.skipped == 2
    notes = json.loads((fake_env / "results" / "tasks.json").read_text())
    assert notes["notest"]["has_test"] is False
    from pet.bench.report import build_report

    md = build_report(fake_env / "results", write=False).markdown
    assert "| notest | test | – | **missing here** (no results) | missing: no test set here |" in md


def test_test_limit_marks_subset(fake_env):
    p = _experiment(fake_env, extra={"test_limit": 6}, seeds=(1,), methods=["fake"])
    _run(p)
    rows = ResultsStore(fake_env / "results").rows()
    assert {r["test"]["n"] for r in rows} == {6} and all(r["test"]["subset"] for r in rows)
    from pet.bench.report import build_report

    md = build_report(fake_env / "results", write=False).markdown
    assert "| tiny | test | 6 of 10 | **subset** |" in md and "| tiny* |" in md


# ----------------------------------------------------------------------------- store robustness


def test_store_ignores_and_repairs_partial_tail(tmp_path):
    st = ResultsStore(tmp_path)
    assert st.append_cell("h1", [{"score": 0.5}, {"score": 0.6}])
    good = st.path.read_bytes()
    # a killed writer: complete row lines without their marker, then half a line
    with open(st.path, "ab") as f:
        f.write(b'{"type": "row", "write_id": "zz", "config_hash": "h2", "score": 1}\n{"type": "row", "wri')
    scan = st.scan()
    assert set(scan.complete) == {"h1"} and len(scan.rows) == 2
    assert scan.partial_tail and scan.incomplete_writes == 1
    assert st.append_cell("h2", [{"score": 0.7}])
    data = st.path.read_bytes()
    assert data.startswith(good) and data.endswith(b"\n")
    assert all(json.loads(line) for line in data.splitlines())  # the partial line was removed
    scan = st.scan()
    assert set(scan.complete) == {"h1", "h2"} and len(scan.rows) == 3 and not scan.partial_tail
    assert not st.append_cell("h1", [{"score": 9.9}])  # never a second copy of a complete cell
    assert len(st.rows()) == 3


def test_store_rejects_tampered_cell(tmp_path):
    st = ResultsStore(tmp_path)
    st.append_cell("h1", [{"score": 0.5}])
    lines = st.path.read_text().splitlines()
    lines[0] = lines[0].replace("0.5", "0.9")
    st.path.write_text("\n".join(lines) + "\n")
    assert st.scan().complete == {}


_WRITER = r"""
import sys
from pet.bench.store import ResultsStore
root, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
st = ResultsStore(root)
for i in range(n):
    st.append_cell(f"{tag}-{i}", [{"i": i, "tag": tag, "pad": "x" * 5000} for _ in range(3)])
    st.append_cell(f"shared-{i}", [{"i": i, "tag": tag}])
"""


def test_concurrent_writers_never_corrupt(tmp_path):
    script = tmp_path / "w.py"
    script.write_text(_WRITER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "r"), tag, "40"], env=env) for tag in ("A", "B", "C")]
    assert [p.wait(timeout=600) for p in procs] == [0, 0, 0]
    st = ResultsStore(tmp_path / "r")
    lines = st.path.read_bytes().splitlines()
    assert all(isinstance(json.loads(x), dict) for x in lines)
    scan = st.scan()
    assert scan.corrupt_lines == 0 and scan.incomplete_writes == 0 and scan.duplicate_cells == 0
    assert len(scan.complete) == 3 * 40 + 40
    assert len(scan.rows) == 3 * 40 * 3 + 40
    markers = [json.loads(x) for x in lines if json.loads(x)["type"] == "cell_complete"]
    assert len(markers) == len({m["config_hash"] for m in markers})  # shared cells written once


# ----------------------------------------------------------------------------- subprocess runs


def _bench_cmd(exp: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pet", "bench", str(exp), "--allow-imports", "--no-progress", "--no-report", *extra]


def _env(world: Path, **extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "FAKE_LOG": str(world / "fake.log"), "PET_DATA_DIR": str(world / "data"), **extra}


def test_resume_after_kill(world):
    exp = _experiment(world, methods=[{"name": "fake", "label": "a"}, {"name": "fake", "label": "b", "options": {"block": True}}])
    started, gate = world / "started", world / "gate"
    env = _env(world, FAKE_STARTED=str(started), FAKE_GATE=str(gate))
    proc = subprocess.Popen(_bench_cmd(exp), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    t0 = time.time()
    while not started.exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.time() - t0 < 600, "the bench subprocess never reached the blocking cell"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # killed while computing cell (seed 1, b)
    proc.wait(timeout=30)
    st = ResultsStore(world / "results")
    done = st.scan()
    assert len(done.complete) == 1 and {r["method"] for r in done.rows} == {"a"}
    first_write = {r["write_id"] for r in done.rows}
    # and a half-written last line, as if the kill had hit an append
    with open(st.path, "ab") as f:
        f.write(b'{"type": "row", "write_id": "dead", "config_hash": "x", "sc')
    gate.write_text("open")
    out = subprocess.run(_bench_cmd(exp), env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "interrupted write" in out.stderr
    scan = st.scan()
    assert len(scan.complete) == 4 and scan.duplicate_cells == 0 and scan.corrupt_lines == 0 and not scan.partial_tail
    assert all(json.loads(x) for x in st.path.read_bytes().splitlines())
    keys = [(r["method"], r["seed"], r["stage"], r["pvp"]) for r in scan.rows]
    assert len(keys) == len(set(keys)) == 12
    assert {r["write_id"] for r in scan.rows if r["method"] == "a" and r["seed"] == 1} == first_write  # not recomputed
    per_cell: dict = {}
    for rec in _log(world):
        key = (bool(rec["options"].get("block")), rec["seed"])
        per_cell[key] = per_cell.get(key, 0) + 1
    assert per_cell == {(False, 1): 1, (True, 1): 2, (False, 2): 1, (True, 2): 1}


def test_two_concurrent_bench_runs_share_one_store(world):
    exp = _experiment(world, seeds=(1, 2, 3), methods=[{"name": "fake", "label": "a", "options": {"sleep": 0.3}},
                                                       {"name": "fake", "label": "b", "options": {"sleep": 0.3, "bias": 1}}])
    env = _env(world)
    procs = [subprocess.Popen(_bench_cmd(exp), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    scan = ResultsStore(world / "results").scan()
    assert len(scan.complete) == 6 and scan.duplicate_cells == 0 and len(scan.rows) == 18
    calls = [(json.dumps(r["options"], sort_keys=True), r["seed"]) for r in _log(world)]
    assert len(calls) == len(set(calls)) == 6  # every cell computed exactly once across both runs


def test_cli_dry_run_and_report(world):
    exp = _experiment(world)
    env = _env(world)
    out = subprocess.run(_bench_cmd(exp, "--dry-run"), env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "4 cells: 0 done, 4 to run" in out.stderr
    assert not (world / "results" / "results.jsonl").exists()
    out = subprocess.run([sys.executable, "-m", "pet", "bench", str(exp), "--allow-imports", "--no-progress"], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "report:" in out.stdout and (world / "results" / "report" / "report.md").is_file()
    assert "tiny a K=4 seed=1: accuracy" in out.stderr  # one summary line per finished cell
    out = subprocess.run([sys.executable, "-m", "pet", "report", str(world / "results"), "--output", str(world / "rep"),
                          "--references", str(REPO / "data" / "references.csv")], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "# Benchmark report" in out.stdout and (world / "rep" / "headline.csv").is_file()
    bad = subprocess.run([sys.executable, "-m", "pet", "bench", str(world / "nope.yaml")], env=env, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "nope.yaml" in bad.stderr and "Traceback" not in bad.stderr


def test_secondary_metrics_for_an_f1_task(fake_env):
    spec = json.loads((fake_env / "specs" / "tiny.json").read_text())
    spec.update({"name": "tinyf1", "metric": "f1", "positive_label": "1", "extra_metrics": ["accuracy"]})
    (fake_env / "specs" / "tinyf1.json").write_text(json.dumps(spec))
    _run(_experiment(fake_env, extra={"tasks": ["specs/tinyf1.json"]}, seeds=(1,), methods=["fake"]))
    rows = ResultsStore(fake_env / "results").rows()
    pvp = [r for r in rows if r["stage"] == "pvp"]
    assert all(r["metric"] == "f1" and set(r["metrics"]) >= {"f1", "accuracy", "macro_f1"} for r in pvp)
    assert all(r["metrics"]["f1"] == pytest.approx(r["score"]) for r in pvp)
    assert any(r["metrics"]["accuracy"] != pytest.approx(r["score"]) for r in pvp)


def test_method_options_are_checked_when_the_file_is_loaded(world):
    """An unknown or misspelled option fails at load time, naming the JSON path, before any cell runs."""
    bad = _experiment(world, methods=[{"name": "fake", "options": {"bais": 1}}], name="typo.yaml")
    with pytest.raises(ConfigError, match=r"\$.methods\[0\].options: unknown option 'bais'; fix: did you mean 'bias'\?"):
        load_experiment(bad)
    swept = _experiment(world, methods=[{"name": "fake", "sweep": {"steps": [1, -1]}}], name="sweep.yaml")
    with pytest.raises(ConfigError, match=r"sweep/search point \{'steps': -1\}.*steps=-1: out of range"):
        load_experiment(swept)
    zs = _experiment(world, methods=[{"name": "zero-shot", "budgets": True}], name="zs.yaml")
    with pytest.raises(ConfigError, match=r"\$.methods\[0\].budgets: method 'zero-shot' does not train"):
        load_experiment(zs)
    # budgets go to training methods only: zero-shot accepts the file's steps/lr budgets silently
    assert load_experiment(_experiment(world, methods=["zero-shot"], name="zs2.yaml")).methods[0].budgets is None


def test_task_entry_takes_own_pattern_and_verbalizer_files(fake_env):
    """e.g. the output of `pet search-verbalizer`, used in a benchmark without editing task files."""
    _write(fake_env / "searched.json", json.dumps({"verbalizers": [{"id": "found", "labels": {"0": ["poor"], "1": ["fine"]}}]}))
    exp = _experiment(fake_env, seeds=(1,), methods=["fake"], extra={"tasks": [{"name": "specs/tiny.json", "verbalizers": "searched.json", "pvps": ["p1:found"]}]})
    cells = expand_grid(load_experiment(exp))
    assert cells[0].pvps == ["p1:found"] and cells[0].config["pvps"][0]["verbalizer"]["labels"] == {"0": ["poor"], "1": ["fine"]}
    _run(exp)
    assert _log(fake_env)[0]["pvps"] == ["p1:found"]
    assert {r["pvp"] for r in ResultsStore(fake_env / "results").rows()} == {"p1:found", None}
    _write(fake_env / "bad.json", json.dumps({"verbalizers": [{"id": "x", "labels": {"0": ["a"], "7": ["b"]}}]}))
    bad = _experiment(fake_env, methods=["fake"], name="bad.yaml", extra={"tasks": [{"name": "specs/tiny.json", "verbalizers": "bad.json", "pvps": ["p1:x"]}]})
    with pytest.raises(ConfigError, match=r"\$.tasks\[0\].pvps"):
        expand_grid(load_experiment(bad))


def test_gpu_slices_runs_slices_side_by_side_and_exports_only_the_new_rows(world, tmp_path):
    """benchmarks/gpu_slices.sh: one `pet bench` per slice into a shared store (a ` ;; ` line runs its
    commands in turn), then the rows added since the start (not those already there) exported per
    store; merging them into a copy of the store as it was gives the store as it is."""
    exp = _experiment(world, seeds=(1, 2))
    store = world / "results"
    assert subprocess.run(_bench_cmd(exp, "--only", "seed=1", "--only", "method=a"), env=_env(world), capture_output=True,
                          timeout=600).returncode == 0
    before = (store / "results.jsonl").read_bytes()
    slices = tmp_path / "slices.txt"
    slices.write_text(f"{exp} {store} --allow-imports --only seed=1\n"  # a chained line: its runs go one after another
                      f"{exp} {store} --allow-imports --only seed=2 --only method=b ;; {exp} {store} --allow-imports --only seed=2\n")
    out = tmp_path / "out"
    run = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_slices.sh"), "120", str(out), str(slices)], cwd=world,
                         env=_env(world, PYTHON=sys.executable), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    new = [json.loads(x) for x in (out / "results.new.jsonl").read_text().splitlines()]
    assert f"{store}: {len(new)} new lines, 0 new errors" in run.stdout
    assert sum(x["type"] == "cell_complete" for x in new) == 3  # seed 1 b, seed 2 a and b: not seed 1 a, stored before
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "results.jsonl").write_bytes(before)
    merge = subprocess.run([sys.executable, str(REPO / "benchmarks" / "merge_store_rows.py"), str(out / "results.new.jsonl"), str(copy)],
                           env=_env(world), capture_output=True, text=True, timeout=600)
    assert "3 cells added, 0 already there" in merge.stdout, merge.stderr
    assert set(ResultsStore(copy).scan().complete) == set(ResultsStore(store).scan().complete)
    assert "== slice 2" in (out / "slices.log").read_text() and "slice 3" not in run.stdout
    seed2 = [x["method"] for x in new if x["type"] == "cell_complete" and x["seed"] == 2]
    assert seed2 == ["b", "a"]  # the chain's first run (method b) stored its cell before the second began
