"""Resumable training runs (pet.training.checkpoint): a run killed part-way and started again with
the same LoopCheckpoint continues after its last saved step and ends with the weights, log and
random state of an uninterrupted run; a state saved for other inputs or code, or damaged, is not
used; PET's distilled student resumes inside its 5,000 steps."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import torch
from torch import nn

import pet.methods.pet as pet_module
import pet.training.checkpoint as checkpoint_module
import pet.training.loop as loop_module
from pet.errors import ConfigError
from pet.training.checkpoint import LoopCheckpoint
from pet.training.loop import IndexStream, TrainConfig, train_loop
from pet.training.sequence import train_sequence_classifier
from test_pet import BASE, LABELS, _setup, _task

pytestmark = pytest.mark.usefixtures("one_thread")

_REAL_STEP = loop_module._optimizer_step
_REAL_INIT = LoopCheckpoint.__init__


def _every(n: int):
    """LoopCheckpoint.__init__ with saves every ``n`` steps (PET asks for every 250)."""

    def init(self, path, fingerprint, every=250, inputs=None):
        _REAL_INIT(self, path, fingerprint, every=n, inputs=inputs)

    return init


class Killed(RuntimeError):
    pass


def _kill_at(monkeypatch, step: int) -> list:
    """Make the loop's optimizer step number ``step`` raise (a run killed mid-training)."""
    calls: list = []
    real = loop_module._optimizer_step

    def wrapped(*a, **kw):
        calls.append(1)
        if len(calls) == step:
            raise Killed(f"killed at step {step}")
        return real(*a, **kw)

    monkeypatch.setattr(loop_module, "_optimizer_step", wrapped)
    return calls


