"""Model selection: grids per split, dev / cv / multisplit choices, best checkpoints, and the
test set never consulted before the choice."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from pet.bench.experiment import expand_grid
from pet.bench.store import ResultsStore
from pet.errors import ConfigError, DataError
from pet.examples import Example
from pet.evaluation.selection import Selection, choose, folds, parse_selection
from test_bench import _experiment, _run, fake_env, load_experiment, world  # noqa: F401  (fixtures)


# ----------------------------------------------------------------------------- pure pieces


def test_parse_selection():
    assert parse_selection("none") == Selection("none") and parse_selection("dev") == Selection("dev")
    assert parse_selection("cv:4") == Selection("cv", 4) and str(parse_selection("multisplit:3")) == "multisplit:3"
    for bad in ("cv", "cv:1", "folds:3", "", 3):
        with pytest.raises(ConfigError, match="fix"):
            parse_selection(bad)


def _labelled(n_per_label: int = 6) -> list[Example]:
    return [Example({"text_a": f"t{lab}{i}"}, lab, f"{lab}-{i}") for lab in ("0", "1", "2") for i in range(n_per_label)]


def test_cv_folds_are_disjoint_stratified_and_seeded():
    data = _labelled(6)
    fs = folds(data, Selection("cv", 3), seed=13)
    assert len(fs) == 3
    held = [e.guid for _, h in fs for e in h]
    assert sorted(held) == sorted(e.guid for e in data)  # every example held out exactly once
    for fit, h in fs:
        assert not {e.guid for e in fit} & {e.guid for e in h}
        assert Counter(e.label for e in h) == {"0": 2, "1": 2, "2": 2}  # stratified
    again = folds(data, Selection("cv", 3), seed=13)
    other = folds(data, Selection("cv", 3), seed=21)
    assert [[e.guid for e in h] for _, h in fs] == [[e.guid for e in h] for _, h in again]
    assert [[e.guid for e in h] for _, h in fs] != [[e.guid for e in h] for _, h in other]
    with pytest.raises(DataError, match="fewer than 7"):
        folds(data, Selection("cv", 7), seed=0)


def test_multisplit_halves_are_stratified_and_differ():
    fs = folds(_labelled(4), Selection("multisplit", 3), seed=1)
    assert len(fs) == 3
    for fit, held in fs:
        assert len(fit) == len(held) == 6 and Counter(e.label for e in held) == {"0": 2, "1": 2, "2": 2}
    assert len({tuple(sorted(e.guid for e in h)) for _, h in fs}) > 1


def test_choose_takes_the_best_dev_score_per_stage_earliest_on_ties():
    points = [
        [{"key": "ensemble", "dev_score": 0.5}, {"key": "pvp[a]", "dev_score": 0.9}],
        [{"key": "ensemble", "dev_score": 0.7}, {"key": "pvp[a]", "dev_score": 0.9}],
        [{"key": "ensemble", "dev_score": 0.6}, {"key": "pvp[a]", "dev_score": None}],
    ]
    assert choose(points) == {"ensemble": 1, "pvp[a]": 0}


# ----------------------------------------------------------------------------- experiment files


def test_search_and_selection_keys_are_checked(world):  # noqa: F811
    with pytest.raises(ConfigError, match=r"\$.methods\[0\].search: a grid needs a way to choose"):
        load_experiment(_experiment(world, methods=[{"name": "fake", "search": {"bias": [0, 1]}}], name="a.yaml"))
    with pytest.raises(ConfigError, match=r"\$.methods\[0\].eval_every: .*fix: add selection: dev"):
        load_experiment(_experiment(world, methods=[{"name": "fake", "eval_every": 10}], name="b.yaml"))
    with pytest.raises(ConfigError, match=r"\$.methods\[0\].selection"):
        load_experiment(_experiment(world, methods=[{"name": "fake", "selection": "cv:x"}], name="c.yaml"))
    with pytest.raises(ConfigError, match=r"search point \{'bais': 0\}.*did you mean 'bias'"):
        load_experiment(_experiment(world, methods=[{"name": "fake", "selection": "dev", "search": {"bais": [0]}}], name="d.yaml"))


def test_grid_expands_per_split_with_a_choice_after_its_points(world):  # noqa: F811
    exp = load_experiment(_experiment(world, seeds=(1, 2), methods=[
        {"name": "fake", "selection": "dev", "search": {"bias": [0, 1, 2], "lr": [1e-5, 2e-5]}, "eval_every": 5},
        {"name": "fake", "label": "plain"}]))
    cells = expand_grid(exp)
    for seed in (1, 2):
        mine = [c for c in cells if c.seed == seed and c.method == "fake"]
        assert [c.role for c in mine] == ["point"] * 6 + ["select"]
        assert mine[-1].points == [c.config_hash for c in mine[:-1]]
        assert {json.dumps(c.grid_point, sort_keys=True) for c in mine[:-1]} == {
            json.dumps({"bias": b, "lr": lr}, sort_keys=True) for b in (0, 1, 2) for lr in (1e-5, 2e-5)}
        assert all(c.options["eval_every"] == 5 and c.options["bias"] == c.grid_point["bias"] for c in mine[:-1])
        assert len({c.config_hash for c in mine}) == 7
        assert mine[-1].describe() == f"tiny fake K=4 seed={seed} (dev choice of 6 points)"  # what messages and --dry-run say
        assert mine[0].describe() == f'tiny fake K=4 seed={seed} point {{"bias":0,"lr":1e-05}}'
    plain = [c for c in cells if c.method == "plain"]
    assert [c.role for c in plain] == ["single", "single"]


# ----------------------------------------------------------------------------- runs


def _rows(root):
    return ResultsStore(root).rows()


def test_dev_selection_chooses_the_best_dev_point_per_split_and_resumes(fake_env):  # noqa: F811
    exp_path = _experiment(fake_env, seeds=(1, 2), methods=[{"name": "fake", "selection": "dev", "search": {"bias": [0, 1, 2]}}])
    s = _run(exp_path)
    assert s.failed == 0 and s.computed == 2 * 4
    rows = _rows(fake_env / "results")
    for seed in (1, 2):
        points = [r for r in rows if r["seed"] == seed and r["selected"] is False]
        chosen = [r for r in rows if r["seed"] == seed and r["selected"] is True]
        assert len(points) == 3 * 3 and all(r["dev_score"] is not None and r["score"] is not None for r in points)
        for r in chosen:
            same = [p for p in points if p["key"] == r["key"]]
            best = max(p["dev_score"] for p in same)
            first_best = next(p for p in same if p["dev_score"] == best)
            assert r["dev_score"] == best and r["grid_point"] == first_best["grid_point"] and r["score"] == first_best["score"]
            assert [g["dev_score"] for g in r["grid"]] == [p["dev_score"] for p in same]
    size = (fake_env / "results" / "results.jsonl").stat().st_size
    again = _run(exp_path)
    assert again.computed == 0 and again.already_done == 8 and (fake_env / "results" / "results.jsonl").stat().st_size == size


def test_selection_never_reads_the_test_set(fake_env):  # noqa: F811
    """The choices and the dev scores do not change when the test file is garbage of the same shape."""
    methods = [{"name": "fake", "selection": "dev", "search": {"bias": [0, 1, 2]}},
               {"name": "fake", "label": "cv", "selection": "cv:2", "search": {"bias": [0, 3]}}]
    _run(_experiment(fake_env, seeds=(1,), methods=methods, name="one.yaml"))
    first = _rows(fake_env / "results")
    test = fake_env / "data" / "tiny" / "test.csv"
    lines = test.read_text().splitlines()
    garbage = [lines[0]] + [f"zz {i} qq,{1 - int(line.rsplit(',', 1)[1])}" for i, line in enumerate(lines[1:])]
    test.write_text("\n".join(garbage) + "\n")
    _run(_experiment(fake_env, seeds=(1,), methods=methods, name="one.yaml", extra={"results": "results2"}))
    second = _rows(fake_env / "results2")

    def choices(rows):
        return sorted((r["method"], r["key"], json.dumps(r["grid_point"], sort_keys=True), r["dev_score"])
                      for r in rows if r["selected"] is True)

    assert choices(first) == choices(second) and len(choices(first)) == 2 * 3
    assert any(a["score"] != b["score"] for a, b in zip(sorted(first, key=lambda r: (r["method"], r["key"])),
                                                        sorted(second, key=lambda r: (r["method"], r["key"]))) if a["selected"] and a["score"] is not None)


def test_cv_selection_refits_the_chosen_point_on_all_labelled_data(fake_env):  # noqa: F811
    _run(_experiment(fake_env, seeds=(1,), methods=[{"name": "fake", "selection": "cv:2", "search": {"bias": [0, 3]}}]))
    rows = _rows(fake_env / "results")
    points = [r for r in rows if r["selected"] is False]
    chosen = [r for r in rows if r["selected"] is True]
    assert len(points) == 2 * 3 and all(r["score"] is None and len(r["extra"]["fold_scores"]) == 2 for r in points)
    assert all(r["dev_score"] == pytest.approx(np.mean(r["extra"]["fold_scores"])) for r in points)
    assert len(chosen) == 3 and all(r["score"] is not None and r["test"]["n"] == 10 for r in chosen)
    log = [json.loads(x) for x in (fake_env / "fake.log").read_text().splitlines()]
    fits = Counter(len(rec["train"]) for rec in log)
    refits = {json.dumps(r["grid_point"], sort_keys=True) for r in chosen}  # each stage chooses its own point
    assert fits == {8: 4, 16: len(refits)}  # 2 points x 2 folds of the 16 labelled examples, then a refit on all 16 per chosen point
    for r in chosen:
        same = [p for p in points if p["key"] == r["key"]]
        assert r["dev_score"] == max(p["dev_score"] for p in same)


def test_report_uses_selected_rows_and_writes_the_selection_table(fake_env):  # noqa: F811
    from pet.bench.report import build_report

    _run(_experiment(fake_env, seeds=(1, 2, 3), methods=[{"name": "fake", "selection": "dev", "search": {"bias": [0, 1, 2]}}]))
    rep = build_report(fake_env / "results", output=fake_env / "rep")
    head = rep.tables["headline"]
    assert len(head) == 1 and head["n"].iloc[0] == 3  # one chosen row per seed, not 3 points x 3 seeds
    sel = rep.tables["selection"]
    assert len(sel) == 3 and set(sel["points"]) == {3} and "points_test_best" in sel
    assert (fake_env / "rep" / "selection.csv").is_file() and (fake_env / "rep" / "plots" / "dev_vs_test.png").is_file()
    assert "## Model selection" in rep.markdown


# ----------------------------------------------------------------------------- best checkpoint


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("method", ["prompt-ft", "cls-ft"])
def test_best_checkpoint_restores_exactly_its_dev_score(tiny_bert_dir, method):
    from pet.evaluation import evaluate
    from pet.methods import FitSetup, get_method
    from pet.prompts.spec import PVP, Pattern, Verbalizer
    from pet.data.registry import load_task

    pvp = PVP(Pattern("it-was", "{text_a} It was {mask}."), Verbalizer("gb", {"0": ["bad"], "1": ["good"]}))
    texts = ["good", "bad", "good good", "bad bad", "very good", "very bad", "good fun", "bad day"]
    train = [Example({"text_a": t}, "1" if i % 2 == 0 else "0", f"t{i}") for i, t in enumerate(texts)]
    dev = [Example({"text_a": t}, lab, f"d{i}") for i, (t, lab) in enumerate([("nice", "1"), ("awful", "0"), ("great", "1"), ("poor", "0"), ("fun", "1"), ("dull", "0")])]
    setup = FitSetup(tiny_bert_dir, ["0", "1"], [pvp], seed=3, max_length=32, dev=dev)
    opts = {"steps": 12, "lr": 5e-2, "eval_every": 3, "batch_size": 2}
    fitted = get_method(method).fit(train, [], opts, setup)
    st = fitted.stage()
    dev_scores = [e["dev_score"] for e in fitted.logs[next(iter(fitted.logs))].entries if "dev_score" in e]
    assert len(dev_scores) == 4 and st.extra["best_dev_score"] == max(dev_scores)
    assert st.extra["best_step"] == 3 * (1 + dev_scores.index(max(dev_scores)))
    task = load_task("sst2")
    (row,) = [r for r in evaluate(fitted, dev, task, split="dev") if r["final"]]
    assert row["score"] == st.extra["best_dev_score"]  # the restored weights give exactly the kept score
    with pytest.raises(ConfigError, match="eval_every=3 needs labelled dev examples"):
        get_method(method).fit(train, [], opts, FitSetup(tiny_bert_dir, ["0", "1"], [pvp], seed=3, max_length=32))


def test_k_mode_total_draws_pets_T_in_all(world, tmp_path):  # noqa: F811
    """PET's |T|: k labelled examples in all (not per class), uniformly at random, seeded, no dev."""
    from pet.data import few_shot

    task = world / "specs" / "tiny.json"
    data = world / "data"
    a, dev = few_shot(task, data, k=None, seed=3, total=7, out_dir=tmp_path / "s")
    b, _ = few_shot(task, data, k=None, seed=3, total=7, out_dir=tmp_path / "s")  # read back, verified
    c, _ = few_shot(task, data, k=None, seed=4, total=7)
    assert len(a) == 7 and dev == [] and [e.fields for e in a] == [e.fields for e in b] and [e.fields for e in a] != [e.fields for e in c]
    with pytest.raises(DataError, match="holds a split for"):
        few_shot(task, data, k=None, seed=3, total=8, out_dir=tmp_path / "s")
    with pytest.raises(DataError, match="only 40 labelled train-side examples"):
        few_shot(task, data, total=41, seed=1)
    exp = load_experiment(_experiment(world, k=(5, 10), extra={"k_mode": "total"}, name="t.yaml"))
    cells = expand_grid(exp)
    assert {c.k for c in cells} == {5, 10} and all(c.k_total and c.config["k_mode"] == "total" for c in cells)
    with pytest.raises(ConfigError, match="k_mode total needs a number"):
        expand_grid(load_experiment(_experiment(world, k=(None,), extra={"k_mode": "total"}, name="t2.yaml")))


