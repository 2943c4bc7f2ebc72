"""The papers' protocols (issue 20): PET's batch / accumulation rule, iPET's generation rule and
voters, PET's balanced |T|, FewNLU's cross-validation variant, and the protocol files."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import pet.training.loop as loop
from pet.errors import ConfigError
from pet.evaluation.selection import Selection, folds, parse_selection
from pet.methods.pet_growth import ipet_generations
from pet.training.loop import TrainConfig, train_loop
from test_bench import _experiment, _run, fake_env, load_experiment, world  # noqa: F401  (fixtures)
from test_selection import _labelled, _rows

REPO = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- gradient accumulation


def _no_dropout_mlm():
    from conftest import tiny_mlm

    model, tok = tiny_mlm("bert", seed=1)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model


def _one_step(batch_rows: int, grad_accum: int, monkeypatch) -> tuple[dict[str, torch.Tensor], int]:
    """One optimizer step of plain SGD (lr 1, so the update IS the gradient) on the MLM loss
    over the same four sequences, fed as ``4 / batch_rows`` micro-batches."""
    steps = []

    class CountedSGD(torch.optim.SGD):
        def step(self, closure=None):
            steps.append(1)
            return super().step(closure)

    def sgd(groups, config):
        return CountedSGD(groups, lr=config.lr)

    monkeypatch.setattr(loop, "_adamw", sgd)
    model = _no_dropout_mlm()
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 2000, (4, 12), generator=gen)  # four sequences of one length: no padding

    def batches(rank, world_size):
        while True:
            for i in range(0, 4, batch_rows):
                yield ids[i : i + batch_rows]

    def loss_fn(m, b):
        return {"loss": m(input_ids=b, labels=b).loss}

    cfg = TrainConfig(steps=1, lr=1.0, batch_size=batch_rows, grad_accum=grad_accum, weight_decay=0.0, max_grad_norm=0.05, seed=0)
    train_loop(model, loss_fn, batches, cfg, progress=False)
    return {n: p.detach().clone() for n, p in model.named_parameters()}, len(steps)


def test_accumulated_micro_batches_equal_one_big_batch(monkeypatch, one_thread):
    """PET's rule (App. B.1): 4 micro-batches x 4 accumulation steps = one batch of 16. Here 4 x 1
    with grad_accum 4 gives the same SGD update as one batch of 4 (|Δ| ≤ 1e-5; float32 sums in
    another order), clipping applies to the accumulated gradient, and the optimizer steps once."""
    big, n_big = _one_step(4, 1, monkeypatch)
    acc, n_acc = _one_step(1, 4, monkeypatch)
    start = {n: p.detach() for n, p in _no_dropout_mlm().named_parameters()}
    assert n_big == n_acc == 1
    moved = max(float((big[n] - start[n]).abs().max()) for n in big)
    assert moved > 1e-4  # the step did something
    for n in big:
        torch.testing.assert_close(acc[n], big[n], atol=1e-5, rtol=0)
    # without accumulation, one micro-batch of 1 is a different (and 4x noisier) gradient
    one, _ = _one_step(1, 1, monkeypatch)
    assert max(float((one[n] - big[n]).abs().max()) for n in big) > 1e-4


def test_accumulation_survives_a_dataloader_another_library_left_half_read(monkeypatch, one_thread):
    """accelerate's shared state: a prepared DataLoader abandoned mid-iteration (setfit's Trainer
    stops at max_steps) leaves end_of_dataloader set; the loop must still step once per
    grad_accum micro-batches (it stepped on every one)."""
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    it = iter(acc.prepare(torch.utils.data.DataLoader(list(range(8)), batch_size=4)))
    next(it), next(it)
    assert acc.gradient_state.end_of_dataloader  # the state the bug needs
    big, _ = _one_step(4, 1, monkeypatch)
    acc_params, n = _one_step(1, 4, monkeypatch)
    assert n == 1
    for name in big:
        torch.testing.assert_close(acc_params[name], big[name], atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- iPET


@pytest.mark.parametrize("n, k", [(10, 3), (50, 2), (100, 2), (1000, 0), (5000, 0), (8, 3), (1, 5), (200, 1)])
def test_ipet_generations_follow_pets_rule(n, k):
    """k = ⌈log5(1000/|T|)⌉ (PET §4): 3, 2, 2 for |T| = 10, 50, 100; none at 1000. Counted in
    integers: |T| = 8 reaches 8·5³ = 1000 exactly (a float log gives 3.0000000000000004)."""
    assert ipet_generations(n) == k
    assert n * 5**k >= 1000 and (k == 0 or n * 5 ** (k - 1) < 1000)


@pytest.mark.parametrize("start, scale, k", [(10, 5, 4), (1000, 5, 1), (2000, 5, 1), (10, 10, 3), (999, 2, 2)])
def test_zero_shot_ipet_generations(start, scale, k):
    """|T| = 0 (PET §3.4, last paragraph): generation g trains on start·d^(g−1) examples (10, 50,
    250, 1250 for PET's 10 and d = 5: the four generations of the paper's Figure 4); k is the
    first generation that reaches 1000, and at least 1 (generation 0 is the untrained PVPs)."""
    assert ipet_generations(0, scale, 1000, zero_shot_size=start) == k
    assert start * scale ** (k - 1) >= 1000 and (k == 1 or start * scale ** (k - 2) < 1000)


def test_ipet_generation_rule_errors():
    with pytest.raises(ConfigError, match="fix"):
        ipet_generations(-1)
    with pytest.raises(ConfigError, match="ipet_scale=1"):
        ipet_generations(0, scale=1)
    with pytest.raises(ConfigError, match="ipet_scale=1"):
        ipet_generations(10, scale=1)
    assert ipet_generations(10, scale=1, target=10) == 0


# ----------------------------------------------------------------------------- PET's |T|


def test_balanced_T_is_the_first_of_each_label_and_the_same_for_every_seed(world, tmp_path):  # noqa: F811
    """PET App. C: the first |T|/|L| examples per label (remainder to the first labels), one set
    for all runs; the uniform draw stays available (k_mode total)."""
    from pet.data import few_shot
    from pet.data.fewshot import _train_side
    from pet.data.registry import load_task

    task, data = world / "specs" / "tiny.json", world / "data"
    a, dev = few_shot(task, data, total=7, seed=1, balanced=True, out_dir=tmp_path / "b")
    b, _ = few_shot(task, data, total=7, seed=2, balanced=True, out_dir=tmp_path / "b")  # another seed reads the same folder
    pool = [e for e in _train_side(load_task(task), data) if e.label is not None]
    first = {lab: [e.fields for e in pool if e.label == lab][:n] for lab, n in (("0", 4), ("1", 3))}
    assert dev == [] and Counter(e.label for e in a) == {"0": 4, "1": 3}
    assert [e.fields for e in a if e.label == "0"] == first["0"] and [e.fields for e in a if e.label == "1"] == first["1"]
    assert [e.fields for e in a] == [e.fields for e in b]
    uniform = [few_shot(task, data, total=7, seed=s)[0] for s in (1, 2)]
    assert [e.fields for e in uniform[0]] != [e.fields for e in uniform[1]]
    from pet.errors import DataError

    with pytest.raises(DataError, match=re.escape("only 40 labelled train-side examples, |T|=41 needed; fix")):
        few_shot(task, data, total=41, seed=1, balanced=True)
    exp = load_experiment(_experiment(world, k=(6,), extra={"k_mode": "total_balanced"}, name="tb.yaml"))
    from pet.bench.experiment import expand_grid

    cells = expand_grid(exp)
    assert cells and all(c.k_total and c.config["k_mode"] == "total_balanced" for c in cells)


def test_k_zero_runs_only_the_methods_that_need_no_labelled_data(world, tiny_bert_dir, monkeypatch):  # noqa: F811
    """PET Table 1 lines 1 and 3 (|T| = 0): K = 0 cells exist for zero-shot and iPET only; their
    split is empty (no folder, no train file read) and a zero-shot cell runs on it."""
    from pet.bench.experiment import expand_grid
    from pet.bench.splits import DataCache

    monkeypatch.setenv("PET_DATA_DIR", str(world / "data"))
    methods = ["zero-shot", "fake", {"name": "ipet", "options": {"generations": 1}}]
    exp = load_experiment(_experiment(world, k=(0, 4), seeds=(1,), methods=methods, extra={"k_mode": "total_balanced"}, name="k0.yaml"))
    cells = expand_grid(exp, model=tiny_bert_dir)
    assert [(c.k, c.method) for c in cells] == [(0, "zero-shot"), (0, "ipet"), (4, "zero-shot"), (4, "fake"), (4, "ipet")]
    cache = DataCache(str(world / "data"), world / "results")
    split = cache.split(cells[0])
    assert (split.train, split.dev, split.source, split.folder) == ([], [], "none", "")
    assert not (world / "results" / "splits").exists()
    assert not any(k.startswith("train") for k in cache.inputs(cells[0]))  # K = 0 reads no labelled file
    summary = _run(world / "k0.yaml", model=tiny_bert_dir, only=["k=0", "method=zero-shot"])
    rows = _rows(world / "results")
    assert summary is not None and rows and {r["k"] for r in rows} == {0} and {r["method"] for r in rows} == {"zero-shot"}
    assert all(r["split"]["n_train"] == 0 and r["split"]["source"] == "none" for r in rows)


# ----------------------------------------------------------------------------- FewNLU's cross-validation


def test_fewnlu_selection_names_and_contiguous_folds():
    assert parse_selection("cv:4") == parse_selection("cv:4:refit") == Selection("cv", 4, "refit")
    s = parse_selection("cv:4:mean-of-folds")
    assert s == Selection("cv", 4, "mean-of-folds") and str(s) == "cv:4:mean-of-folds" and not s.refits
    assert str(parse_selection("cv:4:refit")) == "cv:4" and parse_selection("cv:4").refits
    with pytest.raises(ConfigError, match="mean-of-folds"):
        parse_selection("cv:4:ensemble")
    data = _labelled(6)  # 18 examples in label blocks: contiguous folds are NOT stratified
    fs = folds(data, s, seed=13)
    assert [[e.guid for e in h] for _, h in fs] == [[e.guid for e in data[a:b]] for a, b in ((0, 4), (4, 8), (8, 12), (12, 18))]
    assert folds(data, s, seed=99) == fs  # no shuffling: the seed plays no part
    for fit, held in fs:
        assert len(fit) + len(held) == 18 and not {e.guid for e in fit} & {e.guid for e in held}


def test_fewnlu_cv_reports_the_mean_test_score_of_the_fold_models(fake_env):  # noqa: F811
    """No refit: every grid point's row holds its fold models' mean test score; the chosen row
    is the point with the best mean held-out score, and nothing is fitted on all 16 examples."""
    _run(_experiment(fake_env, seeds=(1,), methods=[{"name": "fake", "selection": "cv:2:mean-of-folds", "search": {"bias": [0, 3]}}]))
    rows = _rows(fake_env / "results")
    points = [r for r in rows if r["selected"] is False]
    chosen = [r for r in rows if r["selected"] is True]
    assert len(points) == 2 * 3 and len(chosen) == 3
    for r in points:
        assert len(r["extra"]["fold_test_scores"]) == 2 and r["score"] == pytest.approx(np.mean(r["extra"]["fold_test_scores"]))
        assert r["selection"] == "cv:2:mean-of-folds" and r["test"]["n"] == 10
    for r in chosen:
        same = [p for p in points if p["key"] == r["key"]]
        best = max(same, key=lambda p: p["dev_score"])
        assert r["dev_score"] == best["dev_score"] and r["score"] == best["score"]
    log = [json.loads(x) for x in (fake_env / "fake.log").read_text().splitlines()]
    assert Counter(len(rec["train"]) for rec in log) == {8: 4}  # 2 points x 2 folds; no refit on 16


# ----------------------------------------------------------------------------- the protocol files


def test_protocol_files_state_pets_and_lmbffs_settings():
    import yaml

    pet = yaml.safe_load((REPO / "benchmarks" / "pet.yaml").read_text())
    assert pet["k_mode"] == "total_balanced"
    opts = {m["name"]: m.get("options", {}) for m in pet["methods"] if isinstance(m, dict)}
    for name in ("pet", "ipet"):  # App. B.1 / Table 5: 1 labelled + 3 unlabelled, x4, 1000 steps; C: 4 x 4, 5000 steps
        o = {**pet["budgets"], **opts[name]}
        assert (o["batch_size"], o["unlabelled_batch_size"], o["grad_accum"], o["steps"], o["mlm_weight"]) == (1, 3, 4, 1000, 1e-4)
        assert (o["distill_batch_size"], o["distill_steps"]) == (4, 5000)
    assert opts["ipet"]["generations"] is None
    assert (pet["budgets"]["batch_size"], pet["budgets"]["grad_accum"], pet["budgets"]["steps"]) == (4, 4, 250)  # "sup."
    pvps = {t["name"]: t["pvps"] for t in pet["tasks"]}
    assert len(pvps["agnews"]) == len(pvps["yahoo"]) == 6 and len(pvps["mnli"]) == 4 and len(pvps["yelp-full"]) == 4
    assert not any(p.startswith("auto-") for p in pvps["mnli"])  # ranked on dev data: not in a no-dev protocol
    lmbff = yaml.safe_load((REPO / "benchmarks" / "lmbff.yaml").read_text())
    assert lmbff["budgets"]["weight_decay"] == 0.0 and "stsb" in {t["name"] for t in lmbff["tasks"]}
    qnli = json.loads((REPO / "data" / "tasks" / "qnli.json").read_text())
    assert qnli["max_length"] == 128  # LM-BFF run_experiment.sh: 128 except MNLI, SNLI, RTE
