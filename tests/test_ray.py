"""`pet bench --executor ray`: a real local Ray instance (2 CPUs) computes the grid's cells.

`ray` is the `ray` extra, which CI installs (`pip install -e ".[dev]"` pulls it in): this module
fails, never skips, when it is missing. Checks: rows equal the local executor's to the last digit
(tiny random model, same seeds, one torch thread on both sides); a cell whose worker dies is
retried a bounded number of times, then stored as failed while the other cells land; every
argument of the unit of work pickles.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import ray  # noqa: F401 — a missing extra is a collection error, not a skip
import torch

from pet.bench.executors import LocalExecutor, RayExecutor
from pet.bench.experiment import expand_grid, load_experiment
from pet.bench.runner import _DataCache, machine_info, run_experiment
from pet.bench.store import ResultsStore

CRASH_METHOD = r'''
import os
from dataclasses import dataclass
from typing import ClassVar

from pet.methods import get_method
from pet.methods.base import register_method
from pet.methods.zero_shot import ZeroShotOptions, fit_zero_shot
from pet.options import option


@dataclass
class CrashOptions(ZeroShotOptions):
    where: ClassVar[str] = "crash options"
    attempts: str = option("", "file that gets one line per attempt")


def crash(train, unlabelled, options, setup):
    with open(options.attempts, "a") as f:
        f.write(f"{os.getpid()}\n")
    os._exit(3)  # the worker process dies: no exception, no row


register_method("crash", "hard", CrashOptions, crash, replace=True, needs_unlabelled=lambda o: False)


def probe(train, unlabelled, options, setup):
    # prompt-ft, plus every stage's full-precision log-probs on the training texts in its row
    fitted = get_method("prompt-ft").fit(train, unlabelled, options, setup)
    for st in fitted.stages:
        st.extra["train_log_proba"] = st.predictor.predict_log_proba(train).tolist()
    return fitted


register_method("probe", "hard", get_method("prompt-ft").options, probe, replace=True, needs_unlabelled=lambda o: False)
'''


def _write(p: Path, text: str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_bert_dir):
    root = tmp_path_factory.mktemp("ray-world")
    pos = ["a good film", "great acting", "lovely story", "wonderful cast", "superb plot", "fine music", "nice ending", "brilliant work"]
    neg = ["a bad film", "awful acting", "dull story", "weak cast", "poor plot", "noisy music", "silly ending", "boring work"]
    _write(root / "data" / "tiny" / "train.csv", "sentence,label\n" + "".join(f"{t},1\n" for t in pos) + "".join(f"{t},0\n" for t in neg))
    _write(root / "data" / "tiny" / "test.csv", "sentence,label\n" + "".join(f"test {t},{lab}\n" for t, lab in
                                                   [("good", 1), ("great", 1), ("fine", 1), ("bad", 0), ("awful", 0), ("dull", 0)]))
    _write(root / "specs" / "patterns.json", json.dumps({"task": "tiny", "patterns": [
        {"id": "p1", "template": "{text_a} It was {mask}."}, {"id": "p2", "template": "Just {mask}! {text_a}"}]}))
    _write(root / "specs" / "verbalizers.json", json.dumps({"task": "tiny", "verbalizers": [{"id": "v1", "labels": {"0": ["bad"], "1": ["good"]}}]}))
    _write(root / "specs" / "tiny.json", json.dumps({
        "name": "tiny", "folder": "tiny", "fields": {"text_a": "sentence"}, "label": "label", "labels": {"0": "negative", "1": "positive"},
        "splits": {"train": {"file": "train.csv"}, "test": {"file": "test.csv"}}, "metric": "accuracy",
        "default_pvps": [["p1", "v1"], ["p2", "v1"]], "max_length": 32, "patterns": "patterns.json", "verbalizers": "verbalizers.json"}))
    _write(root / "crash_method.py", CRASH_METHOD)
    return root


def _experiment(world: Path, methods: list, name: str, **extra) -> Path:
    import yaml

    d = {"name": name, "model": "MODEL", "results": f"results-{name}", "tasks": ["specs/tiny.json"], "k": [4], "seeds": [1, 2],
         "unlabelled": 0, "data_dir": str(world / "data"), "budgets": {"steps": 2, "lr": 1e-3, "batch_size": 2}, "methods": methods, **extra}
    return _write(world / f"{name}.yaml", yaml.safe_dump(d))


@pytest.fixture(scope="module")
def ray_pool():
    ex = RayExecutor(num_cpus=1, max_retries=1, local_cpus=2)
    yield ex
    ex.shutdown()


def _comparable(rows):
    keep = ("task", "method", "stage", "pvp", "final", "k", "seed", "score", "metrics", "config_hash", "split", "test", "unlabelled", "extra")
    return sorted((json.dumps({k: r.get(k) for k in keep}, sort_keys=True) for r in rows))


def test_ray_rows_equal_local_rows_to_the_last_digit(world, tiny_bert_dir, ray_pool):
    assert ray_pool.capacity == 2  # two 1-CPU cells at once on the 2-CPU instance
    methods = ["zero-shot", {"name": "probe", "label": "ft"}]
    exp_path = _experiment(world, methods, "same", imports=["crash_method.py"])
    quiet = dict(model=tiny_bert_dir, progress=False, echo=lambda s: None)
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # what a 1-CPU Ray worker uses (OMP_NUM_THREADS=1)
    try:
        local = run_experiment(load_experiment(exp_path, allow_imports=True), results=world / "local", executor=LocalExecutor(), **quiet)
    finally:
        torch.set_num_threads(n)
    remote = run_experiment(load_experiment(exp_path, allow_imports=True), results=world / "ray", executor=ray_pool, **quiet)
    assert local.ok and remote.ok and local.computed == remote.computed == 4
    a, b = ResultsStore(world / "local").scan(), ResultsStore(world / "ray").scan()
    assert len(a.rows) == len(b.rows) == 4 * 3  # 2 PVPs + ensemble per cell
    assert _comparable(a.rows) == _comparable(b.rows)
    lps = [r["extra"]["train_log_proba"] for r in b.rows if "train_log_proba" in r["extra"]]
    assert len(lps) == 2 * 3 and len({json.dumps(x) for x in lps}) == len(lps)  # full-precision floats, every stage different
    # the ray workers were other processes; the driver wrote the splits (same checksums)
    assert {r["split"]["checksum"] for r in a.rows} == {r["split"]["checksum"] for r in b.rows}
    # resume: a second run finds every cell done and computes nothing
    again = run_experiment(load_experiment(exp_path, allow_imports=True), results=world / "ray", executor=ray_pool, **quiet)
    assert again.computed == 0 and again.already_done == 4


def test_dead_worker_is_retried_then_stored_as_failed(world, tiny_bert_dir, ray_pool):
    attempts = world / "attempts.txt"
    methods = ["zero-shot", {"name": "crash", "options": {"attempts": str(attempts)}}]
    exp_path = _experiment(world, methods, "crash", imports=["crash_method.py"])
    msgs: list[str] = []
    summary = run_experiment(load_experiment(exp_path, allow_imports=True), model=tiny_bert_dir, results=world / "crash",
                             executor=ray_pool, progress=False, echo=msgs.append)
    assert summary.computed == 2 and summary.failed == 2  # zero-shot cells land; crash cells fail
    lines = attempts.read_text().splitlines()
    assert len(lines) == 2 * (1 + 1)  # each crash cell: first try + max_retries=1, then given up
    store = ResultsStore(world / "crash")
    assert {r["method"] for r in store.scan().rows} == {"zero-shot"}
    errors = [json.loads(x) for x in store.errors_path.read_text().splitlines()]
    failed = [o for o in summary.outcomes if o.status == "failed"]
    assert all(o.error.startswith("CellLostError: the worker computing this cell died 2 time(s)") for o in failed), failed
    assert any("FAILED" in m and "crash" in m for m in msgs)
    assert sorted(e["method"] for e in errors) == ["crash", "crash"] and all("CellLostError" in e["error"] for e in errors)


def test_method_errors_reach_the_driver_unchanged(ray_pool):
    def boom(x):
        raise ValueError(f"bad {x}")

    fut = ray_pool.submit(boom, 7)
    with pytest.raises(ValueError, match="^bad 7$"):
        fut.result(timeout=300)  # generous: a loaded 2-core machine can take minutes to start a worker
    assert ray_pool.submit(lambda a, b: a + b, 2, 3).result(timeout=300) == 5


def test_unit_of_work_pickles(world, tiny_bert_dir):
    exp = load_experiment(_experiment(world, ["zero-shot"], "pickle"))
    cell = expand_grid(exp, tiny_bert_dir)[0]
    data = _DataCache(str(world / "data"), world / "pickled")
    data.split(cell)  # what RayExecutor.prepare does on the driver
    env = {"versions": {"pet": "x"}, "git_commit": None, "git_dirty": None, "machine": machine_info(None)}
    for obj in (exp, cell, data, env):
        back = pickle.loads(pickle.dumps(obj))
        assert type(back) is type(obj)
    again = pickle.loads(pickle.dumps(data))
    assert again.split(cell).checksum == data.split(cell).checksum  # the driver's split travels with the cache


def test_cli_flags_and_missing_gpu_are_one_line_errors(world, capsys):
    from pet.cli import main
    from pet.errors import ConfigError

    rc = main(["bench", str(_experiment(world, ["zero-shot"], "cli")), "--ray-num-cpus", "2", "--dry-run"])
    assert rc != 0 and "--executor ray" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="GPU"):
        RayExecutor(num_gpus=0.5)  # the local instance of this test has no GPU
    with pytest.raises(ConfigError, match="fraction"):
        RayExecutor(num_gpus=1.5)
