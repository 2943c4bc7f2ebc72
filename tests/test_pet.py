"""PET / iPET: the pure helpers (soft targets, weights, iPET growth) and tiny end-to-end runs."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from pet.errors import ConfigError
from pet.examples import Example
from pet.methods.pet import (
    allocate,
    example_key,
    fit_pet,
    ipet_grow,
    pre_training_weights,
    soft_targets,
)
from pet.scoring import ensemble
from pet.spec import PVP, Pattern, Verbalizer

from conftest import tiny_mlm

LABELS = ["0", "1"]
GOOD = ["good", "great", "fine", "nice", "lovely", "superb", "fun", "charming"]
BAD = ["bad", "awful", "dull", "boring", "terrible", "poor", "weak", "tedious"]


def _log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    return x - np.log(np.exp(x - x.max(1, keepdims=True)).sum(1, keepdims=True)) - x.max(1, keepdims=True)


def _task(n_pool: int = 16, n_test: int = 8):
    """A tiny separable sentiment task: labelled 4+4, a pool and a test set, all distinct texts."""
    rng = np.random.default_rng(0)

    def make(i, tag):
        lab = str(i % 2)
        word = (GOOD if lab == "1" else BAD)[int(rng.integers(len(GOOD)))]
        return Example({"text_a": f"the {tag} film number {i} was {word}."}, lab, f"{tag}-{i}")

    labelled = [make(i, "train") for i in range(8)]
    pool = [
        Example(dict(e.fields), None, e.guid, {"gold_label": e.label}) for e in (make(i, "pool") for i in range(n_pool))
    ]
    test = [make(i, "test") for i in range(n_test)]
    return labelled, pool, test


def _pvps():
    v1 = Verbalizer("good-bad", {"0": ["bad"], "1": ["good"]})
    v2 = Verbalizer("great-terrible", {"0": ["terrible"], "1": ["great"]})
    return [
        PVP(Pattern("it-was", "{text_a} It was {mask}."), v1),
        PVP(Pattern("just", "Just {mask}! {text_a}"), v2),
    ]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random BERT MLM + the real WordPiece tokenizer, loadable by path."""
    model, tok = tiny_mlm("bert", seed=0)
    d = tmp_path_factory.mktemp("tiny-bert")
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


def _config(**kw):
    from pet.training import TrainConfig

    base = dict(steps=3, batch_size=4, lr=1e-3, max_length=32, eval_batch_size=16, seed=7)
    base.update(kw)
    return TrainConfig(**base)




# ----------------------------------------------------------------------------- soft targets / ensemble


def test_ensemble_of_identical_models_equals_each_model():
    rng = np.random.default_rng(1)
    lp = _log_softmax(rng.normal(size=(6, 3)))
    for w in (None, [0.2, 0.5, 0.3]):
        np.testing.assert_allclose(ensemble([lp, lp, lp], w), lp, atol=1e-12)
        np.testing.assert_allclose(soft_targets([lp, lp, lp], w, 2.0), soft_targets([lp], None, 2.0), atol=1e-12)
        np.testing.assert_allclose(soft_targets([lp, lp, lp], w, 1.0), np.exp(lp), atol=1e-12)


def test_soft_targets_rows_sum_to_one_and_logits_equal_log_probs():
    rng = np.random.default_rng(2)
    logits = [rng.normal(size=(10, 4)) * 3 for _ in range(3)]
    w = [0.5, 0.25, 1.0]
    for mode in ("logits", "probs"):
        t = soft_targets(logits, w, 2.0, mode=mode)
        assert t.shape == (10, 4)
        np.testing.assert_allclose(t.sum(1), 1.0, atol=1e-12)
        assert (t >= 0).all()
        # label logits and label log-probs differ by a per-row constant: same targets
        np.testing.assert_allclose(t, soft_targets([_log_softmax(z) for z in logits], w, 2.0, mode=mode), atol=1e-12)
    # PET: softmax of the weighted mean of the logits, divided by T
    zbar = sum(wi * z for wi, z in zip(np.array(w) / sum(w), logits))
    np.testing.assert_allclose(soft_targets(logits, w, 2.0), np.exp(_log_softmax(zbar / 2.0)), atol=1e-12)


