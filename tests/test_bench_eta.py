"""What `pet bench --dry-run` says the cells to run will take (pet.bench.eta), and the cell wall
time every finished cell records (its store marker and its summary line)."""

from __future__ import annotations

import json

from pet.bench.eta import CellTimes, format_duration, machine_kind
from pet.bench.experiment import expand_grid
from pet.bench.store import ResultsStore, StoreScan
from test_bench import _experiment, _run, fake_env, load_experiment, world  # noqa: F401  (fixtures)

CPU = {"cpu_count": 2, "sched_cpus": 2, "torch_threads": 1}
GPU = {"cpu_count": 16, "sched_cpus": 16, "gpu": "NVIDIA H200"}


def _scan(timed: list[tuple]) -> StoreScan:
    """A store read holding one row per (cell, seconds, machine)."""
    scan = StoreScan()
    for c, secs, machine in timed:
        scan.rows.append({"config_hash": c.config_hash, "cell_seconds": secs, "machine": machine})
        scan.complete[c.config_hash] = "w-" + c.config_hash[:8]
    return scan


def test_machine_kind_is_the_gpu_else_the_cores():
    assert machine_kind(GPU) == "NVIDIA H200"
    assert machine_kind(CPU) == "2-core CPU"
    assert machine_kind({"cpu_count": 8}) == "8-core CPU"
    assert machine_kind(None) == "unknown machine"


def test_format_duration_picks_one_unit():
    assert [format_duration(s) for s in (0.4, 42, 95, 450, 3000, 7200, 19000)] == ["0.4 s", "42 s", "1.6 min", "7.5 min", "50 min", "2.0 h", "5.3 h"]


def test_estimate_is_the_median_of_the_same_work_on_this_machine_first(world):
    cells = expand_grid(load_experiment(_experiment(world, seeds=(1, 2, 3, 4))))
    a = {c.seed: c for c in cells if c.method == "a"}
    b = {c.seed: c for c in cells if c.method == "b"}
    scan = _scan([(a[1], 100.0, CPU), (a[2], 400.0, CPU), (a[3], 250.0, CPU), (a[1], 9.0, GPU),  # a cell's first row times it
                  (b[1], 30.0, GPU), (b[2], 50.0, GPU), (b[3], 70.0, GPU)])
    times = CellTimes(cells, scan, CPU)
    est = times.estimate(a[4])
    assert (est.seconds, est.n, est.same_machine) == (250.0, 3, True)  # median of 100, 400, 250; not the GPU's
    assert est.describe() == "~4.2 min (median of 3 stored cells on this machine's kind)"
    other = times.estimate(b[4])  # only GPU cells of b: used, and said so
    assert (other.seconds, other.n, other.machine, other.same_machine) == (50.0, 3, "NVIDIA H200", False)
    assert "on NVIDIA H200" in other.describe()
    on_gpu = CellTimes(cells, scan, GPU).estimate(a[4])  # no GPU cell of a: the CPU's, said so
    assert (on_gpu.seconds, on_gpu.n, on_gpu.machine, on_gpu.same_machine) == (250.0, 3, "2-core CPU", False)
    assert CellTimes(cells, scan, GPU).estimate(b[4]).same_machine
    total = times.total([a[4], b[4]])
    assert total.startswith("~5.0 min of cell time for 2 of the 2 cells that train") and "(1 timed on NVIDIA H200, not this machine's kind)" in total


def test_no_estimate_across_tasks_or_methods_and_the_total_says_so(world):
    cells = expand_grid(load_experiment(_experiment(world, seeds=(1, 2))))
    a = {c.seed: c for c in cells if c.method == "a"}
    b = {c.seed: c for c in cells if c.method == "b"}
    times = CellTimes(cells, _scan([(a[1], 60.0, CPU)]), CPU)
    assert times.estimate(b[2]) is None  # method a's time says nothing about b
    assert times.total([a[2], b[2]]) == ("~60 s of cell time for 1 of the 2 cells that train, one after another, at the stored "
                                         "cells' median times; 1 more with no stored cell of their task, method and K to time them by")
    assert CellTimes(cells, StoreScan(), CPU).total([b[2]]) == "no estimate for the 1 cell that trains: no stored cell of their task, method and K to time them by"
    incomplete = _scan([(a[1], 60.0, CPU)])
    incomplete.complete.clear()  # rows of a write whose marker never came are not read
    assert CellTimes(cells, incomplete, CPU).estimate(a[2]) is None