def test_a_choice_still_to_make_is_not_reported_as_a_changed_config(fake_env):  # noqa: F811
    """Killed after its grid points and before its choice, a split's choice cell runs next time:
    its points' rows (other hashes of the same experiment) are not 'rows under another config
    hash'; an option changed in the file still is."""
    import yaml

    from pet.bench.driver import run_experiment

    exp_path = _experiment(fake_env, seeds=(1,), methods=[{"name": "fake", "selection": "dev", "search": {"bias": [0, 1]}}])
    _run(exp_path)
    store = fake_env / "results" / "results.jsonl"
    lines = [json.loads(x) for x in store.read_text().splitlines()]
    chosen = {x["write_id"] for x in lines if x.get("selected") is True}
    store.write_text("".join(json.dumps(x) + "\n" for x in lines if x["write_id"] not in chosen))
    said: list[str] = []
    summary = run_experiment(load_experiment(exp_path), dry_run=True, progress=False, echo=said.append)
    assert summary.already_done == 2 and not [s for s in said if "another config hash" in s]
    d = yaml.safe_load(exp_path.read_text())
    d["budgets"]["steps"] = 4  # a changed config: every cell is new, and the old rows are named
    exp_path.write_text(yaml.safe_dump(d))
    said.clear()
    run_experiment(load_experiment(exp_path), dry_run=True, progress=False, echo=said.append)
    assert [s for s in said if "another config hash" in s]