def test_soft_targets_temperature_limits():
    rng = np.random.default_rng(3)
    lp = [_log_softmax(rng.normal(size=(5, 3)) * 4) for _ in range(2)]
    np.testing.assert_allclose(soft_targets(lp, None, 1e6), 1 / 3, atol=1e-5)
    sharp = soft_targets(lp, None, 1e-4)
    np.testing.assert_allclose(sharp.max(1), 1.0, atol=1e-6)
    # higher temperature → flatter (higher entropy) rows
    ent = lambda p: -(p * np.log(p)).sum(1)  # noqa: E731
    assert (ent(soft_targets(lp, None, 4.0)) > ent(soft_targets(lp, None, 1.0))).all()
    with pytest.raises(ConfigError):
        soft_targets(lp, None, 0.0)
    with pytest.raises(ConfigError):
        soft_targets(lp, [1.0], 2.0)  # one weight for two models


def test_pre_training_weights():
    gold = ["0", "1", "1", "0"]
    right = np.log(np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]]))
    half = np.log(np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]]))
    np.testing.assert_allclose(pre_training_weights([right, half], gold, LABELS), [1.0, 0.5])
    np.testing.assert_allclose(pre_training_weights([right, half], gold, LABELS, "mean"), [1.0, 1.0])
    wrong = np.log(np.array([[0.1, 0.9], [0.8, 0.2], [0.7, 0.3], [0.4, 0.6]]))
    np.testing.assert_allclose(pre_training_weights([wrong, wrong], gold, LABELS), [1.0, 1.0])  # all 0 → equal
    with pytest.raises(ConfigError):
        pre_training_weights([right], gold, LABELS, "median")


def test_allocate_is_exact_and_proportional():
    assert allocate(24, [4, 2]) == [16, 8]
    assert allocate(128, [16, 16]) == [64, 64]
    for total, counts in [(10, [1, 1, 1]), (7, [3, 2, 2]), (0, [2, 2]), (100, [5, 0, 3])]:
        out = allocate(total, counts)
        assert sum(out) == max(total, 0)
        for o, c in zip(out, counts):
            assert abs(o - total * c / sum(counts)) < 1
    assert allocate(10, [1, 1, 1]) == [4, 3, 3]  # ties go to the first label


# ----------------------------------------------------------------------------- iPET growth


def _ipet_setup(n_pool=100, seed=0):
    rng = np.random.default_rng(seed)
    labelled = [Example({"text_a": f"labelled {i}"}, "0" if i < 4 else "1", f"l{i}") for i in range(6)]  # 4:2
    pool = [Example({"text_a": f"pool {i}"}, None, f"p{i}", {"gold_label": str(i % 2)}) for i in range(n_pool)]
    pool[0] = Example({"text_a": "Labelled  3"}, None, "dup", {"gold_label": "0"})  # same text as a labelled one
    # 4 models: PVP "A" twice (two repetitions), "B", "C". A's models always say the wrong
    # label; B and C say the gold label with random confidence.
    gold = np.array([i % 2 for i in range(n_pool)])
    conf = rng.uniform(0.55, 0.99, size=n_pool)
    good = np.where(gold[:, None] == np.arange(2)[None, :], conf[:, None], 1 - conf[:, None])
    wrong = good[:, ::-1]
    log_probs = [np.log(wrong), np.log(wrong), np.log(good), np.log(good * 0.98 + 0.01)]
    groups = ["A", "A", "B", "C"]
    return labelled, pool, log_probs, groups