class _Net(nn.Module):
    """Dropout (global RNG), a bias (no weight decay) and a weight (decay): every state the loop keeps."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Linear(6, 16), nn.Linear(16, 3)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        return self.b(self.drop(torch.tanh(self.a(x))))


X = torch.randn(40, 6, generator=torch.Generator().manual_seed(1))
Y = torch.randint(0, 3, (40,), generator=torch.Generator().manual_seed(2))


def _batches(rank, world):
    for idx in IndexStream(len(X), 4, 11, rank, world):
        yield {"x": X[idx], "y": Y[idx]}


def _loss(m, b):
    loss = nn.functional.cross_entropy(m(b["x"]), b["y"])
    return {"loss": loss, "ce": loss}


CFG = TrainConfig(steps=12, lr=0.05, batch_size=4, grad_accum=2, warmup_ratio=0.25, seed=5, eval_every=4)


def _evaluate(net):
    return lambda: float((net(X).argmax(1) == Y).float().mean())


def _run(resume=None):
    net = _Net()
    log = train_loop(net, _loss, _batches, CFG, progress=False, evaluate=_evaluate(net), resume=resume)
    return net, log


def _same(a: nn.Module, b: nn.Module):
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), atol=1e-6, err_msg=n)


def _losses(log):
    return [(e["step"], e["loss"], e["lr"], e.get("dev_score")) for e in log.entries]


@pytest.mark.parametrize("kill_at", [6, 11])  # just after a save (step 5 of every 5 … ) and far from one
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, kill_at):
    ref_net, ref_log = _run()
    after_ref = torch.rand(3)  # the global RNG after training: a resumed run leaves the same state
    ck = LoopCheckpoint(tmp_path / "run.pt", "fp", every=5)
    _kill_at(monkeypatch, kill_at)
    with pytest.raises(Killed):
        _run(ck)
    assert (tmp_path / "run.pt").is_file() and not list(tmp_path.glob(".run.pt.tmp-*"))
    monkeypatch.setattr(loop_module, "_optimizer_step", _REAL_STEP)
    ck = LoopCheckpoint(tmp_path / "run.pt", "fp", every=5)
    net, log = _run(ck)
    assert ck.resumed_from == (kill_at - 1) // 5 * 5
    _same(net, ref_net)
    assert _losses(log) == _losses(ref_log)  # the log keeps the steps of the killed run
    assert (log.best_step, log.best_dev_score, log.steps) == (ref_log.best_step, ref_log.best_dev_score, ref_log.steps)
    assert torch.equal(torch.rand(3), after_ref)


def test_a_finished_run_is_not_trained_again(tmp_path, monkeypatch):
    ref_net, _ = _run()
    _run(LoopCheckpoint(tmp_path / "run.pt", "fp", every=100))  # the last step is always saved
    calls = _kill_at(monkeypatch, 10**9)
    ck = LoopCheckpoint(tmp_path / "run.pt", "fp", every=100)
    net, log = _run(ck)
    assert calls == [] and ck.resumed_from == CFG.steps and log.steps == CFG.steps
    _same(net, ref_net)


@pytest.mark.parametrize("change", ["fingerprint", "code", "damaged", "longer-run-saved"])
def test_a_state_from_other_inputs_code_or_a_damaged_file_is_not_used(tmp_path, monkeypatch, caplog, change):
    ref_net, _ = _run()
    _kill_at(monkeypatch, 9)
    with pytest.raises(Killed):
        _run(LoopCheckpoint(tmp_path / "run.pt", "fp", every=4))
    monkeypatch.setattr(loop_module, "_optimizer_step", _REAL_STEP)
    fp = "fp"
    if change == "fingerprint":
        fp = "other"
    elif change == "code":
        monkeypatch.setattr(checkpoint_module, "code_fingerprint", lambda: "other code")
    elif change == "damaged":
        (tmp_path / "run.pt").write_bytes((tmp_path / "run.pt").read_bytes()[:1000])
    else:  # a state saved after more steps than this run has
        state = torch.load(tmp_path / "run.pt", weights_only=True)
        state["step"] = CFG.steps + 1
        torch.save(state, tmp_path / "run.pt")
    ck = LoopCheckpoint(tmp_path / "run.pt", fp, every=4)
    with caplog.at_level(logging.WARNING):
        net, _ = _run(ck)
    assert ck.resumed_from == 0
    _same(net, ref_net)  # trained from step 0: the uninterrupted result
    assert ("cannot resume" in caplog.text) == (change == "damaged")
    # saved work for this run made by other code is named, with the commit that made it
    assert ("run.pt: saved by other pet code" in caplog.text and "run the code that made it" in caplog.text) == (change == "code")


def test_a_state_saved_from_other_inputs_names_the_fields_that_differ(tmp_path, caplog):
    _run(LoopCheckpoint(tmp_path / "run.pt", "fp", every=100, inputs={"model": "m", "config": {"lr": 0.1, "steps": 12}}))
    ck = LoopCheckpoint(tmp_path / "run.pt", "fp2", every=100, inputs={"model": "m", "config": {"lr": 0.2, "steps": 12}})
    with caplog.at_level(logging.WARNING):
        _run(ck)
    assert ck.resumed_from == 0
    assert "run.pt: saved from other inputs (config.lr differ)" in caplog.text
    _run(LoopCheckpoint(tmp_path / "old.pt", "fp", every=100))  # an older pet recorded no inputs
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _run(LoopCheckpoint(tmp_path / "old.pt", "fp2", every=100, inputs={"model": "m"}))
    assert "old.pt: saved from other inputs (not recorded: saved by an older pet)" in caplog.text  # not silently


def test_a_state_for_another_model_is_a_one_line_error(tmp_path):
    _run(LoopCheckpoint(tmp_path / "run.pt", "fp", every=100))
    net = nn.Linear(6, 3)
    with pytest.raises(ConfigError, match=r"run\.pt: this saved training state does not fit the model .*fix: delete the file"):
        train_loop(net, _loss, _batches, dataclasses.replace(CFG, eval_every=None), progress=False, resume=LoopCheckpoint(tmp_path / "run.pt", "fp"))


def test_the_distillation_student_resumes_with_accumulation(tiny_bert_dir, tmp_path, monkeypatch):
    """The [CLS] student on soft targets, 4 micro-batches per step (PET's distillation recipe)."""
    _, pool, test = _task()
    targets = np.random.default_rng(3).dirichlet(np.ones(2), size=len(pool))
    cfg = TrainConfig(steps=6, batch_size=2, grad_accum=4, lr=1e-3, max_length=32, seed=9, temperature=2.0)

    def fit(resume=None):
        clf = train_sequence_classifier(tiny_bert_dir, pool, list(LABELS), cfg, soft_targets=targets, device="cpu", progress=False, resume=resume)
        return clf, clf.predict_log_proba(test)

    ref_clf, ref_lp = fit()
    _kill_at(monkeypatch, 5)
    with pytest.raises(Killed):
        fit(LoopCheckpoint(tmp_path / "s.pt", "fp", every=2))
    monkeypatch.setattr(loop_module, "_optimizer_step", _REAL_STEP)
    ck = LoopCheckpoint(tmp_path / "s.pt", "fp", every=2)
    clf, lp = fit(ck)
    assert ck.resumed_from == 4
    _same(clf, ref_clf)
    np.testing.assert_allclose(lp, ref_lp, atol=1e-6)
    assert [e["kl"] for e in clf.train_log.entries] == [e["kl"] for e in ref_clf.train_log.entries]


def test_pet_resumes_its_student_inside_distillation(tiny_bert_dir, tmp_path, monkeypatch):
    """Killed during distillation: the rerun reloads every member, continues the student after
    its last saved step, and every stage equals an uninterrupted fit."""
    from pet.methods import get_method

    lab, pool, test = _task()
    opts = {**BASE, "repetitions": 1, "distill_steps": 6}

    def fit(resume_dir=None):
        setup = _setup(tiny_bert_dir)
        setup.resume_dir = resume_dir
        fitted = get_method("pet").fit(lab, pool, opts, setup)
        return fitted, {s.key: s.predictor.predict_log_proba(test) for s in fitted.stages}

    monkeypatch.setattr(LoopCheckpoint, "__init__", _every(2))  # save the student every 2 steps
    _, reference = fit()
    members = len(_setup(tiny_bert_dir).pvps)
    _kill_at(monkeypatch, members * BASE["steps"] + 5)  # the student's 5th step
    with pytest.raises(Killed):
        fit(tmp_path / "work")
    assert (tmp_path / "work" / "distilled.student.pt").is_file()
    monkeypatch.setattr(loop_module, "_optimizer_step", _REAL_STEP)
    trained = []
    real = pet_module.train_prompt_model
    monkeypatch.setattr(pet_module, "train_prompt_model", lambda *a, **kw: trained.append(1) or real(*a, **kw))
    fitted, got = fit(tmp_path / "work")
    assert trained == []  # every member reloaded
    student = next(s for s in fitted.stages if s.key == "distilled")
    assert student.extra["resumed_from_step"] == 4 and student.extra["steps"] == 6
    for key in reference:
        np.testing.assert_allclose(got[key], reference[key], atol=1e-6, err_msg=key)

