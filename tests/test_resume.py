"""Resumable PET fits (pet.methods.resume): an interrupted fit reloads the members it trained and
ends where an uninterrupted fit ends; a member trained from anything else is trained again; the
bench removes a cell's resume folder once its rows are stored."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

import pet.methods.pet as pet_module
import pet.methods.resume as resume_module
from pet.methods import get_method
from test_bench import _experiment, _run, fake_env, load_experiment, world  # noqa: F401  (fixtures)
from test_pet import BASE, _setup, _task

pytestmark = pytest.mark.usefixtures("one_thread")

#: two PVPs x two repetitions with PET's auxiliary MLM term: four members, then a student
OPTS = {**BASE, "repetitions": 2, "distill_steps": 2, "mlm_weight": 1e-4, "unlabelled_batch_size": 2}


class Killed(RuntimeError):
    pass


def _counting(monkeypatch, kill_at: int | None = None) -> list:
    """Wrap PET's member training: record each call; raise on call number ``kill_at``."""
    calls: list = []
    real = pet_module.train_prompt_model

    def wrapped(*a, **kw):
        calls.append(a[1].id)
        if kill_at is not None and len(calls) == kill_at:
            raise Killed("interrupted")
        return real(*a, **kw)

    monkeypatch.setattr(pet_module, "train_prompt_model", wrapped)
    return calls


def _outputs(fitted, test) -> dict[str, np.ndarray]:
    return {s.key: s.predictor.predict_log_proba(test) for s in fitted.stages}


def _fit(model, opts=OPTS, resume_dir=None, labelled=None):
    lab, pool, _ = _task()
    setup = _setup(model)
    setup.resume_dir = resume_dir
    return get_method("pet").fit(lab if labelled is None else labelled, pool, opts, setup)


@pytest.mark.parametrize("tune", ["full", "lora"])
def test_an_interrupted_fit_resumes_to_the_uninterrupted_result(tiny_bert_dir, tmp_path, monkeypatch, tune):
    _, _, test = _task()
    opts = {**OPTS, "tune": tune}
    reference = _outputs(_fit(tiny_bert_dir, opts), test)  # no resume folder: nothing kept

    calls = _counting(monkeypatch, kill_at=3)
    with pytest.raises(Killed):
        _fit(tiny_bert_dir, opts, tmp_path / "work")
    kept = sorted(p.name for p in (tmp_path / "work").iterdir())
    assert kept == ["gen0-0-0", "gen0-1-0"]  # the two members finished before the kill, nothing half-written

    calls = _counting(monkeypatch)
    fitted = _fit(tiny_bert_dir, opts, tmp_path / "work")
    assert len(calls) == 2  # only the two members the interrupted fit had not finished
    resumed = [s.key for s in fitted.stages if s.extra.get("resumed")]
    assert len(resumed) == 2 and all("#" not in k for k in resumed)  # repetition 0 of each PVP
    got = _outputs(fitted, test)
    assert set(got) == set(reference)
    for key in reference:  # every stage, the ensemble and the distilled student included
        np.testing.assert_allclose(got[key], reference[key], atol=1e-6, err_msg=key)
    # a resumed member keeps its training log (loss curve, time) from the run that trained it
    log0 = fitted.logs[f"gen0:{fitted.stages[0].pvp}#0"]
    assert log0.steps == BASE["steps"] and log0.train_seconds > 0 and all("mlm" in e for e in log0.entries)


def test_a_lora_model_does_not_depend_on_what_ran_before(tiny_bert_dir):
    """LoRA's adapters are initialised from the training seed (they drew from the global RNG
    before, so a PET member's result depended on the members trained before it)."""
    import torch

    from pet.models.prompt_model import PromptModel
    from pet.training.loop import TrainConfig
    from pet.training.prompt import train_prompt_model
    from test_pet import _pvps

    lab, _, test = _task()
    out = []
    for noise in (1, 2):
        torch.manual_seed(noise)  # a different global RNG state before training
        model = PromptModel.from_pretrained(tiny_bert_dir, device="cpu")
        train_prompt_model(model, _pvps()[0], lab, TrainConfig.from_dict({**BASE, "tune": "lora", "seed": 5}), ["0", "1"])
        out.append(model.predict_log_proba(test, _pvps()[0], labels=["0", "1"]))
    np.testing.assert_array_equal(out[0], out[1])