def test_a_splits_choice_is_written_right_after_its_points(fake_env):  # noqa: F811
    """Seed 1's chosen rows are in the store before seed 2's grid points are computed, so a run
    stopped midway keeps the choices of the splits it finished."""
    exp_path = _experiment(fake_env, seeds=(1, 2), methods=[{"name": "fake", "selection": "dev", "search": {"bias": [0, 1]}}])
    assert _run(exp_path).computed == 2 * 3
    order = [(r["seed"], r["selected"]) for r in _rows(fake_env / "results")]
    first_seed2 = order.index((2, False))
    assert (1, True) in order[:first_seed2] and (2, True) in order[first_seed2:]


def test_a_cell_held_by_another_run_is_waited_for_and_said(fake_env):  # noqa: F811
    """Another run holds a grid point's lock: this run says so, computes everything else, then
    waits; when the lock is released without rows (the other run stopped), it computes the point
    and the split's choice itself."""
    import threading

    from pet.bench.grid import expand_grid as cells_of
    from pet.bench.runner import run_experiment

    exp_path = _experiment(fake_env, seeds=(1, 2), methods=[{"name": "fake", "selection": "dev", "search": {"bias": [0, 1]}}])
    exp = load_experiment(exp_path)
    point = next(c for c in cells_of(exp) if c.seed == 1 and c.role == "point")
    store = ResultsStore(fake_env / "results")
    held, release = threading.Event(), threading.Event()

    def other_run():
        with store.cell_lock(point.config_hash) as got:
            assert got
            held.set()
            release.wait(30)

    t = threading.Thread(target=other_run)
    t.start()
    held.wait(10)
    said: list[str] = []

    def echo(line: str) -> None:
        said.append(line)
        if "being computed by another run" in line:
            # everything not waiting on the held point is stored by now: seed 2's choice included
            assert {(r["seed"], r["selected"]) for r in _rows(fake_env / "results")} == {(1, False), (2, False), (2, True)}
            release.set()

    try:
        summary = run_experiment(exp, progress=False, echo=echo)
    finally:
        release.set()
        t.join()
    assert any("1 cell of this run is being computed by another run" in s and "(1 split's choice waits for them)" in s for s in said)
    assert summary.failed == 0 and summary.computed == 6
    assert {(r["seed"], r["selected"]) for r in _rows(fake_env / "results")} == {(1, False), (1, True), (2, False), (2, True)}