@pytest.mark.parametrize("generation", [1, 2])
def test_ipet_grow_sizes_label_distribution_and_voters(generation):
    labelled, pool, log_probs, groups = _ipet_setup()
    for member in range(4):
        g = ipet_grow(labelled, pool, log_probs, groups, member, LABELS, generation, weights=[1, 1, 0.5, 0.75], seed=5)
        target = 6 * 5**generation - 6
        assert g.target == target == len(g.examples)
        # the original 4:2 label distribution, exactly
        assert Counter(e.label for e in g.examples) == {"0": target * 4 // 6, "1": target * 2 // 6}
        # voters: max(1, round(0.25 · #others)), never a model of the member's own PVP
        own = groups[member]
        others = [j for j in range(4) if groups[j] != own]
        assert len(g.voters) == max(1, round(len(others) * 0.25))
        assert all(groups[v] != own for v in g.voters)
        # every added example carries the label of the voters' ensemble
        w = np.array([1, 1, 0.5, 0.75])[g.voters]
        ens = ensemble([log_probs[v] for v in g.voters], w).argmax(1)
        by_guid = {e.guid: i for i, e in enumerate(pool)}
        assert all(e.label == LABELS[ens[by_guid[e.guid]]] for e in g.examples)
        # labelled examples (by text) are never added
        keys = {example_key(e) for e in labelled}
        assert not any(example_key(e) in keys for e in g.examples)
        assert all(e.meta["ipet_generation"] == generation for e in g.examples)
        if generation == 1:  # the pool is large enough: no example twice
            assert len({e.guid for e in g.examples}) == len(g.examples)


def test_ipet_grow_members_of_a_pvp_are_labelled_by_others_only():
    labelled, pool, log_probs, groups = _ipet_setup()
    # A's models are always wrong; B/C say the gold label. A model of PVP A is labelled by B or
    # C only, so its added examples are perfectly labelled.
    for member in (0, 1):
        g = ipet_grow(labelled, pool, log_probs, groups, member, LABELS, 1, seed=1)
        assert g.label_accuracy == 1.0
    # B's model may get C's or A's votes; with fraction 1 it gets all of A, A, C
    g = ipet_grow(labelled, pool, log_probs, groups, 2, LABELS, 1, fraction=1.0, seed=1)
    assert g.voters == [0, 1, 3]


def test_ipet_grow_is_deterministic_and_seeded():
    labelled, pool, log_probs, groups = _ipet_setup()
    a = ipet_grow(labelled, pool, log_probs, groups, 2, LABELS, 1, seed=3)
    b = ipet_grow(labelled, pool, log_probs, groups, 2, LABELS, 1, seed=3)
    assert [e.guid for e in a.examples] == [e.guid for e in b.examples] and a.voters == b.voters
    c = ipet_grow(labelled, pool, log_probs, groups, 2, LABELS, 1, seed=4)
    assert [e.guid for e in a.examples] != [e.guid for e in c.examples]


def test_ipet_grow_top_mode_takes_most_confident():
    labelled, pool, log_probs, groups = _ipet_setup()
    g = ipet_grow(labelled, pool, log_probs, groups, 0, LABELS, 1, select="top", fraction=1.0, seed=0)
    probs = np.exp(ensemble([log_probs[2], log_probs[3]]))
    by_guid = {e.guid: i for i, e in enumerate(pool)}
    for lab in LABELS:
        li = LABELS.index(lab)
        chosen = {by_guid[e.guid] for e in g.examples if e.label == lab}
        cands = [i for i in range(1, len(pool)) if probs[i].argmax() == li]
        best = sorted(cands, key=lambda i: (-probs[i, li], i))[: len(chosen)]
        assert chosen == set(best)


def test_ipet_grow_upsamples_a_small_pool_and_records_shortfall():
    labelled, pool, log_probs, groups = _ipet_setup(n_pool=10)
    g = ipet_grow(labelled, pool, log_probs, groups, 0, LABELS, 2, seed=0)  # needs 144 from 9 usable
    assert len(g.examples) == 144 and Counter(e.label for e in g.examples) == {"0": 96, "1": 48}
    # every candidate of a label is repeated ⌊need/n⌋ or ⌈need/n⌉ times (4 for "0", 5 for "1")
    for lab, need in (("0", 96), ("1", 48)):
        counts = Counter(e.guid for e in g.examples if e.label == lab)
        n = len(counts)
        assert n == (4 if lab == "0" else 5)
        assert set(counts.values()) <= {need // n, -(-need // n)}
    # a label no pool example is assigned to: filled with the examples most likely to be it
    p1 = np.linspace(0.05, 0.4, 10)
    only0 = [np.log(np.stack([1 - p1, p1], 1))] * 4
    g = ipet_grow(labelled, pool, only0, groups, 0, LABELS, 1, seed=0)
    assert g.per_label == {"0": 16, "1": 8} and g.forced == {"1": 8}
    assert [e.guid for e in g.examples if e.label == "1"] == [f"p{i}" for i in range(9, 1, -1)]


def test_ipet_grow_needs_two_pvps():
    labelled, pool, log_probs, _ = _ipet_setup()
    with pytest.raises(ConfigError, match="two"):
        ipet_grow(labelled, pool, log_probs, ["A"] * 4, 0, LABELS, 1)


# ----------------------------------------------------------------------------- configuration errors


def test_empty_pool_with_distillation_is_a_clear_config_error(tiny_model_dir):
    labelled, _, test = _task()
    with pytest.raises(ConfigError, match="unlabelled pool is empty.*fix:"):
        fit_pet(tiny_model_dir, _pvps(), labelled, [], LABELS, _config(), test=test)
    with pytest.raises(ConfigError, match="unlabelled pool is empty"):
        fit_pet(tiny_model_dir, _pvps(), labelled, [], LABELS, _config(), ipet=True, distill=False, test=test)
    with pytest.raises(ConfigError, match="two"):
        fit_pet(tiny_model_dir, _pvps()[:1], labelled, _task()[1], LABELS, _config(), ipet=True, test=test)


def test_method_options_are_checked(tiny_model_dir):
    from pet.methods.base import RunContext, get_method
    from pet.data import load_task

    labelled, pool, test = _task()
    ctx = RunContext(task=load_task("sst2"), model=tiny_model_dir, train=labelled, test=test, pvps=_pvps(), unlabelled=[], progress=False)
    with pytest.raises(ConfigError, match="empty"):
        get_method("pet")(ctx, {"steps": 1})
    with pytest.raises(ConfigError, match="ensemble"):
        get_method("pet")(ctx, {"ensemble": "median"})
    with pytest.raises(ConfigError, match="unknown"):
        get_method("ipet")(ctx, {"not_an_option": 1})
    with pytest.raises(ConfigError, match="generations"):
        get_method("ipet")(ctx, {"generations": "x"})


# ----------------------------------------------------------------------------- end to end (tiny model)


def test_pet_ensemble_only_end_to_end(tiny_model_dir):
    labelled, pool, test = _task()
    clf, rows = fit_pet(
        tiny_model_dir, _pvps(), labelled, pool, LABELS, _config(steps=2), repetitions=2, test=test, distill=False, keep_models=True
    )
    assert [r.stage for r in rows] == ["pvp"] * 4 + ["ensemble"]
    pvp_rows = rows[:4]
    assert [r.pvp for r in pvp_rows] == ["it-was:good-bad", "just:great-terrible"] * 2
    assert [r.extra["repetition"] for r in pvp_rows] == [0, 0, 1, 1]
    assert len({r.extra["seed"] for r in pvp_rows[::2]}) == 2  # distinct seeds per repetition
    for r in rows:
        assert 0.0 <= r.score <= 1.0 and r.metric == "accuracy"
        assert r.train_seconds > 0 and r.eval_examples_per_second > 0 and r.trained_parameters > 0
    ens = rows[-1]
    assert ens.pvp is None and math.isclose(sum(ens.extra["weights"]), 1.0)
    # weights are the PVPs' accuracies on the labelled set before training
    acc = {r.pvp: r.extra["pre_train_accuracy"] for r in pvp_rows}
    w = np.array([acc[m.split("#")[0]] for m in ens.extra["members"]])
    if w.sum() > 0:
        np.testing.assert_allclose(ens.extra["weights"], w / w.sum(), atol=1e-6)
    # keep_models: the returned PromptEnsemble is that weighted ensemble
    from pet.classifier import PromptEnsemble

    assert isinstance(clf, PromptEnsemble) and len(clf.members) == 4
    pred = [LABELS[i] for i in clf.predict_log_proba(test).argmax(1)]
    assert math.isclose(np.mean([p == e.label for p, e in zip(pred, test)]), ens.score)


def test_pet_end_to_end_with_distillation(tiny_model_dir):
    labelled, pool, test = _task()
    clf, rows = fit_pet(tiny_model_dir, _pvps(), labelled, pool, LABELS, _config(), test=test, ensemble="mean")
    assert [r.stage for r in rows] == ["pvp", "pvp", "ensemble", "distilled"]
    assert rows[2].extra["weights"] == [0.5, 0.5]
    d = rows[-1]
    assert 0 <= d.score <= 1 and d.train_seconds > 0 and d.trained_parameters > 0 and d.eval_examples_per_second > 0
    assert d.extra["pool_size"] == len(pool)
    lp = np.asarray(clf.predict_log_proba(test))
    assert lp.shape == (len(test), 2)
    np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, atol=1e-5)
    _, again = fit_pet(tiny_model_dir, _pvps(), labelled, pool, LABELS, _config(), test=test, ensemble="mean")
    assert [r.score for r in again] == [r.score for r in rows]


def test_ipet_end_to_end_rows_and_training_set_sizes(tiny_model_dir, tmp_path):
    from pet.classifier import PetClassifier
    from pet.methods.base import RunContext, get_method
    from pet.data import load_task

    labelled, pool, test = _task(n_pool=24)
    ctx = RunContext(
        task=load_task("sst2"), model=tiny_model_dir, train=labelled, test=test, pvps=_pvps(), unlabelled=pool, seed=3, progress=False,
        output_dir=tmp_path / "saved",
    )
    opts = {"generations": 1, "steps": 2, "lr": 1e-3, "batch_size": 4, "distill_steps": 2, "distill_each_generation": True}
    rows = get_method("ipet")(ctx, opts)
    stages = [r.stage for r in rows]
    assert stages == ["pvp", "pvp", "ensemble", "distilled-gen0", "ipet-gen1", "ipet-gen1", "ipet-gen1-ensemble", "distilled"]
    assert all(r.method == "ipet" for r in rows)
    for r in rows:
        if r.stage == "ipet-gen1":
            # exact sizes and the labelled set's 50/50 label distribution, even when the tiny
            # random ensemble assigns every pool example to one label (then "added_forced")
            assert r.extra["train_size"] == len(labelled) * 5
            assert r.extra["added"] == r.extra["added_target"] == len(labelled) * 4
            assert r.extra["added_per_label"] == {"0": 16, "1": 16}
            assert all(v.split("#")[0] != r.pvp for v in r.extra["voters"])  # other PVPs only
            assert r.extra["seed"] != rows[0].extra["seed"]
        assert r.extra["elapsed_seconds"] >= 0
    assert rows[0].extra["seed"] == 3  # the context's seed
    # with an output folder the distilled classifier is saved and reloads with the same score
    clf = PetClassifier.load(tmp_path / "saved")
    assert clf.method == "ipet" and [m["stage"] for m in clf.metrics] == stages
    assert math.isclose(clf.score(test, [e.label for e in test]), rows[-1].score)