def test_a_member_trained_from_anything_else_is_trained_again(tiny_bert_dir, tmp_path, monkeypatch, caplog):
    _fit(tiny_bert_dir, OPTS, tmp_path / "work")
    calls = _counting(monkeypatch)
    _fit(tiny_bert_dir, OPTS, tmp_path / "work")
    assert calls == []  # everything reused
    lab, _, _ = _task()
    for change, field in (({"opts": {**OPTS, "lr": 2e-3}}, "config.lr"), ({"labelled": lab[:-1]}, "train")):
        calls = _counting(monkeypatch)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            fitted = _fit(tiny_bert_dir, change.get("opts", OPTS), tmp_path / "work", change.get("labelled"))
        assert len(calls) == 4 and not any(s.extra.get("resumed") for s in fitted.stages), change
        # each member saved under its name for other inputs is named, with the fields that differ
        other = [r.getMessage() for r in caplog.records if "saved from other inputs" in r.getMessage()]
        members = [w for w in other if "student" not in w]
        assert len(members) == 4 and all(field in w.split("(")[1] for w in members), other  # (the second run also differs from the first in lr)
        assert [w for w in other if "distilled.student.pt" in w and "targets" in w]  # the student too: its soft targets changed
    # other code (or other library versions) than the one that trained them
    _fit(tiny_bert_dir, OPTS, tmp_path / "again")
    monkeypatch.setattr(resume_module, "code_fingerprint", lambda: "other code")
    calls = _counting(monkeypatch)
    with caplog.at_level(logging.WARNING):
        _fit(tiny_bert_dir, OPTS, tmp_path / "again")
    assert len(calls) == 4
    made = json.loads(next((tmp_path / "again").rglob("member.json")).read_text())
    assert made["code"] and "commit" in made
    warned = [r.getMessage() for r in caplog.records if "saved by other pet code" in r.getMessage()]
    assert len(warned) == 4 and all("run the code that made it" in w for w in warned)


def test_the_base_model_is_identified_by_its_files_not_by_how_its_path_is_written(tiny_bert_dir, tmp_path, monkeypatch):
    """A copy of the model folder (or the same folder by another path) reuses the saved members;
    a folder whose files differ does not."""
    import shutil

    _fit(tiny_bert_dir, OPTS, tmp_path / "work")
    copy = tmp_path / "elsewhere" / "model"
    shutil.copytree(tiny_bert_dir, copy)
    calls = _counting(monkeypatch)
    monkeypatch.chdir(tmp_path / "elsewhere")
    _fit("model", OPTS, tmp_path / "work")  # a relative path to a copy
    assert calls == []
    config = copy / "config.json"
    config.write_text(config.read_text() + "\n")  # any change to the folder's files
    calls = _counting(monkeypatch)
    _fit("model", OPTS, tmp_path / "work")
    assert len(calls) == 4


def test_a_damaged_member_is_trained_again(tiny_bert_dir, tmp_path, monkeypatch, caplog):
    _, _, test = _task()
    reference = _outputs(_fit(tiny_bert_dir, OPTS, tmp_path / "work"), test)
    (tmp_path / "work" / "gen0-1-1" / resume_module.WEIGHTS_FILE).write_bytes(b"not safetensors")
    meta = tmp_path / "work" / "gen0-0-1" / resume_module.MEMBER_FILE
    meta.write_text(meta.read_text()[:20])  # truncated JSON
    calls = _counting(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="pet.methods.resume"):
        got = _outputs(_fit(tiny_bert_dir, OPTS, tmp_path / "work"), test)
    assert len(calls) == 2
    assert "gen0-1-1: cannot resume this trained member" in caplog.text
    for key in reference:
        np.testing.assert_allclose(got[key], reference[key], atol=1e-6, err_msg=key)
    assert json.loads(meta.read_text())["fingerprint"]  # rewritten whole by the retrained member
    calls = _counting(monkeypatch)
    _fit(tiny_bert_dir, OPTS, tmp_path / "work")
    assert calls == []  # both damaged members were saved again, whole