def test_a_dev_choice_trains_nothing_whatever_its_rows_carry(world):
    exp = _experiment(world, seeds=(1, 2), methods=[{"name": "fake", "selection": "dev", "search": {"bias": [0, 1]}}])
    cells = expand_grid(load_experiment(exp))
    choice = [c for c in cells if c.role == "select"]
    points = [c for c in cells if c.role == "point"]
    assert len(choice) == 2 and len(points) == 4
    # a stored choice's rows carry its chosen point's time (here 500 s): not the choice's own
    times = CellTimes(cells, _scan([(choice[0], 500.0, CPU), (points[0], 500.0, CPU)]), CPU)
    est = times.estimate(choice[1])
    assert est.seconds == 0 and est.describe() == "seconds (a choice among its stored points)"
    same_point = next(p for p in points if p.seed == 2 and p.grid_point == points[0].grid_point)
    assert times.estimate(same_point).seconds == 500.0
    assert times.total([choice[1], same_point]) == ("~8.3 min of cell time for 1 of the 1 cell that trains, one after another, at the "
                                                    "stored cells' median times; 1 choice among stored points, seconds each")
    other_point = next(p for p in points if p.seed == 2 and p.grid_point != points[0].grid_point)
    assert times.estimate(other_point) is None  # another grid point is other work


def test_dry_run_prints_estimates_from_the_stored_cells(fake_env, capsys):  # noqa: F811
    from pet.cli import main

    exp = _experiment(fake_env, seeds=(1, 2), methods=[{"name": "fake", "label": "a", "options": {"sleep": 0.4}}])
    _run(exp, only=["seed=1"])
    assert main(["bench", str(exp), "--allow-imports", "--no-progress", "--dry-run"]) == 0
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("to run"))
    assert "tiny a K=4 seed=2" in line and line.endswith("(median of 1 stored cell on this machine's kind)")
    secs = float(line.split("~")[-1].split(" s ")[0])
    assert 0.4 <= secs < 60  # the stored cell's time: it slept 0.4 s
    assert "time to run: ~" in err and "for 1 of the 1 cell that trains" in err


def test_a_finished_cell_records_its_wall_time(fake_env):  # noqa: F811
    """The store marker and the summary line carry the cell's wall time; with the local executor
    (which computes a cell inside submit) they were 0.0 before."""
    lines = []
    from pet.bench.runner import run_experiment

    exp = load_experiment(_experiment(fake_env, seeds=(1,), methods=[{"name": "fake", "label": "a", "options": {"sleep": 0.3}}]))
    run_experiment(exp, progress=False, echo=lines.append)
    store = ResultsStore(fake_env / "results")
    marker = next(json.loads(x) for x in store.path.read_text().splitlines() if json.loads(x)["type"] == "cell_complete")
    assert marker["seconds"] >= 0.3
    row_secs = store.rows()[0]["cell_seconds"]
    assert marker["seconds"] >= row_secs * 0.9  # the driver's time encloses the cell's own
    summary = next(x for x in lines if x.startswith("tiny a K=4 seed=1:"))
    assert not summary.endswith(" 0.0s") and float(summary.rsplit(" ", 1)[-1].rstrip("s")) >= 0.3


def test_a_resumed_cell_adds_back_its_reloaded_members_training_time(world):
    """A cell that reloaded saved PET members recorded only the resumed run's wall time; their
    own training seconds (each member once, whatever rows repeat it) are added back. A student
    resumed mid-training says nothing of the time before, so that cell times nothing."""
    cells = expand_grid(load_experiment(_experiment(world, seeds=(1, 2, 3, 4))))
    a = {c.seed: c for c in cells if c.method == "a"}
    scan = _scan([(a[1], 100.0, CPU)])
    h = a[1].config_hash
    for key, secs in (("pvp#0", 300.0), ("pvp#1", 200.0), ("pvp#0", 300.0)):  # the same member in two rows: counted once
        scan.rows.append({"config_hash": h, "cell_seconds": 100.0, "machine": CPU, "key": key, "train_seconds": secs,
                          "extra": {"resumed": True}})
    scan.rows.append({"config_hash": h, "cell_seconds": 100.0, "machine": CPU, "key": "ensemble", "train_seconds": 500.0, "extra": {}})
    assert CellTimes(cells, scan, CPU).estimate(a[4]).seconds == 600.0  # 100 s resumed run + 300 + 200 reloaded
    mid = _scan([(a[2], 40.0, CPU)])
    mid.rows.append({"config_hash": a[2].config_hash, "cell_seconds": 40.0, "machine": CPU, "key": "distilled",
                     "train_seconds": 30.0, "extra": {"resumed_from_step": 800}})
    assert CellTimes(cells, mid, CPU).estimate(a[4]) is None