def test_the_bench_removes_a_cells_resume_folder_once_its_rows_are_stored(fake_env):  # noqa: F811 (the fixture, imported above)
    from pet.bench.cells import resume_folder
    from pet.bench.grid import expand_grid

    exp_path = _experiment(fake_env)
    cells = expand_grid(load_experiment(exp_path))
    for c in cells:
        d = resume_folder(fake_env / "results", c)
        d.mkdir(parents=True)
        (d / "leftover").write_text("x")
    assert _run(exp_path).computed == len(cells)
    assert not any(resume_folder(fake_env / "results", c).exists() for c in cells)


def test_the_code_fingerprint_describes_the_source_as_imported(tmp_path):
    """``import pet`` reads its source once: a file changed on disk afterwards (a checkout moving on
    under a long run) does not change the running process's code fingerprint; a new process sees it."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import pet

    shutil.copytree(Path(pet.__file__).parent, tmp_path / "pet", ignore=shutil.ignore_patterns("__pycache__"))
    script = (
        "import pathlib, pet\n"
        "from pet.utils.versions import code_fingerprint\n"
        "(pathlib.Path(pet.__file__).parent / 'added_later.py').write_text('x = 1\\n')\n"
        "print(code_fingerprint())\n"
    )
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    first = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    after = subprocess.run([sys.executable, "-c", "from pet.utils.versions import code_fingerprint; import pet; print(code_fingerprint())"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert first.strip() and after.strip() and first != after


# ----------------------------------------------------------------------------- shared members


def test_fits_that_train_the_same_members_share_them(tiny_bert_dir, tmp_path, monkeypatch):
    """With ``members_dir``, a fit that differs only after the ensemble (here: PET's student
    options) loads the members another fit trained; a fit whose members differ trains its own."""
    lab, pool, test = _task()

    def fit(opts, resume):
        setup = _setup(tiny_bert_dir)
        setup.resume_dir, setup.members_dir = tmp_path / resume, tmp_path / "members"
        return get_method("pet").fit(lab, pool, opts, setup)

    calls = _counting(monkeypatch)
    first = fit(OPTS, "cell-a")
    assert len(calls) == 4
    names = [s.extra["member"] for s in first.stages if s.name == "pvp"]
    assert sorted(p.name for p in (tmp_path / "members").iterdir()) == sorted(names) and len(set(names)) == 4
    assert not any((tmp_path / "cell-a").glob("gen*"))  # members live in the shared folder, not the fit's own

    calls = _counting(monkeypatch)
    other = fit({**OPTS, "distill_steps": 3}, "cell-b")  # another student, the same members
    assert calls == []
    assert [s.extra["member"] for s in other.stages if s.name == "pvp"] == names
    assert all(s.extra.get("resumed") for s in other.stages if s.name == "pvp")
    a, b = _outputs(first, test), _outputs(other, test)
    for key in a:
        if key != "distilled":
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)

    calls = _counting(monkeypatch)
    fit({**OPTS, "lr": 2e-3}, "cell-c")  # other members: trained, and filed beside the first ones
    assert len(calls) == 4 and len(list((tmp_path / "members").iterdir())) == 8


def _pet_experiment(world, methods, name):
    return _experiment(world, seeds=(1,), k=(4,), name=name, methods=methods)


#: two PET cells of one split that differ only in their student; 2 PVPs x 1 repetition each
PET_A = {"name": "pet", "label": "pet-a", "options": {"repetitions": 1, "distill_steps": 2}}
PET_B = {"name": "pet", "label": "pet-b", "options": {"repetitions": 1, "distill_steps": 3}}


def test_the_bench_shares_a_splits_members_and_removes_them_after_its_last_cell(fake_env, tiny_bert_dir, monkeypatch):  # noqa: F811
    from pet.bench.cells import members_folder

    from test_selection import _rows

    members = members_folder(fake_env / "results")
    calls = _counting(monkeypatch)
    summary = _run(_pet_experiment(fake_env, [PET_A, PET_B], "both.yaml"), model=tiny_bert_dir)
    assert summary.computed == 2 and len(calls) == 2  # the second cell trained only its student
    rows = _rows(fake_env / "results")
    pvp = {m: [r for r in rows if r["method"] == m and r["stage"] == "pvp"] for m in ("pet-a", "pet-b")}
    assert [r["extra"]["member"] for r in pvp["pet-a"]] == [r["extra"]["member"] for r in pvp["pet-b"]]
    assert all(r["extra"].get("resumed") for r in pvp["pet-b"]) and not any(r["extra"].get("resumed") for r in pvp["pet-a"])
    ens = {r["method"]: r for r in rows if r["stage"] == "ensemble"}
    assert ens["pet-a"]["predictions"] == ens["pet-b"]["predictions"] and ens["pet-a"]["score"] == ens["pet-b"]["score"]
    assert not members.exists() or not any(members.iterdir())  # the split's last sharing cell is done: removed

    # across runs: --keep-members keeps them for the next run, which reuses them, then removes them
    calls = _counting(monkeypatch)
    _run(_pet_experiment(fake_env, [{**PET_A, "label": "pet-c", "options": {"repetitions": 1, "distill_steps": 1}}], "c.yaml"), model=tiny_bert_dir,
         keep_members=True)
    assert len(calls) == 2 and len(list(members.iterdir())) == 2
    calls = _counting(monkeypatch)
    _run(_pet_experiment(fake_env, [{**PET_A, "label": "pet-d", "options": {"repetitions": 1, "distill_steps": 4}}], "d.yaml"), model=tiny_bert_dir)
    assert calls == [] and not any(members.iterdir())


def test_a_cell_waits_while_another_of_its_member_group_runs(fake_env, tiny_bert_dir, monkeypatch):  # noqa: F811
    """With room for two cells at once, the second PET cell of a split is held back until the
    first is done (another cell runs meanwhile), so it loads the members rather than training
    them alongside; cells of other member groups are not held."""
    from concurrent.futures import ThreadPoolExecutor

    class TwoAtOnce:
        capacity = 2

        def __init__(self):
            self.pool, self.started = ThreadPoolExecutor(2), []

        def submit(self, fn, cell, *rest):
            running = [c.method for c, f in self.started if not f.done()]
            fut = self.pool.submit(fn, cell, *rest)
            self.started.append((cell, fut))
            self.seen.append((cell.method, running))
            return fut

        seen: list = []

    ex = TwoAtOnce()
    ex.seen = []
    calls = _counting(monkeypatch)
    methods = [PET_A, {"name": "fake", "label": "f1"}, PET_B, {"name": "fake", "label": "f2", "options": {"bias": 1}}]
    summary = _run(_pet_experiment(fake_env, methods, "two.yaml"), model=tiny_bert_dir, executor=ex)
    ex.pool.shutdown()
    assert summary.computed == 4 and summary.failed == 0
    assert len(calls) == 2  # pet-a's two members; pet-b loads them
    assert not any(m == "pet-b" and "pet-a" in running for m, running in ex.seen), ex.seen
    order = [m for m, _ in ex.seen]
    assert order.index("pet-b") > order.index("f2")  # held back while f2 went ahead


def test_member_groups_are_the_cells_that_train_the_same_members(fake_env, tiny_bert_dir):  # noqa: F811
    from pet.bench.driver import Driver

    methods = [PET_A, PET_B, {**PET_A, "label": "pet-lr", "options": {**PET_A["options"], "lr": 2e-3}},
               {**PET_A, "label": "pet-1pvp", "pvps": ["p1:v1"]}, {"name": "fake", "label": "f"}]
    exp = load_experiment(_experiment(fake_env, seeds=(1, 2), k=(4,), name="groups.yaml", methods=methods))
    d = Driver(exp, model=tiny_bert_dir, progress=False, echo=lambda s: None)
    group = {(c.method, c.seed): d._member_group(c) for c in d.cells}
    assert group[("pet-a", 1)] == group[("pet-b", 1)] is not None  # only the student differs
    assert len({group[(m, 1)] for m in ("pet-a", "pet-lr", "pet-1pvp")}) == 3  # other training options, other PVPs
    assert group[("pet-a", 1)] != group[("pet-a", 2)]  # another split
    assert group[("f", 1)] is None  # a method that trains no PET members
